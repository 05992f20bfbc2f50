"""HTTP adapters for sales: customers, transactions, invoices, credit notes, returns, payments."""

from __future__ import annotations

from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import NotFound
from quartermaster.core.http import (
    actor_of,
    base_version_of,
    context_for,
    json_response,
    page_response,
    to_http,
)
from quartermaster.core.schemas import ErrorOut
from quartermaster.documents.engine import clean_language
from quartermaster.documents.http import PDF_RESPONSE, DocumentQuery, pdf_response
from quartermaster.documents.render import render_invoice
from quartermaster.sales import services
from quartermaster.sales.schemas import (
    ConfirmIn,
    CreditNoteOut,
    CustomerIn,
    CustomerOut,
    CustomerPageOut,
    CustomerPatchIn,
    DepositsOut,
    InvoiceDetailOut,
    InvoiceEmailIn,
    InvoiceEmailOut,
    MeterReadingIn,
    MeterReadingOut,
    PageQuery,
    PaymentIn,
    PaymentOut,
    RefundIn,
    RefundOut,
    ReturnIn,
    SaleIn,
    SaleOut,
    StatementOut,
    VoidIn,
)
from quartermaster.sales.selectors import (
    CUSTOMER_ORDER,
    credit_note_view,
    customer_deposits,
    customer_statement,
    customer_view,
    get_credit_note,
    get_customer,
    get_invoice,
    get_sale,
    invoice_document,
    invoice_payment_state,
    invoice_wire,
    list_customers,
    sale_view,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}

router = Router(tags=["sales"])


@router.post("/customers", response={201: CustomerOut, **ERRORS})
def create_customer(request: HttpRequest, payload: CustomerIn) -> HttpResponse:
    command = services.CreateCustomer(
        name=payload.name,
        phone=payload.phone,
        email=payload.email,
        client_temp_id=payload.client_temp_id,
        user=payload.user,
    )
    return to_http(execute(command, context_for(request)))


@router.patch("/customers/{uuid:customer_id}", response={200: CustomerOut, **ERRORS})
def update_customer(
    request: HttpRequest, customer_id: UUID, payload: CustomerPatchIn
) -> HttpResponse:
    """Name, phone, e-mail address; (managers) payment terms, credit limit, meter; `base_version` (or
    `If-Match`) makes a stale write a 409 conflict."""
    command = services.UpdateCustomer.model_validate(
        {
            **payload.model_dump(exclude={"base_version"}),
            "id": customer_id,
            "base_version": base_version_of(request, payload.base_version),
        }
    )
    return to_http(execute(command, context_for(request)))


@router.post(
    "/customers/{uuid:customer_id}/meter-readings", response={201: MeterReadingOut, **ERRORS}
)
def record_meter_reading(
    request: HttpRequest, customer_id: UUID, payload: MeterReadingIn
) -> HttpResponse:
    """A reading on its own: an installed meter's first, or a replaced meter's (`replaced`)."""
    command = services.RecordMeterReading(
        customer=customer_id, reading=payload.reading, replaced=payload.replaced
    )
    return to_http(execute(command, context_for(request)))


@router.get("/customers", response={200: CustomerPageOut, **ERRORS})
def list_all_customers(request: HttpRequest, params: Query[PageQuery]) -> HttpResponse:
    policy.authorize(actor_of(request), "customer.read")
    page = list_customers(page=CUSTOMER_ORDER.request(cursor=params.cursor, limit=params.limit))
    return page_response(page, lambda customer: customer_view(customer).wire)


@router.get("/customers/{uuid:customer_id}", response={200: CustomerOut, **ERRORS})
def retrieve_customer(request: HttpRequest, customer_id: UUID) -> HttpResponse:
    policy.authorize(actor_of(request), "customer.read")
    customer = get_customer(customer_id)
    if customer is None:
        raise NotFound()
    return json_response(200, customer_view(customer).wire)


@router.get("/customers/{uuid:customer_id}/statement", response={200: StatementOut, **ERRORS})
def statement(request: HttpRequest, customer_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "statement.read")
    customer = get_customer(customer_id)
    if customer is None:
        raise NotFound()
    # A party user reads the statement of the customer it is linked to, and no other (404).
    policy.authorize(actor, "statement.read", owner_id=customer.user_id)
    return json_response(200, customer_statement(customer, actor=actor))


@router.post("/transactions", response={201: SaleOut, **ERRORS})
def record_sale(request: HttpRequest, payload: SaleIn) -> HttpResponse:
    # The wire body is the command's: built from it whole, a refused value keeps its path.
    command = services.RecordSale.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


