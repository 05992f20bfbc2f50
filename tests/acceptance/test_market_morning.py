"""A realistic market morning end to end, over real HTTP and the field agent (issue 11).

A live server (pytest-django's, on the test database: SQLite or PostgreSQL) and three tablets
running `quartermaster agent`, each with its own device database:

- the market's set-up, and rates for two of the three slots, posted over HTTP;
- two clerks' tablets and the owner's record 300 entries offline (the 08:00 slot has no rate
  yet) and an advance, then `agent sync`; the late rate prices the waiting entries;
- one entry is edited on two tablets from the same version, offline: both deltas apply;
- the outbox worker tells every farmer of every entry (WhatsApp, the fake provider);
- Murugan's settlement is generated, approved by his own login and paid; the "paid" message
  reaches the fake provider, in Tamil, after it failed twice; his slip reads in Tamil;
- `journal verify` and `audit verify --state` pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import connection, transaction

from quartermaster import cli
from quartermaster.client.store import DeviceStore
from quartermaster.notifications.messages import TEMPLATES, render
from tests.audit_tampering import Edit, assert_each_edit_is_caught
from tests.conftest import PASSWORD, create_user
from tests.documents.pdf_tools import first_page, ink, pdf_info, pdf_text
from tests.notifications.conftest import provider, work  # noqa: F401  (fixture)
from tests.notifications.fake_provider import FakeProvider

pytestmark = [
    pytest.mark.slow,
    # The live server's threads need to see what the test commits (and the reverse).
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

MARKET = "/api/v1/market"
TABLETS = ("clerk0", "clerk1", "owner")  # who is logged in on each tablet
EACH = 100  # entries per tablet: 300 in all
MINUTES = {"s1": "04:{:02d}", "s2": "06:{:02d}", "s3": "08:{:02d}"}
RATES = {  # s3's are posted only after the tablets synced
    ("jasmine", "s1"): "412.50",
    ("jasmine", "s2"): "380.00",
    ("jasmine", "s3"): "350.75",
    ("rose", "s1"): "12.25",
    ("rose", "s2"): "10.00",
    ("rose", "s3"): "9.50",
}
FEES = [
    {
        "code": "porter",
        "name": "Porter",
        "name_ta": "சுமை கூலி",
        "kind": "per_unit",
        "value": "0.50",
    },
    {"code": "cess", "name": "Cess", "name_ta": "வரி", "kind": "percent_bp", "value": 100},
]
SETTINGS = {
    "timezone": "Asia/Kolkata",
    "slots": [
        {"code": "s1", "starts": "04:00", "ends": "06:00"},
        {"code": "s2", "starts": "06:00", "ends": "08:00"},
        {"code": "s3", "starts": "08:00", "ends": "10:00"},
    ],
    "commission_bp": 1000,
    "fees": FEES,
}
PAID_PARAMS = TEMPLATES["market_settlement_paid"].params
FARMERS = [
    {"name": "Murugan", "name_ta": "முருகன்", "whatsapp": "+919876543210", "language": "ta"},
    {"name": "Valli", "name_ta": "வள்ளி", "whatsapp": "+919876500001", "language": "en"},
    {"name": "Selvi", "name_ta": "செல்வி", "whatsapp": "+919876500002", "language": "ta"},
]


@pytest.fixture
def flushable(transactional_db: None) -> Iterator[None]:
    """The flush that ends a transactional test DELETEs rows, which the append-only triggers
    (audit, journal) refuse on SQLite; PostgreSQL's TRUNCATE fires no row triggers. Lift them
    for one flush of our own, then put them back on the emptied tables."""
    yield
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%DELETE%'"
        )
        refusing = cursor.fetchall()
    with transaction.atomic():
        with connection.cursor() as cursor:
            for name, _ in refusing:
                cursor.execute(f'DROP TRIGGER "{name}"')
        connection.ops.execute_sql_flush(sql_flush(no_style(), connection))
        with connection.cursor() as cursor:
            for _, sql in refusing:
                cursor.execute(sql)


class Http:
    """One user's JSON client over the socket."""

    def __init__(self, base: str, username: str) -> None:
        reply = httpx.post(
            f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert reply.status_code == 200, reply.text
        self.client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {reply.json()['access']}"},
            timeout=60,
        )

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        reply = self.client.request(method, path, json=body)
        assert reply.status_code == expect, (method, path, reply.text)
        return reply.json()


