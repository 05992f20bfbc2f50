"""Wire schemas for identity endpoints."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from quartermaster.core.references import WireModel


class LoginIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    username: StrictStr = Field(max_length=150)
    password: StrictStr = Field(max_length=1024)
    device_id: StrictStr | None = Field(default=None, max_length=200)


class RefreshIn(WireModel):
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


class DeviceListQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None


class UserOut(BaseModel):
    id: UUID
    username: str
    role: str
    locations: list[UUID]
    is_active: bool
    # The customer / farmer record this (party) user signs in as, if any.
    customer: UUID | None
    farmer: UUID | None
    joined_at: str | None
    last_login: str | None


class UserPageOut(BaseModel):
    results: list[UserOut]
    next_cursor: str | None


class UserListQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None
    role: StrictStr | None = Field(default=None, max_length=20)
    is_active: bool | None = None


MAX_LOCATIONS_PER_USER = 1000


class UserCreateIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    username: StrictStr = Field(max_length=150)
    password: StrictStr = Field(max_length=1024)
    role: StrictStr = Field(max_length=20)
    locations: list[UUID] = Field(default_factory=list, max_length=MAX_LOCATIONS_PER_USER)
    is_active: StrictBool = True
    customer: UUID | None = None
    farmer: UUID | None = None


class UserPatchIn(WireModel):
    """Only the fields given change. `password`: an admin's reset (every session ends)."""

    model_config = ConfigDict(extra="forbid")
    role: StrictStr | None = Field(default=None, max_length=20)
    locations: list[UUID] | None = Field(default=None, max_length=MAX_LOCATIONS_PER_USER)
    is_active: StrictBool | None = None
    password: StrictStr | None = Field(default=None, max_length=1024)
    customer: UUID | None = None
    farmer: UUID | None = None


class PasswordChangeIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    old_password: StrictStr = Field(max_length=1024)
    new_password: StrictStr = Field(max_length=1024)


class SignUpIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    username: StrictStr = Field(max_length=150)
    password: StrictStr = Field(max_length=1024)
