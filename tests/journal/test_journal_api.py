"""The journal through HTTP: manual adjustments, reversals, reads, and who may do what."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.core.models import AuditEntry
from quartermaster.journal.models import Entry, Line
from tests.conftest import Api, audit_count

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/journal/entries"
ACCOUNTS = "/api/v1/journal/accounts"


def body(*lines: tuple[str, str, str], memo: str = "opening float") -> dict[str, Any]:
    """lines: (account, "debit" or "credit", amount)."""
    return {"memo": memo, "lines": [{"account": a, side: amount} for a, side, amount in lines]}


OPENING = body(("cash", "debit", "1250.50"), ("opening_balances", "credit", "1250.50"))


def balances(api: Api) -> dict[str, tuple[str, str, str]]:
    reply = api.get(ACCOUNTS)
    assert reply.status == 200, reply.body
    return {
        a["code"]: (a["debit_total"], a["credit_total"], a["balance"])
        for a in reply.body["results"]
    }


def test_an_admin_posts_a_balanced_adjustment(admin: Api) -> None:
    audit_before = audit_count()

    reply = admin.post(ENTRIES, OPENING)

    assert reply.status == 201, reply.body
    entry = reply.body
    assert entry["number"] == "JE-000001"
    assert entry["memo"] == "opening float"
    assert (entry["source"], entry["reverses"], entry["total"]) == (None, None, "1250.50")
    assert (entry["action"], entry["posted_by"]) == ("journal.post", "admin")
    assert entry["lines"] == [
        {"account": "cash", "debit": "1250.50", "credit": "0.00", "memo": ""},
        {"account": "opening_balances", "debit": "0.00", "credit": "1250.50", "memo": ""},
    ]
    assert balances(admin) == {
        "cash": ("1250.50", "0.00", "1250.50"),
        "opening_balances": ("0.00", "1250.50", "-1250.50"),
    }
    # The entry and the two accounts it opened are audited with the command.
    audited = AuditEntry.objects.filter(seq__gt=audit_before).order_by("seq")
    assert [(a.action, a.entity_type) for a in audited] == [
        ("journal.post", "journal_account"),
        ("journal.post", "journal_account"),
        ("journal.post", "journal_entry"),
    ]
    assert audited[2].entity_id == entry["id"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(("cash", "debit", "10.00"), ("opening_balances", "credit", "9.99")), "lines"),
        (body(("cash", "debit", "10.00")), "lines"),
        (body(("cash", "debit", "10.005"), ("bank", "credit", "10.005")), "lines[0].debit"),
        (body(("cash", "debit", "0"), ("bank", "credit", "0")), "lines[0].debit"),
        (body(("cash", "debit", "-1"), ("bank", "credit", "-1")), "lines[0].debit"),
        (body(("cash", "debit", "1e3"), ("bank", "credit", "1000")), "lines[0].debit"),
        (
            {"memo": "x", "lines": [{"account": "cash", "debit": "1", "credit": "1"}] * 2},
            "lines[0]",
        ),
        ({"memo": "x", "lines": [{"account": "cash"}, {"account": "bank"}]}, "lines[0]"),
        (body(("cash", "debit", "1"), ("petty_cash", "credit", "1")), "lines[1].account"),
        (body(("Cash!", "debit", "1"), ("bank", "credit", "1")), "lines[0].account"),
        (body(("cash", "debit", "1"), ("bank", "credit", "1"), memo="  "), "memo"),
        (
            body(
                ("cash", "debit", "99999999999999999999"),
                ("bank", "credit", "99999999999999999999"),
            ),
            "lines[0].debit",
        ),
        ({"memo": "x", "lines": [{"account": "cash", "debit": 10}]}, None),
        ({"memo": "x", "lines": "cash"}, None),
        ({"lines": []}, None),
    ],
)
def test_a_bad_adjustment_is_400_with_its_field_and_changes_nothing(
    admin: Api, payload: dict[str, Any], field: str | None
) -> None:
    audit_before = audit_count()

    reply = admin.post(ENTRIES, payload)

    assert reply.status == 400, reply.body
    if field is not None:
        assert field in reply.body["fields"], reply.body
    assert (Entry.objects.count(), Line.objects.count()) == (0, 0)
    assert audit_count() == audit_before
    assert balances(admin) == {}


def test_a_reversal_posts_the_mirror_entry_once(admin: Api) -> None:
    original = admin.post(ENTRIES, OPENING).body

    reversal = admin.post(f"{ENTRIES}/{original['id']}/reverse", {"reason": "typed twice"})
    again = admin.post(f"{ENTRIES}/{original['id']}/reverse", {"reason": "typed twice"})

    assert reversal.status == 201, reversal.body
    assert reversal.body["reverses"] == original["id"]
    assert reversal.body["number"] == "JE-000002"
    assert reversal.body["memo"] == "reverses JE-000001: typed twice"
    assert [
        (line["account"], line["debit"], line["credit"]) for line in reversal.body["lines"]
    ] == [
        ("cash", "0.00", "1250.50"),
        ("opening_balances", "1250.50", "0.00"),
    ]
    assert (again.status, again.body["code"]) == (409, "already_reversed")
    assert balances(admin) == {
        "cash": ("1250.50", "1250.50", "0.00"),
        "opening_balances": ("1250.50", "1250.50", "0.00"),
    }
    assert Entry.objects.count() == 2


def test_reversing_needs_an_entry_and_a_reason(admin: Api) -> None:
    original = admin.post(ENTRIES, OPENING).body

    missing = admin.post(
        f"{ENTRIES}/00000000-0000-0000-0000-000000000000/reverse", {"reason": "oops"}
    )
    blank = admin.post(f"{ENTRIES}/{original['id']}/reverse", {"reason": " "})

    assert missing.status == 404
    assert (blank.status, list(blank.body["fields"])) == (400, ["reason"])
    assert Entry.objects.count() == 1


def test_entries_of_an_account_newest_first_page_by_page(admin: Api, auditor: Api) -> None:
    for amount in ("1.00", "2.00", "3.00"):
        admin.post(ENTRIES, body(("cash", "debit", amount), ("opening_balances", "credit", amount)))
    admin.post(ENTRIES, body(("bank", "debit", "4.00"), ("opening_balances", "credit", "4.00")))

    first = auditor.get(f"{ENTRIES}?account=cash&limit=2")
    second = auditor.get(f"{ENTRIES}?account=cash&limit=2&cursor={first.body['next_cursor']}")
    everything = auditor.get(ENTRIES)
    bank = auditor.get(f"{ENTRIES}?account=bank")
    nothing = auditor.get(f"{ENTRIES}?account=fee_income:none")

    assert [e["number"] for e in first.body["results"]] == ["JE-000003", "JE-000002"]
    assert [e["number"] for e in second.body["results"]] == ["JE-000001"]
    assert second.body["next_cursor"] is None
    assert [e["number"] for e in everything.body["results"]] == [
        "JE-000004",
        "JE-000003",
        "JE-000002",
        "JE-000001",
    ]
    assert [e["total"] for e in bank.body["results"]] == ["4.00"]
    assert nothing.body == {"results": [], "next_cursor": None}
    for entry in everything.body["results"]:
        debits = sum(float(line["debit"]) for line in entry["lines"])
        assert debits == sum(float(line["credit"]) for line in entry["lines"]) > 0


@pytest.mark.parametrize(
    ("query", "field"),
    [("account=Not%20A%20Code", "account"), ("cursor=%%%", "cursor"), ("limit=0", "limit")],
)
def test_bad_list_parameters_are_400(auditor: Api, query: str, field: str) -> None:
    reply = auditor.get(f"{ENTRIES}?{query}")

    assert reply.status == 400
    assert field in reply.body["fields"]


def test_one_entry_reads_by_id(admin: Api, manager: Api) -> None:
    posted = admin.post(ENTRIES, OPENING).body

    reply = manager.get(f"{ENTRIES}/{posted['id']}")

    assert reply.status == 200
    assert reply.body == posted


@pytest.mark.parametrize("role", ["manager", "staff", "auditor"])
def test_only_admins_post_and_reverse(role: str, admin: Api, make_api: Any) -> None:
    posted = admin.post(ENTRIES, OPENING).body
    other = make_api(role)
    audit_before = audit_count()

    post = other.post(ENTRIES, OPENING)
    reverse = other.post(f"{ENTRIES}/{posted['id']}/reverse", {"reason": "mine"})

    assert (post.status, reverse.status) == (403, 403)
    assert Entry.objects.count() == 1
    assert audit_count() == audit_before


def test_staff_do_not_read_the_journal(staff: Api) -> None:
    assert staff.get(ENTRIES).status == 403
    assert staff.get(ACCOUNTS).status == 403
