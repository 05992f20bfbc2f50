"""HTTP adapters for authentication (login, refresh, logout, me) and devices (list, revoke)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import NotAuthenticated, NotFound
from quartermaster.core.http import (
    actor_of,
    client_ip,
    context_for,
    error_json,
    json_response,
    page_response,
    to_http,
)
from quartermaster.core.schemas import ErrorOut
from quartermaster.core.types import Context
from quartermaster.identity import invariants, tokens
from quartermaster.identity.auth import BearerAuth
from quartermaster.identity.ratelimits import LoginGuard
from quartermaster.identity.schemas import (
    DeviceListQuery,
    DeviceOut,
    DevicePageOut,
    LoginIn,
    MeOut,
    RefreshIn,
    TokenPairOut,
)
from quartermaster.identity.selectors import (
    DEVICE_ORDER,
    actor_view,
    check_credentials,
    device_view,
    get_device,
    list_devices,
    load_actor,
)
from quartermaster.identity.services import EndSession, RevokeDevice, RotateSession, StartSession

router = Router(tags=["auth"])
devices_router = Router(tags=["devices"])

BAD_CREDENTIALS = NotAuthenticated("invalid username or password")


@router.post(
    "/login",
    auth=None,
    response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut},
)
def login(request: HttpRequest, payload: LoginIn) -> HttpResponse:
    device_id = invariants.clean_device_id(payload.device_id or "")
    guard = LoginGuard.of(payload.username, client_ip(request))
    guard.refuse_if_locked(device=device_id)
    user = check_credentials(payload.username, payload.password)
    actor = None if user is None else load_actor(user.id, device_id=device_id)
    if actor is None:
        guard.failed(device=device_id)
        return error_json(BAD_CREDENTIALS)
    guard.succeeded()
    # Never keyed: a stored response would keep live tokens in the database.
    return to_http(execute(StartSession(device_id=device_id), Context(actor=actor)))


@router.post(
    "/refresh", auth=None, response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut}
)
def refresh(request: HttpRequest, payload: RefreshIn) -> HttpResponse:
    claims = tokens.decode(payload.refresh, expected_type="refresh")
    actor = load_actor(claims.user_id, device_id=claims.device_id)
    if actor is None:
        raise NotAuthenticated("invalid or expired token")
    return to_http(execute(RotateSession(jti=claims.jti), Context(actor=actor)))


@router.post(
    "/logout",
    auth=BearerAuth(session_may_be_ended=True),
    response={204: None, 400: ErrorOut, 401: ErrorOut},
)
def logout(request: HttpRequest, payload: RefreshIn) -> HttpResponse:
    """End the session the refresh token belongs to: its access tokens stop working at once.
    Idempotent: logging out again, with the access token that session just lost, answers 204."""
    actor = actor_of(request)
    try:
        claims = tokens.decode(payload.refresh, expected_type="refresh")
    except NotAuthenticated:
        return json_response(204, None)  # logging out of a dead session is already done
    if claims.user_id != actor.user_id:
        return json_response(204, None)
    return to_http(execute(EndSession(jti=claims.jti), Context(actor=actor)))


@router.get("/me", response={200: MeOut, 401: ErrorOut})
def me(request: HttpRequest) -> HttpResponse:
    return json_response(200, actor_view(actor_of(request)))


DEVICE_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut}


@devices_router.get("", response={200: DevicePageOut, **DEVICE_ERRORS})
def list_all_devices(request: HttpRequest, params: Query[DeviceListQuery]) -> HttpResponse:
    policy.authorize(actor_of(request), "device.read")
    page = list_devices(page=DEVICE_ORDER.request(cursor=params.cursor, limit=params.limit))
    return page_response(page, device_view)


@devices_router.get("/{device_id}", response={200: DeviceOut, 404: ErrorOut, **DEVICE_ERRORS})
def retrieve_device(request: HttpRequest, device_id: str) -> HttpResponse:
    policy.authorize(actor_of(request), "device.read")
    device = get_device(device_id)
    if device is None:
        raise NotFound()
    return json_response(200, device_view(device))


@devices_router.post(
    "/{device_id}/revoke",
    response={200: DeviceOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, **DEVICE_ERRORS},
)
def revoke_device(request: HttpRequest, device_id: str) -> HttpResponse:
    return to_http(execute(RevokeDevice(device_id=device_id), context_for(request)))
