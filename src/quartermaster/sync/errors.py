"""Typed errors of batch sync. Their status codes carry the contract's meaning: a 4xx result is
final (the device drops the op), a 5xx result means "send it again later"."""

from __future__ import annotations

from typing import Any

from quartermaster.core.errors import DomainError


class BatchTooLarge(DomainError):
    status = 413
    code = "batch_too_large"


class UnknownOpType(DomainError):
    code = "unknown_op_type"

    def __init__(self, op_type: str) -> None:
        super().__init__(f"no sync op type {op_type!r}", fields={"type": "unknown op type"})


class TempIdReused(DomainError):
    status = 409
    code = "temp_id_reused"

    def __init__(self, temp_id: str, op_id: str) -> None:
        super().__init__(
            f"client_temp_id {temp_id!r} already names what op {op_id!r} created",
            fields={"client_temp_id": "already used by another op"},
        )


class _Linked(DomainError):
    """An op that was not run because of another op; the body names that op."""

    def __init__(self, message: str, *, failed_op_id: str, **extra: str) -> None:
        super().__init__(message)
        self.extra = {"failed_op_id": failed_op_id, **extra}

    def body(self) -> dict[str, Any]:
        return {**super().body(), **self.extra}


class DependencyFailed(_Linked):
    """The op names a temp id whose creating op was rejected for good."""

    status = 424
    code = "dependency_failed"


class DependencyNotApplied(_Linked):
    """The op names a temp id whose creating op failed in a retryable way: retry both later."""

    status = 503
    code = "dependency_not_applied"


class GroupFailed(_Linked):
    """Another op of the group was rejected for good: the whole group is final, nothing applied."""

    status = 424
    code = "group_failed"


class GroupNotApplied(_Linked):
    """Another op of the group failed in a retryable way: nothing applied, retry the group."""

    status = 503
    code = "group_not_applied"


class OpInFlight(DomainError):
    """The same op id is being applied by a concurrent request: its outcome is not known yet."""

    status = 503
    code = "op_in_flight"

    def __init__(self) -> None:
        super().__init__("this op is being applied by another request; send it again")


class ServerError(DomainError):
    status = 500
    code = "server_error"

    def __init__(self) -> None:
        super().__init__("internal server error")
