"""CPU per request of a keyed PATCH /api/v1/items/{id}/qty through the real HTTP stack, in process.

No socket and no load generator: each source tree runs in a process of its own (SQLite in a temp
dir), which drives PATCHes one after another into the ASGI app `quartermaster serve` runs
(`quartermaster.asgi.http_application`, the `edge.WsgiEdge`) on its own event loop, as uvicorn
would call it: the edge reads the body, hops once to its thread pool, where Django's WSGI
handler runs every middleware of settings.MIDDLEWARE, ninja, auth and the command pipeline, and
the live poke goes out on the loop after commit. Each request has a fresh Idempotency-Key. What
is reported is the process's CPU time per request (`time.process_time`, every thread), which the
machine's other work moves far less than wall time (shown beside it).

With --compare-src the other tree's process runs too, and the rounds alternate between them
(ABBA), so a change in the machine's load falls on both; the ratio of each round's pair is what
counts on a busy machine. --py-spy adds a GIL sampling profile of each process (collapsed
stacks) and prints the inclusive share of the frames on the request path.

    PYTHONPATH=src .venv/bin/python bench/profile_request.py
    PYTHONPATH=src .venv/bin/python bench/profile_request.py --compare-src /work/wt-base --rounds 8
    PYTHONPATH=src .venv/bin/python bench/profile_request.py --compare-src /work/wt-base --py-spy 20

Rate limits are off (as in bench_items.py: with Redis they cost a round trip, not CPU here); the
JSON access log is on (the default; written to a file in the temp dir), --no-access-log turns it
off. Results and their reading: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "profile-password-0123456789"
START_QTY = 1_000_000


# ---------------------------------------------------------------------------------------------
# The child: one source tree, driving requests when told to


def child_setup() -> Any:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.identity.services import CreateUser

    execute(
        CreateUser(username="bench", password=PASSWORD, role="admin"), Context(actor=SYSTEM_ACTOR)
    )
    if os.environ.get("QM_PROFILE_AROUND", "1") == "1":
        measure_the_view()
    from quartermaster.asgi import http_application

    return http_application


# CPU (thread time) spent in Django's WSGI handler, and in the view part of it
# (`BaseHandler._get_response`: URL resolving, the middlewares' process_view, ninja, the view):
# what is left is what the handler and the middlewares themselves cost around the view.
SPENT = {"handler": 0.0, "view": 0.0}


def measure_the_view() -> None:
    """Wrap the handler's entry and its view part (before the handler builds its chain)."""
    from django.core.handlers.base import BaseHandler
    from django.core.handlers.wsgi import WSGIHandler

    def timed(owner: Any, name: str, key: str) -> None:
        function = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                SPENT[key] += time.thread_time() - started

        setattr(owner, name, wrapper)

    timed(WSGIHandler, "__call__", "handler")
    timed(BaseHandler, "_get_response", "view")


