"""The device database: the durable outbox of ops, the temp-id map, the replica, tokens, cursor.

One SQLite file per device, in WAL mode with `synchronous=FULL`: `record()` returns only after
its op is committed and fsynced, so an op recorded offline survives a crash or a kill of the
process (and a power cut, as far as the disk keeps its promises). Every write is one
`BEGIN IMMEDIATE` transaction, so several processes may share the file (a CLI `record` while an
`agent sync` runs) without losing or reordering anything.

The outbox is append-only in spirit: an op goes from `pending` to `done` (2xx) or `rejected`
(4xx) exactly once and keeps the server's answer; nothing is ever deleted, so `device_seq`
stays dense (1, 2, 3 …) and the server can report gaps.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PENDING = "pending"
DONE = "done"
REJECTED = "rejected"
# The server refuses larger batches (413), so a group, which must travel in one batch, is capped.
MAX_GROUP_OPS = 100

TEMP_ID_PREFIX = "temp_"
OP_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ops (
    device_seq INTEGER PRIMARY KEY,
    op_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    client_temp_id TEXT UNIQUE,
    op_group TEXT,
    base_version INTEGER,
    client_ts TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'rejected')),
    status INTEGER,
    body TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS ops_by_state ON ops (state, device_seq);
CREATE TABLE IF NOT EXISTS id_map (
    temp_id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    op_id TEXT
);
CREATE TABLE IF NOT EXISTS replica (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER,
    seq INTEGER,
    data TEXT,
    PRIMARY KEY (entity, id)
);
"""
# Each schema version's statements after the first: a device database written by an older
# client is brought up to date in place, its outbox kept.
UPGRADES = {
    # An op to push at once (`agent record --urgent`, or the replica says it takes the last
    # unit): `agent sync --watch` does not wait for its next round.
    2: "ALTER TABLE ops ADD COLUMN critical INTEGER NOT NULL DEFAULT 0",
    # Photos taken offline (client.photos): the file is copied into the outbox folder and its
    # media id minted here, so the op that attaches it names it before any upload.
    3: """CREATE TABLE IF NOT EXISTS photos (
        media_id TEXT PRIMARY KEY,
        file TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'uploaded', 'ready', 'refused')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        body TEXT,
        recorded_at TEXT NOT NULL
    )""",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_temp_id() -> str:
    """A fresh client temp id (`temp_…`), unique without asking anyone."""
    return f"{TEMP_ID_PREFIX}{uuid.uuid4().hex}"


class OutboxError(ValueError):
    """The op cannot be recorded as asked (bad type, payload, temp id or group)."""


@dataclass(frozen=True)
class Op:
    device_seq: int
    op_id: str
    type: str
    payload: dict[str, Any]
    client_temp_id: str | None
    group: str | None
    base_version: int | None
    client_ts: str
    state: str
    status: int | None
    body: Any
    attempts: int
    last_error: str | None
    finished_at: str | None
    critical: bool = False

    @property
    def is_conflict(self) -> bool:
        return self.state == REJECTED and self.status == 409

    def wire(self) -> dict[str, Any]:
        """The op as `POST /api/v1/sync/batch` takes it."""
        op: dict[str, Any] = {
            "op_id": self.op_id,
            "type": self.type,
            "payload": self.payload,
            "client_ts": self.client_ts,
            "device_seq": self.device_seq,
        }
        if self.client_temp_id is not None:
            op["client_temp_id"] = self.client_temp_id
        if self.group is not None:
            op["group"] = self.group
        if self.base_version is not None:
            op["base_version"] = self.base_version
        return op


@dataclass(frozen=True)
class Outcome:
    """The server's answer to one op. `final` outcomes (2xx, 4xx) close the op for good."""

    op_id: str
    status: int
    body: Any
    id_map: Mapping[str, str]
    final: bool
    # The server had already processed this op id and answered from its record.
    replayed: bool = False


@dataclass(frozen=True)
class Photo:
    """A photo waiting in the outbox folder (`file`, relative to it) under the media id the
    device minted; `state`: pending → uploaded (the bytes are in storage) → ready (confirmed),
    or refused (the server will never take it)."""

    media_id: str
    file: str
    content_type: str
    size: int
    sha256: str
    state: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    body: Any = None


def _photo_from_row(row: sqlite3.Row) -> Photo:
    return Photo(
        media_id=row["media_id"],
        file=row["file"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        body=json.loads(row["body"]) if row["body"] is not None else None,
    )


@dataclass(frozen=True)
class Change:
    seq: int
    entity: str
    id: str
    op: str
    version: int | None
    data: Any


def _op_from_row(row: sqlite3.Row) -> Op:
    return Op(
        device_seq=row["device_seq"],
        op_id=row["op_id"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        client_temp_id=row["client_temp_id"],
        group=row["op_group"],
        base_version=row["base_version"],
        client_ts=row["client_ts"],
        state=row["state"],
        status=row["status"],
        body=json.loads(row["body"]) if row["body"] is not None else None,
        attempts=row["attempts"],
        last_error=row["last_error"],
        finished_at=row["finished_at"],
        critical=bool(row["critical"]),
    )


def _dumps(value: Any) -> str:
    # allow_nan=False: the server speaks strict JSON, and NaN would be refused only at sync time.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


class DeviceStore:
    """The device's SQLite database. Open one per thread; every method is one transaction."""

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        # Autocommit mode: transactions are explicit BEGIN IMMEDIATE … COMMIT below.
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsynced before record() returns (NORMAL could lose it on power loss).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{path} was written by a newer client (schema {version})")
        if version < SCHEMA_VERSION:
            with self._transaction() as db:
                # Read again under the write lock: another connection to this device database
                # (the recorder and the syncer open their own) may have upgraded it meanwhile.
                version = db.execute("PRAGMA user_version").fetchone()[0]
                # executescript() would commit on its own; one statement at a time stays atomic.
                if version == 0:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    version = 1
                for upgrade in range(version + 1, SCHEMA_VERSION + 1):
                    db.execute(UPGRADES[upgrade])
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def now(self) -> datetime:
        return self._clock()

    def __enter__(self) -> DeviceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- settings: device id, server, tokens, cursor -------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: Mapping[str, str | None]) -> None:
        with self._transaction() as db:
            self._put_meta(db, values)

    @staticmethod
    def _put_meta(db: sqlite3.Connection, values: Mapping[str, str | None]) -> None:
        for key, value in values.items():
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def device_id(self, wanted: str | None = None) -> str:
        """This device's id: `wanted` the first time (or a generated one), the same ever after.

        The server keys temp ids, op ids and device_seq by device id, so once ops have been sent
        under one id, the device cannot take another.
        """
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchone()
            current = None if row is None else str(row[0])
            if current is not None and (wanted is None or wanted == current):
                return current
            if current is not None:
                sent = db.execute(
                    "SELECT COUNT(*) FROM ops WHERE state != 'pending' OR attempts > 0"
                ).fetchone()[0]
                if sent:
                    raise OutboxError(
                        f"this device database already syncs as {current!r}; "
                        f"it cannot become {wanted!r}"
                    )
            chosen = wanted or f"dev-{uuid.uuid4().hex[:12]}"
            self._put_meta(db, {"device_id": chosen})
            return chosen

    @property
    def cursor(self) -> str | None:
        return self.get_meta("cursor")

    # --- the outbox ------------------------------------------------------------------------------

    def record(
        self,
        type: str,
        payload: Mapping[str, Any],
        *,
        client_temp_id: str | None = None,
        group: str | None = None,
        base_version: int | None = None,
        critical: bool = False,
    ) -> Op:
        """Append an op to the outbox; it is on disk when this returns. A `critical` op is
        pushed at once by a watching sync (`pending_critical`).

        Record the ops of a group with `record_group`: recorded one by one, a sync running in
        between could send the first ops of the group without the rest.
        """
        payload_json = _checked(type, payload, client_temp_id, group, base_version)
        with self._transaction() as db:
            return self._insert(
                db, type, payload_json, client_temp_id, group, base_version, critical
            )

    def record_group(self, group: str, ops: Sequence[Mapping[str, Any]]) -> list[Op]:
        """Append all ops of `group` in one transaction, so no sync ever sees half of it.

        Each op is a mapping with `type`, `payload` and optionally `client_temp_id`,
        `base_version`.
        """
        if not ops:
            raise OutboxError("a group needs at least one op")
        checked = [
            (
                op["type"],
                _checked(
                    op["type"], op["payload"], op.get("client_temp_id"), group,
                    op.get("base_version"),
                ),
                op.get("client_temp_id"),
                op.get("base_version"),
            )
            for op in ops
        ]  # fmt: skip
        with self._transaction() as db:
            return [
                self._insert(db, type, payload_json, temp_id, group, base_version)
                for type, payload_json, temp_id, base_version in checked
            ]

    def _insert(
        self,
        db: sqlite3.Connection,
        type: str,
        payload_json: str,
        client_temp_id: str | None,
        group: str | None,
        base_version: int | None,
        critical: bool = False,
    ) -> Op:
        last = db.execute(
            "SELECT device_seq, op_group FROM ops ORDER BY device_seq DESC LIMIT 1"
        ).fetchone()
        if (
            client_temp_id is not None
            and db.execute(
                "SELECT 1 FROM ops WHERE client_temp_id = ?", (client_temp_id,)
            ).fetchone()
        ):
            raise OutboxError(f"temp id {client_temp_id!r} already names another op")
        if group is not None:
            self._check_group_can_grow(db, group, last)
        device_seq = (last["device_seq"] if last else 0) + 1
        op_id = str(uuid.uuid4())
        client_ts = iso(self._clock())
        db.execute(
            "INSERT INTO ops (device_seq, op_id, type, payload, client_temp_id, op_group,"
            " base_version, client_ts, critical) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (device_seq, op_id, type, payload_json, client_temp_id, group, base_version,
             client_ts, int(critical)),
        )  # fmt: skip
        return Op(
            device_seq=device_seq,
            op_id=op_id,
            type=type,
            payload=json.loads(payload_json),
            client_temp_id=client_temp_id,
            group=group,
            base_version=base_version,
            client_ts=client_ts,
            state=PENDING,
            status=None,
            body=None,
            attempts=0,
            last_error=None,
            finished_at=None,
            critical=critical,
        )

    @staticmethod
    def _check_group_can_grow(db: sqlite3.Connection, group: str, last: sqlite3.Row | None) -> None:
        """A group runs as one transaction in one batch: its ops must be recorded one after
        another, before any of them is sent, and fit in a batch."""
        row = db.execute(
            "SELECT COUNT(*) AS n, SUM(state != 'pending' OR attempts > 0) AS sent"
            " FROM ops WHERE op_group = ?",
            (group,),
        ).fetchone()
        if not row["n"]:
            return
        if row["sent"]:
            raise OutboxError(f"group {group!r} has already been sent; start a new group")
        if last is None or last["op_group"] != group:
            raise OutboxError(f"the ops of group {group!r} must be recorded one after another")
        if row["n"] >= MAX_GROUP_OPS:
            raise OutboxError(f"a group holds at most {MAX_GROUP_OPS} ops")

    # --- photos (client.photos uploads them) ----------------------------------------------------

    @property
    def outbox_dir(self) -> Path:
        """Where photos wait for their upload, beside the device database."""
        return self.path.parent / f"{self.path.stem}.outbox"

    def add_photo(self, photo: Photo) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO photos (media_id, file, content_type, size, sha256, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (photo.media_id, photo.file, photo.content_type, photo.size, photo.sha256,
                 iso(self._clock())),
            )  # fmt: skip

    def photos(self, *, states: Sequence[str] = ()) -> list[Photo]:
        rows = self._db.execute("SELECT * FROM photos ORDER BY recorded_at, media_id")
        found = [_photo_from_row(row) for row in rows]
        return [photo for photo in found if not states or photo.state in states]

    def set_photo_state(
        self, media_id: str, state: str, *, error: str | None = None, body: Any = None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE photos SET state = ?, attempts = attempts + (? IS NOT NULL),"
                " last_error = ?, body = COALESCE(?, body) WHERE media_id = ?",
                (state, error, error, None if body is None else _dumps(body), media_id),
            )

    def remint_photo(self, media_id: str) -> str:
        """Give a photo a new media id (its upload expired on the server and the old id is
        spent), in the photo row and every pending op that names it, in one transaction."""
        new_id = str(uuid.uuid4())
        with self._transaction() as db:
            db.execute(
                "UPDATE photos SET media_id = ?, state = 'pending' WHERE media_id = ?",
                (new_id, media_id),
            )
            db.execute(
                "UPDATE ops SET payload = replace(payload, ?, ?) WHERE state = 'pending'",
                (media_id, new_id),
            )
        return new_id

    def get_op(self, op_id: str) -> Op | None:
        row = self._db.execute("SELECT * FROM ops WHERE op_id = ?", (op_id,)).fetchone()
        return None if row is None else _op_from_row(row)

    def ops(self, *, state: str | None = None) -> list[Op]:
        if state is None:
            rows = self._db.execute("SELECT * FROM ops ORDER BY device_seq")
        else:
            rows = self._db.execute(
                "SELECT * FROM ops WHERE state = ? ORDER BY device_seq", (state,)
            )
        return [_op_from_row(row) for row in rows]

    def next_batch(self, limit: int) -> list[Op]:
        """The oldest pending ops, at most `limit`, never splitting a group across batches."""
        rows = self._db.execute(
            "SELECT * FROM ops WHERE state = 'pending' ORDER BY device_seq LIMIT ?",
            (limit + 1,),
        ).fetchall()
        batch = [_op_from_row(row) for row in rows]
        if len(batch) <= limit:
            return batch
        following, batch = batch[limit], batch[:limit]
        if following.group is not None and batch[-1].group == following.group:
            cut = len(batch)
            while cut > 0 and batch[cut - 1].group == following.group:
                cut -= 1
            if cut > 0:
                return batch[:cut]
            # The group alone is longer than `limit`: send it whole (it fits in a server batch).
            rows = self._db.execute(
                "SELECT * FROM ops WHERE state = 'pending' AND op_group = ? ORDER BY device_seq",
                (following.group,),
            ).fetchall()
            return [_op_from_row(row) for row in rows]
        return batch

    def save_outcomes(self, outcomes: Iterable[Outcome], *, retry_error: str | None = None) -> None:
        """Close final ops (keeping the server's body), count an attempt on retryable ones, and
        store the temp-id map, all in one transaction. An op closes once: a later duplicate
        answer for it changes nothing."""
        now = iso(self._clock())
        with self._transaction() as db:
            for outcome in outcomes:
                body = _dumps(outcome.body) if outcome.body is not None else None
                if outcome.final:
                    state = DONE if 200 <= outcome.status < 300 else REJECTED
                    db.execute(
                        "UPDATE ops SET state = ?, status = ?, body = ?, finished_at = ?,"
                        " attempts = attempts + 1, last_error = NULL"
                        " WHERE op_id = ? AND state = 'pending'",
                        (state, outcome.status, body, now, outcome.op_id),
                    )
                else:
                    db.execute(
                        "UPDATE ops SET attempts = attempts + 1, status = ?, body = ?,"
                        " last_error = ? WHERE op_id = ? AND state = 'pending'",
                        (outcome.status or None, body,
                         retry_error or (f"HTTP {outcome.status}" if outcome.status else "no answer"),
                         outcome.op_id),
                    )  # fmt: skip
                for temp_id, server_id in outcome.id_map.items():
                    db.execute(
                        "INSERT INTO id_map (temp_id, server_id, op_id) VALUES (?, ?, ?)"
                        " ON CONFLICT (temp_id) DO UPDATE SET server_id = excluded.server_id,"
                        " op_id = excluded.op_id",
                        (str(temp_id), str(server_id), outcome.op_id),
                    )

    def note_attempt(self, op_ids: Iterable[str], error: str) -> None:
        """The batch carrying these ops got no usable answer (transport failure, 5xx, 429)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE ops SET attempts = attempts + 1, last_error = ?"
                " WHERE op_id = ? AND state = 'pending'",
                [(error, op_id) for op_id in op_ids],
            )

    def pending_critical(self) -> int:
        """How many critical ops wait to be pushed."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM ops WHERE state = 'pending' AND critical = 1"
        ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        counts = {PENDING: 0, DONE: 0, REJECTED: 0, "conflicts": 0}
        for row in self._db.execute("SELECT state, COUNT(*) FROM ops GROUP BY state"):
            counts[row[0]] = row[1]
        counts["conflicts"] = self._db.execute(
            "SELECT COUNT(*) FROM ops WHERE state = 'rejected' AND status = 409"
        ).fetchone()[0]
        return counts

    # --- temp ids --------------------------------------------------------------------------------

    def resolve(self, temp_id: str) -> str | None:
        """The permanent id the server gave `temp_id`, once an op creating it has synced."""
        row = self._db.execute(
            "SELECT server_id FROM id_map WHERE temp_id = ?", (temp_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def id_map(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self._db.execute("SELECT temp_id, server_id FROM id_map")}

    # --- the replica -----------------------------------------------------------------------------

    def apply_changes(self, changes: Iterable[Change], cursor: str) -> int:
        """Apply one page of the change feed and move the cursor, atomically."""
        applied = 0
        with self._transaction() as db:
            for change in changes:
                applied += 1
                if change.op == "delete":
                    db.execute(
                        "DELETE FROM replica WHERE entity = ? AND id = ?",
                        (change.entity, change.id),
                    )
                else:
                    db.execute(
                        "INSERT INTO replica (entity, id, version, seq, data) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT (entity, id) DO UPDATE SET version = excluded.version,"
                        " seq = excluded.seq, data = excluded.data",
                        (change.entity, change.id, change.version, change.seq, _dumps(change.data)),
                    )
            self._put_meta(db, {"cursor": cursor})
        return applied

    def replica(self, entity: str) -> dict[str, Any]:
        rows = self._db.execute("SELECT id, data FROM replica WHERE entity = ?", (entity,))
        return {row[0]: json.loads(row[1]) for row in rows}

    def stock_qty(self, item_id: str, location_id: str) -> int | None:
        """The replica's stock of `item_id` at `location_id`; None when it holds no such row."""
        row = self._db.execute(
            "SELECT data FROM replica WHERE entity = 'stock' AND id = ?",
            (f"{item_id}:{location_id}",),
        ).fetchone()
        if row is None:
            return None
        qty = json.loads(row[0]).get("qty") if row[0] else None
        return qty if isinstance(qty, int) and not isinstance(qty, bool) else None

    def replica_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT entity, COUNT(*) FROM replica GROUP BY entity ORDER BY 1")
        return {row[0]: row[1] for row in rows}


def _checked(
    type: Any,
    payload: Any,
    client_temp_id: Any,
    group: Any,
    base_version: Any,
) -> str:
    """Validate an op before recording it; return its payload as JSON."""
    if not isinstance(type, str) or not OP_TYPE.match(type):
        raise OutboxError(f"op type must look like 'item.create', not {type!r}")
    if not isinstance(payload, Mapping):
        raise OutboxError("the payload must be a JSON object")
    try:
        payload_json = _dumps(dict(payload))
    except (TypeError, ValueError) as error:
        raise OutboxError(f"the payload is not JSON: {error}") from error
    if client_temp_id is not None and (
        not isinstance(client_temp_id, str) or not client_temp_id.strip()
    ):
        raise OutboxError("a client temp id must be a non-blank string")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        raise OutboxError("a group must be a non-blank string")
    if base_version is not None and (
        isinstance(base_version, bool) or not isinstance(base_version, int)
    ):
        raise OutboxError("base_version must be an integer")
    return payload_json
