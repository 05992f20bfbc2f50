"""HTTP adapters for authentication: login, refresh, logout, me."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from quartermaster.core.commands import Context, execute
from quartermaster.core.errors import NotAuthenticated
from quartermaster.core.http import actor_of, error_json, json_response, to_http
from quartermaster.core.schemas import ErrorOut
from quartermaster.identity import invariants, tokens
from quartermaster.identity.schemas import LoginIn, MeOut, RefreshIn, TokenPairOut
from quartermaster.identity.selectors import actor_view, check_credentials, load_actor
from quartermaster.identity.services import EndSession, RotateSession, StartSession

router = Router(tags=["auth"])

BAD_CREDENTIALS = NotAuthenticated("invalid username or password")


@router.post("/login", auth=None, response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut})
def login(request: HttpRequest, payload: LoginIn) -> HttpResponse:
    device_id = invariants.clean_device_id(payload.device_id or "")
    user = check_credentials(payload.username, payload.password)
    if user is None:
        return error_json(BAD_CREDENTIALS)
    actor = load_actor(user.id, device_id=device_id)
    if actor is None:
        return error_json(BAD_CREDENTIALS)
    # Never keyed: a stored response would keep live tokens in the database.
    return to_http(execute(StartSession(device_id=device_id), Context(actor=actor)))


@router.post("/refresh", auth=None, response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut})
def refresh(request: HttpRequest, payload: RefreshIn) -> HttpResponse:
    claims = tokens.decode(payload.refresh, expected_type="refresh")
    actor = load_actor(claims.user_id, device_id=claims.device_id)
    if actor is None:
        raise NotAuthenticated("invalid or expired token")
    return to_http(execute(RotateSession(jti=claims.jti), Context(actor=actor)))


@router.post("/logout", response={204: None, 400: ErrorOut, 401: ErrorOut})
def logout(request: HttpRequest, payload: RefreshIn) -> HttpResponse:
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
