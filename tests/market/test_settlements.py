"""Advances and settlements through HTTP and sync: the pinned arithmetic, entries locked to a
settlement, the approve / pay / cancel state machine, gap-free numbers, farmers approving their
own, and the journal (balanced, verified) behind every money event."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest
from django.test import Client

from quartermaster import cli
from quartermaster.journal.models import Entry as JournalEntry
from quartermaster.market.models import Entry, Settlement
from tests.conftest import Api, audit_count, create_user, login
from tests.documents.pdf_tools import first_page, get_pdf, ink, pdf_info, pdf_text
from tests.market.helpers import MARKET, S1_TIME, S2_TIME, Market, post_rate, record, set_up
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db

FEES = [
    {
        "code": "porter",
        "name": "Porter",
        "name_ta": "சுமை கூலி",
        "kind": "per_unit",
        "value": "1.50",
    },
    {"code": "cess", "name": "Cess", "name_ta": "வரி", "kind": "percent_bp", "value": 100},
    {"code": "token", "name": "Token", "name_ta": "டோக்கன்", "kind": "per_entry", "value": "2.00"},
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
PERIOD = {"period_from": "2026-03-01", "period_to": "2026-03-02"}


@dataclass
class Month:
    market: Market
    entries: list[dict[str, Any]]
    outside: dict[str, Any]
    awaiting: dict[str, Any]


@pytest.fixture
def month(admin: Api) -> Month:
    """Three priced entries of Murugan's in the period, one awaiting a rate, one void, one
    after the period, and an advance of 500.00."""
    assert admin.request("PUT", f"{MARKET}/settings", SETTINGS).status == 200
    market = set_up(admin)
    post_rate(admin, market.jasmine, "s1", "401.50")
    post_rate(admin, market.jasmine, "s2", "380.00")
    post_rate(admin, market.rose, "s1", "12.25")
    entries = [
        record(admin, market.farmer, market.jasmine, "12.345").body,  # 4956.52
        record(admin, market.farmer, market.jasmine, "2.000", S2_TIME).body,  # 760.00
        record(admin, market.farmer, market.rose, 7, "2026-03-02T05:00:00+05:30").body,  # 85.75
    ]
    awaiting = record(admin, market.farmer, market.jasmine, "1.000", "2026-03-01T08:30:00+05:30")
    void = record(admin, market.farmer, market.rose, 1).body
    assert admin.post(f"{MARKET}/entries/{void['id']}/void", {"reason": "typo"}).status == 200
    outside = record(admin, market.farmer, market.rose, 2, "2026-03-03T05:00:00+05:30").body
    record(admin, market.other_farmer, market.rose, 3)
    advance = advance_to(admin, market.farmer, "500.00")
    assert advance["advance_outstanding"] == "500.00"
    return Month(market, entries, outside, awaiting.body)


def advance_to(api: Api, farmer: str, amount: str, method: str = "cash") -> dict[str, Any]:
    reply = api.post(f"{MARKET}/advances", {"farmer": farmer, "amount": amount, "method": method})
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


def generate(admin: Api, farmer: str, **period: str) -> Any:
    return admin.post(f"{MARKET}/settlements", {"farmer": farmer, **PERIOD, **period})


def farmer_of(admin: Api, farmer: str) -> dict[str, Any]:
    body: dict[str, Any] = admin.get(f"{MARKET}/farmers/{farmer}").body
    return body


def balance(admin: Api, code: str) -> str:
    accounts = admin.get("/api/v1/journal/accounts?limit=500").body["results"]
    return next((a["balance"] for a in accounts if a["code"] == code), "0.00")


def journal_verifies(capsys: pytest.CaptureFixture[str]) -> bool:
    ok = cli.main(["journal", "verify"]) == 0 and cli.main(["audit", "verify"]) == 0
    capsys.readouterr()
    return ok


def party_login(admin: Api, farmer: str, username: str) -> Api:
    user = create_user(username, "party")
    assert admin.patch(f"{MARKET}/farmers/{farmer}", {"user": user["id"]}).status == 200
    return Api(Client(), login(username)["access"])


def test_an_advance_posts_to_the_journal_and_shows_as_outstanding(
    admin: Api, staff: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    market = set_up(admin)

    first = advance_to(admin, market.farmer, "500.00")
    second = advance_to(staff, market.farmer, "250.50", "upi")

    assert (first["number"], first["amount"], first["method"]) == ("ADV-000001", "500.00", "cash")
    assert second["advance_outstanding"] == "750.50"
    assert farmer_of(admin, market.farmer)["advance_outstanding"] == "750.50"
    listed = admin.get(f"{MARKET}/farmers").body["results"]
    assert [f["advance_outstanding"] for f in listed] == ["750.50", "0.00"]
    posted = admin.get(f"/api/v1/journal/entries/{first['journal_entry']}").body
    assert [(line["account"], line["debit"], line["credit"]) for line in posted["lines"]] == [
        ("advances_receivable:FMR-000001", "500.00", "0.00"),
        ("cash", "0.00", "500.00"),
    ]
    assert balance(admin, "bank") == "-250.50"
    assert journal_verifies(capsys)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0.00"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"method": "cheque"}, "method"),
        ({"farmer": "00000000-0000-0000-0000-000000000000"}, "farmer"),
    ],
)
def test_a_bad_advance_is_400_and_posts_nothing(
    admin: Api, body: dict[str, str], field: str
) -> None:
    market = set_up(admin)
    before = JournalEntry.objects.count()

    reply = admin.post(
        f"{MARKET}/advances", {"farmer": market.farmer, "amount": "5.00", "method": "cash", **body}
    )

    assert (reply.status, list(reply.body["fields"])) == (400, [field])
    assert JournalEntry.objects.count() == before


def test_a_settlement_follows_the_pinned_arithmetic_and_locks_its_entries(
    admin: Api, month: Month, capsys: pytest.CaptureFixture[str]
) -> None:
    farmer = month.market.farmer

    reply = generate(admin, farmer)

    assert reply.status == 201, reply.body
    body = reply.body
    assert (body["number"], body["status"], body["entry_count"]) == ("STL-000001", "draft", 3)
    # gross 4956.52 + 760.00 + 85.75; commission 10 % of 5802.27 = 580.227
    assert (body["gross"], body["commission"]) == ("5802.27", "580.23")
    # porter 21.345 units x 1.50 = 32.0175; cess 1 % = 58.0227; token 3 x 2.00
    assert body["fees"] == [
        {"code": "porter", "amount": "32.02"},
        {"code": "cess", "amount": "58.02"},
        {"code": "token", "amount": "6.00"},
    ]
    assert (body["advance_recovered"], body["net"]) == ("500.00", "4626.00")
    assert body["awaiting_rate_entries"] == 1
    assert sorted(e["id"] for e in body["entries"]) == sorted(e["id"] for e in month.entries)
    for entry in month.entries:
        locked = admin.get(f"{MARKET}/entries/{entry['id']}").body
        assert (locked["status"], locked["settlement"]) == ("settled", body["id"])
    assert Entry.objects.get(pk=month.outside["id"]).status == "open"
    assert Entry.objects.get(pk=month.awaiting["id"]).status == "awaiting_rate"
    after = farmer_of(admin, farmer)
    assert (after["advance_outstanding"], after["payable"]) == ("0.00", "4626.00")
    assert balance(admin, "market_proceeds") == "5802.27"
    assert balance(admin, "commission_income") == "-580.23"
    assert balance(admin, "fee_income:porter") == "-32.02"
    assert journal_verifies(capsys)


def test_a_settled_entry_cannot_change(admin: Api, month: Month) -> None:
    assert generate(admin, month.market.farmer).status == 201
    entry = month.entries[0]
    before = audit_count()

    patched = admin.patch(f"{MARKET}/entries/{entry['id']}", {"qty": "1.000"})
    voided = admin.post(f"{MARKET}/entries/{entry['id']}/void", {"reason": "x"})

    assert (patched.status, patched.body["code"]) == (409, "entry_settled")
    assert (voided.status, voided.body["code"]) == (409, "entry_settled")
    assert audit_count() == before


def test_a_farmer_approves_their_own_settlement_and_it_is_paid(
    admin: Api, month: Month, capsys: pytest.CaptureFixture[str]
) -> None:
    settlement = generate(admin, month.market.farmer).body
    murugan = party_login(admin, month.market.farmer, "murugan")
    valli = party_login(admin, month.market.other_farmer, "valli")
    path = f"{MARKET}/settlements/{settlement['id']}"

    not_hers = valli.post(f"{path}/approve")
    too_early = admin.post(f"{path}/pay", {"method": "cash"})
    approved = murugan.post(f"{path}/approve")
    again = murugan.post(f"{path}/approve")
    not_his_to_pay = murugan.post(f"{path}/pay", {"method": "cash"})
    paid = admin.post(f"{path}/pay", {"method": "cash"})
    cancel_paid = admin.post(f"{path}/cancel", {"reason": "too late"})

    assert (not_hers.status, too_early.status) == (404, 409)
    assert too_early.body["code"] == "invalid_state"
    assert (approved.status, approved.body["status"], approved.body["approved_by"]) == (
        200,
        "approved",
        "murugan",
    )
    assert (again.status, again.body["code"]) == (409, "invalid_state")
    assert not_his_to_pay.status == 403
    assert (paid.status, paid.body["status"], paid.body["payment_method"]) == (200, "paid", "cash")
    assert (cancel_paid.status, cancel_paid.body["code"]) == (409, "invalid_state")
    assert farmer_of(admin, month.market.farmer)["payable"] == "0.00"
    assert balance(admin, "cash") == "-5126.00"  # the advance and the net paid out
    assert murugan.get(path).status == 200
    assert valli.get(path).status == 404
    assert [s["id"] for s in murugan.get(f"{MARKET}/settlements").body["results"]] == [
        settlement["id"]
    ]
    assert valli.get(f"{MARKET}/settlements").body["results"] == []
    assert journal_verifies(capsys)


def test_cancelling_releases_the_entries_and_restores_the_advance_and_numbers_stay_gap_free(
    admin: Api, month: Month, capsys: pytest.CaptureFixture[str]
) -> None:
    farmer = month.market.farmer
    first = generate(admin, farmer).body
    nothing_open = generate(admin, farmer)

    cancelled = admin.post(f"{MARKET}/settlements/{first['id']}/cancel", {"reason": "wrong rate"})

    assert (nothing_open.status, nothing_open.body["code"]) == (400, "invalid")
    assert (cancelled.status, cancelled.body["status"], cancelled.body["cancel_reason"]) == (
        200,
        "cancelled",
        "wrong rate",
    )
    for entry in month.entries:
        released = admin.get(f"{MARKET}/entries/{entry['id']}").body
        assert (released["status"], released["settlement"]) == ("open", None)
    after = farmer_of(admin, farmer)
    assert (after["advance_outstanding"], after["payable"]) == ("500.00", "0.00")
    assert balance(admin, "market_proceeds") == "0.00"
    again = generate(admin, farmer, period_to="2026-03-03").body
    assert (again["number"], again["entry_count"]) == ("STL-000002", 4)
    assert again["advance_recovered"] == "500.00"
    assert Settlement.objects.count() == 2
    assert journal_verifies(capsys)


def test_generating_is_for_admins_and_a_clerk_may_approve(
    admin: Api, staff: Api, month: Month
) -> None:
    refused = staff.post(f"{MARKET}/settlements", {"farmer": month.market.farmer, **PERIOD})
    settlement = generate(admin, month.market.farmer).body

    approved = staff.post(f"{MARKET}/settlements/{settlement['id']}/approve")
    cancelled = staff.post(f"{MARKET}/settlements/{settlement['id']}/cancel", {"reason": "x"})

    assert (refused.status, refused.body["code"]) == (403, "permission_denied")
    assert approved.status == 200
    assert cancelled.status == 403


@pytest.mark.parametrize(
    ("period", "field"),
    [
        ({"period_from": "2026-03-05", "period_to": "2026-03-01"}, "period_to"),
        ({"period_from": "2025-01-01", "period_to": "2026-03-01"}, "period_to"),
        ({"period_from": "March"}, "period_from"),
    ],
)
def test_a_bad_period_is_400(admin: Api, month: Month, period: dict[str, str], field: str) -> None:
    reply = generate(admin, month.market.farmer, **period)

    assert (reply.status, list(reply.body["fields"])) == (400, [field])


def test_advances_and_approvals_sync_from_a_clerks_tablet(
    admin: Api, staff: Api, month: Month
) -> None:
    settlement = generate(admin, month.market.farmer).body

    reply = send(
        staff,
        [
            op(
                "market.advance.record",
                {"farmer": month.market.other_farmer, "amount": "100.00", "method": "cash"},
                client_temp_id="adv-1",
            ),
            op("market.settlement.approve", {"id": settlement["id"]}),
            op("market.settlement.approve", {"id": settlement["id"]}),
            op("market.settlement.pay", {"id": settlement["id"], "method": "cash"}),
        ],
        device="tablet-1",
    )

    assert statuses(reply) == [201, 200, 409, 400], reply.body
    assert reply.body["results"][0]["id_map"]["adv-1"] == reply.body["results"][0]["body"]["id"]
    assert farmer_of(admin, month.market.other_farmer)["advance_outstanding"] == "100.00"


def test_a_settlement_of_a_farmer_with_their_own_commission(
    admin: Api, make_api: Callable[..., Api]
) -> None:
    market = set_up(admin)
    assert admin.patch(f"{MARKET}/farmers/{market.farmer}", {"commission_bp": 750}).status == 200
    post_rate(admin, market.rose, "s1", "10.00")
    record(admin, market.farmer, market.rose, 3, S1_TIME)

    body = generate(admin, market.farmer).body

    # No fees in the default settings; 7.5 % of 30.00 = 2.25; no advance.
    assert (body["commission_bp"], body["commission"], body["fees"], body["net"]) == (
        750,
        "2.25",
        [],
        "27.75",
    )


def test_a_farmers_statement_runs_to_what_the_journal_says(
    admin: Api, staff: Api, month: Month
) -> None:
    farmer = month.market.farmer
    first = generate(admin, farmer).body
    admin.post(f"{MARKET}/settlements/{first['id']}/cancel", {"reason": "recount"})
    second = generate(admin, farmer).body
    admin.post(f"{MARKET}/settlements/{second['id']}/approve")
    admin.post(f"{MARKET}/settlements/{second['id']}/pay", {"method": "bank"})
    advance_to(admin, farmer, "100.00")

    reply = staff.get(f"{MARKET}/farmers/{farmer}/statement")

    assert reply.status == 200, reply.body
    body = reply.body
    kinds = [line["kind"] for line in body["lines"]]
    assert kinds.count("entry") == 5  # the void one left out; the awaiting one shown
    money = [(line["kind"], line["amount"]) for line in body["lines"] if line["amount"]]
    assert money == [
        ("advance", "-500.00"),
        ("settlement", "5126.00"),
        ("settlement_cancelled", "-5126.00"),
        ("settlement", "5126.00"),
        ("payment", "-4626.00"),
        ("advance", "-100.00"),
    ]
    assert body["balance"] == "-100.00"
    farmer_now = farmer_of(admin, farmer)
    assert (body["advance_outstanding"], body["payable"]) == ("100.00", "0.00")
    assert farmer_now["advance_outstanding"] == "100.00"
    window = staff.get(f"{MARKET}/farmers/{farmer}/statement?from=2026-03-02&to=2026-03-02")
    assert window.body["opening_balance"] == "0.00"
    assert [line["kind"] for line in window.body["lines"]] == ["entry"]


def test_a_farmer_reads_only_their_own_statement(admin: Api, month: Month) -> None:
    murugan = party_login(admin, month.market.farmer, "murugan")

    own = murugan.get(f"{MARKET}/farmers/{month.market.farmer}/statement")
    other = murugan.get(f"{MARKET}/farmers/{month.market.other_farmer}/statement")

    assert own.status == 200
    assert (other.status, other.body["code"]) == (404, "not_found")


def test_the_daily_report_totals_by_flower_slot_and_farmer(
    admin: Api, staff: Api, month: Month
) -> None:
    reply = staff.get(f"{MARKET}/reports/daily?date=2026-03-01")

    assert reply.status == 200, reply.body
    body = reply.body
    # Murugan: 4956.52 (s1) + 760.00 (s2) + one awaiting (s3); Valli: 3 roses at 12.25 (s1)
    assert (body["entries"], body["awaiting_rate"]) == (4, 1)
    assert [(f["code"], f["entries"], f["qty"], f["gross"]) for f in body["by_flower"]] == [
        ("jasmine", 3, "15.345", "5716.52"),
        ("rose", 1, 3, "36.75"),
    ]
    assert [(s["slot"], s["entries"]) for s in body["by_slot"]] == [("s1", 2), ("s2", 1), ("s3", 1)]
    assert [(f["number"], f["entries"], f["gross"]) for f in body["by_farmer"]] == [
        ("FMR-000001", 3, "5716.52"),
        ("FMR-000002", 1, "36.75"),
    ]
    assert body["gross"] == "5753.27"
    assert admin.get(f"{MARKET}/reports/daily").status == 400
    assert make_party(admin).get(f"{MARKET}/reports/daily?date=2026-03-01").status == 403


def make_party(admin: Api) -> Api:
    create_user("someone", "party")
    return Api(Client(), login("someone")["access"])


def test_reports_and_statements_download_as_csv_and_xlsx(admin: Api, month: Month) -> None:
    assert (
        admin.patch(f"{MARKET}/farmers/{month.market.farmer}", {"name": "=HYPERLINK()"}).status
        == 200
    )

    csv_reply = admin.client.get(
        f"{MARKET}/reports/daily?date=2026-03-01&format=csv",
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    xlsx_reply = admin.client.get(
        f"{MARKET}/farmers/{month.market.farmer}/statement?format=xlsx",
        headers={"Authorization": f"Bearer {admin.token}"},
    )

    assert csv_reply.status_code == 200
    assert csv_reply["Content-Type"].startswith("text/csv")
    text = csv_reply.content.decode("utf-8-sig").splitlines()
    assert text[0] == "by,code,name,entries,qty,unit,gross"
    assert "flower,jasmine,Jasmine,3,15.345,kg,5716.52" in text
    assert "farmer,FMR-000001,'=HYPERLINK(),3,,,5716.52" in text
    assert text[-1] == "total,,,4,,,5753.27"
    assert xlsx_reply.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx_reply.content))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows[0] == (
        "at",
        "kind",
        "reference",
        "description",
        "qty",
        "gross",
        "amount",
        "balance",
    )
    assert rows[1][1:6] == ("entry", "ENT-000001", "Jasmine (s1)", "12.345", 4956.52)
    assert rows[-1][1] == "advance" and rows[-1][7] == -500


def test_month_end_settles_every_farmer_with_open_entries_from_the_command_line(
    admin: Api, month: Month, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["market", "settle", "--from", "2026-03-01", "--to", "2026-03-31"])

    out = capsys.readouterr().out
    assert (code, out.strip()) == (0, "2 settlements generated, 0 refused")
    by_farmer = {s.farmer_id.hex: s for s in Settlement.objects.all()}
    assert by_farmer[month.market.farmer.replace("-", "")].entry_count == 4
    assert cli.main(["market", "settle", "--from", "2026-03-01", "--to", "2026-03-31"]) == 0
    assert capsys.readouterr().out.strip() == "0 settlements generated, 0 refused"
    assert cli.main(["market", "settle", "--from", "March", "--to", "2026-03-31"]) == 2
    assert journal_verifies(capsys)


def test_a_farmers_balance_reply_names_their_last_settlement(admin: Api, month: Month) -> None:
    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.market.notices import ReplyBalance
    from quartermaster.notifications.models import Notification

    settlement = generate(admin, month.market.farmer).body
    admin.post(f"{MARKET}/settlements/{settlement['id']}/approve")

    reply = execute(
        ReplyBalance(farmer=month.market.farmer, inbound_message_id="wamid.1"),
        Context(actor=SYSTEM_ACTOR),
    )

    assert reply.status == 200, reply.body
    params = Notification.objects.get(template="farmer_balance").params
    assert (params["payable"], params["advance_outstanding"]) == ("4626.00", "0.00")
    # Murugan reads Tamil: the line is in Tamil too, not English inside a Tamil message.
    assert params["last_settlement"] == (
        "STL-000001, 2026-03-01 முதல் 2026-03-02 வரை, ஒப்புதல் பெற்றது, நிகரம் ₹4626.00"
    )


def test_the_settlement_slip_is_a_pdf_in_the_farmers_language(admin: Api, month: Month) -> None:
    settlement = generate(admin, month.market.farmer).body
    murugan = party_login(admin, month.market.farmer, "murugan")
    valli = party_login(admin, month.market.other_farmer, "valli")
    path = f"{MARKET}/settlements/{settlement['id']}/document"

    slip = get_pdf(murugan, path)
    english = get_pdf(admin, f"{path}?lang=en")

    assert slip.status_code == english.status_code == 200
    assert slip["Content-Type"] == "application/pdf"
    tamil_text, english_text = pdf_text(slip.content), pdf_text(english.content)
    # Words that survive text extraction (conjuncts may not); the whole names are in metadata.
    for words in ("STL-000001", "விவசாயி", "Murugan", "FMR-000001", "₹4,626.00"):
        assert words in tamil_text, (words, tamil_text)
    for words in ("STL-000001", "Jasmine", "Rose", "Porter", "4,626.00", "2026"):
        assert words in english_text, (words, english_text)
    assert "மல்லிகை" in pdf_info(slip.content)["Keywords"] + pdf_info(slip.content)["Subject"]
    assert ink(first_page(slip.content)) > 0.005
    assert valli.get(path).status == 404
    assert admin.get(f"{MARKET}/settlements/{uuid.uuid4()}/document").status == 404


def test_a_farmer_hears_of_each_entry_advance_and_settlement_in_their_language(
    admin: Api, month: Month
) -> None:
    from quartermaster.notifications.models import Notification

    settlement = generate(admin, month.market.farmer).body
    admin.post(f"{MARKET}/settlements/{settlement['id']}/approve")
    admin.post(f"{MARKET}/settlements/{settlement['id']}/pay", {"method": "cash"})

    murugan = Notification.objects.filter(params__name="Murugan").order_by("created_at")
    templates = [n.template for n in murugan]
    assert templates.count("market_entry_recorded") == 6  # the void and the late one too
    assert templates[-4:] == [
        "market_advance_recorded",
        "market_settlement_generated",
        "market_settlement_approved",
        "market_settlement_paid",
    ]
    assert {n.language for n in murugan} == {"ta"}
    paid = murugan.last()
    assert paid is not None
    assert paid.params == {
        "name": "Murugan",
        "number": "STL-000001",
        "period": "2026-03-01 முதல் 2026-03-02 வரை",  # in his language, as the message
        "net": "4626.00",
    }
    awaiting = Notification.objects.get(params__number=month.awaiting["number"])
    assert awaiting.params["amount"] == "விலை இன்னும் வரவில்லை"
    valli = Notification.objects.filter(params__name="Valli")
    assert [(n.template, n.language) for n in valli] == [("market_entry_recorded", "en")]
