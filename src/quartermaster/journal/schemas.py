"""Wire schemas for the journal. Money is a decimal string of rupees ("1250.50")."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from quartermaster.core.references import WireModel


class LineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    account: StrictStr
    debit: StrictStr | None = None
    credit: StrictStr | None = None
    memo: StrictStr = ""


class EntryIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    memo: StrictStr
    # The engine's own limit (invariants.MAX_LINES) is checked again, with a field name.
    lines: list[LineIn] = Field(max_length=1000)


class ReverseIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    reason: StrictStr


class EntriesQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    account: str | None = None
    limit: int | None = None
    cursor: str | None = None


class AccountsQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None


class LineOut(BaseModel):
    account: str
    debit: str
    credit: str
    memo: str


class SourceOut(BaseModel):
    type: str
    id: str


class EntryOut(BaseModel):
    id: UUID
    number: str
    posted_at: str
    memo: str
    action: str
    posted_by: str
    source: SourceOut | None
    reverses: UUID | None
    total: str
    lines: list[LineOut]


class EntryPageOut(BaseModel):
    results: list[EntryOut]
    next_cursor: str | None


class AccountOut(BaseModel):
    id: UUID
    code: str
    name: str
    kind: str
    debit_total: str
    credit_total: str
    balance: str


class AccountPageOut(BaseModel):
    results: list[AccountOut]
    next_cursor: str | None
