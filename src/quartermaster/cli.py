"""The `quartermaster` command: serve, migrate, demo, createuser, audit verify, journal verify,
journal backfill, market settle, outbox work, agent.

Django is set up only inside the server commands; `agent` (the field client) never imports it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from quartermaster.client.cli import add_agent_parser
from quartermaster.cluster.cli import add_cluster_parser
from quartermaster.config import ConfigError, check_bind_is_safe, env_bool

if TYPE_CHECKING:  # Django is set up only inside the commands that need it
    from quartermaster.sales.backfill import Plan


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quartermaster.settings")
    import django
    from django.apps import apps

    if not apps.ready:  # once per process: setting up again would reset logging's handlers
        django.setup()


def _say(message: str) -> None:
    print(message, flush=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    _say("database is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        check_bind_is_safe(args.host, env_bool("QM_DEBUG"))
    except ConfigError as error:
        _say(f"error: {error}")
        return 2
    # Our middleware writes the access log (with the request id and route); uvicorn's is off.
    os.environ["QM_ACCESS_LOG"] = "1" if args.access_log else "0"
    busy = _cannot_listen(args.host, args.port)
    if busy is not None:
        _say(
            f"error: cannot listen on {args.host}:{args.port}: {busy} (another server? try --port)"
        )
        return 2
    _setup_django()
    import uvicorn
    from django.conf import settings

    from quartermaster.core import processes
    from quartermaster.logs import uvicorn_log_config

    # Several processes each counting limits and telling sockets on their own would answer
    # differently depending on which one a client reached, without a word.
    refused = processes.refusal(args.workers)
    if refused is not None:
        _say(refused)
        return 2

    if settings.MEDIA_GC_INTERVAL_S > 0:
        _start_media_gc(settings.MEDIA_GC_INTERVAL_S)
    _say(f"serving Quartermaster on http://{args.host}:{args.port} (Ctrl+C to stop)")
    uvicorn.run(
        "quartermaster.asgi:application",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,
        log_config=uvicorn_log_config(settings.LOG_FORMAT),
        # X-Forwarded-For is read by core.http.client_ip, per QM_TRUSTED_PROXY_HOPS only: uvicorn
        # would otherwise trust it from loopback and let a made-up header dodge per-IP limits.
        proxy_headers=False,
        lifespan="off",
    )
    return 0


def _start_media_gc(interval_s: int) -> None:
    """Collect expired media uploads every `interval_s` on a daemon thread of the serving
    process (several servers doing it at once is harmless: each asset is collected once)."""
    import logging
    import threading

    from django.db import connection
    from django.utils import timezone

    from quartermaster.media.services import collect_garbage

    stop = threading.Event()

    def work() -> None:
        while not stop.wait(interval_s):
            try:
                collect_garbage(timezone.now())
            except Exception:  # the next round tries again; serving goes on
                logging.getLogger(__name__).exception("media gc failed")
            finally:
                connection.close()

    threading.Thread(target=work, name="media-gc", daemon=True).start()


def _cannot_listen(host: str, port: int) -> str | None:
    """Why binding host:port would fail now (checked before saying "serving"), or None."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        return error.strerror or str(error)
    return None


def cmd_demo(args: argparse.Namespace) -> int:
    args.verbose = False
    cmd_migrate(args)
    from quartermaster.demo import load_demo

    _say("loading demo data (demo passwords are for a local trial only):")
    load_demo(_say)
    if args.serve:
        _start_outbox_worker()
        return cmd_serve(args)
    return 0


def _lease_outlasts_a_send() -> bool:
    """A lease shorter than one provider request would let a second worker send a message the
    first is still sending."""
    from django.conf import settings

    if settings.OUTBOX_LEASE_S > settings.NOTIFY_TIMEOUT_S:
        return True
    _say(
        f"error: QM_OUTBOX_LEASE_S ({settings.OUTBOX_LEASE_S:g}) must be longer than"
        f" QM_NOTIFY_TIMEOUT_S ({settings.NOTIFY_TIMEOUT_S:g})"
    )
    return False


