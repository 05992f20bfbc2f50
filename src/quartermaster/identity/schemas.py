"""Wire schemas for identity endpoints."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: StrictStr = Field(max_length=150)
    password: StrictStr = Field(max_length=1024)
    device_id: StrictStr | None = Field(default=None, max_length=200)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh: StrictStr = Field(max_length=4096)


class TokenPairOut(BaseModel):
    access: str
    refresh: str
    token_type: str
    expires_in: int


class MeOut(BaseModel):
    id: UUID
    username: str
    role: str
    locations: list[UUID]


class DeviceOut(BaseModel):
    device_id: str
    user_id: UUID
    username: str
    first_seen_at: str
    last_seen_at: str
    revoked_at: str | None
    # Heard from within QM_DEVICE_ONLINE_S (default 120 s): the device's heartbeat.
    online: bool


class DevicePageOut(BaseModel):
    results: list[DeviceOut]
    next_cursor: str | None


class DeviceListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None
