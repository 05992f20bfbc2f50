"""`audit verify --state` across snapshot evolution: a record is compared on the fields its
sealed snapshot has. A field added to the format later (a customer's `email`, sealed before it
existed) is not drift; a sealed field the row no longer reads is; tampering still is."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from quartermaster.cli import main
from quartermaster.core.audit_state import field_differences
from quartermaster.core.models import AuditEntry
from quartermaster.sales.selectors import CustomerView
from tests.conftest import Api
from tests.ledger_helpers import ok


def test_a_field_the_row_has_beyond_the_sealed_snapshot_is_not_compared() -> None:
    sealed = {"id": "c1", "name": "Lakshmi Stores", "version": 1}
    row = {**sealed, "email": "a@lakshmi.example", "credit_limit": None}

    assert field_differences(sealed, row) == []


def test_a_sealed_field_the_row_lacks_or_reads_otherwise_is_drift() -> None:
    sealed = {"id": "c1", "name": "Lakshmi Stores", "phone": "98450", "qty": 3}
    row = {"id": "c1", "name": "Someone Else", "qty": 9, "email": None}

    assert field_differences(sealed, row, derived=frozenset({"qty"})) == [
        'name is "Someone Else" in the table, "Lakshmi Stores" in the chain',
        'phone is absent from the table, "98450" in the chain',
    ]


def test_values_equal_as_json_are_the_same_snapshot() -> None:
    sealed = {"lines": [1, 2], "source": {"type": "sale", "id": "s"}}
    row = {"lines": (1, 2), "source": {"id": "s", "type": "sale"}}

    assert field_differences(sealed, row) == []


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def _sealed_as_before_email(view: CustomerView) -> dict[str, Any]:
    """A customer's snapshot as the code before `email` sealed it."""
    snapshot = _TO_SNAPSHOT(view)
    del snapshot["email"]
    return snapshot


_TO_SNAPSHOT = CustomerView.to_snapshot


def _sqlite_id(value: str) -> str:
    return value.replace("-", "") if connection.vendor == "sqlite" else value


@pytest.mark.django_db
def test_a_customer_sealed_before_email_existed_verifies_after_the_upgrade(
    admin: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer sealed by the code of before `email` (its entry lacks the field) ...
    with monkeypatch.context() as old_code:
        old_code.setattr(CustomerView, "to_snapshot", _sealed_as_before_email)
        old = ok(admin.post("/api/v1/customers", {"name": "Lakshmi Stores"}))
    [entry] = AuditEntry.objects.filter(entity_type="customer", entity_id=old["id"])
    assert "email" not in entry.after
    # ... and one sealed by today's code, with its address.
    new = ok(admin.post("/api/v1/customers", {"name": "Ravi Traders", "email": "r@ravi.example"}))

    # When today's code reads both rows (with `email`), nothing has drifted.
    code, out = _cli(capsys, "audit", "verify", "--state")
    assert code == 0, out
    assert "tables agree with the chain" in out

    # A row edited outside the pipeline is still caught, on a field each snapshot sealed.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sales_customer SET name = 'Someone Else' WHERE id = %s", [_sqlite_id(old["id"])]
        )
        cursor.execute(
            "UPDATE sales_customer SET email = 'thief@evil.example' WHERE id = %s",
            [_sqlite_id(new["id"])],
        )
    code, out = _cli(capsys, "audit", "verify", "--state")

    assert code == 1
    assert f'customer {old["id"]}: name is "Someone Else" in the table' in out
    assert (
        f'customer {new["id"]}: email is "thief@evil.example" in the table,'
        ' "r@ravi.example" in the chain' in out
    )
    assert "audit BROKEN: 2 problems" in out


@pytest.mark.django_db
def test_a_sealed_field_the_table_no_longer_reads_is_drift(
    admin: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = ok(admin.post("/api/v1/customers", {"name": "Lakshmi Stores"}))

    # A later reading of the table without `phone` (a field dropped): what was sealed is gone.
    def without_phone(view: CustomerView) -> dict[str, Any]:
        snapshot = _TO_SNAPSHOT(view)
        del snapshot["phone"]
        return snapshot

    monkeypatch.setattr(CustomerView, "to_snapshot", without_phone)
    code, out = _cli(capsys, "audit", "verify", "--state")

    assert code == 1
    assert f'customer {customer["id"]}: phone is absent from the table, "" in the chain' in out
