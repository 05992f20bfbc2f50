"""Wire schemas for sales. Strict: a boolean is not an integer, money is a decimal string."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from quartermaster.core.references import WireModel
from quartermaster.core.schemas import INT63_MAX


class CustomerIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    phone: StrictStr = ""
    # Where its invoices are e-mailed when a request names no address.
    email: StrictStr = ""
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
    payment_terms: str
    credit_limit: str | None
    meter_installed: bool
    meter_rate: str
    email: str | None


class CustomerPageOut(BaseModel):
    results: list[CustomerOut]
    next_cursor: str | None


class CustomerPatchIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = None
    phone: StrictStr | None = None
    # "" clears it.
    email: StrictStr | None = None
    # Link the party user who signs in as this customer (admins only).
    user: UUID | None = None
    # How the customer pays and is billed (managers): "cash" or "credit", the credit limit,
    # and a meter with its rate per unit.
    payment_terms: StrictStr | None = None
    credit_limit: StrictStr | None = None
    meter_installed: StrictBool | None = None
    meter_rate: StrictStr | None = None
    base_version: StrictInt | None = Field(default=None, ge=0, le=INT63_MAX)


class PageQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None


class SaleLineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    # Left out on a metered line: the server bills the units used since the last reading.
    qty: StrictInt = 0
    unit_price: StrictStr | None = None
    serials: list[StrictStr] = Field(default_factory=list)
    meter_reading: StrictInt | None = None
    # Returnable items: "exchange" (the customer's empty back, no deposit), "new" (a deposit
    # charged) or "sale" (outright, the default).
    mode: StrictStr = "sale"
    # A serialized exchange: the serials of the empties taken back, one per unit.
    returned_serials: list[StrictStr] = Field(default_factory=list)


class SalePaymentIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    method: StrictStr
    # Absent: what the invoice still owes after the customer's credit.
    amount: StrictStr | None = None


class SaleIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    customer: UUID
    location: UUID
    lines: list[SaleLineIn]
    confirm: StrictBool = False
    client_temp_id: StrictStr = ""
    payment: SalePaymentIn | None = None


class ConfirmIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    payment: SalePaymentIn | None = None


class VoidIn(WireModel):
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
    # Read with the invoice itself (GET /invoices/{id}); absent inside a sale.
    amount_paid: str | None = None
    payment_status: str | None = None


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
    meter_reading: int | None = None
    mode: str | None = None
    returned_serials: list[str] | None = None


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
    payment: PaymentOut | None = None


class ReturnLineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    # A serialized item by serial; a bulk returnable item by qty.
    qty: StrictInt | None = None
    serials: list[StrictStr] = Field(default_factory=list)


class ReturnIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    customer: UUID
    # Where the empties come back to (API.md names it `location`; `to_location` as before).
    location: UUID | None = None
    to_location: UUID | None = None
    lines: list[ReturnLineIn]
    # How the deposits are paid back: "cash" (out of the till) or "credit" (to the account).
    refund: StrictStr = "credit"
    client_temp_id: StrictStr = ""


class AllocationIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    invoice: UUID
    amount: StrictStr


class DepositLineOut(BaseModel):
    item: UUID
    qty: int
    amount: str


class DepositsOut(BaseModel):
    customer: UUID
    balance: str
    lines: list[DepositLineOut]


class PaymentIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    customer: UUID
    amount: StrictStr
    method: StrictStr
    allocations: list[AllocationIn] = Field(default_factory=list)
    client_temp_id: StrictStr = ""


class AllocationOut(BaseModel):
    id: UUID
    customer: UUID
    invoice: UUID
    payment: UUID | None
    amount: str
    created_at: str


class PaymentOut(BaseModel):
    id: UUID
    number: str
    customer: UUID
    amount: str
    method: str
    client_temp_id: str | None
    created_by: str
    created_at: str
    allocations: list[AllocationOut] = Field(default_factory=list)
    # What was left after the allocations: the customer's credit.
    unallocated: str | None = None


class RefundIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    customer: UUID
    amount: StrictStr
    method: StrictStr
    client_temp_id: StrictStr = ""


class RefundOut(BaseModel):
    id: UUID
    number: str
    customer: UUID
    amount: str
    method: str
    client_temp_id: str | None
    created_by: str
    created_at: str


class MeterReadingIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    reading: StrictInt
    replaced: StrictBool = False


class MeterReadingOut(BaseModel):
    id: str
    customer: UUID
    reading: int
    previous: int | None
    replaced: bool
    sale: UUID | None
    recorded_by: str
    recorded_at: str


class StatementEntryOut(BaseModel):
    type: str
    id: UUID
    number: str
    date: str
    debit: str
    credit: str
    balance: str


class OpenItemOut(BaseModel):
    invoice: UUID
    number: str
    date: str
    age_days: int
    total: str
    amount_paid: str
    open: str


class AgingOut(BaseModel):
    # The open amounts by the invoices' age in whole days.
    model_config = ConfigDict(populate_by_name=True)
    days_0_30: str = Field(alias="0_30")
    days_31_60: str = Field(alias="31_60")
    days_61_90: str = Field(alias="61_90")
    days_90_plus: str = Field(alias="90_plus")


class StatementOut(BaseModel):
    customer: CustomerOut
    entries: list[StatementEntryOut]
    total_debit: str
    total_credit: str
    balance: str
    open_items: list[OpenItemOut]
    aging: AgingOut
    # Money received or credited and not yet applied to an invoice (refundable).
    credit: str


SaleOut.model_rebuild()
