"""What a document shows, as typed values a domain builds from its own records.

Money is integer minor units (paise); quantities are the wire's decimal strings with their unit;
names of people and flowers come in both scripts, and a document shows the one of its language
beside the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

LANGUAGES = ("en", "ta")


@dataclass(frozen=True)
class Name:
    """A name in English (Latin script) and Tamil; `ta` is "" when none was recorded."""

    en: str
    ta: str = ""

    def first_in(self, language: str) -> str:
        """The name in `language`'s script, or the other when it has none."""
        return (self.ta or self.en) if language == "ta" else (self.en or self.ta)

    def second_in(self, language: str) -> str:
        """The other script's name, "" when it is the same or missing."""
        other = self.en if language == "ta" else self.ta
        return "" if other == self.first_in(language) else other


@dataclass(frozen=True)
class Quantity:
    """`amount` as on the wire ("12.500" for kg, "40" for pieces) and its unit code."""

    amount: str
    unit: str  # kg | piece | bundle | unit


@dataclass(frozen=True)
class InvoiceLine:
    line: int
    kind: str  # goods | deposit
    description: str
    qty: int
    unit_price_minor: int
    net_minor: int
    tax_rate_bp: int
    tax_minor: int
    total_minor: int


@dataclass(frozen=True)
class MeterReading:
    """A metered customer's reading billed on an invoice: (current - previous) x rate."""

    previous: int
    current: int
    rate_minor: int
    # The meter was replaced since the last bill: `previous` is the new meter's first reading.
    replaced: bool = False


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    issued_at: datetime
    issuer: str
    customer_number: str
    customer_name: str
    customer_phone: str
    sale_number: str
    lines: tuple[InvoiceLine, ...]
    subtotal_minor: int
    tax_minor: int
    deposit_minor: int
    total_minor: int
    # The audit entry that recorded the invoice: its place in the chain and its hash, printed
    # and in the QR code, so a printed invoice can be checked against the chain.
    audit_seq: int | None
    audit_hash: str | None
    # The meter reading the invoice bills, for a metered customer's sale; None otherwise.
    meter: MeterReading | None = None


@dataclass(frozen=True)
class SlipEntry:
    """One delivery in a settlement: when, which flower, which slot, how much, at what rate."""

    number: str
    day: date
    slot: str
    flower: Name
    qty: Quantity
    rate_minor: int
    gross_minor: int


@dataclass(frozen=True)
class SlipFee:
    code: str
    name: Name
    amount_minor: int


@dataclass(frozen=True)
class SettlementSlip:
    """A farmer's settlement for a period, as API.md's arithmetic made it: net = gross -
    commission - fees - advance recovered."""

    number: str
    status: str  # draft | approved | paid | cancelled
    farmer_number: str
    farmer: Name
    village: str
    period_from: date
    period_to: date
    entries: tuple[SlipEntry, ...]
    gross_minor: int
    commission_bp: int
    commission_minor: int
    fees: tuple[SlipFee, ...]
    advance_recovered_minor: int
    net_minor: int
    issued_at: datetime
    issuer: str


@dataclass(frozen=True)
class FarmerBalance:
    """Where a farmer stands: what the market owes them and what they owe the market."""

    farmer_number: str
    farmer: Name
    village: str
    phone: str
    payable_minor: int
    advance_outstanding_minor: int
    as_of: datetime
    issuer: str


@dataclass(frozen=True)
class ReportAnswer:
    """One question of a checklist and what was answered, as text a reader can print."""

    question: str
    answer: str
    # Photos and signatures, as `data:` URIs of their thumbnails (the engine fetches nothing).
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportSection:
    title: str
    answers: tuple[ReportAnswer, ...]


@dataclass(frozen=True)
class InspectionReport:
    """An inspection as its template version asked it, with the server's score."""

    inspection_id: str
    template_name: str
    template_version: int
    location: str
    inspector: str
    status: str
    score: str  # "18 / 20 (90 %)", or "" for a checklist without scored questions
    version: int
    review_comment: str
    sections: tuple[ReportSection, ...]
    issued_at: datetime
    issuer: str
    reviewed_by: str = ""  # the manager who approved or rejected it last
    # The audit entry of the version printed: its seq and hash go on the page and in its QR code.
    audit_seq: int | None = None
    audit_hash: str | None = None
