"""A real browser signs in to the back office and opens the audit list: Debian's Chromium,
headless, driven over the Chrome DevTools Protocol (a websocket; no browser download, no
WebDriver), against a live server on 127.0.0.1. The screenshot is kept for people to look at:
in $QM_SCREENSHOT_DIR when set, else in the test's temporary directory.

The browser has no network beyond 127.0.0.1 (every other host name fails to resolve), as on a
shop's LAN without internet: a page that needs a CDN shows up unstyled or blank here."""

from __future__ import annotations

import base64
import importlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from websockets.sync.client import ClientConnection, connect

from quartermaster.core.commands import execute
from quartermaster.core.types import Context
from quartermaster.identity.selectors import load_actor
from quartermaster.inventory.services import CreateItem
from tests.acceptance.test_served_api import start_quartermaster, stop
from tests.conftest import PASSWORD, create_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # A live server needs committed data; the serialized copy brings back what migrations made.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    # The network is off: only the server under test on 127.0.0.1 can be reached.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
TIMEOUT_S = 30.0


def chromium_path() -> str:
    """$QM_CHROMIUM, else what scripts/ensure-chromium.sh finds or installs (never a skip)."""
    return (
        os.environ.get("QM_CHROMIUM")
        or subprocess.run(
            [str(ROOT / "scripts" / "ensure-chromium.sh")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )


class Page:
    """The few DevTools calls this test needs, over one page's websocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            message = json.loads(self.socket.recv(timeout=TIMEOUT_S))
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        raise AssertionError(
            f"timed out waiting for {expression}; at {self.evaluate('location.href')}"
        )

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Page]:
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    process = subprocess.Popen(
        [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise AssertionError(f"Chromium did not start: {stderr[-2000:]}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            targets = json.load(reply)
        page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        with connect(page_url, max_size=None, open_timeout=TIMEOUT_S) as socket:
            yield Page(socket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def audit_emptied_before_flush(transactional_db: None) -> Iterator[None]:
    """The flush that ends a transactional test DELETEs rows, which the append-only triggers
    refuse on SQLite (PostgreSQL's TRUNCATE fires no row triggers). Lift them for one moment."""
    yield
    if connection.vendor != "sqlite":
        return
    append_only = importlib.import_module("quartermaster.core.migrations.0002_audit_append_only")
    with connection.cursor() as cursor:
        for statement in append_only.SQLITE_DROP:
            cursor.execute(statement)
        cursor.execute(f"DELETE FROM {append_only.TABLE}")
        for statement in append_only.SQLITE_CREATE:
            cursor.execute(statement)


def test_an_admin_signs_in_and_sees_the_audit_list(
    live_server: Any, browser: Page, audit_emptied_before_flush: None, tmp_path: Path
) -> None:
    create_user("boss", "admin")
    boss = load_actor(create_user("stores", "manager")["id"], device_id="office-pc")
    assert boss is not None
    for name in ("cylinder 14.2 kg", "regulator", "hose 1.5 m"):
        assert execute(CreateItem(item_name=name, qty=4), Context(actor=boss)).status == 201

    browser.goto(f"{live_server.url}/admin/login/?next=/admin/core/auditentry/")
    browser.evaluate(
        f"""document.querySelector('#id_username').value = 'boss';
        document.querySelector('#id_password').value = {json.dumps(PASSWORD)};
        document.querySelector('#login-form').submit();"""
    )
    browser.wait_for(
        "location.pathname === '/admin/core/auditentry/' && document.readyState === 'complete'"
    )

    text = browser.evaluate("document.body.innerText")
    assert "Select audit entry to view" in text
    rows = browser.evaluate(
        "[...document.querySelectorAll('#result_list tbody tr')].map(row => row.innerText)"
    )
    item_rows = [row for row in rows if "item.create\titem\t" in row]
    assert len(item_rows) == 3
    assert all("stores" in row and "office-pc" in row for row in item_rows)
    # Read-only: no add button, no bulk-action bar.
    assert browser.evaluate("document.querySelector('#content .object-tools a.addlink') === null")
    assert browser.evaluate("document.querySelector('select[name=action]') === null")

    keep_screenshot(browser, tmp_path, "back-office-audit-list.png")


# Every stylesheet the page links arrived (a 404 or a CDN out of reach leaves it without rules)
# and Django's admin header is painted, not the browser's default transparent.
STYLED = """[...document.styleSheets].length > 0
    && [...document.styleSheets].every(sheet => sheet.cssRules.length > 0)
    && getComputedStyle(document.querySelector('#header')).backgroundColor !== 'rgba(0, 0, 0, 0)'"""


def keep_screenshot(browser: Page, tmp_path: Path, name: str) -> None:
    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(shot) > 10_000
    directory = Path(os.environ.get("QM_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(shot)


def test_the_served_back_office_is_styled_and_the_docs_render_without_internet(
    browser: Page, tmp_path: Path
) -> None:
    """Against `quartermaster demo --serve` itself (uvicorn, as deployed), not the test live
    server, which serves static files on its own and would hide a server that does not."""
    data_dir = tmp_path / "served"
    data_dir.mkdir()
    process, base = start_quartermaster(data_dir, ["demo", "--serve"])
    try:
        browser.goto(f"{base}/admin/login/?next=/admin/")
        browser.evaluate(
            """document.querySelector('#id_username').value = 'admin';
            document.querySelector('#id_password').value = 'admin-demo-pass';
            document.querySelector('#login-form').submit();"""
        )
        browser.wait_for("location.pathname === '/admin/' && document.readyState === 'complete'")
        browser.wait_for(STYLED)
        keep_screenshot(browser, tmp_path, "back-office-home.png")

        browser.goto(f"{base}/api/v1/docs")
        # Swagger UI drew the operations of the OpenAPI document it fetched from this server.
        browser.wait_for("document.querySelectorAll('.swagger-ui .opblock').length > 20")
        assert "Quartermaster" in browser.evaluate("document.body.innerText")
        keep_screenshot(browser, tmp_path, "api-docs.png")

        browser.goto(f"{base}/api/v1/redoc")
        browser.wait_for("document.querySelectorAll('[data-section-id]').length > 20")
    finally:
        stop(process)
