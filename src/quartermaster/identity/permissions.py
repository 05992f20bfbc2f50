"""The permission policy: the one module that decides who may do what, where, to which record.

Every adapter (REST, sync, WebSocket, admin, CLI) and the command pipeline ask `authorize`;
nothing else decides. Three rules, in order:

1. Role: ALLOWED_ROLES maps each action to the roles that may take it. Default deny: an action
   missing from the table is refused (403) for everyone but the system actor.
2. Location: a record that belongs to a location the actor is not assigned to answers 404, so its
   existence is not revealed (staff and party; admin, manager and auditor see every location).
3. Ownership: for OWN_RECORDS_ONLY actions, a role listed there may touch only records it owns
   (a party user reads only their own statements); anyone else's answers 404.

Auditors read everything and change nothing: only READ_ACTIONS may list them (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings

from quartermaster.core.errors import NotFound, PermissionDenied
from quartermaster.core.policy import NO_RECORD, Owner
from quartermaster.core.types import Actor
from quartermaster.identity.models import Role

ADMIN, MANAGER, STAFF, AUDITOR, PARTY = (
    Role.ADMIN.value,
    Role.MANAGER.value,
    Role.STAFF.value,
    Role.AUDITOR.value,
    Role.PARTY.value,
)
EVERYONE = frozenset({ADMIN, MANAGER, STAFF, AUDITOR, PARTY})
READERS = frozenset({ADMIN, MANAGER, STAFF, AUDITOR})
SYSTEM_ROLE = "system"
# Nobody signed in: the self sign-up endpoint acts as it, and may only sign up.
ANONYMOUS = "anonymous"
SIGNUP_ACTOR = Actor(user_id=None, username="self sign-up", role=ANONYMOUS)

# Roles that see every location; everyone else is scoped to their assigned locations.
UNSCOPED_ROLES = frozenset({ADMIN, MANAGER, AUDITOR, SYSTEM_ROLE})

ALLOWED_ROLES: dict[str, frozenset[str]] = {
    # sessions: anyone may manage their own
    "session.start": EVERYONE,
    "session.refresh": EVERYONE,
    "session.end": EVERYONE,
    # users: admins create and change them (the users API, the back office, the CLI);
    # managers see them (the back office lists them); anyone changes their own password
    "user.create": frozenset({ADMIN}),
    "user.read": frozenset({ADMIN, MANAGER}),
    "user.password.change": EVERYONE,
    # self sign-up (QM_SIGNUP): nobody signed in, only the sign-up actor; an admin approves
    "user.signup": frozenset({ANONYMOUS}),
    # items
    "item.read": READERS,
    "item.create": frozenset({ADMIN, MANAGER}),
    "item.delete": frozenset({ADMIN, MANAGER}),
    "item.adjust": frozenset({ADMIN, MANAGER, STAFF}),
    "item.update": frozenset({ADMIN, MANAGER, STAFF}),
    # Within an action a role may take, what only some may do (`authorize_beyond`): set an
    # item's price; sell further from the list price than QM_MAX_STAFF_DISCOUNT_BP; receive
    # from a supplier at a location not configured to receive (`receives`).
    "item.price": frozenset({ADMIN, MANAGER}),
    "sale.price_override": frozenset({ADMIN, MANAGER}),
    "stock.receive_anywhere": frozenset({ADMIN, MANAGER}),
    # locations, stock, movements, assets
    "location.read": READERS,
    "location.create": frozenset({ADMIN, MANAGER}),
    "stock.read": READERS,
    "stock.receive": frozenset({ADMIN, MANAGER, STAFF}),
    "stock.move": frozenset({ADMIN, MANAGER, STAFF}),
    "stock.adjust": frozenset({ADMIN, MANAGER}),
    "stock.rebuild": frozenset({ADMIN}),
    "movement.read": READERS,
    "asset.read": READERS,
    "asset.return": frozenset({ADMIN, MANAGER, STAFF}),
    # sales
    "customer.read": READERS,
    "customer.create": frozenset({ADMIN, MANAGER, STAFF}),
    "customer.update": frozenset({ADMIN, MANAGER, STAFF}),
    # which party user signs in as a customer: who reads its statement, so admins only
    "customer.link_party": frozenset({ADMIN}),
    "sale.read": READERS,
    "sale.record": frozenset({ADMIN, MANAGER, STAFF}),
    "sale.confirm": frozenset({ADMIN, MANAGER, STAFF}),
    "sale.void": frozenset({ADMIN, MANAGER}),
    "invoice.read": READERS,
    # e-mail an invoice (its PDF) to the customer: whoever may sell at its location
    "invoice.email": frozenset({ADMIN, MANAGER, STAFF}),
    "payment.read": READERS,
    "payment.record": frozenset({ADMIN, MANAGER, STAFF}),
    # credit and meters (sales.credit): money paid back out of a customer's credit is a
    # manager's call; drivers read meters; how a customer pays (cash or credit, its limit, its
    # meter and rate) is set by managers (`authorize_beyond` within customer.update), and only
    # they may sell past a credit limit
    "refund.record": frozenset({ADMIN, MANAGER}),
    "meter.reading.record": frozenset({ADMIN, MANAGER, STAFF}),
    "customer.terms": frozenset({ADMIN, MANAGER}),
    "sale.over_credit_limit": frozenset({ADMIN, MANAGER}),
    # the journal: money is read by those who answer for it; only admins post or reverse
    "journal.read": frozenset({ADMIN, MANAGER, AUDITOR}),
    "journal.post": frozenset({ADMIN}),
    "journal.reverse": frozenset({ADMIN}),
    # posting what sales made before the journal existed would have posted (an upgrade tool)
    "journal.backfill": frozenset({ADMIN}),
    # the market: admins keep the catalogue, settings, farmers and rates; the back office reads
    "market.flower.read": READERS,
    "market.flower.create": frozenset({ADMIN}),
    "market.settings.read": READERS,
    "market.settings.update": frozenset({ADMIN}),
    "market.farmer.read": READERS,
    "market.farmer.create": frozenset({ADMIN}),
    "market.farmer.update": frozenset({ADMIN}),
    "market.rate.read": READERS,
    "market.rate.post": frozenset({ADMIN}),
    # inspections: managers author templates, everyone with access reads published ones;
    # inspectors (staff) work on their own inspections only (OWN_RECORDS_ONLY); managers and
    # admins approve, reject and restore
    "inspection.template.read": READERS,
    "inspection.template.create": frozenset({ADMIN, MANAGER}),
    "inspection.template.update": frozenset({ADMIN, MANAGER}),
    "inspection.template.publish": frozenset({ADMIN, MANAGER}),
    "inspection.read": READERS,
    "inspection.create": frozenset({ADMIN, MANAGER, STAFF}),
    "inspection.update": frozenset({ADMIN, MANAGER, STAFF}),
    "inspection.submit": frozenset({ADMIN, MANAGER, STAFF}),
    "inspection.approve": frozenset({ADMIN, MANAGER}),
    "inspection.reject": frozenset({ADMIN, MANAGER}),
    "inspection.delete": frozenset({ADMIN, MANAGER, STAFF}),
    "inspection.restore": frozenset({ADMIN, MANAGER}),
    # media: whoever fills inspections uploads photos and signatures and confirms their own
    # uploads; inspectors read their own uploads and the media attached to an inspection they
    # may read (OWN_RECORDS_ONLY, media.attachments), managers, admins and auditors everyone's
    # (managers see every location)
    "media.upload": frozenset({ADMIN, MANAGER, STAFF}),
    "media.confirm": frozenset({ADMIN, MANAGER, STAFF}),
    "media.read": READERS,
    "media.collect": frozenset({ADMIN}),
    # notifications: the back office watches delivery and sends a failed one again; the
    # worker's bookkeeping and providers' reports run as the system actor
    "notification.read": frozenset({ADMIN, MANAGER}),
    "notification.retry": frozenset({ADMIN, MANAGER}),
    # the market's daily work (seed 004's matrix): clerks record entries and change their own
    # of the same market day (OWN_SAME_DAY_ONLY), admins any; admins generate, pay and cancel
    # settlements; a settlement is approved by an admin, a clerk or its own farmer
    "market.entry.read": READERS,
    "market.entry.create": frozenset({ADMIN, STAFF}),
    "market.entry.update": frozenset({ADMIN, STAFF}),
    "market.entry.void": frozenset({ADMIN, STAFF}),
    # advances are handed out at the counter, online or from a clerk's tablet (a sync op)
    "market.advance.read": READERS,
    "market.advance.record": frozenset({ADMIN, STAFF}),
    "market.settlement.read": READERS | {PARTY},
    "market.settlement.generate": frozenset({ADMIN}),
    "market.settlement.approve": frozenset({ADMIN, STAFF, PARTY}),
    "market.settlement.pay": frozenset({ADMIN}),
    "market.settlement.cancel": frozenset({ADMIN}),
    "market.report.read": READERS,
    # a customer's or farmer's statement: parties read their own only (OWN_RECORDS_ONLY)
    "statement.read": READERS | {PARTY},
    # sync: each op is authorized again as its own command
    "sync.batch": frozenset({ADMIN, MANAGER, STAFF}),
    "sync.changes": EVERYONE,
    "sync.device_status": frozenset({ADMIN, MANAGER, STAFF}),
    # conflicts: staff read the ones their own writes raised; managers resolve (DESIGN "Roles")
    "conflict.read": frozenset({ADMIN, MANAGER, STAFF, AUDITOR}),
    "conflict.resolve": frozenset({ADMIN, MANAGER}),
    # audit
    "audit.read": frozenset({ADMIN, MANAGER, AUDITOR}),
    "audit.verify": frozenset({ADMIN, MANAGER, AUDITOR}),
    # failed logins, permission denials, refused sync ops: for those who watch over access
    "security.read": frozenset({ADMIN, AUDITOR}),
    # users beyond creation: managers see them in the back office; only admins change them, so
    # nobody can raise their own role
    "user.update": frozenset({ADMIN}),
    # devices: anyone's login registers their device (session.start); listing and revoking
    "device.read": frozenset({ADMIN, MANAGER, AUDITOR}),
    "device.revoke": frozenset({ADMIN}),
    # loads: the sender dispatches at the source, the receiver counts at the destination; a
    # shortage above the threshold waits for a manager
    "load.read": READERS,
    "load.dispatch": frozenset({ADMIN, MANAGER, STAFF}),
    "load.receive": frozenset({ADMIN, MANAGER, STAFF}),
    "load.approve": frozenset({ADMIN, MANAGER}),
    # refills: the depot sends its empties to the filling plant and receives the fulls back
    "refill.read": READERS,
    "refill.send": frozenset({ADMIN, MANAGER, STAFF}),
    "refill.receive": frozenset({ADMIN, MANAGER, STAFF}),
    # the deposits a customer holds with us (a liability), read like the customer
    "deposit.read": READERS,
    # day-ends: the driver (or a manager) counts the truck; a manager closes the day
    "day_end.read": READERS,
    "day_end.create": frozenset({ADMIN, MANAGER, STAFF}),
    "day_end.approve": frozenset({ADMIN, MANAGER}),
    # a first batch from a new device id makes it the caller's: whoever may sync
    "device.claim": frozenset({ADMIN, MANAGER, STAFF}),
}

# Actions that change nothing; besides their own sessions, the only ones an auditor may be given.
READ_ACTIONS = frozenset(
    {
        "user.read",
        "item.read",
        "sync.changes",
        "sync.device_status",
        "conflict.read",
        "audit.read",
        "audit.verify",
        "security.read",
        "device.read",
        "location.read",
        "statement.read",
        "stock.read",
        "movement.read",
        "asset.read",
        "customer.read",
        "sale.read",
        "invoice.read",
        "payment.read",
        "journal.read",
        "market.flower.read",
        "market.settings.read",
        "market.farmer.read",
        "market.rate.read",
        "notification.read",
        "load.read",
        "refill.read",
        "deposit.read",
        "day_end.read",
        "inspection.template.read",
        "inspection.read",
        "media.read",
        "market.entry.read",
        "market.advance.read",
        "market.settlement.read",
        "market.report.read",
    }
)

# (action → roles) that may act only on records they own: `authorize(..., owner_id=...)`.
OWN_RECORDS_ONLY: dict[str, frozenset[str]] = {
    # staff see the sync status of their own devices only
    "sync.device_status": frozenset({STAFF}),
    "statement.read": frozenset({PARTY}),
    "conflict.read": frozenset({STAFF}),
    # an inspector sees and works on the inspections assigned to them, no one else's
    "inspection.read": frozenset({STAFF}),
    "inspection.update": frozenset({STAFF}),
    "inspection.submit": frozenset({STAFF}),
    "inspection.delete": frozenset({STAFF}),
    # an inspector confirms only the media they uploaded, and reads those and the media
    # attached to a record they may read (an inspection of theirs: media.attachments asks)
    "media.confirm": frozenset({STAFF}),
    "media.read": frozenset({STAFF}),
    # a farmer reads and approves only their own settlements (the owner is the farmer's user)
    "market.settlement.read": frozenset({PARTY}),
    "market.settlement.approve": frozenset({PARTY}),
}

# (action → roles) that may change only the market entries they recorded, and only on the
# entry's own market day; anything else is refused with 403 (seed 004: "edit own entry" for
# clerks, "edit any entry" for admins). `authorize_entry_change` applies it.
OWN_SAME_DAY_ONLY: dict[str, frozenset[str]] = {
    "market.entry.update": frozenset({STAFF}),
    "market.entry.void": frozenset({STAFF}),
}

# Feed entities a role in OWN_RECORDS_ONLY[<entity>.read] reads only when the record is theirs:
# entity → the field of its feed data naming its owner. Their tombstones carry no data, so
# they reach everyone who sees the location (an id, nothing more).
OWNED_FEED_ENTITIES: dict[str, str] = {"inspection": "assignee"}


def authorize(
    actor: Actor,
    action: str,
    *,
    location_id: UUID | None = None,
    owner_id: Owner = NO_RECORD,
) -> None:
    """Return if `actor` may take `action` on a record at `location_id` owned by `owner_id`;
    raise PermissionDenied (403) for a forbidden action, NotFound (404) for a hidden record.

    Pass the record's location and owner whenever the record has them (`owner_id=None` for a
    record that belongs to nobody); omitting them asks only whether the role may take the action
    at all (creating, listing before scoping the list).
    """
    if actor.role == SYSTEM_ROLE:
        return
    roles = ALLOWED_ROLES.get(action)
    if roles is None or actor.role not in roles:
        raise PermissionDenied(f"{actor.role} may not {action}")
    if location_id is not None and not can_see_location(actor, location_id):
        raise NotFound()
    if (
        owner_id is not NO_RECORD
        and actor.role in OWN_RECORDS_ONLY.get(action, frozenset())
        and (owner_id is None or owner_id != actor.user_id)
    ):
        raise NotFound()


def authorize_entry_change(
    actor: Actor, action: str, *, recorded_by: UUID | None, same_market_day: bool
) -> None:
    """`authorize` for changing a market entry recorded by `recorded_by`; a role limited by
    OWN_SAME_DAY_ONLY gets 403 for another's entry or an entry of an earlier market day."""
    authorize(actor, action)
    if actor.role in OWN_SAME_DAY_ONLY.get(action, frozenset()) and (
        recorded_by is None or recorded_by != actor.user_id or not same_market_day
    ):
        raise PermissionDenied(f"{actor.role} may change only their own entries of the same day")


