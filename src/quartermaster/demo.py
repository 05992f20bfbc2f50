"""Demo data for a first run: four users with known passwords and a few items.

Everything goes through the command pipeline as the system actor, so the demo is audited too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quartermaster.core.commands import execute
from quartermaster.core.types import SYSTEM_ACTOR, Context
from quartermaster.identity.models import User
from quartermaster.identity.services import CreateUser
from quartermaster.inventory.selectors import get_default_location
from quartermaster.inventory.services import CreateItem


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str
    at_default_location: bool = False


DEMO_USERS = (
    DemoUser("admin", "admin", "admin-demo-pass"),
    DemoUser("manager", "manager", "manager-demo-pass"),
    DemoUser("driver1", "staff", "driver1-demo-pass", at_default_location=True),
    DemoUser("cashier1", "staff", "cashier1-demo-pass", at_default_location=True),
)

DEMO_ITEMS = (
    ("LPG cylinder 14.2 kg", 40, "905.00", "pcs"),
    ("LPG cylinder 5 kg", 25, "420.00", "pcs"),
    ("Regulator", 12, "350.00", "pcs"),
    ("Hose pipe 1.5 m", 30, "190.00", "pcs"),
)


def load_demo(report: Callable[[str], None]) -> None:
    ctx = Context(actor=SYSTEM_ACTOR)
    default_location = get_default_location()
    for demo_user in DEMO_USERS:
        if User.objects.filter(username=demo_user.username).exists():
            report(f"  user {demo_user.username:<9} exists, left as it is")
            continue
        locations = (default_location.id,) if demo_user.at_default_location else ()
        response = execute(
            CreateUser(
                username=demo_user.username,
                password=demo_user.password,
                role=demo_user.role,
                locations=locations,
            ),
            ctx,
        )
        if response.status != 201:
            raise RuntimeError(f"creating demo user {demo_user.username}: {response.body}")
        report(
            f"  user {demo_user.username:<9} role {demo_user.role:<8} password {demo_user.password}"
        )
    for name, qty, price, unit in DEMO_ITEMS:
        response = execute(
            CreateItem.model_validate({"name": name, "qty": qty, "price": price, "unit": unit}),
            ctx,
        )
        state = "created" if response.status == 201 else "exists"
        report(f"  item {name!r} {state}")
