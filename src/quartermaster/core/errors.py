"""Typed domain errors with stable codes. `core.http` turns them into HTTP in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.fields:
            body["fields"] = self.fields
        return body


class Invalid(DomainError):
    """Bad input or a broken invariant: nothing changes."""

    status = 400
    code = "invalid"

    @classmethod
    def field(cls, name: str, message: str) -> Invalid:
        return cls(message, fields={name: message})

    @classmethod
    def from_errors(cls, errors: list[Any]) -> Invalid:
        """A payload's validation errors (pydantic's `errors()`) → one refusal naming each field.
        One bad field reads as `field` does, so a value refused while a command is built answers
        exactly as one refused by its invariants."""
        fields: dict[str, str] = {}
        for error in errors:
            name = ".".join(_path_part(part) for part in error.get("loc", ())).replace(".[", "[")
            fields.setdefault(name or "payload", str(error.get("msg", "invalid")))
        if len(fields) == 1:
            [(name, message)] = fields.items()
            return cls.field(name, message)
        return cls(
            "invalid payload: " + "; ".join(f"{k}: {v}" for k, v in fields.items()), fields=fields
        )


def _path_part(part: Any) -> str:
    return f"[{part}]" if isinstance(part, int) else str(part)


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"


class NotFound(DomainError):
    status = 404
    code = "not_found"

    def __init__(self, message: str = "not_found") -> None:
        super().__init__(message)


class UnsupportedMediaType(DomainError):
    """A body that is not JSON: every endpoint takes JSON only (UTF-8, RFC 8259)."""

    status = 415
    code = "unsupported_media_type"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InsufficientStock(Conflict):
    code = "insufficient_stock"

    def __init__(self, message: str = "insufficient stock", *, line: int | None = None) -> None:
        super().__init__(message, fields={f"lines[{line}]": message} if line is not None else None)
        self.line = line


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed")


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request")


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many requests")
        self.retry_after_s = retry_after_s


class Failover(DomainError):
    """The database went away under the request (a failover, a restart): nothing was applied
    that the client could not replay with the same key; retry after `retry_after_s`."""

    status = 503
    code = "failover"

    def __init__(self, retry_after_s: int = 2) -> None:
        super().__init__("the database is failing over: retry shortly")
        self.retry_after_s = retry_after_s


class SharedStateUnavailable(DomainError):
    """The store every process shares (Redis: rate limits, lockouts, sessions' cache) did not
    answer: nothing was applied; retry after `retry_after_s`. Failing closed keeps a lockout a
    lockout while Redis restarts."""

    status = 503
    code = "unavailable"

    def __init__(self, retry_after_s: int = 2) -> None:
        super().__init__("the shared cache is unreachable: retry shortly")
        self.retry_after_s = retry_after_s


class NotPrimary(DomainError):
    """This process reaches only a standby: it serves reads; a write must wait for a primary
    (or go to another server whose /health says role primary)."""

    status = 503
    code = "not_primary"

    def __init__(self, retry_after_s: int = 2) -> None:
        super().__init__("this server reaches only a standby database: writes are refused")
        self.retry_after_s = retry_after_s