class NeedsManager(PermissionDenied):
    """403 for what the actor's role may do only within limits, asked beyond them; a manager
    (or an admin) may do it. `fields` names the value that went beyond."""

    code = "needs_manager"


def authorize_beyond(actor: Actor, action: str, *, field: str, message: str) -> None:
    """Raise NeedsManager unless `actor` may take `action`, the part of a wider action that
    only ALLOWED_ROLES[action] may do (a price change within an item edit, say)."""
    if actor.role == SYSTEM_ROLE or actor.role in ALLOWED_ROLES.get(action, frozenset()):
        return
    raise NeedsManager(message, fields={field: message})


def authorize_price_change(actor: Actor) -> None:
    authorize_beyond(actor, "item.price", field="price", message="a price change needs a manager")


def within_discount(*, list_minor: int, unit_minor: int, max_discount_bp: int) -> bool:
    """True when `unit_minor` is at most `max_discount_bp` basis points from the list price,
    either way (a price far above the list is as much a manager's call as one far below)."""
    return abs(unit_minor - list_minor) * 10_000 <= list_minor * max(0, max_discount_bp)


def authorize_unit_price(actor: Actor, *, list_minor: int, unit_minor: int, field: str) -> None:
    """A sale line's own unit price: staff may stray from the list price by at most
    QM_MAX_STAFF_DISCOUNT_BP; further needs a manager."""
    if within_discount(
        list_minor=list_minor,
        unit_minor=unit_minor,
        max_discount_bp=settings.MAX_STAFF_DISCOUNT_BP,
    ):
        return
    authorize_beyond(
        actor,
        "sale.price_override",
        field=field,
        message="a price this far from the list price needs a manager",
    )


