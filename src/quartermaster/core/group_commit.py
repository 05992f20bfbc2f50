"""Group commit: the commands a process runs concurrently commit together.

One thread at a time holds the process's writer baton. A command arriving while the baton is
free takes it and runs at once, alone (no waiting window, so a lone request is not slowed). A
command arriving while it is held waits in a queue; when the holder finishes, the baton passes to
the oldest waiter, which runs every command then queued as one batch: one transaction, one
chain-head lock, bulk statements where the handler has them (`commands.run_together`), each
command still answered exactly as if it had run alone. Work that is not one command (a sync
batch, which runs its own transactions) takes the baton for itself (`exclusive`), so the writes
of a process never contend with each other for the database.

On SQLite the baton also takes a lock file beside the database (`flock`), so the writers of
several processes queue on the operating system, which wakes the next at once, instead of
polling SQLite's busy handler (which sleeps up to 100 ms a try: the 3 s p99 of issue 9).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.db import connection

T = TypeVar("T")
Result = TypeVar("Result")


@dataclass(eq=False)
class _Waiter(Generic[T]):
    """A queued request: a command to run in a batch (`item`), or None for exclusive work."""

    item: T | None
    woken: threading.Event = field(default_factory=threading.Event)
    leads: bool = False  # set on the waiter chosen to lead the next batch
    result: object = None
    error: BaseException | None = None


class Baton(Generic[T, Result]):
    """The writer baton of one process, batching the items `run_batch` takes.

    `run_batch(items)` returns one result per item; an exception it raises is raised in every
    thread of the batch."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[Result]],
        before_waiting: Callable[[], None] = lambda: None,
    ) -> None:
        self._run_batch = run_batch
        self._before_waiting = before_waiting
        self._mutex = threading.Lock()
        self._queue: list[_Waiter[T]] = []
        self._held = False
        self._holder: int | None = None

    def holds(self) -> bool:
        return self._holder == threading.get_ident()

    def queued(self) -> int:
        """How many requests wait for the baton (for tests and metrics)."""
        with self._mutex:
            return len(self._queue)

    def submit(self, item: T) -> Result:
        """Run `item`, in a batch with whatever else is queued when its turn comes."""
        waiter: _Waiter[T] = _Waiter(item)
        if self._wait_for_turn(waiter):
            self._lead(waiter)
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the baton for a block of work of the caller's own (re-entrant)."""
        if self.holds():
            yield
            return
        self._wait_for_turn(_Waiter(None))
        self._holder = threading.get_ident()
        try:
            with _writer_lock():
                yield
        finally:
            self._holder = None
            self._pass_on()

    def _wait_for_turn(self, waiter: _Waiter[T]) -> bool:
        """Block until `waiter` leads (True) or was answered in another's batch (False)."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            self._queue.append(waiter)
        self._before_waiting()
        waiter.woken.wait()
        return waiter.leads

    def _lead(self, first: _Waiter[T]) -> None:
        """Run `first` with every command queued by the time the writer lock is ours: the
        batch is formed after the wait for the lock, so what arrived meanwhile joins it."""
        self._holder = threading.get_ident()
        batch = [first]
        try:
            with _writer_lock():
                batch += self._take_queued_commands()
                results = self._run_batch([waiter.item for waiter in batch])  # type: ignore[misc]
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
        except BaseException as error:
            for waiter in batch:
                waiter.error = error
        finally:
            self._holder = None
            for waiter in batch[1:]:
                waiter.woken.set()
            self._pass_on()

    def _take_queued_commands(self) -> list[_Waiter[T]]:
        with self._mutex:
            end = next(
                (i for i, waiter in enumerate(self._queue) if waiter.item is None),
                len(self._queue),
            )
            taken = self._queue[:end]
            del self._queue[:end]
        return taken

    def _pass_on(self) -> None:
        """Give the baton to the oldest waiter, or free it."""
        with self._mutex:
            if not self._queue:
                self._held = False
                return
            head = self._queue.pop(0)
        head.leads = True
        head.woken.set()


# One lock file a process keeps open, per SQLite database file.
_lock_files: dict[str, int] = {}
_lock_files_mutex = threading.Lock()


@contextmanager
def _writer_lock() -> Iterator[None]:
    """On a SQLite database file: an exclusive `flock` beside it, across processes."""
    path = _sqlite_file()
    if path is None:
        yield
        return
    with _lock_files_mutex:
        descriptor = _lock_files.get(path)
        if descriptor is None:
            descriptor = os.open(path + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
            _lock_files[path] = descriptor
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


def _sqlite_file() -> str | None:
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict["NAME"])
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return name
