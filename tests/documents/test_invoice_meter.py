"""An invoice that bills a meter shows the reading: previous, current, units and rate; one
without a meter shows none. Rendered from the typed document, and through HTTP for a metered
sale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quartermaster.documents.render import render_invoice
from quartermaster.documents.types import InvoiceDocument, InvoiceLine, MeterReading
from tests.conftest import Api
from tests.documents.pdf_tools import get_pdf, pdf_text
from tests.ledger_helpers import make_customer, make_item, ok, sell


def a_document(meter: MeterReading | None) -> InvoiceDocument:
    line = InvoiceLine(1, "goods", "Piped gas", 30, 5000, 150000, 500, 7500, 157500)
    return InvoiceDocument(
        number="INV-000042",
        issued_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        issuer="Guardian Gas",
        customer_number="CUS-000007",
        customer_name="Bismi Hotel",
        customer_phone="",
        sale_number="TRX-000042",
        lines=(line,),
        subtotal_minor=150000,
        tax_minor=7500,
        deposit_minor=0,
        total_minor=157500,
        audit_seq=12,
        audit_hash="ab" * 32,
        meter=meter,
    )


def test_a_metered_invoice_shows_its_reading() -> None:
    text = pdf_text(render_invoice(a_document(MeterReading(1200, 1230, 5000)), "en"))

    assert "Meter reading" in text
    assert "1200 → 1230" in text
    assert "30 at ₹50.00 a unit" in text


def test_an_invoice_without_a_meter_shows_no_reading() -> None:
    text = pdf_text(render_invoice(a_document(None), "en"))

    assert "Meter reading" not in text
    assert "Tax invoice" in text


@pytest.mark.django_db
def test_a_metered_sales_invoice_pdf_shows_the_reading_it_billed(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "Piped gas (units)", 10_000, price="3.00")
    customer = make_customer(manager, "Bismi Hotel")["id"]
    terms = {"payment_terms": "credit", "meter_installed": True, "meter_rate": "2.50"}
    ok(manager.patch(f"/api/v1/customers/{customer}", terms), 200)
    ok(manager.post(f"/api/v1/customers/{customer}/meter-readings", {"reading": 1000}))
    sale = ok(sell(manager, customer, default_location_id, [{"item": gas, "meter_reading": 1120}]))

    metered = get_pdf(manager, f"/api/v1/invoices/{sale['invoice']['id']}/pdf")

    assert metered.status_code == 200
    text = pdf_text(metered.content)
    assert "1000 → 1120" in text
    assert "120 at ₹2.50 a unit" in text
