"""Wire schemas for notifications."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core.references import WireModel


class NotificationsQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = None
    recipient: str | None = None
    limit: int | None = None
    cursor: str | None = None


class VerifyQuery(BaseModel):
    """Meta's subscription handshake: GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…"""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    mode: str = Field(default="", alias="hub.mode")
    verify_token: str = Field(default="", alias="hub.verify_token")
    challenge: str = Field(default="", alias="hub.challenge")


class NotificationOut(BaseModel):
    id: UUID
    channel: str
    template: str
    language: str
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    dedupe_key: str
    provider_message_id: str | None
    fallback_of: UUID | None
    created_at: str
    updated_at: str


class NotificationPageOut(BaseModel):
    results: list[NotificationOut]
    next_cursor: str | None


class WebhookOut(BaseModel):
    reports: int
    messages: int