def authorize_receipt(actor: Actor, *, location_receives: bool) -> None:
    """Receiving from a supplier: staff only at a location configured to receive."""
    if location_receives:
        return
    authorize_beyond(
        actor,
        "stock.receive_anywhere",
        field="to_location",
        message="this location does not receive from suppliers; a receipt needs a manager",
    )


def allows(
    actor: Actor, action: str, *, location_id: UUID | None = None, owner_id: Owner = NO_RECORD
) -> bool:
    """`authorize` as a yes/no, for menus and the back office."""
    try:
        authorize(actor, action, location_id=location_id, owner_id=owner_id)
    except (PermissionDenied, NotFound):
        return False
    return True


def can_see_location(actor: Actor, location_id: UUID) -> bool:
    return sees_every_location(actor) or location_id in actor.location_ids


def sees_every_location(actor: Actor) -> bool:
    """False: reads must be filtered to `actor.location_ids`."""
    return actor.role in UNSCOPED_ROLES


def visible_location_ids(actor: Actor) -> frozenset[UUID] | None:
    """The locations whose records `actor` may see, for scoping list queries; None means all."""
    return None if actor.role in UNSCOPED_ROLES else actor.location_ids


# Records every reader of the feed may see wherever they belong: the item catalogue (names,
# prices) is shared by all staff. Stock stays scoped: an item row's `qty` (stock at the default
# location) is hidden from a reader who cannot see that location (`sees_item_qty`).
CATALOGUE_ENTITIES = frozenset({"item"})


