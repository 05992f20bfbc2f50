"""Wire schemas for media. Strict: a boolean is not a size."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from quartermaster.core.references import WireModel
from quartermaster.core.schemas import INT63_MAX


class UploadIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    content_type: StrictStr = Field(max_length=100)
    size: StrictInt = Field(ge=1, le=INT63_MAX)
    sha256: StrictStr = Field(max_length=64)
    # Minted by the device (optional): asking again with it after a crash names the same asset.
    id: UUID | None = None


class UploadTargetOut(BaseModel):
    method: str
    url: str
    fields: dict[str, str] | None = None
    headers: dict[str, str] | None = None


class UploadOut(BaseModel):
    id: UUID
    status: str
    upload: UploadTargetOut
    expires_at: str


class MediaOut(BaseModel):
    id: UUID
    status: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    urls_expire_at: str | None = None


def upload_out(view: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": view["id"],
        "status": view["status"],
        "upload": target,
        "expires_at": view["expires_at"],
    }
