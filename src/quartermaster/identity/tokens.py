"""JWT access and refresh tokens: HS256 only, typed, expiring. Decoding never trusts the header's
`alg`, so `alg: none` and tokens signed with another key are refused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings

from quartermaster.core.errors import NotAuthenticated

ALGORITHM = "HS256"
ISSUER = "quartermaster"


@dataclass(frozen=True)
class Claims:
    user_id: uuid.UUID
    token_type: str
    jti: uuid.UUID
    # The session: the refresh-token family both kinds of token belong to. An access token is
    # checked against it on every request, so logout and revocation end it at once.
    family: uuid.UUID | None
    device_id: str
    expires_at: float  # seconds since the epoch


def _encode(payload: dict[str, object]) -> str:
    return jwt.encode(payload, settings.JWT_KEY, algorithm=ALGORITHM)


def issue_access(*, user_id: uuid.UUID, family: uuid.UUID, device_id: str, now: datetime) -> str:
    return _encode(
        {
            "iss": ISSUER,
            "sub": str(user_id),
            "typ": "access",
            "jti": str(uuid.uuid4()),
            "fam": str(family),
            "dev": device_id,
            "iat": now,
            "exp": now + timedelta(seconds=settings.ACCESS_TOKEN_TTL_S),
        }
    )


def issue_refresh(
    *, user_id: uuid.UUID, jti: uuid.UUID, family: uuid.UUID, device_id: str, now: datetime
) -> str:
    return _encode(
        {
            "iss": ISSUER,
            "sub": str(user_id),
            "typ": "refresh",
            "jti": str(jti),
            "fam": str(family),
            "dev": device_id,
            "iat": now,
            "exp": now + timedelta(seconds=settings.REFRESH_TOKEN_TTL_S),
        }
    )


def decode(token: str, *, expected_type: str) -> Claims:
    try:
        payload = jwt.decode(
            token,
            settings.JWT_KEY,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # Every token names its session: one without (issued before sessions were checked
            # per request) is refused, and the client refreshes.
            options={"require": ["exp", "iat", "sub", "typ", "jti", "fam"]},
        )
        if payload["typ"] != expected_type:
            raise NotAuthenticated(f"not an {expected_type} token")
        return Claims(
            user_id=uuid.UUID(payload["sub"]),
            token_type=payload["typ"],
            jti=uuid.UUID(payload["jti"]),
            family=uuid.UUID(payload["fam"]),
            device_id=str(payload.get("dev") or ""),
            expires_at=float(payload["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise NotAuthenticated("invalid or expired token") from exc
