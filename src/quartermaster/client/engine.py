"""The sync loop: push the outbox in batches, pull the change feed into the replica, back off.

Push sends pending ops in `device_seq` order, at most 100 a batch, a group never split. Each op
result with a 2xx or 4xx status is final (the op is closed, the answer kept); a 5xx result, a
transport failure or an unreadable answer leaves the op pending for the next round, and the op
goes again with the same `op_id`, so the server answers a replay instead of applying it twice.
Pull reads `GET /api/v1/sync/changes?since=cursor` page by page; each page and the new cursor are
stored in one transaction, so a crash between pages re-reads at most one page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from quartermaster.client.backoff import Backoff
from quartermaster.client.photos import PhotoUploader
from quartermaster.client.session import (
    NeedsAttention,
    RetryLater,
    Session,
    error_text,
    retry_after_of,
)
from quartermaster.client.store import Change, DeviceStore, Op, Outcome, iso

MAX_BATCH_OPS = 100
PAGE_LIMIT = 500
BATCH_PATH = "/api/v1/sync/batch"
CHANGES_PATH = "/api/v1/sync/changes"


REUSED_KEY = "idempotency_key_reused"


def is_final(status: int, body: Any, *, heard_before: Any = None) -> bool:
    """API.md: a 2xx or 4xx op result is final; only 5xx means "retry later".

    Some 4xx answers say "not processed yet" rather than "processed", and are retried: an op id
    still in flight elsewhere (409 idempotency_key_in_flight) and 429. One is suspect: 422
    idempotency_key_reused says the op id came before with another payload, which a device never
    does (op ids are minted per op and the outbox never edits a payload), so it can only come
    from a server race between two copies of the same op. The op is sent once more to get the
    recorded answer; if the server says 422 again (`heard_before` is the body of the op's last
    answer), that stands, so the queue moves on.
    """
    code = _code(body)
    if status == 429:
        return False
    if status == 409 and code == "idempotency_key_in_flight":
        return False
    if status == 422 and code == REUSED_KEY:
        return _code(heard_before) == REUSED_KEY
    return 200 <= status < 500


def _code(body: Any) -> Any:
    return body.get("code") if isinstance(body, dict) else None


@dataclass
class SyncReport:
    pushed: int = 0
    accepted: int = 0
    rejected: int = 0
    conflicts: int = 0
    retry_later: int = 0
    replayed: int = 0
    pulled: int = 0
    photos: int = 0
    photos_refused: int = 0
    batches: int = 0
    cursor: str | None = None
    pending: int = 0
    error: str | None = None
    needs_attention: bool = False
    retry_after_s: float | None = None
    rejected_ops: list[Op] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Everything recorded so far is closed and the replica is caught up."""
        return self.error is None and self.pending == 0

    def add(self, other: SyncReport) -> None:
        for name in (
            "pushed",
            "accepted",
            "rejected",
            "conflicts",
            "retry_later",
            "replayed",
            "pulled",
            "photos",
            "photos_refused",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.batches += other.batches
        self.rejected_ops.extend(other.rejected_ops)
        self.cursor, self.pending, self.error = other.cursor, other.pending, other.error
        self.needs_attention, self.retry_after_s = other.needs_attention, other.retry_after_s

    def summary(self) -> str:
        return (
            f"pushed {self.pushed} ops: {self.accepted} accepted, {self.rejected} rejected "
            f"({self.conflicts} conflicts), {self.retry_later} to retry; "
            f"pulled {self.pulled} changes; {self.pending} pending"
            + (f"; {self.photos} photos uploaded" if self.photos else "")
            + (f", {self.photos_refused} refused" if self.photos_refused else "")
        )


class SyncEngine:
    def __init__(
        self,
        store: DeviceStore,
        session: Session,
        *,
        batch_size: int = MAX_BATCH_OPS,
        page_limit: int = PAGE_LIMIT,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] = lambda message: None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_OPS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_OPS}")
        self.store = store
        self.session = session
        self.batch_size = batch_size
        self.page_limit = page_limit
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.progress = progress
        self._whole_refusals = 0  # batches refused as a whole (400/422) that held one unit

    # --- one round -------------------------------------------------------------------------------

    def sync_once(self) -> SyncReport:
        """Push everything pending (stopping at the first batch that must be retried), then
        pull the feed. Never raises for server or network trouble: the report says."""
        report = SyncReport()
        try:
            self.push(report)
        except RetryLater as error:
            report.error, report.retry_after_s = str(error), error.retry_after_s
        except NeedsAttention as error:
            report.error, report.needs_attention = str(error), True
        if not report.needs_attention:
            try:
                self.pull(report)
            except RetryLater as error:
                report.error = report.error or str(error)
                report.retry_after_s = report.retry_after_s or error.retry_after_s
            except NeedsAttention as error:
                report.error, report.needs_attention = str(error), True
        report.pending = self.store.counts()["pending"]
        report.cursor = self.store.cursor
        self.store.set_meta(
            {
                "last_sync_at": iso(self.store.now()),
                "last_sync_result": "ok" if report.complete else (report.error or "pending"),
            }
        )
        return report

    def sync(self, *, max_rounds: int | None = None) -> SyncReport:
        """Rounds with exponential backoff and jitter between failed ones, until everything is
        pushed and pulled, a person must act, or `max_rounds` rounds have run."""
        total = SyncReport()
        failures = 0
        rounds = 0
        while True:
            report = self.sync_once()
            rounds += 1
            total.add(report)
            if report.complete or report.needs_attention:
                return total
            if max_rounds is not None and rounds >= max_rounds:
                return total
            if report.error is None:
                failures = 0  # progress without failure (ops recorded meanwhile): go on
                continue
            delay = self.backoff.delay_s(failures)
            if report.retry_after_s is not None:
                delay = max(delay, report.retry_after_s)
            failures += 1
            self.progress(f"{report.error}; retrying in {delay:.1f} s (attempt {failures})")
            self.sleep(delay)

    # --- push ------------------------------------------------------------------------------------

    def push(self, report: SyncReport) -> None:
        # Photos first: an op that attaches one names a media id the server must have
        # confirmed. One that cannot go now stops the round (RetryLater): nothing is lost.
        confirmed, refused = PhotoUploader(self.store, self.session).upload_all()
        report.photos += confirmed
        report.photos_refused += refused
        batch_size = self.batch_size
        while True:
            batch = self.store.next_batch(batch_size)
            if not batch:
                return
            outcomes = self._send_batch(batch)
            if outcomes is None:  # 413: the server wants smaller batches
                if batch_size == 1:
                    raise NeedsAttention("the server refuses even a one-op batch (413)")
                batch_size = max(1, batch_size // 2)
                continue
            self._save(batch, outcomes, report)
            if any(not outcome.final for outcome in outcomes):
                raise RetryLater(f"{report.retry_later} ops must be retried later")

    def _send_batch(self, batch: list[Op]) -> list[Outcome] | None:
        try:
            response = self.session.request("POST", BATCH_PATH, json=self._batch_body(batch))
        except RetryLater as error:
            # Sent or not, applied or not: unknown. The same op ids go again; the server replays.
            self.store.note_attempt([op.op_id for op in batch], str(error))
            raise
        status = response.status_code
        if status in (200, 207):
            return self._outcomes(batch, response)
        if status == 413:
            return None
        if status in (400, 422):
            # The server refused the batch as a whole, applying nothing. Send the ops one unit
            # (an op, or a whole group) at a time, so one bad op cannot block those behind it.
            return self._send_units(batch, response)
        if status == 429 or status >= 500:
            self.store.note_attempt([op.op_id for op in batch], error_text(response))
            raise RetryLater(
                f"batch not taken: {error_text(response)}", retry_after_s=retry_after_of(response)
            )
        if status == 404:
            raise NeedsAttention(f"this server has no {BATCH_PATH} ({error_text(response)})")
        raise NeedsAttention(f"batch refused: {error_text(response)}")

    def _batch_body(self, batch: list[Op]) -> dict[str, Any]:
        return {"device_id": self.session.device_id, "ops": [op.wire() for op in batch]}

    def _send_units(self, batch: list[Op], refusal: httpx.Response) -> list[Outcome]:
        units: list[list[Op]] = []
        for op in batch:
            if units and op.group is not None and units[-1][-1].group == op.group:
                units[-1].append(op)
            else:
                units.append([op])
        if len(units) == 1:
            self._whole_refusals += 1
            body = _json_or_text(refusal)
            return [Outcome(op.op_id, refusal.status_code, body, {}, final=True) for op in units[0]]
        outcomes: list[Outcome] = []
        refused_units = 0
        for index, unit in enumerate(units):
            refusals_before = self._whole_refusals
            try:
                unit_outcomes = self._send_batch(unit)
            except RetryLater:
                unit_outcomes = []
            if unit_outcomes is None:
                raise NeedsAttention("the server refuses a single op or group as too large (413)")
            refused_units += self._whole_refusals > refusals_before
            outcomes.extend(unit_outcomes)
            if not unit_outcomes or any(not outcome.final for outcome in unit_outcomes):
                # Keep what is known; the rest goes again next round.
                outcomes.extend(
                    Outcome(op.op_id, 0, None, {}, final=False)
                    for rest in units[index + (1 if unit_outcomes else 0) :]
                    for op in rest
                )
                break
        if refused_units == len(units):
            # Every op refused on its own as malformed: not these ops but this client speaks
            # wrongly to this server (a version mismatch). Closing them all would empty the
            # outbox into `rejected`; leave them pending for a person to look at.
            raise NeedsAttention(
                f"the server refuses every op as malformed ({error_text(refusal)}); nothing "
                "was closed - is this client older or newer than the server?"
            )
        return outcomes

    def _outcomes(self, batch: list[Op], response: httpx.Response) -> list[Outcome]:
        try:
            results = response.json()["results"]
            by_op = {str(result["op_id"]): result for result in results}
        except (ValueError, KeyError, TypeError) as error:
            self.store.note_attempt([op.op_id for op in batch], "unreadable batch answer")
            raise RetryLater("unreadable batch answer") from error
        outcomes = []
        for op in batch:
            result = by_op.get(op.op_id)
            if not isinstance(result, dict) or not isinstance(result.get("status"), int):
                # No answer for this op: it goes again, and a replay is harmless.
                outcomes.append(Outcome(op.op_id, 0, None, {}, final=False))
                continue
            status, body = result["status"], result.get("body")
            id_map = result.get("id_map") or {}
            outcomes.append(
                Outcome(
                    op.op_id,
                    status,
                    body,
                    dict(id_map),
                    final=is_final(status, body, heard_before=op.body),
                    replayed=result.get("replayed") is True,
                )
            )
        return outcomes

    def _save(self, batch: list[Op], outcomes: list[Outcome], report: SyncReport) -> None:
        self.store.save_outcomes(outcomes)
        by_op = {op.op_id: op for op in batch}
        report.batches += 1
        report.pushed += len(outcomes)
        for outcome in outcomes:
            report.replayed += outcome.replayed
            if not outcome.final:
                report.retry_later += 1
            elif outcome.status < 300:
                report.accepted += 1
            else:
                report.rejected += 1
                report.conflicts += outcome.status == 409
                closed = self.store.get_op(outcome.op_id)
                report.rejected_ops.append(closed or by_op[outcome.op_id])
        accepted = sum(1 for o in outcomes if o.final and o.status < 300)
        rejected = sum(1 for o in outcomes if o.final and o.status >= 300)
        retry = len(outcomes) - accepted - rejected
        self.progress(
            f"pushed {len(outcomes)} ops (#{batch[0].device_seq}-#{batch[-1].device_seq}): "
            f"{accepted} accepted, {rejected} rejected, {retry} to retry"
        )

    # --- pull ------------------------------------------------------------------------------------

    def pull(self, report: SyncReport) -> None:
        while True:
            params: dict[str, Any] = {"limit": self.page_limit}
            cursor = self.store.cursor
            if cursor is not None:
                params["since"] = cursor
            response = self.session.request("GET", CHANGES_PATH, params=params)
            if response.status_code == 429 or response.status_code >= 500:
                raise RetryLater(
                    f"change feed: {error_text(response)}", retry_after_s=retry_after_of(response)
                )
            if response.status_code != 200:
                raise NeedsAttention(f"change feed refused: {error_text(response)}")
            try:
                page = response.json()
                changes = [_change(entry) for entry in page["changes"]]
                next_cursor = str(page["cursor"])
                has_more = bool(page.get("has_more"))
            except (ValueError, KeyError, TypeError) as error:
                raise RetryLater("unreadable change feed page") from error
            applied = self.store.apply_changes(changes, next_cursor)
            report.pulled += applied
            if applied:
                self.progress(f"pulled {applied} changes (cursor {next_cursor})")
            if not has_more or next_cursor == cursor:
                return


def _change(entry: dict[str, Any]) -> Change:
    return Change(
        seq=int(entry["seq"]),
        entity=str(entry["entity"]),
        id=str(entry["id"]),
        op=str(entry["op"]),
        version=entry.get("version"),
        data=entry.get("data"),
    )


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"error": response.text[:500], "code": f"http_{response.status_code}"}