class Driver:
    """Sends requests through the edge as uvicorn would (`WsgiEdge.__call__` on this process's
    event loop: the body read, one hop to the edge's thread pool, the answer sent back), one
    after another."""

    def __init__(self, edge: Any, language: str) -> None:
        self.edge = edge
        self.loop = asyncio.new_event_loop()
        self.language = language
        self.token = ""
        login = {"username": "bench", "password": PASSWORD}
        self.token = self.send("POST", "/api/v1/auth/login", login, expect=200)["access"]
        item = {"name": "bench item", "qty": START_QTY, "price": "1.00"}
        self.path = (
            f"/api/v1/items/{self.send('POST', '/api/v1/items', item, expect=201)['id']}/qty"
        )
        self.sign = 1

    def scope(self, method: str, path: str, body: bytes, key: str | None) -> dict[str, Any]:
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"profile-request/1"),
            (b"accept", b"application/json"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if self.token:
            headers.append((b"authorization", f"Bearer {self.token}".encode()))
        if key:
            headers.append((b"idempotency-key", key.encode()))
        if self.language:
            headers.append((b"accept-language", self.language.encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

    async def one(self, scope: dict[str, Any], raw: bytes) -> tuple[int, bytes]:
        incoming = [{"type": "http.request", "body": raw, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.edge(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    def send(
        self, method: str, path: str, body: Any, *, expect: int, key: str | None = None
    ) -> Any:
        raw = json.dumps(body).encode()
        status, content = self.loop.run_until_complete(
            self.one(self.scope(method, path, raw, key), raw)
        )
        if status != expect:
            raise SystemExit(f"{method} {path}: {status} {content[:300]!r}")
        return json.loads(content) if content else None

    def prepare(self, count: int) -> list[tuple[dict[str, Any], bytes]]:
        prepared = []
        for _ in range(count):
            raw = b'{"delta": %d}' % self.sign
            self.sign = -self.sign
            prepared.append((self.scope("PATCH", self.path, raw, str(uuid.uuid4())), raw))
        return prepared

    async def block(self, prepared: list[tuple[dict[str, Any], bytes]]) -> None:
        for scope, raw in prepared:
            status, content = await self.one(scope, raw)
            if status != 200:
                raise SystemExit(f"PATCH: {status} {content[:300]!r}")

    def patches(self, count: int) -> dict[str, float]:
        """`count` keyed PATCHes: this process's CPU seconds (every thread), wall seconds, and
        the CPU seconds of the handler and middlewares around the view."""
        prepared = self.prepare(count)
        handler, view = SPENT["handler"], SPENT["view"]
        cpu, wall = time.process_time(), time.perf_counter()
        self.loop.run_until_complete(self.block(prepared))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        around = (SPENT["handler"] - handler) - (SPENT["view"] - view)
        return {"cpu": cpu, "wall": wall, "around": around}


def child_main() -> None:
    driver = Driver(child_setup(), os.environ.get("QM_PROFILE_LANGUAGE", ""))
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "run":
            count = int(argument)
            spent = driver.patches(count)
            reply = {f"{key}_us": seconds / count * 1e6 for key, seconds in spent.items()}
        elif command == "run_for":
            until, count = time.monotonic() + float(argument), 0
            while time.monotonic() < until:
                driver.patches(200)
                count += 200
            reply = {"requests": count}
        else:
            return
        print(json.dumps(reply), flush=True)


# ---------------------------------------------------------------------------------------------
# The parent: a child per tree, interleaved rounds, a report


@dataclass
class Child:
    label: str
    src: Path
    workdir: Path
    process: subprocess.Popen[str] = field(init=False)
    cpu_us: list[float] = field(default_factory=list)
    wall_us: list[float] = field(default_factory=list)
    around_us: list[float] = field(default_factory=list)

    def start(self, args: argparse.Namespace) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
        env.update(
            {
                "PYTHONPATH": str(self.src / "src"),
                "DJANGO_SETTINGS_MODULE": "quartermaster.settings",
                "QM_DATA_DIR": str(self.workdir),
                "QM_SECRET_KEY": "profile-secret-key-not-for-production-0123456789abcdef",
                "QM_AUDIT_KEY": "profile-audit-key-not-for-production-0123456789abcdef",
                "QM_ACCESS_TOKEN_TTL_S": "36000",
                "QM_API_REQUESTS_PER_USER": "0",
                "QM_API_REQUESTS_PER_IP": "0",
                "QM_LOG_LEVEL": "INFO",
                "QM_ACCESS_LOG": "0" if args.no_access_log else "1",
                "QM_PROFILE_LANGUAGE": args.accept_language,
                # Under py-spy, no timing wrappers: their clock reads would be in the profile.
                "QM_PROFILE_AROUND": "0" if args.py_spy else "1",
                "QM_ARGON2_MEMORY_KIB": "1024",
                "QM_ARGON2_TIME_COST": "1",
            }
        )
        log: IO[str] = (self.workdir / "stderr.log").open("w")
        cpu = args.cpu
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child"],
            # Every tree on the same core: otherwise one may draw a core busier with the
            # machine's other work for the whole run, which interleaving cannot even out.
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu >= 0 else None,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=self.workdir,
        )

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            tail = (self.workdir / "stderr.log").read_text()[-3000:]
            raise SystemExit(f"{self.label}: the child stopped\n{tail}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=30)


def profile(children: list[Child], seconds: float, outdir: Path) -> None:
    """A py-spy GIL profile (collapsed stacks) of each child while it runs PATCHes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    for child in children:
        out = outdir / f"{child.label}.collapsed.txt"
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(child.process.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "500",
                "--gil",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        child.ask(f"run_for {seconds + 1}")
        spy.wait()
        print(f"\n{child.label}: py-spy profile in {out}")
        report_profile(out)


# Where a sample goes: the deepest of these frames in its stack (so a middleware is charged with
# its own work, not with the view it calls). Checked in this order, first match wins per frame.
LAYERS = (
    ("the edge (event loop side and thread hop)", r"^(WsgiEdge\.|_read_body |_send )"),
    ("Django: WSGI handler, request and response objects", r"^WSGIHandler\.__call__ "),
    ("Django: the response's close (request_finished)", r"^HttpResponseBase\.close "),
    ("Django: exception wrapper per middleware", r"^convert_exception_to_response"),
    ("Django: MiddlewareMixin glue", r"^MiddlewareMixin\.__call__"),
    (
        "project middleware (before: 6 classes)",
        r"^(ObservabilityMiddleware|LanguageMiddleware|JsonErrorsMiddleware|"
        r"MalformedHeadersMiddleware|SecurityEventsMiddleware|RateLimitMiddleware)\.",
    ),
    (
        "project middleware (RequestMiddleware)",
        r"^(RequestMiddleware\.|request_id_of |route_of |language_of |speaking |with_language |"
        r"refusal_of |refusal_before_limits |malformed_header |counts_against_limits |"
        r"as_json_error |_is_security_event |access_line |AccessLog\.)",
    ),
    ("CORS (django-cors-headers)", r"^CorsMiddleware\."),
    ("WhiteNoise", r"^WhiteNoiseMiddleware\."),
    ("Django SecurityMiddleware", r"^SecurityMiddleware\."),
    ("Django SessionMiddleware", r"^(BackOffice)?SessionMiddleware\."),
    ("Django CommonMiddleware", r"^CommonMiddleware\."),
    ("Django CsrfViewMiddleware", r"^CsrfViewMiddleware\."),
    ("Django AuthenticationMiddleware", r"^(BackOffice)?AuthenticationMiddleware\."),
    ("Django MessageMiddleware", r"^(BackOffice)?MessageMiddleware\."),
    ("Django XFrameOptionsMiddleware", r"^XFrameOptionsMiddleware\."),
    ("back-office skip (BackOfficeOnly)", r"^BackOfficeOnly\."),
    ("Django: URL resolving, process_view, view call", r"^BaseHandler\._get_response "),
    ("ninja: operation, parsing the body", r"^PathView\."),
    ("auth: bearer token, the actor statement", r"^BearerAuth\.(__call__|authenticate)"),
    ("the command (execute)", r"^execute \(quartermaster/core/commands"),
    ("rendering the answer (to_http)", r"^to_http "),
)
OUTSIDE = "elsewhere: the event loop, the live poke, the driver"


def report_profile(path: Path) -> None:
    """The share of the request's GIL samples each layer spends itself."""
    if not path.exists():
        print("  (no profile: py-spy needs ptrace permission)")
        return
    layers = [(name, re.compile(pattern)) for name, pattern in LAYERS]
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if "Driver.prepare" in stack:
            continue  # making the requests up, not serving them
        count = int(count_text)
        total += count
        charged = OUTSIDE
        for frame in stack.split(";"):
            for name, pattern in layers:
                if pattern.search(frame):
                    charged = name
                    break
        own[charged] += count
    if not total:
        print("  (no request samples)")
        return
    print(f"  {total} samples; each layer's own share:")
    for name in [name for name, _ in LAYERS] + [OUTSIDE]:
        if own[name]:
            print(f"  {own[name] / total * 100:5.1f} %  {name}")


def interleave(children: list[Child], rounds: int, requests: int) -> None:
    for child in children:
        child.ask(f"run {requests}")  # warm-up: caches, connections, labelled metrics
    for number in range(rounds):
        order = children if number % 2 == 0 else list(reversed(children))
        for child in order:
            reply = child.ask(f"run {requests}")
            child.cpu_us.append(reply["cpu_us"])
            child.wall_us.append(reply["wall_us"])
            child.around_us.append(reply["around_us"])
        line = "  ".join(
            f"{c.label}: {c.cpu_us[-1]:6.0f} us CPU, {c.around_us[-1]:5.1f} around the view"
            f" ({c.wall_us[-1]:6.0f} wall)"
            for c in children
        )
        print(f"round {number + 1}: {line}", flush=True)


def report(children: list[Child]) -> None:
    for title, attribute in (
        ("CPU us per keyed PATCH (process CPU, every thread)", "cpu_us"),
        (
            "of which the WSGI handler and the middlewares, around the view (thread CPU)",
            "around_us",
        ),
    ):
        if not any(any(getattr(child, attribute)) for child in children):
            continue  # not measured (--py-spy)
        print(f"\n{title}; rounds interleaved")
        for child in children:
            values = getattr(child, attribute)
            print(
                f"  {child.label:6s} best {min(values):7.1f}  median "
                f"{statistics.median(values):7.1f}  worst {max(values):7.1f}"
            )
        if len(children) == 2:
            now, base = (getattr(child, attribute) for child in children)
            ratios = [a / b for a, b in zip(now, base, strict=True)]
            differences = [a - b for a, b in zip(now, base, strict=True)]
            print(
                f"  {children[0].label}/{children[1].label} per round: "
                + " ".join(f"{ratio:.3f}" for ratio in ratios)
                + f"\n  median ratio {statistics.median(ratios):.3f}; best/best "
                f"{min(now) / min(base):.3f}; median difference "
                f"{statistics.median(differences):+.1f} us"
            )
    print(
        "\nwall us median: "
        + ", ".join(f"{c.label} {statistics.median(c.wall_us):.0f}" for c in children)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=2000, help="PATCHes per round (2000)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per tree (6)")
    parser.add_argument("--compare-src", type=Path, help="another source tree, run interleaved")
    parser.add_argument("--label", default="now", help="this tree's label (now)")
    parser.add_argument("--compare-label", default="base")
    parser.add_argument("--accept-language", default="", help='e.g. "ta" (default: none sent)')
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument(
        "--cpu",
        type=int,
        default=(os.cpu_count() or 1) - 1,
        help="the core every tree's process runs on (default: the last; -1: any)",
    )
    parser.add_argument("--py-spy", type=float, metavar="SECONDS", help="profile each child")
    parser.add_argument("--keep", type=Path, help="directory for the profiles (default: temp)")
    args = parser.parse_args()
    if args.child:
        child_main()
        return
    scratch = Path(tempfile.mkdtemp(prefix="qm-profile-request-"))
    trees = [(args.label, ROOT)]
    if args.compare_src:
        trees.append((args.compare_label, args.compare_src.resolve()))
    children = []
    for label, src in trees:
        workdir = scratch / label
        workdir.mkdir()
        children.append(Child(label, src, workdir))
    try:
        for child in children:
            child.start(args)
        for child in children:
            print(f"{child.label}: {child.src} ready (pid {child.ask('')['ready']})", flush=True)
        interleave(children, args.rounds, args.requests)
        report(children)
        if args.py_spy:
            outdir = args.keep or scratch
            outdir.mkdir(parents=True, exist_ok=True)
            profile(children, args.py_spy, outdir)
    finally:
        for child in children:
            child.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
