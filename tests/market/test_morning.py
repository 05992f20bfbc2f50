"""A market morning end to end through HTTP and batch sync: rates for two slots, three clerks'
tablets record entries offline (some before their slot's rate exists, one entry edited on two
tablets), sync, the late rate prices the waiting entries, a settlement is generated, approved by
the farmer's own login and paid; the journal and the audit chain verify."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from quartermaster import cli
from tests.conftest import Api, create_user, login
from tests.market.helpers import MARKET, post_rate, set_up
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db

TABLETS = 3
EACH = 20  # entries per tablet: 60 in all


def test_a_market_morning(
    admin: Api, make_api: Callable[..., Api], capsys: pytest.CaptureFixture[str]
) -> None:
    market = set_up(admin)
    today = datetime.now(ZoneInfo("Asia/Kolkata")).date().isoformat()
    post_rate(admin, market.jasmine, "s1", "400.00", today)
    post_rate(admin, market.jasmine, "s2", "350.00", today)
    clerks = [make_api("staff", f"clerk{n}") for n in range(TABLETS)]
    slot_times = ["04:30", "06:30", "08:30"]  # s3 has no rate yet
    expected_gross = Decimal(0)
    batches = []
    for tablet, clerk in enumerate(clerks):
        ops = []
        for n in range(EACH):
            time = slot_times[n % 3]
            grams = 1000 + 250 * n + tablet
            ops.append(
                op(
                    "market.entry.create",
                    {
                        "farmer": market.farmer if n % 2 else market.other_farmer,
                        "flower": market.jasmine,
                        "qty": f"{grams // 1000}.{grams % 1000:03d}",
                        "arrived_at": f"{today}T{time}:00+05:30",
                    },
                    client_temp_id=f"t{tablet}-{n}",
                    device_seq=n + 1,
                )
            )
            rate = {"04:30": 400, "06:30": 350, "08:30": 300}[time]
            expected_gross += (Decimal(grams) / 1000 * rate).quantize(Decimal("0.01"))
        batches.append(send(clerk, ops, device=f"tablet-{tablet}"))
    assert [statuses(batch) for batch in batches] == [[201] * EACH] * TABLETS
    shared = batches[0].body["results"][1]["id_map"]["t0-1"]  # Murugan's, 1.250 kg in s2

    # The clerk who recorded it edits it on two tablets, both from version 1.
    own_a = send(
        clerks[0],
        [op("market.entry.update", {"id": shared, "qty": "2.250"}, base_version=1)],
        device="tablet-0",
    )
    own_b = send(
        clerks[0],
        [op("market.entry.update", {"id": shared, "qty": "1.000"}, base_version=1)],
        device="tablet-x",
    )
    assert statuses(own_a) == statuses(own_b) == [200]
    assert admin.get(f"{MARKET}/entries/{shared}").body["qty"] == "2.000"  # 1.250 + 1 - 0.25
    expected_gross += Decimal("0.75") * 350

    waiting = admin.get(f"{MARKET}/entries?status=awaiting_rate&limit=500").body["results"]
    assert len(waiting) == TABLETS * 6  # n % 3 == 2 for 6 of 20
    assert post_rate(admin, market.jasmine, "s3", "300.00", today)["priced_entries"] == 18

    report = admin.get(f"{MARKET}/reports/daily?date={today}").body
    assert (report["entries"], report["awaiting_rate"]) == (60, 0)
    assert Decimal(report["gross"]) == expected_gross

    settlement = admin.post(
        f"{MARKET}/settlements",
        {"farmer": market.farmer, "period_from": today, "period_to": today},
    ).body
    farmer_gross = next(f for f in report["by_farmer"] if f["farmer"] == market.farmer)["gross"]
    assert (settlement["entry_count"], settlement["gross"]) == (30, farmer_gross)
    create_user("murugan", "party")
    murugan = Api(Client(), login("murugan")["access"])
    user = admin.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {murugan.token}"})
    assert admin.patch(f"{MARKET}/farmers/{market.farmer}", {"user": user.body["id"]}).status == 200
    path = f"{MARKET}/settlements/{settlement['id']}"
    assert murugan.post(f"{path}/approve").body["status"] == "approved"
    assert admin.post(f"{path}/pay", {"method": "cash"}).body["status"] == "paid"

    statement = murugan.get(f"{MARKET}/farmers/{market.farmer}/statement").body
    assert statement["balance"] == "0.00"
    assert [line["kind"] for line in statement["lines"]][-2:] == ["settlement", "payment"]
    assert cli.main(["journal", "verify"]) == 0
    assert cli.main(["audit", "verify"]) == 0
    capsys.readouterr()