@router.get("/transactions/{uuid:transaction_id}", response={200: SaleOut, **ERRORS})
def retrieve_sale(request: HttpRequest, transaction_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "sale.read")
    sale = get_sale(actor=actor, sale_id=transaction_id)
    if sale is None:
        raise NotFound()
    return json_response(200, sale_view(sale).wire)


@router.post("/transactions/{uuid:transaction_id}/confirm", response={200: SaleOut, **ERRORS})
def confirm_sale(
    request: HttpRequest, transaction_id: UUID, payload: ConfirmIn | None = None
) -> HttpResponse:
    """`payment`: money taken now (a cash customer's sale needs it)."""
    body = {} if payload is None else payload.model_dump()
    command = services.ConfirmSale.model_validate({**body, "transaction": transaction_id})
    return to_http(execute(command, context_for(request)))


@router.post("/transactions/{uuid:transaction_id}/void", response={200: SaleOut, **ERRORS})
def void_sale(request: HttpRequest, transaction_id: UUID, payload: VoidIn) -> HttpResponse:
    command = services.VoidSale(transaction=transaction_id, reason=payload.reason)
    return to_http(execute(command, context_for(request)))


@router.get("/invoices/{uuid:invoice_id}", response={200: InvoiceDetailOut, **ERRORS})
def retrieve_invoice(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "invoice.read")
    invoice = get_invoice(actor=actor, invoice_id=invoice_id)
    if invoice is None:
        raise NotFound()
    return json_response(200, {**invoice_wire(invoice), **invoice_payment_state(invoice)})


@router.get("/invoices/{uuid:invoice_id}/pdf", response={**ERRORS}, openapi_extra=PDF_RESPONSE)
def invoice_pdf(
    request: HttpRequest, invoice_id: UUID, params: Query[DocumentQuery]
) -> HttpResponse:
    """The invoice as PDF, in `lang` (default: the request's Accept-Language, else English);
    read as the invoice is (`invoice.read`, the selling location's scope)."""
    actor = actor_of(request)
    policy.authorize(actor, "invoice.read")
    language = clean_language(params.lang, default=translation.get_language() or "en")
    invoice = get_invoice(actor=actor, invoice_id=invoice_id)
    if invoice is None:
        raise NotFound()
    document = invoice_document(
        invoice, issuer=settings.DOCUMENT_ISSUER, zone=ZoneInfo(settings.DOCUMENT_TIMEZONE)
    )
    return pdf_response(render_invoice(document, language), filename=f"{invoice.number}.pdf")


@router.post("/invoices/{uuid:invoice_id}/email", response={202: InvoiceEmailOut, **ERRORS})
def email_invoice(request: HttpRequest, invoice_id: UUID, payload: InvoiceEmailIn) -> HttpResponse:
    """Queue the invoice, its PDF attached, for `to` through the outbox (202); its
    `email_status` becomes `emailed` once the SMTP server takes it. `lang`: the PDF's and the
    message's language."""
    command = services.EmailInvoice(invoice=invoice_id, to=payload.to or "", language=payload.lang)
    return to_http(execute(command, context_for(request)))


@router.get("/credit-notes/{uuid:credit_note_id}", response={200: CreditNoteOut, **ERRORS})
def retrieve_credit_note(request: HttpRequest, credit_note_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "invoice.read")
    note = get_credit_note(actor=actor, credit_note_id=credit_note_id)
    if note is None:
        raise NotFound()
    return json_response(200, credit_note_view(note).wire)


@router.post("/returns", response={201: dict, **ERRORS})
def return_assets(request: HttpRequest, payload: ReturnIn) -> HttpResponse:
    command = services.ReturnAssets.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


@router.get("/customers/{uuid:customer_id}/deposits", response={200: DepositsOut, **ERRORS})
def deposits(request: HttpRequest, customer_id: UUID) -> HttpResponse:
    """The deposits the customer holds with us, per item (a liability: owed back on return)."""
    policy.authorize(actor_of(request), "deposit.read")
    customer = get_customer(customer_id)
    if customer is None:
        raise NotFound()
    return json_response(200, customer_deposits(customer))


@router.post("/payments", response={201: PaymentOut, **ERRORS})
def record_payment(request: HttpRequest, payload: PaymentIn) -> HttpResponse:
    command = services.RecordPayment.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


@router.post("/refunds", response={201: RefundOut, **ERRORS})
def record_refund(request: HttpRequest, payload: RefundIn) -> HttpResponse:
    """Pay back the customer's credit; more than the credit → 409 refund_exceeds_credit."""
    command = services.RecordRefund.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))