def _start_outbox_worker() -> None:
    """The demo server delivers its own notifications: an outbox worker on a daemon thread
    (console channel unless QM_WHATSAPP_* / QM_SMS_* are set)."""
    import threading

    from django.db import connection

    from quartermaster.core.outbox import Worker

    if not _lease_outlasts_a_send():
        return

    def work() -> None:
        try:
            Worker(report=_say).run()
        finally:
            connection.close()

    threading.Thread(target=work, name="outbox-worker", daemon=True).start()
    _say("outbox worker started (notifications go to the log unless a provider is configured)")


def cmd_outbox_work(args: argparse.Namespace) -> int:
    """Deliver queued messages: until stopped (SIGTERM, Ctrl+C), `--once` what is due now,
    `--drain` until nothing is pending (waiting out back-offs and leases)."""
    _setup_django()
    import signal
    import threading

    from django.db import connection

    from quartermaster.core.outbox import Worker

    if not _lease_outlasts_a_send():
        return 2
    worker = Worker(report=_say)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        signal.signal(signal.SIGTERM, lambda signum, frame: worker.stop.set())
        if main_thread
        else None
    )
    mode = "once" if args.once else "until nothing is pending" if args.drain else "until stopped"
    _say(f"outbox worker running ({mode})")
    try:
        if args.once:
            worker.run_once()
        else:
            worker.run(drain=args.drain)
    except KeyboardInterrupt:
        worker.stop.set()
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        if not connection.in_atomic_block:  # a caller's transaction (a test) keeps its own
            connection.close()
    _say(worker.summary())
    return 0


def _read_password(stdin_is_tty: bool) -> str:
    if stdin_is_tty:
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise ValueError("passwords do not match")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def cmd_createuser(args: argparse.Namespace) -> int:
    _setup_django()
    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.identity.services import CreateUser

    locations = _known_locations(args.location or ())
    if isinstance(locations, str):
        _say(f"error: {locations}; `quartermaster locations` lists them")
        return 2
    try:
        password = _read_password(sys.stdin.isatty())
    except ValueError as error:
        _say(f"error: {error}")
        return 2
    if not password:
        _say(
            "error: the password is empty: it is read from standard input, e.g."
            f" `echo 'a long password' | quartermaster createuser {args.username} --role {args.role}`"
        )
        return 2
    response = execute(
        CreateUser(username=args.username, password=password, role=args.role, locations=locations),
        Context(actor=SYSTEM_ACTOR),
    )
    if response.status != 201:
        _say(f"error: {_refusal(response.body)}")
        return 1
    _say(
        f"created user {response.body['username']} ({response.body['role']}) id {response.body['id']}"
    )
    return 0


def _refusal(body: dict[str, Any]) -> str:
    fields = body.get("fields") or {}
    return "; ".join(f"{name}: {why}" for name, why in fields.items()) or str(body.get("error"))


def _update_user(username: str, **changes: Any) -> tuple[int, dict[str, Any] | str]:
    """Run UpdateUser (the users API's and the back office's command) for `username`."""
    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.identity.models import User
    from quartermaster.identity.services import UpdateUser

    user_id = User.objects.filter(username=username).values_list("pk", flat=True).first()
    if user_id is None:
        return 2, f"no user is named {username!r}"
    response = execute(UpdateUser(user=user_id, **changes), Context(actor=SYSTEM_ACTOR))
    if response.status != 200:
        return 1, _refusal(response.body)
    return 0, response.body


