"""Each document: its typed value → the words and figures its template shows → PDF bytes.

Figures are formatted here, once, the same for both languages: rupees with Indian digit grouping
(₹1,25,000.50), dates as day-month-year. Words that depend on the data (a status, a unit) are
chosen here per language; everything else a document says is in its template per language.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from quartermaster.core.money import format_money
from quartermaster.documents.engine import Metadata, render_pdf
from quartermaster.documents.types import (
    FarmerBalance,
    InspectionReport,
    InvoiceDocument,
    MeterReading,
    Name,
    Quantity,
    SettlementSlip,
)

UNITS = {
    "en": {"kg": "kg", "piece": "pcs", "bundle": "bundles", "unit": ""},
    "ta": {"kg": "கிலோ", "piece": "எண்ணிக்கை", "bundle": "கட்டு", "unit": ""},
}
SETTLEMENT_STATUSES = {
    "en": {"draft": "Draft", "approved": "Approved", "paid": "Paid", "cancelled": "Cancelled"},
    "ta": {
        "draft": "வரைவு",
        "approved": "ஒப்புதல் பெற்றது",
        "paid": "செலுத்தப்பட்டது",
        "cancelled": "ரத்து செய்யப்பட்டது",
    },
}
TITLES = {
    "settlement_slip": {"en": "Settlement slip", "ta": "பட்டுவாடா சீட்டு"},
    "invoice": {"en": "Invoice", "ta": "விலைப்பட்டியல்"},
    "farmer_balance": {"en": "Farmer's balance", "ta": "விவசாயி இருப்பு"},
}


def rupees(minor_units: int) -> str:
    """1250050 → "₹12,500.50"; Indian grouping: the last three digits, then pairs."""
    text = format_money(minor_units)
    sign = "-" if text.startswith("-") else ""
    whole, paise = text.lstrip("-").split(".")
    head, tail = whole[:-3], whole[-3:]
    pairs: list[str] = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    grouped = ",".join([part for part in (head, *pairs) if part] + [tail])
    return f"{sign}₹{grouped}.{paise}"


def day(value: date) -> str:
    return value.strftime("%d-%m-%Y")


def moment(value: datetime) -> str:
    return value.strftime("%d-%m-%Y %H:%M")


def quantity(value: Quantity, language: str) -> str:
    unit = UNITS[language].get(value.unit, value.unit)
    return f"{value.amount} {unit}".strip()


def both(name: Name) -> str:
    """Both scripts, for the metadata: "Murugan / முருகன்"."""
    return " / ".join(part for part in (name.en, name.ta) if part)


def percent_of_bp(basis_points: int) -> str:
    whole, hundredths = divmod(basis_points, 100)
    return f"{whole}" if hundredths == 0 else f"{whole}.{hundredths:02d}".rstrip("0")


def render_settlement_slip(slip: SettlementSlip, language: str) -> bytes:
    """The farmer's settlement slip as PDF, in `language` (their preferred one, usually)."""
    return render_pdf(
        "settlement_slip",
        language,
        settlement_slip_context(slip, language),
        settlement_slip_metadata(slip, language),
    )


def settlement_slip_context(slip: SettlementSlip, language: str) -> dict[str, Any]:
    return {
        "issuer": slip.issuer,
        "number": slip.number,
        "status": SETTLEMENT_STATUSES[language].get(slip.status, slip.status),
        "issued_at": moment(slip.issued_at),
        "period_from": day(slip.period_from),
        "period_to": day(slip.period_to),
        "farmer_first": slip.farmer.first_in(language),
        "farmer_second": slip.farmer.second_in(language),
        "farmer_number": slip.farmer_number,
        "village": slip.village,
        "entries": [
            {
                "number": entry.number,
                "day": day(entry.day),
                "slot": entry.slot,
                "flower_first": entry.flower.first_in(language),
                "flower_second": entry.flower.second_in(language),
                "qty": quantity(entry.qty, language),
                "rate": rupees(entry.rate_minor),
                "gross": rupees(entry.gross_minor),
            }
            for entry in slip.entries
        ],
        "gross": rupees(slip.gross_minor),
        "commission_percent": percent_of_bp(slip.commission_bp),
        "commission": rupees(slip.commission_minor),
        "fees": [
            {"name": fee.name.first_in(language), "amount": rupees(fee.amount_minor)}
            for fee in slip.fees
        ],
        "advance_recovered": rupees(slip.advance_recovered_minor),
        "net": rupees(slip.net_minor),
    }


def settlement_slip_metadata(slip: SettlementSlip, language: str) -> Metadata:
    title = TITLES["settlement_slip"][language]
    flowers = dict.fromkeys(both(entry.flower) for entry in slip.entries)
    return Metadata(
        title=f"{slip.number} · {title}",
        subject=(
            f"{title} {slip.number} · {slip.farmer_number} {both(slip.farmer)} · "
            f"{day(slip.period_from)} - {day(slip.period_to)} · {rupees(slip.net_minor)}"
        ),
        keywords=(slip.number, slip.farmer_number, *both(slip.farmer).split(" / "), *flowers),
        author=slip.issuer,
    )


def render_invoice(invoice: InvoiceDocument, language: str) -> bytes:
    return render_pdf(
        "invoice", language, invoice_context(invoice, language), invoice_metadata(invoice, language)
    )


