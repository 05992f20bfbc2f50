"""A fault-injecting HTTP proxy on 127.0.0.1, for chaos tests between field clients and a server.

Per request, at the configured rates: drop the request (close the connection without forwarding),
drop the response after the server answered (and so after it committed), duplicate the request
(send it again once the first copy was answered, as a retransmission does, or send two copies at
once), or delay it. Either reply of a duplicated request goes back to the client. Every fault is counted. A
hook can run while a chosen request is in flight upstream (the chaos test SIGKILLs the server
there, mid-batch).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

FORWARDED_HEADERS = ("authorization", "content-type", "idempotency-key", "if-match")
RETURNED_HEADERS = ("content-type", "retry-after", "idempotent-replayed")


@dataclass
class FaultRates:
    drop_request: float = 0.0
    drop_response: float = 0.0
    duplicate: float = 0.0  # a second copy after the first was answered
    duplicate_concurrent: float = 0.0  # two copies at the same time
    delay: float = 0.0
    max_delay_s: float = 0.3


class FaultProxy:
    def __init__(self, upstream: str, rates: FaultRates, *, seed: int = 0) -> None:
        self.upstream = upstream
        self.rates = rates
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=60)
        # Called once, from the handler thread, while a chosen request is in flight upstream.
        self._hook: Callable[[], None] | None = None
        self._hook_path = ""
        self._hook_skip = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            def do_POST(self) -> None:
                proxy._handle(self)

            def do_PATCH(self) -> None:
                proxy._handle(self)

            def do_DELETE(self) -> None:
                proxy._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def arm(self, path: str, hook: Callable[[], None], *, skip: int = 0) -> None:
        """Run `hook` while the request to `path` after the next `skip` ones is upstream."""
        with self._lock:
            self._hook_path, self._hook, self._hook_skip = path, hook, skip

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return self._rng.random() < rate

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path
        self._count("requests")
        if self._roll(self.rates.delay):
            self._count("delayed")
            time.sleep(self._rng.uniform(0.01, self.rates.max_delay_s))
        if self._roll(self.rates.drop_request):
            self._count("dropped_requests")
            handler.close_connection = True
            return
        headers = {
            name: value
            for name, value in handler.headers.items()
            if name.lower() in FORWARDED_HEADERS
        }
        hook = None
        with self._lock:
            if self._hook is not None and path.startswith(self._hook_path):
                if self._hook_skip:
                    self._hook_skip -= 1
                else:
                    hook, self._hook = self._hook, None
        if hook is not None:
            reply = self._forward_with_hook(handler.command, path, body, headers, hook)
        elif self._roll(self.rates.duplicate_concurrent):
            self._count("duplicated_concurrently")
            reply = self._forward_twice(handler.command, path, body, headers)
        elif self._roll(self.rates.duplicate):
            self._count("duplicated")
            first = self._forward(handler.command, path, body, headers)
            second = self._forward(handler.command, path, body, headers)
            reply = first if self._roll(0.5) else second
        else:
            reply = self._forward(handler.command, path, body, headers)
        if reply is not None and self._roll(self.rates.drop_response):
            self._count("dropped_responses")
            handler.close_connection = True
            return
        self._answer(handler, reply)

    def _forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> httpx.Response | None:
        try:
            response = self._http.request(method, path, content=body, headers=headers)
            response.read()
            return response
        except httpx.TransportError:
            self._count("upstream_down")
            return None

    def _forward_twice(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> httpx.Response | None:
        replies: list[httpx.Response | None] = [None, None]

        def send(index: int) -> None:
            replies[index] = self._forward(method, path, body, headers)

        threads = [threading.Thread(target=send, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return replies[0 if self._roll(0.5) else 1]

    def _forward_with_hook(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        hook: Callable[[], None],
    ) -> httpx.Response | None:
        replies: list[httpx.Response | None] = [None]

        def send() -> None:
            replies[0] = self._forward(method, path, body, headers)

        thread = threading.Thread(target=send)
        thread.start()
        time.sleep(0.02)  # the request is on its way in, or being applied
        self._count("hook_fired")
        hook()
        thread.join()
        return replies[0]

    def _answer(self, handler: BaseHTTPRequestHandler, reply: httpx.Response | None) -> None:
        if reply is None:
            payload = json.dumps({"error": "bad gateway", "code": "bad_gateway"}).encode()
            handler.send_response(502)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        handler.send_response(reply.status_code)
        for name in RETURNED_HEADERS:
            if name in reply.headers:
                handler.send_header(name, reply.headers[name])
        handler.send_header("Content-Length", str(len(reply.content)))
        handler.end_headers()
        handler.wfile.write(reply.content)
