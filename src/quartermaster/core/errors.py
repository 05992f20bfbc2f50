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
