"""`quartermaster agent …`: the field client on the command line (record, sync, status, conflicts).

Imports no Django: `quartermaster.cli` hands the `agent` commands here before any server setup.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_DB = "./var/agent.sqlite3"
# `agent sync` exit codes: 0 in sync; 1 not finished (retry later); 2 needs a person (bad
# credentials, usage); 3 in sync, but the server rejected ops (`agent conflicts` shows them).
REJECTED = 3

EPILOG = """\
environment:
  QM_AGENT_DB        device database (default ./var/agent.sqlite3)
  QM_AGENT_SERVER    server URL, e.g. http://127.0.0.1:8000; several separated by commas
                     (a shop with failover): the agent uses the one whose database is
                     the primary and moves on when it fails
  QM_AGENT_USERNAME  user to log in as
  QM_AGENT_PASSWORD  password (only needed until the device holds a token)

example, against `quartermaster demo --serve`:
  export QM_AGENT_SERVER=http://127.0.0.1:8000 QM_AGENT_USERNAME=admin QM_AGENT_PASSWORD=admin-demo-pass
  quartermaster agent record item.create --payload '{"item_name": "Valve", "qty": 5}' --new-temp-id
  quartermaster agent sync
  quartermaster agent status
"""


def say(message: str) -> None:
    print(message, flush=True)


def add_agent_parser(commands: Any) -> None:
    """Add `agent` and its subcommands to the `quartermaster` subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help=f"device database (default $QM_AGENT_DB or {DEFAULT_DB})",
    )
    common.add_argument(
        "--device",
        default=None,
        metavar="ID",
        help="device id; set once, generated on first use when not given",
    )

    agent = commands.add_parser(
        "agent",
        help="the field client: record ops offline, sync them, see their outcomes",
        description="The field client. Ops are recorded into a durable outbox on this device "
        "(they survive a crash or a kill), then `sync` pushes them in batches of up to 100, "
        "retrying with exponential backoff, and pulls the change feed into a local replica.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = agent.add_subparsers(dest="agent_command", required=True, metavar="COMMAND")

    record = sub.add_parser(
        "record",
        parents=[common],
        help="record an op in the outbox (works offline)",
        description="Record one op. It is on disk when this returns and is sent by `agent sync`.",
        epilog="examples:\n"
        '  quartermaster agent record item.create --payload \'{"item_name": "Valve", "qty": 5}\''
        " --temp-id temp_valve\n"
        '  quartermaster agent record item.adjust --payload \'{"item_id": "temp_valve",'
        ' "delta": -1}\'\n'
        "A payload may name any temp id this device has used; the server substitutes the "
        "permanent id.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("type", metavar="TYPE", help="op type: item.create, sale.record, …")
    record.add_argument(
        "--payload",
        required=True,
        metavar="JSON",
        help="the op's payload: a JSON object, @FILE to read it from a file, or - for stdin",
    )
    temp = record.add_mutually_exclusive_group()
    temp.add_argument("--temp-id", metavar="T", help="client temp id for what this op creates")
    temp.add_argument(
        "--new-temp-id",
        action="store_true",
        help="mint a temp id (temp_…) and print only it (T=$(quartermaster agent record …))",
    )
    record.add_argument(
        "--group", metavar="G", help="ops sharing a group are applied all-or-nothing"
    )
    record.add_argument(
        "--base-version", type=int, metavar="N", help="version the edit is based on (conflicts)"
    )
    record.add_argument(
        "--urgent",
        action="store_true",
        help="a running `agent sync --watch` pushes it at once (a sale or move that the "
        "replica says takes the last unit is urgent without this)",
    )
    record.set_defaults(func=cmd_record)

    photo = sub.add_parser(
        "photo",
        parents=[common],
        help="keep a photo for upload (works offline); prints its media id",
        description="Copy a JPEG, PNG or WebP photo into the outbox folder beside the device "
        "database and print the media id minted for it: a photo or signature answer names it "
        "at once. `agent sync` uploads the photo (resuming a broken upload) and has the server "
        "confirm it before it pushes the ops recorded after it.",
        epilog="example:\n"
        "  M=$(quartermaster agent photo boiler.jpg)\n"
        '  quartermaster agent record inspection.update --payload "{\\"id\\": \\"$I\\",'
        ' \\"answers\\": {\\"photos\\": [\\"$M\\"]}}"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    photo.add_argument("file", metavar="FILE", help="the photo (JPEG, PNG or WebP)")
    photo.set_defaults(func=cmd_photo)

    sync = sub.add_parser(
        "sync",
        parents=[common],
        help="push pending ops and pull the change feed",
        description="Push pending ops (batches of up to 100, in order), then pull the change "
        "feed into the local replica. Retries with exponential backoff and jitter until "
        "everything is pushed, unless --once.",
        epilog="exit status: 0 in sync; 1 not finished (ops pending, run it again); 2 needs "
        "you (login, usage); 3 in sync but the server rejected ops (see `agent conflicts`)",
    )
    sync.add_argument(
        "--server",
        metavar="URL",
        help="server URL, or several separated by commas (default $QM_AGENT_SERVER, else "
        "the last one used)",
    )
    sync.add_argument("--username", metavar="NAME", help="default $QM_AGENT_USERNAME")
    sync.add_argument(
        "--password",
        metavar="PASSWORD",
        help="default $QM_AGENT_PASSWORD; asked for on a terminal when a login is needed",
    )
    sync.add_argument("--once", action="store_true", help="one round, no retries")
    sync.add_argument(
        "--watch",
        action="store_true",
        help="keep running: sync every --interval, at once on a server poke (WebSocket) "
        "and on an urgent op recorded meanwhile; follows the primary when it moves",
    )
    sync.add_argument(
        "--interval", type=float, default=30.0, metavar="S", help="--watch period (default 30)"
    )
    sync.add_argument(
        "--batch-size", type=int, default=100, metavar="N", help="ops per batch, 1-100"
    )
    sync.add_argument(
        "--max-delay",
        type=float,
        default=60.0,
        metavar="S",
        help="cap of the retry delay 1, 2, 4, 8 … s (default 60)",
    )
    sync.add_argument(
        "--max-rounds", type=int, metavar="N", help="give up after N rounds (default: never)"
    )
    sync.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="HTTP timeout (default 30)"
    )
    sync.set_defaults(func=cmd_sync)

    status = sub.add_parser(
        "status",
        parents=[common],
        help="pending, done and rejected ops, cursor, last sync",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    conflicts = sub.add_parser(
        "conflicts",
        parents=[common],
        help="rejected and conflicting ops with the server's answer",
        description="Ops the server rejected for good (4xx), conflicts (409) included, "
        "with their payloads and the error bodies. They are not retried: a person decides.",
    )
    conflicts.add_argument("--json", action="store_true", help="machine-readable output")
    conflicts.set_defaults(func=cmd_conflicts)

    resolve = sub.add_parser(
        "resolve", parents=[common], help="the permanent id behind a temp id, once synced"
    )
    resolve.add_argument("temp_id", metavar="TEMP_ID")
    resolve.set_defaults(func=cmd_resolve)


def _db_path(args: argparse.Namespace) -> Path:
    return Path(args.db or os.environ.get("QM_AGENT_DB") or DEFAULT_DB)


def _open(args: argparse.Namespace) -> Any:
    from quartermaster.client.store import DeviceStore

    store = DeviceStore(_db_path(args))
    store.device_id(args.device)
    return store


def _read_payload(value: str) -> Any:
    if value == "-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        text = Path(value[1:]).read_text(encoding="utf-8")
    else:
        text = value
    return json.loads(text)


def cmd_record(args: argparse.Namespace) -> int:
    from quartermaster.client.store import OutboxError, new_temp_id
    from quartermaster.client.urgency import takes_last_unit

    try:
        payload = _read_payload(args.payload)
    except (ValueError, OSError) as error:
        say(f"error: --payload is not a JSON object: {error}")
        return 2
    temp_id = new_temp_id() if args.new_temp_id else args.temp_id
    with _open(args) as store:
        try:
            op = store.record(
                args.type,
                payload,
                client_temp_id=temp_id,
                group=args.group,
                base_version=args.base_version,
                critical=args.urgent or takes_last_unit(store, args.type, payload),
            )
        except OutboxError as error:
            say(f"error: {error}")
            return 2
        pending = store.counts()["pending"]
    if args.new_temp_id:
        # Only the id on standard output, so a script can keep it: T=$(… --new-temp-id).
        print(op.client_temp_id, flush=True)
        return 0
    line = f"recorded op #{op.device_seq} {op.type} (op id {op.op_id})"
    if op.critical:
        line += " urgent"
    if op.client_temp_id:
        line += f" temp id {op.client_temp_id}"
    say(line)
    say(f"{pending} {'op' if pending == 1 else 'ops'} waiting to sync")
    return 0


def cmd_photo(args: argparse.Namespace) -> int:
    from quartermaster.client.photos import record_photo
    from quartermaster.client.store import OutboxError

    with _open(args) as store:
        try:
            photo = record_photo(store, args.file)
        except (OutboxError, OSError) as error:
            say(f"error: {error}")
            return 2
    # Only the id on standard output, so a script can keep it: M=$(… photo FILE).
    print(photo.media_id, flush=True)
    return 0


@contextlib.contextmanager
def _sync_lock(db_path: Path) -> Iterator[bool]:
    """One `agent sync` per device database at a time (a second one would send the same ops
    concurrently, which is harmless to the data but wastes the link). Released if we die."""
    try:
        import fcntl
    except ImportError:  # not POSIX: go without
        yield True
        return
    lock_path = db_path.with_name(db_path.name + ".sync-lock")
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cmd_sync(args: argparse.Namespace) -> int:
    from quartermaster.client.backoff import Backoff
    from quartermaster.client.engine import SyncEngine
    from quartermaster.client.session import Session

    if not 1 <= args.batch_size <= 100:
        say("error: --batch-size must be between 1 and 100")
        return 2
    with _open(args) as store:
        server = args.server or os.environ.get("QM_AGENT_SERVER") or store.get_meta("server")
        if not server:
            say("error: no server: give --server URL or set QM_AGENT_SERVER")
            return 2
        username = args.username or os.environ.get("QM_AGENT_USERNAME")
        password = args.password or os.environ.get("QM_AGENT_PASSWORD")
        known_user = store.get_meta("username")
        has_token = store.get_meta("refresh") is not None and username in (None, known_user)
        if password is None and not has_token and sys.stdin.isatty():
            username = username or input("Username: ")
            password = getpass.getpass(f"Password for {username}: ")
        store.set_meta({"server": server})
        device_id = store.device_id()
        with _sync_lock(_db_path(args)) as locked:
            if not locked:
                say("error: another `agent sync` is running on this device database")
                return 2
            session = Session(
                store,
                server,
                username=username,
                password=password,
                device_id=device_id,
                timeout_s=args.timeout,
            )
            engine = SyncEngine(
                store,
                session,
                batch_size=args.batch_size,
                backoff=Backoff(cap_s=max(1.0, args.max_delay)),
                progress=say,
            )
            say(f"device {device_id} syncing with {server}: {store.counts()['pending']} pending")
            try:
                code = _sync_rounds(engine, args)
                while args.watch and code != 2:
                    _wait_for_news(session, store, args.interval)
                    code = _sync_rounds(engine, args)
            except KeyboardInterrupt:
                say("stopped; pending ops stay in the outbox")
                code = 130
            finally:
                session.close()
    return code


def _sync_rounds(engine: Any, args: argparse.Namespace) -> int:
    max_rounds = 1 if args.once else args.max_rounds
    report = engine.sync(max_rounds=max_rounds)
    say(report.summary())
    for op in report.rejected_ops:
        say(f"  rejected {_describe(op)}")
    if report.rejected_ops:
        say("see `quartermaster agent conflicts` for every rejected op")
    if report.needs_attention:
        say(f"error: {report.error}")
        return 2
    if not report.complete:
        say(f"not finished: {report.error or 'ops pending'}; run `agent sync` again")
        return 1
    say(f"in sync (cursor {report.cursor})")
    if report.rejected_ops:
        # Final answers, yet someone must look at them: a script sees it in the exit code.
        return REJECTED
    return 0


# How often a watching sync looks for urgent ops recorded meanwhile (a local SQLite read).
URGENT_CHECK_S = 0.5


def _wait_for_news(session: Any, store: Any, interval_s: float) -> None:
    """Until the next round is due: a poke or a critical event arrives on WS /ws/changes, an
    urgent op is recorded, or `interval_s` passes. A missed message costs only latency: the
    next round pulls the feed anyway. On `primary_changed` the session chooses its server again.
    """
    deadline = time.monotonic() + interval_s

    def urgent() -> bool:
        return bool(store.pending_critical())

    try:
        from websockets.sync.client import connect
    except ImportError:
        _poll_until(deadline, urgent)
        return
    url = session.server.replace("http://", "ws://").replace("https://", "wss://")
    try:
        with connect(f"{url}/ws/changes?token={store.get_meta('access')}", open_timeout=5) as ws:
            while not urgent():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    message = ws.recv(timeout=min(URGENT_CHECK_S, left))
                except TimeoutError:
                    continue
                if _primary_changed(message):
                    session.servers.failed()
                return
    except Exception:  # no WebSocket (proxy, old server, expired token, server gone): poll
        session.servers.failed()
        _poll_until(deadline, urgent)


def _poll_until(deadline: float, urgent: Any) -> None:
    while not urgent() and time.monotonic() < deadline:
        time.sleep(min(URGENT_CHECK_S, max(0.0, deadline - time.monotonic())))


def _primary_changed(message: Any) -> bool:
    try:
        event = json.loads(message)
    except (TypeError, ValueError):
        return False
    return isinstance(event, dict) and event.get("event") == "primary_changed"


def _describe(op: Any) -> str:
    body = op.body if isinstance(op.body, dict) else {}
    error = body.get("error", "")
    code = f" ({body['code']})" if body.get("code") else ""
    return f"#{op.device_seq} {op.type} → {op.status}{code} {error}".rstrip()


def cmd_status(args: argparse.Namespace) -> int:
    with _open(args) as store:
        counts = store.counts()
        state = {
            "device_id": store.device_id(),
            "db": str(_db_path(args)),
            "server": store.get_meta("server"),
            "username": store.get_meta("username"),
            "logged_in": store.get_meta("refresh") is not None,
            "ops": counts,
            "cursor": store.cursor,
            "last_sync_at": store.get_meta("last_sync_at"),
            "last_sync_result": store.get_meta("last_sync_result"),
            "replica": store.replica_counts(),
            "temp_ids_resolved": len(store.id_map()),
            "photos": dict(Counter(photo.state for photo in store.photos())),
            "photos_refused": [
                {"media_id": photo.media_id, "error": photo.last_error}
                for photo in store.photos(states=("refused",))
            ],
        }
    if args.json:
        say(json.dumps(state, indent=2))
        return 0
    say(f"device     {state['device_id']}  ({state['db']})")
    say(f"server     {state['server'] or '-'}  user {state['username'] or '-'}")
    say(
        f"ops        {counts['pending']} pending, {counts['done']} done, "
        f"{counts['rejected']} rejected ({counts['conflicts']} conflicts)"
    )
    photos = state["photos"]
    if photos:
        say("photos     " + ", ".join(f"{n} {state_}" for state_, n in sorted(photos.items())))
        for refused in state["photos_refused"]:
            say(f"  refused {refused['media_id']}: {refused['error']}")
    say(f"cursor     {state['cursor'] or '-'}")
    last = state["last_sync_at"]
    say(f"last sync  {last or 'never'}" + (f" ({state['last_sync_result']})" if last else ""))
    replica = ", ".join(f"{entity} {n}" for entity, n in state["replica"].items()) or "empty"
    say(f"replica    {replica}")
    return 0


def cmd_conflicts(args: argparse.Namespace) -> int:
    from quartermaster.client.store import REJECTED

    with _open(args) as store:
        rejected = store.ops(state=REJECTED)
    if args.json:
        say(
            json.dumps(
                [
                    {
                        "device_seq": op.device_seq,
                        "op_id": op.op_id,
                        "type": op.type,
                        "payload": op.payload,
                        "client_temp_id": op.client_temp_id,
                        "group": op.group,
                        "status": op.status,
                        "conflict": op.is_conflict,
                        "body": op.body,
                        "finished_at": op.finished_at,
                    }
                    for op in rejected
                ],
                indent=2,
            )
        )
        return 0
    if not rejected:
        say("no rejected or conflicting ops")
        return 0
    conflicts = sum(op.is_conflict for op in rejected)
    ops = f"{len(rejected)} rejected {'op' if len(rejected) == 1 else 'ops'}"
    clashes = f"{conflicts} {'conflict' if conflicts == 1 else 'conflicts'}"
    say(f"{ops} ({clashes}); they are final and not retried:")
    for op in rejected:
        say(("conflict " if op.is_conflict else "rejected ") + _describe(op))
        say(f"    op id   {op.op_id}  recorded {op.client_ts}")
        say(f"    payload {json.dumps(op.payload, sort_keys=True)}")
        say(f"    answer  {json.dumps(op.body, sort_keys=True)}")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    with _open(args) as store:
        server_id = store.resolve(args.temp_id)
    if server_id is None:
        say(f"{args.temp_id} is not resolved yet (not synced, or its op was rejected)")
        return 1
    say(server_id)
    return 0