@dataclass
class Tablet:
    db: Path
    user: str
    device: str

    def agent(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
        """`quartermaster agent ARGS` on this tablet, as its user would type it."""
        capsys.readouterr()
        code = cli.main(["agent", *args[:1], "--db", str(self.db), *args[1:]])
        return code, capsys.readouterr().out

    def record(
        self, capsys: pytest.CaptureFixture[str], op_type: str, payload: Any, *more: str
    ) -> None:
        code, out = self.agent(capsys, "record", op_type, "--payload", json.dumps(payload), *more)
        assert code == 0, out

    def sync(self, capsys: pytest.CaptureFixture[str], server: str) -> str:
        code, out = self.agent(
            capsys, "sync", "--server", server, "--username", self.user, "--password", PASSWORD
        )
        assert code == 0, out
        return out


def line_total(qty: Decimal, rate: str) -> Decimal:
    return (qty * Decimal(rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def morning_entry(tablet: int, n: int, today: str) -> tuple[str, str, int, str, Decimal]:
    """The n-th delivery on `tablet`: (flower, slot, farmer index, arrived_at, qty)."""
    slot = ("s1", "s2", "s3")[n % 3]
    flower = "rose" if n % 4 == 3 else "jasmine"
    if flower == "rose":
        qty = Decimal(1 + (n + tablet) % 9)  # bundles
    else:
        qty = Decimal(500 + 37 * n + 11 * tablet) / 1000  # kg, to the gram
    at = f"{today}T{MINUTES[slot].format((n * 7 + tablet) % 60)}:00+05:30"
    return flower, slot, (n // 3 + tablet) % len(FARMERS), at, qty


def qty_text(flower: str, qty: Decimal) -> Any:
    return f"{qty:.3f}" if flower == "jasmine" else int(qty)


def test_a_market_morning_through_the_agent_the_outbox_and_the_slip(
    live_server: Any,
    provider: FakeProvider,  # noqa: F811
    flushable: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = live_server.url
    for name, role in (("owner", "admin"), ("clerk0", "staff"), ("clerk1", "staff")):
        create_user(name, role)
    owner = Http(base, "owner")
    owner.call("PUT", f"{MARKET}/settings", SETTINGS)
    flowers = {
        "jasmine": owner.call(
            "POST",
            f"{MARKET}/flowers",
            {"code": "jasmine", "name": "Jasmine", "name_ta": "மல்லிகை", "unit": "kg"},
            201,
        )["id"],
        "rose": owner.call(
            "POST",
            f"{MARKET}/flowers",
            {"code": "rose", "name": "Rose", "name_ta": "ரோஜா", "unit": "bundle"},
            201,
        )["id"],
    }
    farmers = [
        owner.call("POST", f"{MARKET}/farmers", {**f, "phone": f["whatsapp"]}, 201) for f in FARMERS
    ]
    murugan_id = farmers[0]["id"]
    today = datetime.now(ZoneInfo("Asia/Kolkata")).date().isoformat()
    for (flower, slot), rate in RATES.items():
        if slot != "s3":
            body = {"flower": flowers[flower], "date": today, "slot": slot, "rate": rate}
            owner.call("POST", f"{MARKET}/rates", body, 201)

    # The rush: every tablet records offline, the owner's an advance to Murugan too.
    tablets = [
        Tablet(tmp_path / f"tablet-{i}.sqlite3", user, f"tablet-{i}")
        for i, user in enumerate(TABLETS)
    ]
    expected: dict[str, Decimal] = {}  # gross per farmer id, at the final rates
    for i, tablet in enumerate(tablets):
        tablet.agent(capsys, "status", "--device", tablet.device)
        for n in range(EACH):
            flower, slot, farmer, at, qty = morning_entry(i, n, today)
            payload = {
                "farmer": farmers[farmer]["id"],
                "flower": flowers[flower],
                "qty": qty_text(flower, qty),
                "arrived_at": at,
            }
            tablet.record(capsys, "market.entry.create", payload, "--temp-id", f"t{i}-{n}")
            fid = farmers[farmer]["id"]
            expected[fid] = expected.get(fid, Decimal(0)) + line_total(qty, RATES[flower, slot])
    advance = {"farmer": murugan_id, "amount": "500.00", "method": "cash"}
    tablets[2].record(capsys, "market.advance.record", advance, "--temp-id", "advance-1")

    outputs = [tablet.sync(capsys, base) for tablet in tablets]

    assert "pushed 100 ops: 100 accepted, 0 rejected" in outputs[0], outputs[0]
    assert "pushed 101 ops: 101 accepted, 0 rejected" in outputs[2], outputs[2]
    waiting = owner.call("GET", f"{MARKET}/entries?status=awaiting_rate&limit=500")["results"]
    assert len(waiting) == len(tablets) * 33  # n % 3 == 2 for 33 of 100

    # Entry t0-1 (Murugan's jasmine, 06:07, 0.537 kg) edited on two tablets, both from
    # version 1: its clerk adds a kilo; the owner, who saw it in his replica, takes 250 g off.
    with DeviceStore(tablets[0].db) as store:
        shared = store.resolve("t0-1")
    with DeviceStore(tablets[2].db) as store:
        seen = store.replica("market.entry")[shared]
    assert shared is not None and (seen["qty"], seen["version"]) == ("0.537", 1)
    assert seen["farmer"] == murugan_id
    tablets[0].record(
        capsys, "market.entry.update", {"id": shared, "qty": "1.537"}, "--base-version", "1"
    )
    tablets[2].record(
        capsys, "market.entry.update", {"id": shared, "qty": "0.287"}, "--base-version", "1"
    )
    for tablet in (tablets[0], tablets[2]):
        assert "1 accepted, 0 rejected" in tablet.sync(capsys, base)
    merged = owner.call("GET", f"{MARKET}/entries/{shared}")
    assert (merged["qty"], merged["version"]) == ("1.287", 3)  # 0.537 + 1 - 0.25
    expected[murugan_id] += line_total(Decimal("0.750"), RATES["jasmine", "s2"])

    # The 08:00 rates arrive late and price the entries that waited for them.
    priced = 0
    for flower in flowers:
        body = {"flower": flowers[flower], "date": today, "slot": "s3", "rate": RATES[flower, "s3"]}
        priced += owner.call("POST", f"{MARKET}/rates", body, 201)["priced_entries"]
    assert priced == len(tablets) * 33
    report = owner.call("GET", f"{MARKET}/reports/daily?date={today}")
    assert (report["entries"], report["awaiting_rate"]) == (300, 0)
    assert Decimal(report["gross"]) == sum(expected.values())
    by_farmer = {row["farmer"]: Decimal(row["gross"]) for row in report["by_farmer"]}
    assert by_farmer == expected

    # Every farmer heard of every delivery and of the advance.
    lines = work(capsys)
    assert lines[-1] == "outbox: 301 sent, 0 retried, 0 failed"
    assert len(provider.of("whatsapp")) == 301

    settlement = owner.call(
        "POST",
        f"{MARKET}/settlements",
        {"farmer": murugan_id, "period_from": today, "period_to": today},
        201,
    )
    assert Decimal(settlement["gross"]) == expected[murugan_id]
    assert settlement["entry_count"] == 100
    assert settlement["advance_recovered"] == "500.00"
    party_user = create_user("murugan", "party")
    owner.call("PATCH", f"{MARKET}/farmers/{murugan_id}", {"user": party_user["id"]})
    murugan = Http(base, "murugan")
    path = f"{MARKET}/settlements/{settlement['id']}"
    assert murugan.call("POST", f"{path}/approve")["status"] == "approved"
    assert work(capsys)[-1] == "outbox: 2 sent, 0 retried, 0 failed"  # generated, approved

    provider.fail(2)
    paid = owner.call("POST", f"{path}/pay", {"method": "cash"})
    lines = work(capsys)

    assert paid["status"] == "paid"
    assert lines[-1] == "outbox: 1 sent, 2 retried, 0 failed"
    sends = provider.of("whatsapp")[-3:]
    assert [send.answered for send in sends] == [503, 503, 200]
    assert len({send.key for send in sends}) == 1
    message = sends[-1].body
    assert message["to"] == "919876543210"
    assert message["template"]["name"] == "market_settlement_paid"
    assert message["template"]["language"] == {"code": "ta"}
    words = [p["text"] for p in message["template"]["components"][0]["parameters"]]
    # What Murugan reads: the template registered with Meta under that name and language.
    assert render("market_settlement_paid", "ta", dict(zip(PAID_PARAMS, words, strict=True))) == (
        f"வணக்கம் முருகன். {today} முதல் {today} வரை கணக்கு முடிப்பு {settlement['number']}"
        f" செலுத்தப்பட்டது. நிகரத் தொகை: ₹{settlement['net']}."
    )
    to_murugan = owner.call("GET", "/api/v1/notifications?recipient=%2B919876543210&limit=500")
    [notice] = [n for n in to_murugan["results"] if n["template"] == "market_settlement_paid"]
    assert (notice["status"], notice["attempts"], notice["language"]) == ("sent", 3, "ta")

    slip = murugan.client.get(f"{path}/document")
    assert slip.status_code == 200 and slip.headers["content-type"] == "application/pdf"
    text = pdf_text(slip.content)
    # Tamil words that survive text extraction (it mangles some vowel signs and conjuncts:
    # "விவசாயி" comes out as "விவசொயி"); the page itself is checked as a picture below.
    net = f"₹{Decimal(settlement['net']):,.2f}"
    for word in (
        "பட்டுவாடா சீட்டு",  # settlement slip
        "செலுத்தப்பட்டது",  # paid
        "முருகன் (Murugan)",
        "முன்பணம் பிடித்தம்",  # advance recovered
        settlement["number"],
        farmers[0]["number"],
        net,
    ):
        assert word in text, (word, text)
    assert "மல்லிகை" in pdf_info(slip.content)["Keywords"] + pdf_info(slip.content)["Subject"]
    page = first_page(slip.content, dpi=100)
    assert ink(page) > 0.005
    # Kept for people to look at (the shaping): in $QM_SCREENSHOT_DIR when set.
    page.save(Path(os.environ.get("QM_SCREENSHOT_DIR") or tmp_path) / "morning-slip-ta.png")

    statement = murugan.call("GET", f"{MARKET}/farmers/{murugan_id}/statement")
    assert statement["balance"] == "0.00"
    assert owner.call("GET", "/api/v1/audit/verify")["ok"] is True
    assert cli.main(["journal", "verify"]) == 0
    assert cli.main(["audit", "verify", "--state"]) == 0
    # Each table's reader compares what was sealed: a row edited behind the pipeline is named.
    assert_each_edit_is_caught(
        capsys,
        [
            Edit("market.flower", "market_flower", "name = 'Marigold'"),
            Edit("market.farmer", "market_farmer", "name = 'Someone Else'"),
            Edit("market.settings", "market_marketsettings", "commission_bp = commission_bp + 1"),
            Edit("market.rate", "market_rateposting", "rate_minor = rate_minor + 100"),
            Edit("market.entry", "market_entry", "qty_base = qty_base + 1000"),
            Edit("market.advance", "market_advance", "amount_minor = amount_minor * 10"),
            Edit("market.settlement", "market_settlement", "net_minor = net_minor + 100"),
            Edit("journal_account", "journal_account", "name = 'Renamed'"),
            Edit("notification", "notifications_notification", "attempts = attempts + 1"),
        ],
    )
