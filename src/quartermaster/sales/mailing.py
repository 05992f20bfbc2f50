"""Invoices by e-mail: what notifications need from sales to send one, registered at start-up
(SalesConfig.ready) — the PDF attached to an `invoice_issued` message, built at send time from
the invoice, and the command that marks the invoice `emailed` once the message went out."""

from __future__ import annotations

from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings

from quartermaster.core.commands import Command
from quartermaster.documents.render import render_invoice
from quartermaster.notifications.attachments import Attachment, Gone
from quartermaster.sales.models import Invoice
from quartermaster.sales.selectors import invoice_document
from quartermaster.sales.services import MarkInvoiceEmailed


def _invoice(params: dict[str, str]) -> Invoice:
    try:
        invoice_id = UUID(params.get("invoice", ""))
    except ValueError as exc:
        raise Gone("the message names no invoice") from exc
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise Gone("the invoice no longer exists")
    return invoice


def invoice_pdf(params: dict[str, str], language: str) -> list[Attachment]:
    invoice = _invoice(params)
    document = invoice_document(
        invoice, issuer=settings.DOCUMENT_ISSUER, zone=ZoneInfo(settings.DOCUMENT_TIMEZONE)
    )
    pdf = render_invoice(document, language if language in ("en", "ta") else "en")
    return [Attachment(f"{invoice.number}.pdf", pdf, "application/pdf")]


def mark_emailed(params: dict[str, str]) -> Command | None:
    try:
        return MarkInvoiceEmailed(invoice=UUID(params.get("invoice", "")))
    except ValueError:
        return None