def cmd_setpassword(args: argparse.Namespace) -> int:
    """An admin's password reset: every session of the user ends (UpdateUser)."""
    _setup_django()
    try:
        password = _read_password(sys.stdin.isatty())
    except ValueError as error:
        _say(f"error: {error}")
        return 2
    if not password:
        _say("error: the password is empty: it is read from standard input")
        return 2
    code, answer = _update_user(args.username, password=password)
    if isinstance(answer, str):
        _say(f"error: {answer}")
        return code
    _say(f"password of {args.username} reset; every session of theirs has ended")
    return 0


def cmd_set_active(args: argparse.Namespace) -> int:
    """Deactivate (every session ends at once) or activate (approve a sign-up) a user."""
    _setup_django()
    code, answer = _update_user(args.username, is_active=args.active)
    if isinstance(answer, str):
        _say(f"error: {answer}")
        return code
    _say(f"{args.username} is {'active' if args.active else 'deactivated'}")
    return 0


def _known_locations(given: Sequence[str]) -> tuple[UUID, ...] | str:
    """The --location values as ids of existing locations, or why not."""
    from quartermaster.inventory.models import Location

    ids = []
    for text in given:
        try:
            ids.append(UUID(text))
        except ValueError:
            return f"--location {text!r} is not a location id (a UUID)"
    known = set(Location.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [str(i) for i in ids if i not in known]
    if unknown:
        return f"no location has the id {', '.join(unknown)}"
    return tuple(ids)


def cmd_locations(args: argparse.Namespace) -> int:
    """Every location with its id (for `createuser --location`), kind and name."""
    _setup_django()
    from quartermaster.inventory.models import Location

    for location in Location.objects.order_by("kind", "name"):
        default = "  (default)" if location.is_default else ""
        _say(f"{location.id}  {location.kind:<13} {location.name}{default}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """The hash chain, then the chain against the latest signed checkpoint (a cut tail shows
    there), then with --state the tables against the chain."""
    _setup_django()
    from quartermaster.core import checkpoints
    from quartermaster.core.audit import verify_chain

    report = verify_chain(progress=lambda n: _say(f"  checked {n} entries…"))
    if not report.ok:
        read = _count(report.entries, "entry", "entries")
        _say(f"audit chain BROKEN at seq {report.first_bad_seq} ({read} read)")
        return 1
    _say(f"audit chain OK: {_count(report.entries, 'entry', 'entries')}")
    problems = []
    checkpoint = checkpoints.sink().latest()
    if checkpoint is None:
        _say("no signed checkpoint yet: run `quartermaster audit checkpoint` (and regularly)")
    else:
        problems = checkpoints.problems_against(checkpoint)
        if not problems:
            _say(f"agrees with the checkpoint of {checkpoint.at} (entries 1..{checkpoint.seq})")
    if args.state:
        problems += _state_differences()
    for problem in problems:
        _say(f"  {problem}")
    if problems:
        _say(f"audit BROKEN: {_count(len(problems), 'problem', 'problems')}")
        return 1
    return 0


def _state_differences() -> list[str]:
    from quartermaster.core.audit_state import differences
    from quartermaster.state_readers import READERS

    found = differences(READERS)
    if not found:
        names = ", ".join(reader.entity_type for reader in READERS)
        _say(f"tables agree with the chain ({names})")
    return found


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _count(count: int, one: str, many: str) -> str:
    """ "1 entry", "2 entries": every count the CLI says, said in the right number."""
    return f"{count} {_plural(count, one, many)}"


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    """Verify the chain, then sign its head and publish the checkpoint outside the database;
    with --every, again and again (run it beside the server, e.g. as a service)."""
    _setup_django()
    import time

    from quartermaster.core import checkpoints
    from quartermaster.core.audit import verify_chain

    while True:
        report = verify_chain()
        if not report.ok:
            _say(f"not signed: audit chain BROKEN at seq {report.first_bad_seq}")
            return 1
        checkpoint = checkpoints.sign_head()
        where = checkpoints.sink().publish(checkpoint)
        _say(f"checkpoint of entries 1..{checkpoint.seq} root {checkpoint.root} -> {where}")
        if not args.every:
            return 0
        time.sleep(args.every)


def cmd_audit_public_key(args: argparse.Namespace) -> int:
    """The Ed25519 public key checkpoints are signed with: publish it where customers find it."""
    _setup_django()
    from quartermaster.core import checkpoints

    _say(checkpoints.public_key_hex())
    return 0


def cmd_journal_verify(args: argparse.Namespace) -> int:
    """Recompute every balance and every entry from the journal's lines; exit 1 on any drift."""
    _setup_django()
    from quartermaster.core.money import format_money
    from quartermaster.journal.selectors import verify_journal

    report = verify_journal(progress=lambda n: _say(f"  checked {n} entries…"))
    for bad in report.unbalanced:
        count, debits, credits = bad.found
        _say(
            f"  entry {bad.number} does not balance: {count} lines, debits {format_money(debits)},"
            f" credits {format_money(credits)} (the entry claims {bad.claimed[0]} lines,"
            f" {format_money(bad.claimed[1])} / {format_money(bad.claimed[2])})"
        )
    for drift in report.drifted:
        recorded = (
            "no balance row"
            if drift.recorded is None
            else f"{format_money(drift.recorded[0])} / {format_money(drift.recorded[1])}"
        )
        _say(
            f"  account {drift.code} drifted: balance {recorded}, lines"
            f" {format_money(drift.computed[0])} / {format_money(drift.computed[1])}"
        )
    if report.ok:
        entries = _count(report.entries, "entry", "entries")
        accounts = _count(report.accounts, "account balances", "accounts balance")
        _say(f"journal OK: {entries}, {accounts}")
        return 0
    _say(
        f"journal BROKEN: {_count(len(report.unbalanced), 'unbalanced entry', 'unbalanced entries')},"
        f" {_count(len(report.drifted), 'drifted account', 'drifted accounts')}"
        f" ({_count(report.entries, 'entry', 'entries')} read)"
    )
    return 1


_BACKFILL_KINDS = ("sale", "return", "payment", "refund")


def cmd_journal_backfill(args: argparse.Namespace) -> int:
    """Post the journal entries and deposit movements missing for sales, returns, payments and
    refunds recorded before the journal existed (sales.backfill), one audited command per
    record; --dry-run only says what it would post. Running it again posts nothing."""
    _setup_django()
    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.sales.backfill import BackfillPostings, plan

    todo = plan()
    verb = "would backfill" if args.dry_run else "backfilling"
    _say(f"{verb}: {_backfill_summary(todo)}")
    if args.dry_run or not todo.records:
        return 0
    entries = deposits = 0
    for done, record in enumerate(todo.records, start=1):
        command = BackfillPostings(record=record.kind, id=record.id)
        response = execute(command, Context(actor=SYSTEM_ACTOR))
        if response.status != 200:
            _say(f"error at {record.kind} {record.number}: {response.body}")
            return 1
        entries += len(response.body["entries"])
        deposits += response.body["deposit_movements"]
        if done % 100 == 0 or done == len(todo.records):
            _say(f"  {done}/{len(todo.records)} records…")
    _say(
        f"backfilled: {_count(entries, 'journal entry', 'journal entries')},"
        f" {_count(deposits, 'deposit movement', 'deposit movements')} (audited)"
    )
    return 0


def _backfill_summary(todo: Plan) -> str:
    """ "2 sales (1810.00; 1 voided), 0 returns, 1 payment (500.00), 0 refunds" """
    from quartermaster.core.money import format_money

    parts = []
    for kind in _BACKFILL_KINDS:
        records = todo.of(kind)
        part = _count(len(records), kind, f"{kind}s")
        if records:
            details = [format_money(sum(record.amount_minor for record in records))]
            voided = sum(record.voided for record in records)
            if voided:
                details.append(f"{voided} voided")
            part += f" ({'; '.join(details)})"
        parts.append(part)
    return ", ".join(parts)


def cmd_market_settle(args: argparse.Namespace) -> int:
    """Generate the period's draft settlement of every farmer with open entries in it: one
    command (one transaction) per farmer, farmers streamed, so memory stays flat in their
    number. Exit 1 if any farmer's settlement was refused."""
    _setup_django()
    from quartermaster.core.commands import execute
    from quartermaster.core.errors import Invalid
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.market import invariants
    from quartermaster.market.selectors import farmers_to_settle
    from quartermaster.market.services import GenerateSettlement

    try:
        first = invariants.clean_date(args.period_from, "from")
        last = invariants.clean_date(args.period_to, "to")
    except Invalid as error:
        _say(f"error: {error.message} (dates such as 2026-03-31)")
        return 2
    made, refused = 0, 0
    for farmer_id in farmers_to_settle(first, last):
        command = GenerateSettlement(
            farmer=farmer_id, period_from=args.period_from, period_to=args.period_to
        )
        response = execute(command, Context(actor=SYSTEM_ACTOR))
        if response.status == 201:
            made += 1
        else:
            refused += 1
            _say(f"  farmer {farmer_id}: {response.status} {response.body.get('error')}")
    _say(f"{_count(made, 'settlement', 'settlements')} generated, {refused} refused")
    return 1 if refused else 0


def cmd_media_gc(args: argparse.Namespace) -> int:
    """Collect the media uploads never confirmed whose upload target expired: their bytes are
    deleted, their rows kept as `expired` (the audit chain names them)."""
    _setup_django()
    from django.utils import timezone

    from quartermaster.media.invariants import StorageUnavailable
    from quartermaster.media.services import collect_garbage

    try:
        collected = collect_garbage(timezone.now())
    except StorageUnavailable as error:
        _say(f"error: {error.message}")
        return 1
    _say(f"{collected} expired uploads collected")
    return 0


def cmd_stock_rebuild(args: argparse.Namespace) -> int:
    """Recompute stock from the movement ledger; --check only reports, otherwise it repairs."""
    _setup_django()
    from quartermaster.inventory.selectors import stock_differences

    differences = stock_differences()
    names = _stock_names(differences)
    for d in differences:
        _say(
            f"  {names[d['item']]} at {names[d['location']]}:"
            f" ledger {d['ledger']}, stock {d['stock']}"
        )
    if not differences:
        _say("stock agrees with the movement ledger")
        return 0
    if args.check:
        rows = _count(len(differences), "stock row differs", "stock rows differ")
        _say(f"{rows} from the movement ledger")
        return 1
    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.inventory.services import RebuildStock

    response = execute(RebuildStock(), Context(actor=SYSTEM_ACTOR))
    if response.status != 200:
        _say(f"error: {response.body}")
        return 1
    rebuilt = _count(len(response.body["differences"]), "stock row", "stock rows")
    _say(f"rebuilt {rebuilt} from the ledger (audited)")
    return 0


def _stock_names(differences: list[dict[str, Any]]) -> dict[str, str]:
    """People's names for the ids in `differences`: "ITM-000004 Hose pipe 1.5 m (<id>)"."""
    from quartermaster.inventory.models import Item, Location

    items = Item.objects.filter(pk__in={d["item"] for d in differences})
    locations = Location.objects.filter(pk__in={d["location"] for d in differences})
    return {
        **{str(i.pk): f"item {i.sku} {i.name!r} ({i.pk})" for i in items},
        **{str(loc.pk): f"{loc.kind} {loc.name!r} ({loc.pk})" for loc in locations},
    }


def cmd_purge_keys(args: argparse.Namespace) -> int:
    _setup_django()
    from quartermaster.core.commands import execute
    from quartermaster.core.maintenance import PurgeIdempotencyKeys
    from quartermaster.core.types import SYSTEM_ACTOR, Context

    command = (
        PurgeIdempotencyKeys()
        if args.days is None
        else PurgeIdempotencyKeys(older_than_days=args.days)
    )
    response = execute(command, Context(actor=SYSTEM_ACTOR))
    _say(
        f"forgot {_count(response.body['deleted'], 'HTTP idempotency key', 'HTTP idempotency keys')}"
        f" older than {response.body['cutoff']}"
    )
    return 0


def cmd_op_catalogue(args: argparse.Namespace) -> int:
    """Every sync op type with its payload schema, from the command registry."""
    _setup_django()
    import json

    import quartermaster.api  # noqa: F401  (imports every domain, so every command is registered)
    from quartermaster.sync.catalogue import catalogue_markdown, op_catalogue

    if args.markdown:
        print(catalogue_markdown(), end="")
    else:
        print(json.dumps(op_catalogue(), indent=2, sort_keys=True))
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["quartermaster manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quartermaster",
        description="Offline-first inventory and ledger server. Configure with QM_* variables "
        "(QM_DATABASE_URL, QM_SECRET_KEY, QM_AUDIT_KEY, QM_DEBUG, QM_DATA_DIR, QM_CACHE_URL).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_serve_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        sub.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
        sub.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
        sub.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
        sub.add_argument(
            "--no-access-log", dest="access_log", action="store_false", help="no per-request log"
        )

    serve = commands.add_parser("serve", help="serve the HTTP API (ASGI, uvicorn)")
    add_serve_options(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("-v", "--verbose", action="store_true")
    migrate.set_defaults(func=cmd_migrate)

    demo = commands.add_parser("demo", help="migrate and load demo users and items")
    demo.add_argument("--serve", action="store_true", help="then serve the API")
    add_serve_options(demo)
    demo.set_defaults(func=cmd_demo)

    createuser = commands.add_parser(
        "createuser", help="create a user; the password is read from standard input"
    )
    createuser.add_argument("username")
    createuser.add_argument(
        "--role", required=True, choices=["admin", "manager", "staff", "auditor", "party"]
    )
    createuser.add_argument(
        "--location",
        action="append",
        metavar="LOCATION_ID",
        help="assign a location (repeat; `quartermaster locations` lists their ids)",
    )
    createuser.set_defaults(func=cmd_createuser)

    setpassword = commands.add_parser(
        "setpassword",
        help="reset a user's password, read from standard input (their sessions end)",
    )
    setpassword.add_argument("username")
    setpassword.set_defaults(func=cmd_setpassword)
    for name, active, what in (
        ("deactivate", False, "deactivate a user (their sessions end at once)"),
        ("activate", True, "activate a user (approve a sign-up)"),
    ):
        toggle = commands.add_parser(name, help=what)
        toggle.add_argument("username")
        toggle.set_defaults(func=cmd_set_active, active=active)

    locations = commands.add_parser(
        "locations", help="list locations with their ids (for createuser --location)"
    )
    locations.set_defaults(func=cmd_locations)

    audit = commands.add_parser("audit", help="audit chain tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_commands.add_parser(
        "verify",
        help="check the hash chain (naming the first bad entry) and the latest signed checkpoint",
    )
    verify.add_argument(
        "--state",
        action="store_true",
        help="also replay the chain and compare it with the current rows of the audited tables",
    )
    verify.set_defaults(func=cmd_audit_verify)
    checkpoint = audit_commands.add_parser(
        "checkpoint", help="sign the chain's head and publish it outside the database"
    )
    checkpoint.add_argument(
        "--every", type=int, metavar="SECONDS", help="keep publishing one every SECONDS"
    )
    checkpoint.set_defaults(func=cmd_audit_checkpoint)
    public_key = audit_commands.add_parser(
        "public-key", help="print the key that verifies checkpoints (publish it)"
    )
    public_key.set_defaults(func=cmd_audit_public_key)

    journal = commands.add_parser("journal", help="double-entry journal tools")
    journal_commands = journal.add_subparsers(
        dest="journal_command", required=True, metavar="COMMAND"
    )
    journal_verify = journal_commands.add_parser(
        "verify", help="recompute balances and entries from the lines; name any drift (exit 1)"
    )
    journal_verify.set_defaults(func=cmd_journal_verify)
    journal_backfill = journal_commands.add_parser(
        "backfill",
        help="post the entries and deposits missing for sales money recorded before the journal",
    )
    journal_backfill.add_argument(
        "--dry-run", action="store_true", help="only say what would be posted"
    )
    journal_backfill.set_defaults(func=cmd_journal_backfill)

    market = commands.add_parser("market", help="flower market tools")
    market_commands = market.add_subparsers(dest="market_command", required=True, metavar="COMMAND")
    settle = market_commands.add_parser(
        "settle", help="generate a draft settlement for every farmer with open entries"
    )
    settle.add_argument("--from", dest="period_from", required=True, metavar="YYYY-MM-DD")
    settle.add_argument("--to", dest="period_to", required=True, metavar="YYYY-MM-DD")
    settle.set_defaults(func=cmd_market_settle)

    media = commands.add_parser("media", help="uploaded photos and signatures")
    media_commands = media.add_subparsers(dest="media_command", required=True, metavar="COMMAND")
    gc = media_commands.add_parser(
        "gc", help="delete uploads never confirmed whose upload target expired"
    )
    gc.set_defaults(func=cmd_media_gc)

    stock = commands.add_parser("stock", help="stock ledger tools")
    stock_commands = stock.add_subparsers(dest="stock_command", required=True, metavar="COMMAND")
    rebuild = stock_commands.add_parser(
        "rebuild", help="recompute every stock row from the movement ledger"
    )
    rebuild.add_argument(
        "--check", action="store_true", help="only report differences (exit 1 if any)"
    )
    rebuild.set_defaults(func=cmd_stock_rebuild)

    purge = commands.add_parser(
        "purge-keys",
        help="forget HTTP Idempotency-Keys past their retention (sync op ids are kept forever)",
    )
    purge.add_argument(
        "--days", type=int, help="retention in days (never below QM_IDEMPOTENCY_KEY_TTL_DAYS, 30)"
    )
    purge.set_defaults(func=cmd_purge_keys)

    outbox = commands.add_parser("outbox", help="the outbox of messages to send (notifications)")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True, metavar="COMMAND")
    work = outbox_commands.add_parser(
        "work",
        help="deliver queued messages with retries and back-off (at least once; see README)",
        description="Claim due messages, send them, retry failures after 1, 2, 4, 8, 16 s"
        " (QM_OUTBOX_BACKOFF_SCALE scales every wait), up to QM_OUTBOX_MAX_ATTEMPTS; then"
        " `failed`. Delivery is at least once: a worker killed mid-send leaves the message"
        " to be sent again after its lease (QM_OUTBOX_LEASE_S), with the same dedupe key."
        " Runs until SIGTERM or Ctrl+C unless --once or --drain. Providers from"
        " QM_WHATSAPP_* and QM_SMS_*; none set: the console (log).",
    )
    when = work.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="send what is due now, then exit")
    when.add_argument(
        "--drain",
        action="store_true",
        help="exit when nothing is pending (waits out back-offs and leases)",
    )
    work.set_defaults(func=cmd_outbox_work)

    catalogue = commands.add_parser(
        "op-catalogue", help="every sync op type with its payload schema (JSON, or --markdown)"
    )
    catalogue.add_argument("--markdown", action="store_true", help="as docs/op-catalogue.md")
    catalogue.set_defaults(func=cmd_op_catalogue)

    add_agent_parser(commands)
    add_cluster_parser(commands)

    manage = commands.add_parser("manage", help="run a Django management command (developers)")
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
