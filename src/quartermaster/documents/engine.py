"""The one PDF engine: a Django template per language, rendered to PDF by WeasyPrint.

Text is laid out by Pango and shaped by HarfBuzz, so Tamil's conjuncts and vowel signs come out
right; the fonts are Debian's Noto (Noto Sans, Noto Sans Tamil) found through fontconfig. The
engine fetches nothing: a document may embed `data:` URLs (a QR code) and nothing else, so no
name or note typed by a user can make the server read a file or call a host.

Text extracted from a PDF (pdftotext, a screen reader, a search) loses some Tamil conjuncts —
the PDF maps each glyph to one piece of text, and a shaped Tamil syllable is several glyphs — so
every document also carries its key text (its number, the names in both scripts, the figures)
in the PDF's metadata, where it is whole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import translation

from quartermaster.core.errors import Invalid
from quartermaster.documents.types import LANGUAGES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metadata:
    """What the PDF says about itself (Title, Subject, Keywords, Author in its info)."""

    title: str
    subject: str
    keywords: tuple[str, ...]
    author: str


def clean_language(value: str | None, default: str) -> str:
    """`?lang=`: one of the documents' languages; without it `default`, or English when
    `default` is none of them (an Accept-Language of another language)."""
    chosen = default if value is None or value == "" else value
    if value is not None and value != "" and value not in LANGUAGES:
        raise Invalid.field("lang", f"one of {', '.join(LANGUAGES)}")
    return chosen if chosen in LANGUAGES else LANGUAGES[0]


def render_html(template: str, language: str, context: Mapping[str, Any], meta: Metadata) -> str:
    """The document's HTML: `documents/<language>/<template>.html` with `context`."""
    if language not in LANGUAGES:
        raise ValueError(f"no documents in {language!r}")
    with translation.override(language):
        return render_to_string(
            f"documents/{language}/{template}.html",
            {**context, "meta": meta, "language": language},
        )


def render_pdf(template: str, language: str, context: Mapping[str, Any], meta: Metadata) -> bytes:
    """The document as PDF bytes."""
    # Imported here: loading Pango and its fonts costs a few hundred milliseconds that only a
    # request for a document should pay, not every process start.
    from PIL import ImageFile
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # Importing weasyprint.images turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process;
    # left on, a damaged photo uploaded after any PDF was rendered would be accepted (media
    # refuses it). Our documents embed only images we made (QR codes), never a truncated one.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    html = render_html(template, language, context, meta)
    fetcher = URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    document = HTML(string=html, url_fetcher=fetcher)
    pdf = document.write_pdf()
    assert isinstance(pdf, bytes)
    return pdf
