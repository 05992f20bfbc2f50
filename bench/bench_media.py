"""Benchmark: media confirm throughput (issue 13, item 7) — photos of 2 MB (and 8 MB for the
memory check) through a real server.

One `quartermaster demo --serve` (SQLite, local media storage, its own data dir) per photo size;
a client in this process logs in as the demo inspector (driver1) and, per photo, asks for an
upload target, PUTs the bytes in 1 MiB chunks (timed apart), then POSTs confirm: the server
reads the bytes back from storage (size, SHA-256, the real type), reads the dimensions and
makes a 320 px thumbnail with Pillow. Photos are JPEGs of noise (incompressible, so a 2 MB
file has ~0.6 megapixels; a 2 MB camera photo has more pixels, which Pillow's JPEG draft mode
decodes at 1/8 scale anyway).

Figures per size: confirm MB/s (photo bytes / summed confirm time, sequential, 1 client),
per-photo confirm latency p50/p95/max, upload MB/s for reference, and the server's peak RSS
(VmHWM) before and after: it should stay flat in the file size (confirm streams the bytes in
1 MiB chunks through a spooled temporary file; nothing holds a whole file).

    .venv/bin/python bench/bench_media.py                  # 40 photos of 2 MB, 20 of 8 MB
    .venv/bin/python bench/bench_media.py --photos 10 --quick
    .venv/bin/python bench/bench_media.py --s3             # a moto S3 server in this process
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
MB = 1_000_000
CHUNK = 1 << 20


def noise_jpeg(target_bytes: int, seed: int) -> bytes:
    """A JPEG of noise about `target_bytes` long (quality 92: ~0.97 bytes a pixel)."""
    side = int((target_bytes / 0.97) ** 0.5)
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": SRC,
            "QM_DATA_DIR": str(data_dir),
            "QM_DATABASE_URL": "",
            "QM_MEDIA_UPLOADS_PER_MINUTE": "0",
            "QM_API_REQUESTS_PER_USER": "0",
            "QM_API_REQUESTS_PER_IP": "0",
            "QM_MEDIA_GC_INTERVAL_S": "0",
            **extra_env,
        }
        self.log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        # The demo data first, in its own process: the server's peak RSS is then its own.
        quartermaster = [sys.executable, "-m", "quartermaster"]
        subprocess.run([*quartermaster, "demo"], env=env, stdout=self.log, check=True)
        self.process = subprocess.Popen(
            [*quartermaster, "serve", "--port", str(self.port), "--no-access-log",
             "--log-level", "warning"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def peak_rss_mib(self, field: str = "VmHWM") -> float:
        """VmHWM (or VmRSS) of the server process (uvicorn serves in it: workers=1)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def put_chunks(http: httpx.Client, target: dict[str, Any], content: bytes) -> None:
    if target["method"] == "POST":
        reply = http.post(
            target["url"], data=target["fields"], files={"file": ("p.jpg", content, "image/jpeg")}
        )
        reply.raise_for_status()
        return
    for first in range(0, len(content), CHUNK):
        chunk = content[first : first + CHUNK]
        last = first + len(chunk) - 1
        reply = http.put(
            target["url"],
            content=chunk,
            headers={"Content-Type": "image/jpeg",
                     "Content-Range": f"bytes {first}-{last}/{len(content)}"},
        )  # fmt: skip
        reply.raise_for_status()


