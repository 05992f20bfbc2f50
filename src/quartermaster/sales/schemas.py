"""Wire schemas for sales. Strict: a boolean is not an integer, money is a decimal string."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from quartermaster.core.schemas import INT63_MAX


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    phone: StrictStr = ""
    client_temp_id: StrictStr = ""
    # A party user who signs in as this customer (admins only).
    user: UUID | None = None


class CustomerOut(BaseModel):
    id: UUID
    number: str
    name: str
    phone: str
    site: UUID
    client_temp_id: str | None
    created_at: str
    version: int
    user: UUID | None


class CustomerPageOut(BaseModel):
    results: list[CustomerOut]
    next_cursor: str | None


class CustomerPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = None
    phone: StrictStr | None = None
    # Link the party user who signs in as this customer (admins only).
    user: UUID | None = None
    base_version: StrictInt | None = Field(default=None, ge=0, le=INT63_MAX)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None


class SaleLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    qty: StrictInt
    unit_price: StrictStr | None = None
    serials: list[StrictStr] = Field(default_factory=list)


class SaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: UUID
    location: UUID
    lines: list[SaleLineIn]
    confirm: StrictBool = False
    client_temp_id: StrictStr = ""


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: StrictStr


class InvoiceLineOut(BaseModel):
    line: int
    kind: str
    item: UUID
    description: str
    qty: int
    unit_price: str
    net: str
    tax_rate_bp: int
    tax: str
    total: str


class InvoiceOut(BaseModel):
    id: UUID
    number: str
    transaction: UUID
    customer: UUID
    lines: list[InvoiceLineOut]
    subtotal: str
    tax: str
    deposit: str
    total: str
    created_at: str


class InvoiceDetailOut(InvoiceOut):
    """GET /invoices/{id}: with whether it left the building by e-mail."""

    email_status: Literal["generated", "emailed"]
    emailed_at: str | None


class InvoiceEmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: StrictStr | None = Field(default=None, max_length=254)
    lang: Literal["en", "ta"] = "en"


class InvoiceEmailOut(BaseModel):
    status: Literal["queued"]
    invoice: UUID
    to: str
    notification: UUID | None
    email_status: str


class CreditNoteOut(BaseModel):
    id: UUID
    number: str
    kind: str
    customer: UUID
    invoice: UUID | None
    movement: UUID | None
    reason: str
    lines: list[dict[str, Any]]
    total: str
    created_at: str


class SaleLineOut(BaseModel):
    line: int
    item: UUID
    qty: int
    unit_price: str
    serials: list[str]


class SaleOut(BaseModel):
    id: UUID
    number: str
    status: str
    customer: UUID
    location: UUID
    lines: list[SaleLineOut]
    invoice: InvoiceOut | None
    credit_note: CreditNoteOut | None
    movement: UUID | None
    reversal: UUID | None
    void_reason: str | None
    client_temp_id: str | None
    created_by: str
    created_at: str
    confirmed_at: str | None
    voided_at: str | None
    version: int


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    serials: list[StrictStr]


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: UUID
    to_location: UUID
    lines: list[ReturnLineIn]
    client_temp_id: StrictStr = ""


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: UUID
    amount: StrictStr
    method: StrictStr
    client_temp_id: StrictStr = ""


class PaymentOut(BaseModel):
    id: UUID
    number: str
    customer: UUID
    amount: str
    method: str
    client_temp_id: str | None
    created_by: str
    created_at: str


class StatementEntryOut(BaseModel):
    type: str
    id: UUID
    number: str
    date: str
    debit: str
    credit: str
    balance: str


class StatementOut(BaseModel):
    customer: CustomerOut
    entries: list[StatementEntryOut]
    total_debit: str
    total_credit: str
    balance: str
