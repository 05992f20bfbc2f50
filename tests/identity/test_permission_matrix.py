"""The permission matrix, roles by actions, as tables: one line per action.

MATRIX is the expected policy, written out by hand so a change to the policy module shows up as a
failing test, not as a silent widening. Adding an action to the policy without a line here fails
`test_every_policy_action_has_a_line_in_the_matrix`; adding an HTTP route for it is one line in
ROUTES.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from quartermaster.core.commands import Command
from quartermaster.core.errors import NotFound, PermissionDenied
from quartermaster.core.types import Actor
from quartermaster.identity import permissions
from quartermaster.inventory.selectors import get_default_location
from tests.conftest import Api, audit_count, create_user, login
from tests.media.helpers import confirmed_media

pytestmark = pytest.mark.django_db

ROLES = ("admin", "manager", "staff", "auditor", "party")
A, M, S, U, P = ROLES  # U: aUditor
ALL = frozenset(ROLES)

MATRIX: dict[str, frozenset[str]] = {
    "session.start": ALL,
    "session.refresh": ALL,
    "session.end": ALL,
    "user.create": frozenset({A}),
    "user.read": frozenset({A, M}),
    "user.update": frozenset({A}),
    # one's own password: anyone signed in; sign-up: only the sign-up actor, no role
    "user.password.change": ALL,
    "user.signup": frozenset(),
    "item.read": frozenset({A, M, S, U}),
    "item.create": frozenset({A, M}),
    "item.delete": frozenset({A, M}),
    "item.adjust": frozenset({A, M, S}),
    "item.update": frozenset({A, M, S}),
    # beyond what staff may do within an action: a manager's
    "item.price": frozenset({A, M}),
    "sale.price_override": frozenset({A, M}),
    "stock.receive_anywhere": frozenset({A, M}),
    "audit.read": frozenset({A, M, U}),
    "audit.verify": frozenset({A, M, U}),
    "security.read": frozenset({A, U}),
    "sync.batch": frozenset({A, M, S}),
    "sync.changes": ALL,
    "sync.device_status": frozenset({A, M, S}),
    # staff read the conflicts their own writes raised; managers resolve them
    "conflict.read": frozenset({A, M, S, U}),
    "conflict.resolve": frozenset({A, M}),
    "device.read": frozenset({A, M, U}),
    "device.revoke": frozenset({A}),
    # a first batch from a new device id claims it: whoever may sync
    "device.claim": frozenset({A, M, S}),
    "location.read": frozenset({A, M, S, U}),
    "location.create": frozenset({A, M}),
    "stock.read": frozenset({A, M, S, U}),
    "stock.receive": frozenset({A, M, S}),
    "stock.move": frozenset({A, M, S}),
    "stock.adjust": frozenset({A, M}),
    "stock.rebuild": frozenset({A}),
    "movement.read": frozenset({A, M, S, U}),
    "asset.read": frozenset({A, M, S, U}),
    "asset.return": frozenset({A, M, S}),
    "customer.read": frozenset({A, M, S, U}),
    "customer.create": frozenset({A, M, S}),
    "customer.update": frozenset({A, M, S}),
    # who signs in as a customer reads its statement: admins say who
    "customer.link_party": frozenset({A}),
    "sale.read": frozenset({A, M, S, U}),
    "sale.record": frozenset({A, M, S}),
    "sale.confirm": frozenset({A, M, S}),
    "sale.void": frozenset({A, M}),
    "invoice.read": frozenset({A, M, S, U}),
    "invoice.email": frozenset({A, M, S}),
    "payment.read": frozenset({A, M, S, U}),
    "payment.record": frozenset({A, M, S}),
    # credit: refunds and terms are a manager's; drivers read meters
    "refund.record": frozenset({A, M}),
    "meter.reading.record": frozenset({A, M, S}),
    "customer.terms": frozenset({A, M}),
    "sale.over_credit_limit": frozenset({A, M}),
    # the journal: read by those who answer for the money; only admins post or reverse
    "journal.read": frozenset({A, M, U}),
    "journal.post": frozenset({A}),
    "journal.reverse": frozenset({A}),
    "journal.backfill": frozenset({A}),
    # the market: admins keep its catalogue, settings, farmers and rates; the back office reads
    "market.flower.read": frozenset({A, M, S, U}),
    "market.flower.create": frozenset({A}),
    "market.settings.read": frozenset({A, M, S, U}),
    "market.settings.update": frozenset({A}),
    "market.farmer.read": frozenset({A, M, S, U}),
    "market.farmer.create": frozenset({A}),
    "market.farmer.update": frozenset({A}),
    "market.rate.read": frozenset({A, M, S, U}),
    "market.rate.post": frozenset({A}),
    # the market's daily work (seed 004): clerks record entries and change their own of the
    # day; admins any; settlements generated, paid and cancelled by admins, approved by an
    # admin, a clerk or the farmer (own only); farmers read their own settlements only
    "market.entry.read": frozenset({A, M, S, U}),
    "market.entry.create": frozenset({A, S}),
    "market.entry.update": frozenset({A, S}),
    "market.entry.void": frozenset({A, S}),
    "market.advance.read": frozenset({A, M, S, U}),
    "market.advance.record": frozenset({A, S}),
    "market.settlement.read": frozenset({A, M, S, U, P}),
    "market.settlement.generate": frozenset({A}),
    "market.settlement.approve": frozenset({A, S, P}),
    "market.settlement.pay": frozenset({A}),
    "market.settlement.cancel": frozenset({A}),
    "market.report.read": frozenset({A, M, S, U}),
    # inspections: managers author templates; inspectors (staff) work on their own
    # inspections only; managers approve, reject and restore
    "inspection.template.read": frozenset({A, M, S, U}),
    "inspection.template.create": frozenset({A, M}),
    "inspection.template.update": frozenset({A, M}),
    "inspection.template.publish": frozenset({A, M}),
    "inspection.read": frozenset({A, M, S, U}),
    "inspection.create": frozenset({A, M, S}),
    "inspection.update": frozenset({A, M, S}),
    "inspection.submit": frozenset({A, M, S}),
    "inspection.approve": frozenset({A, M}),
    "inspection.reject": frozenset({A, M}),
    "inspection.delete": frozenset({A, M, S}),
    "inspection.restore": frozenset({A, M}),
    # media: whoever fills inspections uploads; inspectors confirm and read their own uploads
    # only, managers, admins (and auditors, reading) everyone's
    "media.upload": frozenset({A, M, S}),
    "media.confirm": frozenset({A, M, S}),
    "media.read": frozenset({A, M, S, U}),
    "media.collect": frozenset({A}),
    # notifications: the back office watches delivery and retries a failed one
    "notification.read": frozenset({A, M}),
    "notification.retry": frozenset({A, M}),
    # drivers collecting payment need the balance; parties read their own only
    "statement.read": frozenset({A, M, S, U, P}),
    # loads: sent and received by those who move stock; a costly shortage is a manager's
    "load.read": frozenset({A, M, S, U}),
    "load.dispatch": frozenset({A, M, S}),
    "load.receive": frozenset({A, M, S}),
    "load.approve": frozenset({A, M}),
    # refills: a depot's empties to the filling plant and the fulls back
    "refill.read": frozenset({A, M, S, U}),
    "refill.send": frozenset({A, M, S}),
    "refill.receive": frozenset({A, M, S}),
    # the deposits a customer holds, read like the customer
    "deposit.read": frozenset({A, M, S, U}),
    "day_end.read": frozenset({A, M, S, U}),
    "day_end.create": frozenset({A, M, S}),
    "day_end.approve": frozenset({A, M}),
}


def actor(role: str, *, location_ids: frozenset[uuid.UUID] = frozenset()) -> Actor:
    return Actor(user_id=uuid.uuid4(), username=role, role=role, location_ids=location_ids)


def test_every_policy_action_has_a_line_in_the_matrix() -> None:
    assert set(permissions.ALLOWED_ROLES) == set(MATRIX)


@pytest.mark.parametrize("action", sorted(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_policy_allows_exactly_the_matrix(role: str, action: str) -> None:
    allowed = role in MATRIX[action]
    who = actor(role)
    owner = who.user_id if action in permissions.OWN_RECORDS_ONLY else None

    if allowed:
        permissions.authorize(who, action, owner_id=owner)
    else:
        with pytest.raises(PermissionDenied):
            permissions.authorize(who, action, owner_id=owner)


def test_unknown_actions_are_denied_to_every_role() -> None:
    for role in ROLES:
        with pytest.raises(PermissionDenied):
            permissions.authorize(actor(role), "launch.missiles")


def test_the_system_actor_may_do_anything() -> None:
    permissions.authorize(actor("system"), "launch.missiles", location_id=uuid.uuid4())


def test_auditors_are_given_only_actions_that_change_nothing() -> None:
    auditor_actions = {action for action, roles in permissions.ALLOWED_ROLES.items() if U in roles}
    # their own sessions and their own password
    sessions = {"session.start", "session.refresh", "session.end", "user.password.change"}

    assert auditor_actions - sessions <= permissions.READ_ACTIONS
    # A read action is never the name of a command (commands are how state changes). The URL
    # configuration imports every adapter, so every command is registered.
    importlib.import_module("quartermaster.urls")
    assert len(Command.registry) > 5
    assert permissions.READ_ACTIONS.isdisjoint(Command.registry)
    assert set(permissions.ALLOWED_ROLES) >= permissions.READ_ACTIONS


@pytest.mark.parametrize("role", ["staff", "party"])
def test_scoped_roles_get_404_for_records_at_other_locations(role: str) -> None:
    mine, elsewhere = uuid.uuid4(), uuid.uuid4()
    who = actor(role, location_ids=frozenset({mine}))
    action = "item.read" if role == "staff" else "statement.read"
    owner = who.user_id if role == "party" else None

    permissions.authorize(who, action, location_id=mine, owner_id=owner)
    with pytest.raises(NotFound):
        permissions.authorize(who, action, location_id=elsewhere, owner_id=owner)


@pytest.mark.parametrize("role", ["admin", "manager", "auditor"])
def test_unscoped_roles_see_every_location(role: str) -> None:
    permissions.authorize(actor(role), "item.read", location_id=uuid.uuid4())


def test_party_users_read_only_their_own_statements() -> None:
    party = actor("party")

    permissions.authorize(party, "statement.read", owner_id=party.user_id)
    with pytest.raises(NotFound):
        permissions.authorize(party, "statement.read", owner_id=uuid.uuid4())
    with pytest.raises(NotFound):
        permissions.authorize(party, "statement.read", owner_id=None)  # nobody's is not theirs
    permissions.authorize(party, "statement.read")  # no record: may a party read statements?
    # A driver collecting payment reads any customer's balance.
    permissions.authorize(actor("staff"), "statement.read", owner_id=party.user_id)
    permissions.authorize(actor("manager"), "statement.read", owner_id=party.user_id)


# ---------------------------------------------------------------------------------------------
# The same matrix through HTTP: every route of an action answers its success status to the
# roles the matrix allows and 403 (changing nothing) to the others.


@dataclass(frozen=True)
class Route:
    action: str
    method: str
    path: str  # {item}, {device} and {entry} are filled in from the World
    success: int
    body: dict[str, Any] | None = None
    # Allowed roles that still get 404 here: the record is someone else's (OWN_RECORDS_ONLY).
    not_theirs: frozenset[str] = frozenset()
    # Allowed roles that still get 403 here: the record is someone else's (OWN_SAME_DAY_ONLY).
    forbidden: frozenset[str] = frozenset()
    # For an action within a wider one (a price change within an item edit): roles allowed the
    # wider action but not this one are refused 403 `needs_manager`, not `permission_denied`.
    within: str | None = None


ROUTES = [
    Route("user.read", "GET", "/api/v1/users", 200),
    Route("user.read", "GET", "/api/v1/users/{user}", 200),
    Route(
        "user.create",
        "POST",
        "/api/v1/users",
        201,
        {"username": "newcomer", "password": "a long password", "role": "staff"},
    ),
    Route("user.update", "PATCH", "/api/v1/users/{user}", 200, {"role": "manager"}),
    Route("load.read", "GET", "/api/v1/loads", 200),
    Route("deposit.read", "GET", "/api/v1/customers/{customer}/deposits", 200),
    Route(
        "refill.send",
        "POST",
        "/api/v1/refills",
        201,
        {"from_location": "{location}", "lines": [{"item": "{returnable}", "qty": 1}]},
    ),
    Route("refill.read", "GET", "/api/v1/refills/{refill}", 200),
    Route(
        "refill.receive",
        "POST",
        "/api/v1/refills/{refill}/receive",
        200,
        {"lines": [{"item": "{returnable}", "qty": 1}]},
    ),
    Route("day_end.read", "GET", "/api/v1/day-ends", 200),
    Route("item.read", "GET", "/api/v1/items", 200),
    Route("item.read", "GET", "/api/v1/items/{item}", 200),
    Route("item.read", "GET", "/items/{item}", 200),
    Route("item.create", "POST", "/api/v1/items", 201, {"name": "new item", "qty": 1}),
    Route("item.adjust", "PATCH", "/api/v1/items/{item}/qty", 200, {"delta": 1}),
    Route("item.update", "PATCH", "/api/v1/items/{item}", 200, {"unit": "box"}),
    Route(
        "item.price", "PATCH", "/api/v1/items/{item}", 200, {"price": "99.00"}, within="item.update"
    ),
    Route(
        "sale.price_override",
        "POST",
        "/api/v1/transactions",
        201,
        {
            "customer": "{customer}",
            "location": "{location}",
            "lines": [{"item": "{item}", "qty": 1, "unit_price": "0.00"}],
            "confirm": False,
        },
        within="sale.record",
    ),
    Route(
        "customer.terms",
        "PATCH",
        "/api/v1/customers/{customer}",
        200,
        {"payment_terms": "credit", "credit_limit": "5000.00"},
        within="customer.update",
    ),
    Route(
        "stock.receive_anywhere",
        "POST",
        "/api/v1/receipts",
        201,
        {"to_location": "{location}", "lines": [{"item": "{item}", "qty": 1}]},
        within="stock.receive",
    ),
    Route("conflict.read", "GET", "/api/v1/conflicts", 200),
    Route("item.delete", "DELETE", "/api/v1/items/{empty_item}", 204),
    Route("audit.read", "GET", "/api/v1/audit", 200),
    Route("audit.verify", "GET", "/api/v1/audit/verify", 200),
    Route("security.read", "GET", "/api/v1/security-events", 200),
    Route("device.read", "GET", "/api/v1/devices", 200),
    Route("device.read", "GET", "/api/v1/devices/{device}", 200),
    Route("device.revoke", "POST", "/api/v1/devices/{device}/revoke", 200),
    Route("sync.changes", "GET", "/api/v1/sync/changes", 200),
    Route("sync.batch", "POST", "/api/v1/sync/batch", 200, {"device_id": "mine", "ops": []}),
    Route("journal.read", "GET", "/api/v1/journal/entries?account=cash", 200),
    Route("journal.read", "GET", "/api/v1/journal/entries/{entry}", 200),
    Route("journal.read", "GET", "/api/v1/journal/accounts", 200),
    Route(
        "journal.post",
        "POST",
        "/api/v1/journal/entries",
        201,
        {
            "memo": "float",
            "lines": [
                {"account": "cash", "debit": "5.00"},
                {"account": "opening_balances", "credit": "5.00"},
            ],
        },
    ),
    Route("market.flower.read", "GET", "/api/v1/market/flowers", 200),
    Route(
        "market.flower.create",
        "POST",
        "/api/v1/market/flowers",
        201,
        {"code": "rose", "name": "Rose", "name_ta": "ரோஜா", "unit": "bundle"},
    ),
    Route("market.settings.read", "GET", "/api/v1/market/settings", 200),
    Route(
        "market.settings.update",
        "PUT",
        "/api/v1/market/settings",
        200,
        {
            "timezone": "Asia/Kolkata",
            "slots": [{"code": "s1", "starts": "04:00", "ends": "06:00"}],
            "commission_bp": 1000,
            "fees": [],
        },
    ),
    Route("market.farmer.read", "GET", "/api/v1/market/farmers", 200),
    Route("market.farmer.read", "GET", "/api/v1/market/farmers/{farmer}", 200),
    Route(
        "market.farmer.create",
        "POST",
        "/api/v1/market/farmers",
        201,
        {"name": "Murugan", "phone": "9876543210", "language": "ta"},
    ),
    Route(
        "market.farmer.update", "PATCH", "/api/v1/market/farmers/{farmer}", 200, {"village": "X"}
    ),
    Route("market.rate.read", "GET", "/api/v1/market/rates?date=2026-03-01", 200),
    Route("notification.read", "GET", "/api/v1/notifications?status=failed", 200),
    Route(
        "market.rate.post",
        "POST",
        "/api/v1/market/rates",
        201,
        {"flower": "{flower}", "date": "2026-03-01", "slot": "s1", "rate": "400.00"},
    ),
    Route("market.entry.read", "GET", "/api/v1/market/entries", 200),
    Route("market.entry.read", "GET", "/api/v1/market/entries/{market_entry}", 200),
    Route(
        "market.entry.create",
        "POST",
        "/api/v1/market/entries",
        201,
        {"farmer": "{farmer}", "flower": "{flower}", "qty": "1.500"},
    ),
    # The world's entry is the admin's: an admin changes any entry; a clerk not another's.
    Route(
        "market.entry.update",
        "PATCH",
        "/api/v1/market/entries/{market_entry}",
        200,
        {"qty": "2.000"},
        forbidden=frozenset({S}),
    ),
    Route(
        "market.entry.void",
        "POST",
        "/api/v1/market/entries/{market_entry}/void",
        200,
        {"reason": "x"},
        forbidden=frozenset({S}),
    ),
    Route(
        "market.advance.record",
        "POST",
        "/api/v1/market/advances",
        201,
        {"farmer": "{farmer}", "amount": "5.00", "method": "cash"},
    ),
    Route("market.advance.read", "GET", "/api/v1/market/advances", 200),
    Route("market.report.read", "GET", "/api/v1/market/reports/daily?date=2026-03-01", 200),
    Route(
        "statement.read",
        "GET",
        "/api/v1/market/farmers/{farmer}/statement",
        200,
        not_theirs=frozenset({P}),
    ),
    Route(
        "market.settlement.generate",
        "POST",
        "/api/v1/market/settlements",
        201,
        {"farmer": "{farmer}", "period_from": "{today}", "period_to": "{today}"},
    ),
    Route("market.settlement.read", "GET", "/api/v1/market/settlements", 200),
    Route(
        "market.settlement.read",
        "GET",
        "/api/v1/market/settlements/{settlement}",
        200,
        not_theirs=frozenset({P}),
    ),
    Route(
        "market.settlement.approve",
        "POST",
        "/api/v1/market/settlements/{settlement}/approve",
        200,
        not_theirs=frozenset({P}),
    ),
    Route(
        "market.settlement.cancel",
        "POST",
        "/api/v1/market/settlements/{settlement}/cancel",
        200,
        {"reason": "x"},
    ),
    Route(
        "journal.reverse", "POST", "/api/v1/journal/entries/{entry}/reverse", 201, {"reason": "x"}
    ),
    Route("inspection.template.read", "GET", "/api/v1/templates", 200),
    Route("inspection.template.read", "GET", "/api/v1/templates/{template}", 200),
    Route(
        "inspection.template.create",
        "POST",
        "/api/v1/templates",
        201,
        {
            "name": "Roof",
            "sections": [
                {"id": "s", "title": "S", "questions": [{"id": "q", "type": "text", "label": "Q"}]}
            ],
        },
    ),
    Route("inspection.read", "GET", "/api/v1/inspections", 200),
    # The world's inspection is the admin's: an inspector does not see it.
    Route(
        "inspection.read",
        "GET",
        "/api/v1/inspections/{inspection}",
        200,
        not_theirs=frozenset({S}),
    ),
    Route(
        "inspection.update",
        "PATCH",
        "/api/v1/inspections/{inspection}",
        200,
        {"answers": {"q": "x"}},
        not_theirs=frozenset({S}),
    ),
    Route(
        "inspection.create",
        "POST",
        "/api/v1/inspections",
        201,
        {"template": "{template}", "location": "{location}"},
    ),
    Route(
        "media.upload",
        "POST",
        "/api/v1/media/uploads",
        201,
        {"content_type": "image/png", "size": 10, "sha256": "0" * 64},
    ),
    # The world's photo is the admin's: an inspector does not see it.
    Route("media.read", "GET", "/api/v1/media/{media}", 200, not_theirs=frozenset({S})),
    Route("media.confirm", "POST", "/api/v1/media/{media}/confirm", 200, not_theirs=frozenset({S})),
    Route(
        "sync.device_status",
        "GET",
        "/api/v1/devices/{device}/sync-status",
        200,
        not_theirs=frozenset({S}),
    ),
]


@dataclass
class World:
    item: str
    device: str
    entry: str
    flower: str
    farmer: str
    market_entry: str
    settlement: str
    today: str
    template: str
    inspection: str
    media: str
    customer: str
    location: str
    empty_item: str  # one with no stock: deleting one with stock is 409 item_has_stock
    returnable: str  # a cylinder with empties at the default location
    refill: str  # a refill of one empty, sent
    user: str

    def fill(self, value: Any) -> Any:
        """`value` with every "{name}" string replaced by this world's record of that name."""
        if isinstance(value, dict):
            return {key: self.fill(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [self.fill(inner) for inner in value]
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return getattr(self, value[1:-1])
        return value


@pytest.fixture
def world(admin: Api, default_location_id: str) -> World:
    item = admin.post("/api/v1/items", {"name": "cylinder", "qty": 10, "price": "10.00"}).body["id"]
    driver = create_user("driver", "staff")
    truck = Api(Client(), login("driver", device_id="truck-07")["access"])
    assert truck.post("/api/v1/sync/batch", {"device_id": "truck-07", "ops": []}).status == 200
    entry = admin.post(
        "/api/v1/journal/entries",
        {
            "memo": "opening float",
            "lines": [
                {"account": "cash", "debit": "10.00"},
                {"account": "opening_balances", "credit": "10.00"},
            ],
        },
    ).body["id"]
    flower = admin.post(
        "/api/v1/market/flowers",
        {"code": "jasmine", "name": "Jasmine", "name_ta": "மல்லிகை", "unit": "kg"},
    ).body["id"]
    farmer = admin.post(
        "/api/v1/market/farmers", {"name": "Valli", "phone": "9876500000", "language": "en"}
    ).body["id"]
    for slot in ("s1", "s2", "s3"):
        rate = {"flower": flower, "date": "2026-01-01", "slot": slot, "rate": "10.00"}
        assert admin.post("/api/v1/market/rates", rate).status == 201
    market_entry = admin.post(
        "/api/v1/market/entries", {"farmer": farmer, "flower": flower, "qty": "1.000"}
    ).body
    other = admin.post(
        "/api/v1/market/farmers", {"name": "Kannan", "phone": "9876500001", "language": "ta"}
    ).body["id"]
    today = market_entry["market_day"]
    admin.post("/api/v1/market/entries", {"farmer": other, "flower": flower, "qty": "2.000"})
    settlement = admin.post(
        "/api/v1/market/settlements", {"farmer": other, "period_from": today, "period_to": today}
    ).body["id"]
    template = admin.post(
        "/api/v1/templates",
        {
            "name": "Roof",
            "sections": [
                {"id": "s", "title": "S", "questions": [{"id": "q", "type": "text", "label": "Q"}]}
            ],
        },
    ).body["id"]
    assert admin.post(f"/api/v1/templates/{template}/publish").status == 200
    location = get_default_location().id
    inspection = admin.post(
        "/api/v1/inspections", {"template": template, "location": str(location)}
    ).body["id"]
    customer = admin.post("/api/v1/customers", {"name": "Lakshmi Stores"}).body["id"]
    returnable = admin.post(
        "/api/v1/items", {"name": "LPG", "qty": 0, "returnable": True, "deposit": "1500.00"}
    ).body["id"]
    empties = {"item": returnable, "qty": 10, "condition": "empty"}
    receipt = {"to_location": str(location), "lines": [empties]}
    assert admin.post("/api/v1/receipts", receipt).status == 201
    refill = admin.post(
        "/api/v1/refills",
        {"from_location": str(location), "lines": [{"item": returnable, "qty": 1}]},
    ).body["id"]
    return World(
        item=item,
        device="truck-07",
        entry=entry,
        flower=flower,
        farmer=farmer,
        market_entry=market_entry["id"],
        settlement=settlement,
        today=today,
        template=template,
        inspection=inspection,
        media=confirmed_media(admin),
        location=str(location),
        customer=customer,
        empty_item=admin.post("/api/v1/items", {"name": "empty", "qty": 0}).body["id"],
        returnable=returnable,
        refill=refill,
        user=driver["id"],
    )


@pytest.fixture
def as_role(make_api: Callable[..., Api], default_location_id: str) -> Callable[[str], Api]:
    """A logged-in client for `role`, assigned to the default location (so refusals are about
    the role, not the location)."""
    return lambda role: make_api(role, f"matrix-{role}", locations=(default_location_id,))


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("role", ROLES)
def test_http_routes_follow_the_matrix(
    role: str, route: Route, world: World, as_role: Callable[[str], Api]
) -> None:
    api = as_role(role)
    path = route.path.format(
        item=world.item,
        device=world.device,
        entry=world.entry,
        farmer=world.farmer,
        market_entry=world.market_entry,
        settlement=world.settlement,
        template=world.template,
        inspection=world.inspection,
        media=world.media,
        empty_item=world.empty_item,
        customer=world.customer,
        refill=world.refill,
        user=world.user,
    )
    body = world.fill(route.body)
    audit_before = audit_count()

    reply = api.request(route.method, path, body)

    if role in route.not_theirs:
        assert (reply.status, reply.body["code"]) == (404, "not_found")
    elif role in route.forbidden:
        assert (reply.status, reply.body["code"]) == (403, "permission_denied")
        assert audit_count() == audit_before
    elif role in MATRIX[route.action]:
        assert reply.status == route.success, reply.body
    else:
        assert reply.status == 403, reply.body
        beyond = route.within is not None and role in MATRIX[route.within]
        assert reply.body["code"] == ("needs_manager" if beyond else "permission_denied")
        assert audit_count() == audit_before


def test_every_route_action_is_in_the_matrix() -> None:
    assert {route.action for route in ROUTES} <= set(MATRIX)
