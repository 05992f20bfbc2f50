"""The field client's photos over an interrupted connection, with real processes: a server
(`quartermaster demo --serve`), the agent (`quartermaster agent …`) as a subprocess SIGKILLed
between upload and confirm, and a proxy between them that holds the confirm — before it reaches
the server, or after the server confirmed but before the answer reaches the agent. The agent run
again finishes the job: one asset, confirmed, attached to the answer; the photo never lost,
never uploaded as a second asset; the audit chain verifies."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_chaos import ServerProcess, chaos_database, login
from tests.acceptance.test_served_api import free_port
from tests.inspections.helpers import BOILER_ROOM
from tests.media.helpers import image_bytes

SRC = str(Path(__file__).parents[2] / "src")
HOP_HEADERS = frozenset({"connection", "transfer-encoding", "keep-alive", "content-length"})


class HoldingProxy:
    """Forwards every request to `upstream`, except that, once armed, the first
    `POST …/confirm` is held: `before` the server sees it, or `after` the server answered (the
    answer never reaches the client). `held` is set then; the held request hangs until close."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = ""
        self.held = threading.Event()
        self.release = threading.Event()
        self.http = httpx.Client(base_url=upstream, timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            do_POST = do_PUT = do_HEAD = do_PATCH = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        holding = handler.command == "POST" and handler.path.endswith("/confirm") and self.mode
        if holding and self.mode == "before":
            self._hold()
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_HEADERS}
        reply = self.http.request(handler.command, handler.path, content=body, headers=headers)
        if holding:
            self._hold()
            return
        handler.send_response(reply.status_code)
        for name, value in reply.headers.items():
            if name.lower() not in HOP_HEADERS:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.content)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(reply.content)

    def _hold(self) -> None:
        self.mode = ""
        self.held.set()
        self.release.wait(120)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.http.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    with chaos_database() as database_url:
        server = ServerProcess(tmp_path / "server", database_url)
        (tmp_path / "server").mkdir()
        server.start(demo=True)
        try:
            yield server
        finally:
            server.stop()


def agent(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "quartermaster", "agent", *args, "--db", str(db)]


def run_agent(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(agent(db, *args), env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("hold", ["before", "after"])
def test_a_photo_survives_a_kill_between_upload_and_confirm(
    served: ServerProcess, tmp_path: Path, hold: str
) -> None:
    base = served.url
    manager = login(base, "manager")
    template = httpx.post(f"{base}/api/v1/templates", json=BOILER_ROOM, headers=manager).json()
    httpx.post(f"{base}/api/v1/templates/{template['id']}/publish", headers=manager)
    location = httpx.get(f"{base}/api/v1/auth/me", headers=login(base, "driver1")).json()[
        "locations"
    ][0]
    location_id = location["id"] if isinstance(location, dict) else location
    db = tmp_path / "device" / "agent.sqlite3"
    photo_file = tmp_path / "boiler.jpg"
    photo_file.write_bytes(image_bytes("JPEG", (1600, 1200), noise=True))

    # Offline: the inspection, a photo, the answer that attaches it.
    create = {"template": template["id"], "location": location_id, "answers": {}}
    assert run_agent(db, "record", "inspection.create", "--payload", _json(create),
                     "--temp-id", "temp_insp", "--device", "tablet-1").returncode == 0  # fmt: skip
    photo = run_agent(db, "photo", str(photo_file))
    media_id = photo.stdout.strip()
    update = {"id": "temp_insp", "answers": {"photos": [media_id], "extinguisher": True}}
    assert run_agent(db, "record", "inspection.update", "--payload", _json(update)).returncode == 0
    kept = db.parent / "agent.outbox" / f"{media_id}.jpg"
    assert kept.read_bytes() == photo_file.read_bytes()

    # Online through the proxy, which holds the confirm; the agent is killed there.
    proxy = HoldingProxy(base)
    proxy.mode = hold
    sync = ["sync", "--once", "--server", proxy.url, "--username", "driver1",
            "--password", "driver1-demo-pass"]  # fmt: skip
    try:
        process = subprocess.Popen(
            agent(db, *sync),
            env={**os.environ, "PYTHONPATH": SRC},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert proxy.held.wait(120), "the agent never asked to confirm"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

        between = {**_device(db), "kept": kept.exists()}
        on_server = httpx.get(f"{base}/api/v1/media/{media_id}", headers=manager).json()
        again = run_agent(db, *sync)
    finally:
        proxy.close()

    assert between["photos"] == [(media_id, "uploaded")]
    assert between["pending_ops"] == 2  # nothing was pushed before the photo was confirmed
    assert between["kept"]
    assert on_server["status"] == ("pending" if hold == "before" else "ready")
    assert again.returncode == 0, again.stdout + again.stderr
    after = _device(db)
    assert after["photos"] == [(media_id, "ready")] and after["pending_ops"] == 0
    assert not kept.exists()
    status = json.loads(run_agent(db, "status", "--json").stdout)
    assert status["photos"] == {"ready": 1} and status["ops"]["pending"] == 0
    read = httpx.get(f"{base}/api/v1/media/{media_id}", headers=manager).json()
    assert (read["status"], read["width"], read["height"]) == ("ready", 1600, 1200)
    assert httpx.get(read["url"]).content == photo_file.read_bytes()
    inspections = httpx.get(f"{base}/api/v1/inspections", headers=manager).json()["results"]
    assert [i["answers"]["photos"] for i in inspections] == [[media_id]]
    if served.database == "SQLite":
        with sqlite3.connect(tmp_path / "server" / "quartermaster.sqlite3") as server_db:
            assert server_db.execute("SELECT COUNT(*) FROM media_mediaasset").fetchone() == (1,)
    verify = subprocess.run(
        [sys.executable, "-m", "quartermaster", "audit", "verify"],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _json(value: Any) -> str:
    return json.dumps(value)


def _device(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as device:
        photos = device.execute("SELECT media_id, state FROM photos").fetchall()
        pending = device.execute("SELECT COUNT(*) FROM ops WHERE state = 'pending'").fetchone()
    return {"photos": photos, "pending_ops": pending[0]}
