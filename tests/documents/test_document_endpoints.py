"""Documents through HTTP: an invoice's PDF, read and scoped like the invoice; a farmer's balance
in their language, read like their statement. Errors stay JSON, said in the request's language."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.test import Client

from quartermaster.core.models import AuditEntry
from tests.conftest import Api, create_user, login
from tests.documents.pdf_tools import first_page, get_pdf, ink, pdf_info, pdf_text
from tests.ledger_helpers import make_customer, make_item, make_location, ok, sell

pytestmark = pytest.mark.django_db

MARKET = "/api/v1/market"
FARMER = {
    "name": "Murugan",
    "name_ta": "முருகன்",
    "phone": "+919876543210",
    "language": "ta",
    "village": "Thovalai",
}


def an_invoice(manager: Api, location: str) -> dict:
    gas = make_item(manager, "LPG 14.2 kg", 10, price="905.00", tax_rate_bp=500)
    customer = make_customer(manager, "Lakshmi Stores")
    sale = ok(sell(manager, customer["id"], location, [{"item": gas, "qty": 2}]), 201)
    return sale["invoice"]


def test_an_invoice_is_a_pdf_with_its_lines_totals_and_audit_hash(
    manager: Api, default_location_id: str
) -> None:
    invoice = an_invoice(manager, default_location_id)

    response = get_pdf(manager, f"/api/v1/invoices/{invoice['id']}/pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="INV-000001.pdf"'
    pdf = response.content
    text = pdf_text(pdf)
    recorded = AuditEntry.objects.get(entity_type="invoice", entity_id=invoice["id"])
    for words in ("Tax invoice", "INV-000001", "TRX-000001", "Lakshmi Stores", "LPG 14.2 kg"):
        assert words in text, (words, text)
    # 2 x 905.00 = 1810.00, tax 5 % = 90.50
    for figure in ("₹905.00", "₹1,810.00", "₹90.50", "₹1,900.50"):
        assert figure in text, (figure, text)
    assert recorded.hash in text.replace("\n", "")
    assert pdf_info(pdf)["Title"] == "INV-000001 · Invoice"
    assert ink(first_page(pdf)) > 0.01


def test_an_invoice_pdf_in_tamil(manager: Api, default_location_id: str) -> None:
    invoice = an_invoice(manager, default_location_id)

    by_query = get_pdf(manager, f"/api/v1/invoices/{invoice['id']}/pdf?lang=ta")
    by_header = get_pdf(manager, f"/api/v1/invoices/{invoice['id']}/pdf", {"Accept-Language": "ta"})

    for response in (by_query, by_header):
        assert response.status_code == 200
        assert pdf_info(response.content)["Title"] == "INV-000001 · விலைப்பட்டியல்"
        assert "வரி" in pdf_text(response.content)


def test_an_invoice_pdf_is_scoped_like_the_invoice(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    invoice = an_invoice(manager, default_location_id)
    elsewhere = make_api("staff", "driver", locations=(make_location(manager, "Truck 2"),))
    here = make_api("staff", "cashier", locations=(default_location_id,))
    auditor = make_api("auditor", "reader")
    party = make_api("party", "lakshmi")
    path = f"/api/v1/invoices/{invoice['id']}/pdf"

    hidden = elsewhere.get(path)
    refused = party.get(path, headers={"Accept-Language": "ta"})

    assert get_pdf(here, path).status_code == 200
    assert get_pdf(auditor, path).status_code == 200
    assert (hidden.status, hidden.body) == (404, {"error": "not_found", "code": "not_found"})
    assert refused.status == 403
    assert refused.body == {
        "error": "party பங்கிற்கு invoice.read செய்ய அனுமதி இல்லை",
        "code": "permission_denied",
    }


def test_an_unknown_invoice_or_language_is_a_json_error(manager: Api) -> None:
    missing = manager.get(f"/api/v1/invoices/{uuid.uuid4()}/pdf", headers={"Accept-Language": "ta"})
    bad_language = manager.get(f"/api/v1/invoices/{uuid.uuid4()}/pdf?lang=fr")

    assert missing.body == {"error": "கிடைக்கவில்லை", "code": "not_found"}
    assert bad_language.status == 400
    assert bad_language.body["code"] == "invalid"
    assert "lang" in bad_language.body["fields"]


def test_a_farmers_balance_is_in_their_language_unless_asked_otherwise(admin: Api) -> None:
    farmer = ok(admin.post(f"{MARKET}/farmers", FARMER), 201)
    path = f"{MARKET}/farmers/{farmer['id']}/balance/document"

    tamil = get_pdf(admin, path)
    english = get_pdf(admin, f"{path}?lang=en")

    assert tamil.status_code == english.status_code == 200
    assert tamil["Content-Type"] == "application/pdf"
    tamil_text, english_text = pdf_text(tamil.content), pdf_text(english.content)
    for words in ("விவசாயி", "முருகன்", "FMR-000001", "Thovalai", "₹0.00"):
        assert words in tamil_text, (words, tamil_text)
    assert "Murugan" in tamil_text  # the other script, beside
    for words in ("Farmer's balance", "Murugan", "Payable to the farmer", "Advance outstanding"):
        assert words in english_text, (words, english_text)
    assert "FMR-000001 Murugan / முருகன்" in pdf_info(tamil.content)["Subject"]
    assert ink(first_page(tamil.content)) > 0.005


def test_a_farmer_reads_only_their_own_balance(admin: Api, staff: Api) -> None:
    mine = create_user("murugan", "party")
    other = create_user("valli", "party")
    farmer = ok(admin.post(f"{MARKET}/farmers", {**FARMER, "user": mine["id"]}), 201)
    path = f"{MARKET}/farmers/{farmer['id']}/balance/document"
    as_farmer = Api(Client(), login("murugan")["access"])
    as_other = Api(Client(), login("valli")["access"])

    assert other["role"] == "party"
    assert get_pdf(as_farmer, path).status_code == 200
    assert get_pdf(staff, path).status_code == 200
    hidden = as_other.get(path, headers={"Accept-Language": "ta"})
    assert (hidden.status, hidden.body) == (404, {"error": "கிடைக்கவில்லை", "code": "not_found"})
    assert as_other.get(f"{MARKET}/farmers/{uuid.uuid4()}/balance/document").status == 404