@dataclass(frozen=True)
class FeedScope:
    """Which change-feed rows an actor may read.

    `everything`: all rows. Otherwise rows at `location_ids`, rows of `catalogue` entities,
    rows that belong to no location when `unlocated` is set (customers, deletions of catalogue
    records), and rows owned by `owner_id` (a party user's own customer record, sales,
    invoices, credit notes and payments).
    """

    everything: bool
    location_ids: frozenset[UUID] = frozenset()
    unlocated: bool = False
    catalogue: frozenset[str] = frozenset()
    # The records' owner: a party user's own rows (FeedEntry.owner_id); for the entities of
    # `owned_only` (entity → owner field of its data), the only records of theirs shown.
    owner_id: UUID | None = None
    owned_only: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.everything
            or self.location_ids
            or self.unlocated
            or self.catalogue
            or self.owner_id
        )


def feed_scope(actor: Actor) -> FeedScope:
    """Staff read their locations and the shared catalogue; party users (customers, farmers)
    read the rows of their own records only."""
    if actor.role in UNSCOPED_ROLES:
        return FeedScope(everything=True)
    if actor.role == STAFF:
        owned = tuple(
            (entity, field)
            for entity, field in OWNED_FEED_ENTITIES.items()
            if STAFF in OWN_RECORDS_ONLY.get(f"{entity}.read", frozenset())
        )
        return FeedScope(
            everything=False,
            location_ids=actor.location_ids,
            unlocated=True,
            catalogue=CATALOGUE_ENTITIES,
            owned_only=owned,
            owner_id=actor.user_id,
        )
    if actor.role == PARTY and actor.user_id is not None:
        return FeedScope(everything=False, owner_id=actor.user_id)
    return FeedScope(everything=False)


def sees_item_qty(actor: Actor, default_location_id: UUID) -> bool:
    """An item's `qty` is its stock at the default location: shown to those who see it."""
    return can_see_location(actor, default_location_id)


def can_read_device_status(actor: Actor, device_owner_id: UUID | None) -> bool:
    """A device's sync status: its own user, managers and admins (OWN_RECORDS_ONLY)."""
    return allows(actor, "sync.device_status", owner_id=device_owner_id)


def own_records_only(actor: Actor, action: str) -> bool:
    """True when `actor` may take `action` only on records they own (lists narrow to them)."""
    return actor.role in OWN_RECORDS_ONLY.get(action, frozenset())