def invoice_context(invoice: InvoiceDocument, language: str) -> dict[str, Any]:
    return {
        "issuer": invoice.issuer,
        "number": invoice.number,
        "issued_at": moment(invoice.issued_at),
        "sale_number": invoice.sale_number,
        "customer_number": invoice.customer_number,
        "customer_name": invoice.customer_name,
        "customer_phone": invoice.customer_phone,
        "lines": [
            {
                "line": line.line,
                "deposit": line.kind == "deposit",
                "description": line.description,
                "qty": line.qty,
                "unit_price": rupees(line.unit_price_minor),
                "net": rupees(line.net_minor),
                "tax_percent": percent_of_bp(line.tax_rate_bp),
                "tax": rupees(line.tax_minor),
                "total": rupees(line.total_minor),
            }
            for line in invoice.lines
        ],
        "subtotal": rupees(invoice.subtotal_minor),
        "tax": rupees(invoice.tax_minor),
        "deposit": rupees(invoice.deposit_minor),
        "has_deposit": invoice.deposit_minor != 0,
        "total": rupees(invoice.total_minor),
        "meter": meter_context(invoice.meter),
        "audit_seq": invoice.audit_seq,
        "audit_hash": invoice.audit_hash,
        "qr": qr_data_uri(invoice_check_text(invoice)) if invoice.audit_hash else None,
    }


def meter_context(meter: MeterReading | None) -> dict[str, Any] | None:
    if meter is None:
        return None
    return {
        "previous": meter.previous,
        "current": meter.current,
        "units": meter.current - meter.previous,
        "rate": rupees(meter.rate_minor),
        "replaced": meter.replaced,
    }


def invoice_check_text(invoice: InvoiceDocument) -> str:
    """What the invoice's QR code holds: enough to find its audit entry and compare hashes."""
    return f"QM-INVOICE {invoice.number} audit:{invoice.audit_seq} sha256:{invoice.audit_hash}"


def inspection_check_text(report: InspectionReport) -> str:
    """What the report's QR code holds: the record, its version and the audit entry of it."""
    return (
        f"QM-INSPECTION {report.inspection_id} v{report.version}"
        f" audit:{report.audit_seq} sha256:{report.audit_hash}"
    )


def qr_data_uri(text: str) -> str:
    import segno

    return str(segno.make(text, error="m").svg_data_uri(scale=4, border=2))


def invoice_metadata(invoice: InvoiceDocument, language: str) -> Metadata:
    title = TITLES["invoice"][language]
    return Metadata(
        title=f"{invoice.number} · {title}",
        subject=(
            f"{title} {invoice.number} · {invoice.customer_number} {invoice.customer_name} · "
            f"{rupees(invoice.total_minor)}"
        ),
        keywords=(invoice.number, invoice.customer_number, invoice.sale_number),
        author=invoice.issuer,
    )


def render_farmer_balance(balance: FarmerBalance, language: str) -> bytes:
    return render_pdf(
        "farmer_balance",
        language,
        farmer_balance_context(balance, language),
        farmer_balance_metadata(balance, language),
    )


def farmer_balance_context(balance: FarmerBalance, language: str) -> dict[str, Any]:
    return {
        "issuer": balance.issuer,
        "farmer_number": balance.farmer_number,
        "farmer_first": balance.farmer.first_in(language),
        "farmer_second": balance.farmer.second_in(language),
        "village": balance.village,
        "phone": balance.phone,
        "payable": rupees(balance.payable_minor),
        "advance_outstanding": rupees(balance.advance_outstanding_minor),
        "as_of": moment(balance.as_of),
    }


def farmer_balance_metadata(balance: FarmerBalance, language: str) -> Metadata:
    title = TITLES["farmer_balance"][language]
    return Metadata(
        title=f"{balance.farmer_number} · {title}",
        subject=(
            f"{title} · {balance.farmer_number} {both(balance.farmer)} · "
            f"{rupees(balance.payable_minor)} · {rupees(balance.advance_outstanding_minor)}"
        ),
        keywords=(balance.farmer_number, *both(balance.farmer).split(" / ")),
        author=balance.issuer,
    )


def render_inspection_report(report: InspectionReport) -> bytes:
    """An inspection as PDF. In English: checklists are written in one language, their own."""
    context = {
        "issuer": report.issuer,
        "inspection_id": report.inspection_id,
        "template_name": report.template_name,
        "template_version": report.template_version,
        "location": report.location,
        "inspector": report.inspector,
        "status": report.status,
        "score": report.score,
        "version": report.version,
        "review_comment": report.review_comment,
        "reviewed_by": report.reviewed_by,
        "sections": report.sections,
        "issued_at": moment(report.issued_at),
        "audit_seq": report.audit_seq,
        "audit_hash": report.audit_hash,
        "qr": qr_data_uri(inspection_check_text(report)) if report.audit_hash else None,
    }
    meta = Metadata(
        title=f"Inspection report · {report.template_name}",
        subject=f"{report.template_name} · {report.location} · {report.status} · {report.score}",
        keywords=(report.inspection_id, report.template_name),
        author=report.issuer,
    )
    return render_pdf("inspection_report", "en", context, meta)