def run_size(
    size_mb: float, photos: int, args: argparse.Namespace, s3: dict[str, str]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qm-bench-media-") as tmp:
        server = Server(Path(tmp), s3)
        try:
            return measure(server, size_mb, photos)
        finally:
            server.stop()


def measure(server: Server, size_mb: float, photos: int) -> dict[str, Any]:
    http = httpx.Client(timeout=120)
    token = http.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": "driver1", "password": "driver1-demo-pass", "device_id": "bench-tab"},
    ).json()["access"]
    auth = {"Authorization": f"Bearer {token}"}
    rss_start = server.peak_rss_mib()
    rss_now_start = server.peak_rss_mib("VmRSS")
    contents = [noise_jpeg(int(size_mb * MB), seed) for seed in range(min(photos, 4))]
    # One warm-up photo (imports, first connection), then the measured ones.
    rss_before = None
    confirm_s: list[float] = []
    upload_s = 0.0
    total_bytes = 0
    for index in range(photos + 1):
        content = contents[index % len(contents)]
        body = {"content_type": "image/jpeg", "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest()}  # fmt: skip
        asked = http.post(f"{server.url}/api/v1/media/uploads", json=body, headers=auth).json()
        started = time.perf_counter()
        put_chunks(http, asked["upload"], content)
        uploaded = time.perf_counter()
        confirmed = http.post(f"{server.url}/api/v1/media/{asked['id']}/confirm", headers=auth)
        finished = time.perf_counter()
        assert confirmed.status_code == 200, confirmed.text
        if index == 0:
            rss_before = server.peak_rss_mib()
            continue
        upload_s += uploaded - started
        confirm_s.append(finished - uploaded)
        total_bytes += len(content)
    ordered = sorted(confirm_s)
    return {
        "size_mb": round(sum(map(len, contents)) / len(contents) / MB, 2),
        "pixels": Image.open(BytesIO(contents[0])).size,
        "photos": photos,
        "confirm_mb_s": round(total_bytes / MB / sum(confirm_s), 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "upload_mb_s": round(total_bytes / MB / upload_s, 1),
        "rss_start_mib": round(rss_start, 1),
        "rss_after_warmup_mib": round(rss_before or 0, 1),
        "peak_rss_mib": round(server.peak_rss_mib(), 1),
        "rss_now_start_mib": round(rss_now_start, 1),
        "rss_now_end_mib": round(server.peak_rss_mib("VmRSS"), 1),
    }


def start_s3() -> tuple[Any, dict[str, str]]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    ).create_bucket(Bucket="qm-bench")  # fmt: skip
    env = {
        "QM_MEDIA_S3_BUCKET": "qm-bench",
        "QM_MEDIA_S3_ENDPOINT_URL": endpoint,
        "QM_MEDIA_S3_ACCESS_KEY_ID": "bench",
        "QM_MEDIA_S3_SECRET_ACCESS_KEY": "bench",
    }
    return moto, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=40, help="2 MB photos (default 40)")
    parser.add_argument("--quick", action="store_true", help="10 photos of 2 MB, 5 of 8 MB")
    parser.add_argument("--s3", action="store_true", help="S3 storage (moto, in this process)")
    args = parser.parse_args(argv)
    photos = 10 if args.quick else args.photos
    moto, s3 = start_s3() if args.s3 else (None, {})
    try:
        rows = [
            run_size(2, photos, args, s3),
            run_size(8, max(5, photos // 2), args, s3),
        ]
    finally:
        if moto is not None:
            moto.stop()
    storage = "S3 (moto server on 127.0.0.1, in the bench process)" if args.s3 else "local disk"
    print(f"storage: {storage}; 1 client, sequential; SQLite; uvicorn 1 worker")
    print("| photo | pixels | photos | confirm MB/s | confirm p50 / p95 / max ms | upload MB/s "
          "| server peak RSS: at start → after 1 photo → after all (MiB) "
          "| server RSS at start → at end (MiB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        w, h = row["pixels"]
        print(
            f"| {row['size_mb']} MB | {w}x{h} | {row['photos']} | {row['confirm_mb_s']} "
            f"| {row['p50_ms']} / {row['p95_ms']} / {row['max_ms']} | {row['upload_mb_s']} "
            f"| {row['rss_start_mib']} → {row['rss_after_warmup_mib']} → {row['peak_rss_mib']} "
            f"| {row['rss_now_start_mib']} → {row['rss_now_end_mib']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
