"""The HTTP edge: uvicorn's event loop reads a request, one hop runs Django on a small pool of
threads, and the loop sends the answer back.

Why not Django's ASGI handler: with sync middleware and views it hops between the event loop and
a thread for every middleware (17 hops a request, 20 to 34 % of the CPU, measured in issue 9), and
asgiref starts a new thread per request, each keeping its own database connection. Why not
a2wsgi's `WSGIMiddleware`: it hops back to the loop for every read and every chunk sent (five
blocking round trips a request). Here the loop reads the whole body (refusing one over the upload
limit with 413 before reading it all), a pool of `threads` threads runs Django's WSGI handler
(so at most `threads` database connections a process, each reused), and the whole answer comes
back in one hop. The WebSocket stays on Channels in the same process (`asgi.py`).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from a2wsgi.wsgi import build_environ

logger = logging.getLogger(__name__)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

_JSON = [(b"content-type", b"application/json")]


class WsgiEdge:
    """An ASGI app for HTTP that runs `app` (WSGI) with one hop to its thread pool."""

    def __init__(self, app: WsgiApp, *, threads: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qm-http")
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            _bind_event_loop(self.loop)
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except _Disconnected:
            return  # the client left before its request was whole: nothing to run
        if body is None:
            await _send(send, _too_large(self.max_body_bytes))
            return
        environ = cast(dict[str, Any], build_environ(scope, io.BytesIO(body)))  # type: ignore[arg-type]
        environ["wsgi.errors"] = _LogStream()
        answer = await self.loop.run_in_executor(self.executor, self._run, environ)
        await _send(send, answer)

    def _run(self, environ: dict[str, Any]) -> Answer:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda chunk: chunks.append(chunk)

        chunks: list[bytes] = []
        try:
            iterable = self.app(environ, start_response)
            try:
                chunks.extend(iterable)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        except Exception:
            logger.exception(
                "unhandled error on %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"]
            )
            return 500, _JSON, b'{"error": "internal server error", "code": "server_error"}'
        status, headers = started
        return (
            int(status.split(" ", 1)[0]),
            [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            b"".join(chunks),
        )


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it exceeds `limit` bytes (the rest is not read)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


class _Disconnected(Exception):
    """The client closed the connection while its body was still arriving."""


def _too_large(limit: int) -> Answer:
    body = {
        "error": f"request body larger than {limit} bytes: send fewer ops per batch",
        "code": "payload_too_large",
    }
    return 413, [*_JSON, (b"connection", b"close")], json.dumps(body).encode()


async def _send(send: Send, answer: Answer) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _LogStream:
    """`wsgi.errors`: what Django writes there goes to the log, not to stdout."""

    def write(self, text: str) -> None:
        if text.strip():
            logger.error("%s", text.rstrip())

    def flush(self) -> None:
        return None


def _bind_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    from quartermaster.core import events

    events.bind_event_loop(loop)
