"""A fake WhatsApp Cloud API and Twilio Messages API: a real HTTP server on 127.0.0.1.

It speaks both wire formats (Meta's Graph API JSON with a Bearer token; Twilio's form-encoded
Messages.json with basic auth), checks credentials, remembers every request it received, and
answers from a script per provider: fail N times (5xx), time out (answer after the client gave
up), rate-limit (429 with Retry-After), hang until released (for killing a worker mid-send).
Like the real providers it posts signed status webhooks back to our server (`post_status`),
and inbound messages (`post_inbound`). A message sent again with an Idempotency-Key it has
already accepted gets the same message id and is counted as a duplicate, not delivered twice.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

from quartermaster.notifications.invariants import sign

WHATSAPP_TOKEN = "fake-whatsapp-token"
PHONE_NUMBER_ID = "1099887766"
APP_SECRET = "fake-app-secret"
SMS_SID = "ACfake0000000000000000000000000000"
SMS_TOKEN = "fake-sms-auth-token"
SMS_FROM = "+15005550006"


@dataclass
class Received:
    provider: str  # "whatsapp" | "sms"
    path: str
    headers: dict[str, str]
    body: Any  # JSON (WhatsApp) or the form's fields (SMS)
    at: float  # time.monotonic() when it arrived
    answered: int = 0

    @property
    def key(self) -> str:
        return self.headers.get("idempotency-key", "")


@dataclass
class Step:
    kind: str  # "fail" | "timeout" | "rate_limit" | "hang"
    status: int = 503
    seconds: float = 0.0


@dataclass
class FakeProvider:
    requests: list[Received] = field(default_factory=list)
    duplicates: int = 0
    latency_s: float = 0.0
    _scripts: dict[str, deque[Step]] = field(
        default_factory=lambda: {"whatsapp": deque(), "sms": deque()}
    )
    _accepted: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    release: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> FakeProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                provider._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    # -- settings for our server ------------------------------------------------------------

    @property
    def whatsapp_base(self) -> str:
        return f"{self.base}/v21.0"

    def environment(self) -> dict[str, str]:
        """QM_* variables pointing our server at this fake (both channels configured)."""
        return {
            "QM_WHATSAPP_BASE_URL": self.whatsapp_base,
            "QM_WHATSAPP_TOKEN": WHATSAPP_TOKEN,
            "QM_WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "QM_WHATSAPP_APP_SECRET": APP_SECRET,
            "QM_SMS_BASE_URL": self.base,
            "QM_SMS_ACCOUNT_SID": SMS_SID,
            "QM_SMS_AUTH_TOKEN": SMS_TOKEN,
            "QM_SMS_FROM": SMS_FROM,
        }

    # -- the script ---------------------------------------------------------------------------

    def fail(self, times: int, *, status: int = 503, provider: str = "whatsapp") -> None:
        self._scripts[provider].extend(Step("fail", status=status) for _ in range(times))

    def time_out(self, times: int, *, seconds: float, provider: str = "whatsapp") -> None:
        self._scripts[provider].extend(Step("timeout", seconds=seconds) for _ in range(times))

    def rate_limit(self, times: int, *, retry_after_s: int, provider: str = "whatsapp") -> None:
        self._scripts[provider].extend(
            Step("rate_limit", status=429, seconds=retry_after_s) for _ in range(times)
        )

    def hang(self, *, provider: str = "whatsapp") -> None:
        """The next request is held until `release` is set (or the fake stops)."""
        self._scripts[provider].append(Step("hang"))

    def wait_for_requests(self, count: int, timeout_s: float = 30.0) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise AssertionError(f"{len(self.requests)} requests arrived, not {count}")

    def of(self, provider: str) -> list[Received]:
        return [r for r in self.requests if r.provider == provider]

    # -- webhooks to our server ---------------------------------------------------------------

    @staticmethod
    def status_payload(message_id: str, status: str, dedupe_key: str = "") -> bytes:
        report: dict[str, Any] = {
            "id": message_id,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": "919876543210",
        }
        if dedupe_key:
            report["biz_opaque_callback_data"] = dedupe_key
        if status == "failed":
            report["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
        return _webhook({"statuses": [report]})

    @staticmethod
    def inbound_payload(sender: str, text: str, message_id: str | None = None) -> bytes:
        message = {
            "from": sender,
            "id": message_id or f"wamid.IN{uuid.uuid4().hex}",
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": text},
        }
        return _webhook(
            {"contacts": [{"profile": {"name": "x"}, "wa_id": sender}], "messages": [message]}
        )

    @staticmethod
    def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
        return {"X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"}

    def post_status(
        self, url: str, message_id: str, status: str, *, secret: str = APP_SECRET
    ) -> httpx.Response:
        """What Meta does after a send: POST the signed status report to our webhook."""
        body = self.status_payload(message_id, status)
        return httpx.post(url, content=body, headers=self.signed(body, secret), timeout=30)

    def post_inbound(self, url: str, sender: str, text: str) -> httpx.Response:
        body = self.inbound_payload(sender, text)
        return httpx.post(url, content=body, headers=self.signed(body), timeout=30)

    # -- serving --------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages":
            provider, body, authorized = "whatsapp", _loads(raw), _bearer_ok(headers)
        elif request.path == f"/2010-04-01/Accounts/{SMS_SID}/Messages.json":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            provider, body, authorized = "sms", form, _basic_ok(headers)
        else:
            _answer(request, 404, {"error": {"message": "no such route", "code": 100}})
            return
        received = Received(provider, request.path, headers, body, time.monotonic())
        with self._lock:
            step = self._scripts[provider].popleft() if self._scripts[provider] else None
        with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        if not authorized:
            _answer(request, 401, {"error": {"message": "Invalid OAuth access token", "code": 190}})
        elif step is None:
            self._accept(request, received)
        else:
            self._misbehave(request, received, step)

    def _misbehave(self, request: BaseHTTPRequestHandler, received: Received, step: Step) -> None:
        if step.kind == "hang":
            self.release.wait(60)
            _answer(request, 503, {"error": {"message": "released", "code": 2}})
        elif step.kind == "timeout":
            # Answer only after the client gave up (or the fake stops).
            self._stopping.wait(step.seconds)
            self._accept(request, received)
        elif step.kind == "rate_limit":
            received.answered = 429
            _answer(
                request,
                429,
                {"error": {"message": "rate limit hit", "code": 130429}},
                {"Retry-After": str(int(step.seconds))},
            )
        else:
            received.answered = step.status
            _answer(request, step.status, {"error": {"message": "service unavailable", "code": 2}})

    def _accept(self, request: BaseHTTPRequestHandler, received: Received) -> None:
        if self.latency_s:
            self._stopping.wait(self.latency_s)
        with self._lock:
            known = self._accepted.get(received.key) if received.key else None
            if known is not None:
                self.duplicates += 1
            message_id = known or f"wamid.{uuid.uuid4().hex}"
            if received.key:
                self._accepted[received.key] = message_id
        received.answered = 200
        if received.provider == "whatsapp":
            to = received.body.get("to", "")
            _answer(
                request,
                200,
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": message_id}],
                },
            )
        else:
            _answer(request, 201, {"sid": "SM" + message_id[6:], "status": "queued"})

    def accepted_keys(self) -> list[str]:
        return [r.key for r in self.requests if r.answered in (200, 201)]


def _webhook(value: dict[str, Any]) -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA-1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001111",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _bearer_ok(headers: dict[str, str]) -> bool:
    return headers.get("authorization") == f"Bearer {WHATSAPP_TOKEN}"


def _basic_ok(headers: dict[str, str]) -> bool:
    expected = base64.b64encode(f"{SMS_SID}:{SMS_TOKEN}".encode()).decode()
    return headers.get("authorization") == f"Basic {expected}"


def _answer(
    request: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(body).encode()
    try:
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (a timeout) or was killed
