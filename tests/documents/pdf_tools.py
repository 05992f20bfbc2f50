"""Reading a PDF back as a person would: its text (pdftotext), its metadata (pdfinfo), its
fonts (pdffonts) and its first page as a picture (pdftoppm) — poppler's tools, from Debian's
poppler-utils (scripts/ensure-documents.sh installs them)."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from django.test import Client
from PIL import Image

from tests.conftest import Api


def _run(pdf: bytes, *command: str) -> str:
    """`command` with the PDF's path appended; what it printed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(pdf)
        done = subprocess.run([*command, str(path)], check=True, capture_output=True, timeout=60)
    return done.stdout.decode()


def pdf_text(pdf: bytes) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(pdf)
        done = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", str(path), "-"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return done.stdout.decode()


def pdf_info(pdf: bytes) -> dict[str, str]:
    out = _run(pdf, "pdfinfo", "-enc", "UTF-8")
    info = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        info[name.strip()] = value.strip()
    return info


def pdf_fonts(pdf: bytes) -> str:
    return _run(pdf, "pdffonts")


def first_page(pdf: bytes, dpi: int = 60) -> Image.Image:
    """The first page as a greyscale picture (pdftoppm writes only to files)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(pdf)
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                str(dpi),
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(path),
                str(Path(folder) / "page"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        png = (Path(folder) / "page.png").read_bytes()
    return Image.open(io.BytesIO(png)).convert("L")


def ink(image: Image.Image) -> float:
    """The share of the page that is not white."""
    histogram = image.histogram()
    dark = sum(histogram[:200])
    return dark / (image.width * image.height)


def get_pdf(api: Api, path: str, headers: dict[str, str] | None = None) -> Any:
    """GET `path` as `api`'s user; the raw Django response (its body is not JSON)."""
    client: Client = api.client
    return client.get(path, headers={"Authorization": f"Bearer {api.token}", **(headers or {})})
