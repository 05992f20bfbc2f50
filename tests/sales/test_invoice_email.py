"""An invoice leaves the building: e-mailed through the outbox to a real SMTP server on
127.0.0.1, its PDF attached; the invoice goes generated → emailed when the server takes it, and
a refusal is retried like any channel's failure."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from quartermaster.cli import main as cli_main
from quartermaster.core.models import AuditEntry
from tests.conftest import Api, audit_count
from tests.documents.pdf_tools import pdf_text
from tests.ledger_helpers import make_customer, make_item, make_location, ok, sell
from tests.notifications.conftest import notifications, work
from tests.sales.smtp_server import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    settings.SMTP_HOST = "127.0.0.1"
    settings.SMTP_PORT = server.port
    settings.SMTP_FROM = "invoices@gas.example"
    settings.SMTP_TLS = "none"
    settings.OUTBOX_BACKOFF_SCALE = 0.01
    settings.OUTBOX_POLL_S = 0.05
    settings.NOTIFY_TIMEOUT_S = 5.0
    yield server
    server.stop()


def an_invoice(manager: Api, location: str) -> dict[str, Any]:
    gas = make_item(manager, "LPG 14.2 kg", 10, price="905.00", tax_rate_bp=500)
    customer = make_customer(manager, "Lakshmi Stores")
    sale = ok(sell(manager, customer["id"], location, [{"item": gas, "qty": 2}]), 201)
    return dict(sale["invoice"])


def email_status(api: Api, invoice_id: str) -> str:
    return str(ok(api.get(f"/api/v1/invoices/{invoice_id}"), 200)["email_status"])


def test_an_invoice_is_emailed_with_its_pdf_and_becomes_emailed(
    manager: Api, default_location_id: str, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = an_invoice(manager, default_location_id)
    assert email_status(manager, invoice["id"]) == "generated"

    queued = manager.post(
        f"/api/v1/invoices/{invoice['id']}/email", {"to": "lakshmi@stores.example"}
    )

    assert queued.status == 202, queued.body
    assert queued.body["status"] == "queued"
    assert email_status(manager, invoice["id"]) == "generated"  # not sent before the worker
    assert smtp.received == []

    work(capsys)

    [received] = smtp.received
    assert received.recipients == ["lakshmi@stores.example"]
    assert received.sender == "invoices@gas.example"
    assert received.message["Subject"] == "Invoice INV-000001"
    assert "INV-000001" in received.message.get_body(("plain",)).get_content()
    [attachment] = list(received.message.iter_attachments())
    assert attachment.get_filename() == "INV-000001.pdf"
    assert attachment.get_content_type() == "application/pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF")
    recorded = AuditEntry.objects.get(entity_type="invoice", entity_id=invoice["id"])
    text = pdf_text(pdf)
    assert "INV-000001" in text
    assert recorded.hash in text.replace("\n", "")
    assert email_status(manager, invoice["id"]) == "emailed"
    [sent] = notifications(manager)
    assert (sent["channel"], sent["status"], sent["attempts"]) == ("email", "sent", 1)
    assert cli_main(["audit", "verify"]) == 0


def test_a_refusing_server_is_tried_again_and_the_invoice_is_emailed_after_the_retry(
    manager: Api, default_location_id: str, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = an_invoice(manager, default_location_id)
    smtp.refuse(1, "451 4.3.0 Mail server temporarily busy")

    ok(manager.post(f"/api/v1/invoices/{invoice['id']}/email", {"to": "a@b.example"}), 202)
    lines = work(capsys)

    assert any("attempt 1 failed (SMTP 451" in line for line in lines), lines
    assert len(smtp.received) == 1
    [sent] = notifications(manager)
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("sent", 2, None)
    assert email_status(manager, invoice["id"]) == "emailed"


def test_a_server_that_is_down_then_up_delivers_on_a_later_attempt(
    manager: Api, default_location_id: str, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = an_invoice(manager, default_location_id)
    smtp.stop()  # connection refused: the worker's first pass fails, the message waits

    ok(manager.post(f"/api/v1/invoices/{invoice['id']}/email", {"to": "a@b.example"}), 202)
    lines = work(capsys, "--once")
    assert any("SMTP connection failed" in line for line in lines), lines
    assert email_status(manager, invoice["id"]) == "generated"

    smtp.start()
    from django.conf import settings

    settings.SMTP_PORT = smtp.port
    work(capsys)

    assert len(smtp.received) == 1
    assert email_status(manager, invoice["id"]) == "emailed"


def test_a_permanent_refusal_fails_for_good_and_the_invoice_stays_generated(
    manager: Api, default_location_id: str, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = an_invoice(manager, default_location_id)
    smtp.refuse(1, "550 5.1.1 No such mailbox")

    ok(manager.post(f"/api/v1/invoices/{invoice['id']}/email", {"to": "nobody@b.example"}), 202)
    work(capsys)

    [failed] = notifications(manager)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["last_error"].startswith("SMTP 550")
    assert email_status(manager, invoice["id"]) == "generated"


def test_emailing_an_invoice_is_refused_plainly(
    manager: Api,
    auditor: Api,
    make_api: Callable[..., Api],
    default_location_id: str,
    smtp: SmtpServer,
) -> None:
    invoice = an_invoice(manager, default_location_id)
    path = f"/api/v1/invoices/{invoice['id']}/email"
    elsewhere = make_api("staff", locations=(make_location(manager, "Truck 9"),))
    before = audit_count()

    no_address = manager.post(path, {})
    bad_address = manager.post(path, {"to": "not an address"})
    unknown = manager.post(f"/api/v1/invoices/{uuid.uuid4()}/email", {"to": "a@b.example"})
    by_auditor = auditor.post(path, {"to": "a@b.example"})
    by_other_truck = elsewhere.post(path, {"to": "a@b.example"})

    assert (no_address.status, no_address.body["code"]) == (400, "no_email_address")
    assert "to" in no_address.body["fields"]
    assert bad_address.status == 400 and "to" in bad_address.body["fields"]
    assert unknown.status == 404
    assert by_auditor.status == 403
    assert by_other_truck.status == 404
    assert audit_count() == before
    assert smtp.received == []
