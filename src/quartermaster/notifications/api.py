"""HTTP adapters for notifications: the back office's list and retry, and providers' webhooks
(unauthenticated by the contract, verified by signature instead)."""

from __future__ import annotations

import hmac
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import Invalid, NotAuthenticated, NotFound, PermissionDenied
from quartermaster.core.http import actor_of, context_for, json_response, page_response, to_http
from quartermaster.core.schemas import ErrorOut
from quartermaster.core.types import Actor, Context
from quartermaster.notifications import inbound, services
from quartermaster.notifications.invariants import (
    clean_recipient,
    clean_status,
    parse_whatsapp_webhook,
    verify_signature,
)
from quartermaster.notifications.schemas import (
    NotificationOut,
    NotificationPageOut,
    NotificationsQuery,
    WebhookOut,
)
from quartermaster.notifications.selectors import (
    NOTIFICATION_ORDER,
    list_notifications,
    notification_view,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
PROVIDERS = ("whatsapp",)
# A webhook's events are recorded as this actor: the provider, vouched for by its signature.
WEBHOOK_ACTOR = Actor(user_id=None, username="whatsapp-webhook", role="system", device_id="meta")
MAX_EVENTS = 1000

router = Router(tags=["notifications"])


@router.get("", response={200: NotificationPageOut, **ERRORS})
def list_all_notifications(request: HttpRequest, params: Query[NotificationsQuery]) -> HttpResponse:
    """Newest first; `status` and `recipient` (E.164 digits, '+' optional) narrow the list."""
    policy.authorize(actor_of(request), "notification.read")
    page = list_notifications(
        page=NOTIFICATION_ORDER.request(cursor=params.cursor, limit=params.limit),
        status=clean_status(params.status),
        recipient=clean_recipient(params.recipient),
    )
    return page_response(page, lambda notification: notification_view(notification).wire)


@router.post("/{uuid:notification_id}/retry", response={200: NotificationOut, **ERRORS})
def retry_notification(request: HttpRequest, notification_id: UUID) -> HttpResponse:
    """A failed notification goes back to `queued` for a fresh round of attempts."""
    return to_http(execute(services.RetryNotification(id=notification_id), context_for(request)))


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise NotFound()
    return provider


@router.post("/webhooks/{provider}", auth=None, response={200: WebhookOut, **ERRORS})
def provider_webhook(request: HttpRequest, provider: str) -> HttpResponse:
    """WhatsApp Cloud API status reports (sent, delivered, read, failed) and inbound messages,
    signed `X-Hub-Signature-256` with the app secret; a bad signature is 401, nothing read."""
    _provider(provider)
    body = request.body
    if not verify_signature(
        settings.WHATSAPP_APP_SECRET, body, request.headers.get("X-Hub-Signature-256")
    ):
        raise NotAuthenticated("bad or missing X-Hub-Signature-256")
    events = parse_whatsapp_webhook(body)
    if len(events.reports) + len(events.messages) > MAX_EVENTS:
        raise Invalid.field("body", f"at most {MAX_EVENTS} events")
    ctx = Context(actor=WEBHOOK_ACTOR)
    for report in events.reports:
        command = services.RecordReport(
            reference=report.reference,
            dedupe_key=report.dedupe_key,
            status=report.status[:20],
            error=report.error,
        )
        response = execute(command, ctx)
        if response.status >= 500:
            return to_http(response)  # the provider retries the webhook later
    for message in events.messages:
        inbound.dispatch(message)
    return json_response(200, {"reports": len(events.reports), "messages": len(events.messages)})


@router.get(
    "/webhooks/{provider}",
    auth=None,
    response={200: str, **ERRORS},
    openapi_extra={
        "responses": {
            200: {
                "description": "the challenge, echoed",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    },
)
def verify_webhook(request: HttpRequest, provider: str) -> HttpResponse:
    """Meta's subscription handshake: `hub.mode=subscribe`, `hub.verify_token` equal to
    QM_WHATSAPP_VERIFY_TOKEN → the `hub.challenge`, as plain text; anything else 403."""
    _provider(provider)
    expected = settings.WHATSAPP_VERIFY_TOKEN
    token = request.GET.get("hub.verify_token", "")
    if (
        not expected
        or request.GET.get("hub.mode") != "subscribe"
        or not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected.encode())
    ):
        raise PermissionDenied("the verify token does not match")
    challenge = request.GET.get("hub.challenge", "")
    # Meta sends digits; anything else is not echoed back into a response.
    if len(challenge) > 200 or not (challenge.isascii() and challenge.isprintable()):
        raise Invalid.field("hub.challenge", "at most 200 printable ASCII characters")
    return HttpResponse(challenge, content_type="text/plain; charset=utf-8")
