"""HTTP adapters for authentication (login, refresh, logout, me, one's own password, self
sign-up), users (an admin's: create, list, read, change) and devices (list, revoke)."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy, ratelimit
from quartermaster.core.commands import execute
from quartermaster.core.errors import Invalid, NotAuthenticated, NotFound
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
from quartermaster.identity.permissions import SIGNUP_ACTOR
from quartermaster.identity.ratelimits import LoginGuard
from quartermaster.identity.schemas import (
    DeviceListQuery,
    DeviceOut,
    DevicePageOut,
    LoginIn,
    MeOut,
    PasswordChangeIn,
    RefreshIn,
    SignUpIn,
    TokenPairOut,
    UserCreateIn,
    UserListQuery,
    UserOut,
    UserPageOut,
    UserPatchIn,
)
from quartermaster.identity.selectors import (
    DEVICE_ORDER,
    USER_ORDER,
    actor_view,
    check_credentials,
    device_view,
    get_device,
    get_user,
    list_devices,
    list_users,
    load_actor,
    user_view,
    user_views,
)
from quartermaster.identity.services import (
    ChangeOwnPassword,
    CreateUser,
    EndSession,
    RevokeDevice,
    RotateSession,
    SignUp,
    StartSession,
    UpdateUser,
)

router = Router(tags=["auth"])
devices_router = Router(tags=["devices"])
users_router = Router(tags=["users"])

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
    return page_response(page, lambda device: device_view(device).wire)


@devices_router.get("/{device_id}", response={200: DeviceOut, 404: ErrorOut, **DEVICE_ERRORS})
def retrieve_device(request: HttpRequest, device_id: str) -> HttpResponse:
    policy.authorize(actor_of(request), "device.read")
    device = get_device(device_id)
    if device is None:
        raise NotFound()
    return json_response(200, device_view(device).wire)


@devices_router.post(
    "/{device_id}/revoke",
    response={200: DeviceOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, **DEVICE_ERRORS},
)
def revoke_device(request: HttpRequest, device_id: str) -> HttpResponse:
    return to_http(execute(RevokeDevice(device_id=device_id), context_for(request)))


@router.post(
    "/password",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut},
)
def change_password(request: HttpRequest, payload: PasswordChangeIn) -> HttpResponse:
    """Change one's own password. The old one is checked as a login checks it (a wrong one
    counts towards the same lockout). Every other session ends at once; this one is kept: the
    tokens the caller holds keep working, nothing is re-issued."""
    actor = actor_of(request)
    guard = LoginGuard.of(actor.username, client_ip(request))
    guard.refuse_if_locked(device=actor.device_id)
    if check_credentials(actor.username, payload.old_password) is None:
        guard.failed(device=actor.device_id)
        # 400, not 401: the caller's token is fine, and a client must not sign out over it.
        raise Invalid.field("old_password", "is not the current password")
    guard.succeeded()
    command = ChangeOwnPassword(password=payload.new_password, keep_session=_session_of(request))
    return to_http(execute(command, Context(actor=actor)))


def _session_of(request: HttpRequest) -> UUID | None:
    """The session (refresh-token family) of the access token the request was made with."""
    _, _, token = request.headers.get("Authorization", "").partition(" ")
    return tokens.decode(token.strip(), expected_type="access").family


def _signup_limit() -> ratelimit.Limit:
    return ratelimit.Limit("signup-ip", settings.SIGNUPS_PER_IP, settings.SIGNUP_WINDOW_S)


@router.post(
    "/signup",
    auth=None,
    response={201: UserOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
)
def signup(request: HttpRequest, payload: SignUpIn) -> HttpResponse:
    """Self sign-up, when QM_SIGNUP is on (404 otherwise, as if there were no such route): an
    inactive party account, which cannot sign in until an admin activates it (PATCH /users).
    Attempts are counted per client address, like failed logins."""
    if not settings.SIGNUP:
        raise NotFound()
    ratelimit.check(_signup_limit(), client_ip(request))
    command = SignUp(username=payload.username, password=payload.password)
    return to_http(execute(command, Context(actor=SIGNUP_ACTOR)))


USER_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut}


@users_router.post("", response={201: UserOut, 409: ErrorOut, 422: ErrorOut, **USER_ERRORS})
def create_user(request: HttpRequest, payload: UserCreateIn) -> HttpResponse:
    command = CreateUser(
        username=payload.username,
        password=payload.password,
        role=payload.role,
        locations=tuple(payload.locations),
        is_active=payload.is_active,
        customer=payload.customer,
        farmer=payload.farmer,
    )
    return to_http(execute(command, context_for(request)))


@users_router.get("", response={200: UserPageOut, **USER_ERRORS})
def list_all_users(request: HttpRequest, params: Query[UserListQuery]) -> HttpResponse:
    policy.authorize(actor_of(request), "user.read")
    page = list_users(
        page=USER_ORDER.request(cursor=params.cursor, limit=params.limit),
        role=params.role,
        is_active=params.is_active,
    )
    views = iter(user_views(list(page.rows)))
    return page_response(page, lambda _: next(views).wire)


@users_router.get("/{user_id}", response={200: UserOut, 404: ErrorOut, **USER_ERRORS})
def retrieve_user(request: HttpRequest, user_id: UUID) -> HttpResponse:
    policy.authorize(actor_of(request), "user.read")
    user = get_user(user_id)
    if user is None:
        raise NotFound()
    return json_response(200, user_view(user).wire)


@users_router.patch(
    "/{user_id}",
    response={200: UserOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, **USER_ERRORS},
)
def update_user(request: HttpRequest, user_id: UUID, payload: UserPatchIn) -> HttpResponse:
    """Change a user; only the fields given. `is_active: false` ends their sessions at once;
    `password` (a reset) ends every session of theirs too."""
    command = UpdateUser(
        user=user_id,
        role=payload.role,
        locations=None if payload.locations is None else tuple(payload.locations),
        is_active=payload.is_active,
        password=payload.password,
        customer=payload.customer,
        farmer=payload.farmer,
    )
    return to_http(execute(command, context_for(request)))
