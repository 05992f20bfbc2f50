"""Tamper evidence without trusting the database (issue 10, item 8): signed checkpoints kept
outside it catch a chain cut short; `audit verify --state` catches business rows edited
directly; an inclusion proof of one invoice checks offline against a published checkpoint."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from quartermaster.cli import main
from tests.conftest import Api
from tests.ledger_helpers import make_customer, make_item, ok, receive, sell
from tests.test_cli import run

ROOT = Path(__file__).resolve().parents[2]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "checkpoints"
    with override_settings(CHECKPOINT_DIR=str(directory)):
        yield directory


@pytest.mark.slow
def test_a_cut_tail_with_its_head_rewound_fails_verify_against_the_checkpoint(
    tmp_path: Path,
) -> None:
    assert run(["demo"], tmp_path).returncode == 0
    signed = run(["audit", "checkpoint"], tmp_path)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    [published] = (tmp_path / "checkpoints").glob("checkpoint-*.json")
    checkpoint = json.loads(published.read_text())
    assert checkpoint["seq"] > 5 and checkpoint["signature"]
    assert run(["audit", "verify"], tmp_path).returncode == 0

    # Someone with the database file drops the triggers, cuts the chain after entry 3 and
    # rewinds the head to match: the chain alone still verifies.
    with sqlite3.connect(tmp_path / "quartermaster.sqlite3") as db:
        db.execute("DROP TRIGGER audit_no_delete")
        db.execute("DELETE FROM core_auditentry WHERE seq > 3")
        (hash_3,) = db.execute("SELECT hash FROM core_auditentry WHERE seq = 3").fetchone()
        db.execute("UPDATE core_chainhead SET audit_seq = 3, audit_hash = ?", (hash_3,))

    verified = run(["audit", "verify"], tmp_path)

    assert verified.returncode == 1, verified.stdout
    assert "audit chain OK: 3 entries" in verified.stdout
    assert (
        f"chain truncated: the checkpoint of {checkpoint['at']} covers entries 1..{checkpoint['seq']}, the chain now ends at 3"
        in verified.stdout
    )

    with sqlite3.connect(tmp_path / "quartermaster.sqlite3") as db:  # the whole chain emptied
        db.execute("DELETE FROM core_auditentry")
        db.execute("UPDATE core_chainhead SET audit_seq = 0, audit_hash = ?", ("0" * 64,))
    emptied = run(["audit", "verify"], tmp_path)
    assert emptied.returncode == 1 and "the chain now ends at 0" in emptied.stdout


def shop_day(admin: Api, default_location_id: str) -> dict[str, Any]:
    """A day of business through the API: stock in, two sales (one voided), a payment."""
    item = make_item(admin, "cylinder 14.2 kg", price="950.00")
    receive(admin, default_location_id, [{"item": item, "qty": 10}])
    customer = make_customer(admin)
    sale = ok(sell(admin, customer["id"], default_location_id, [{"item": item, "qty": 2}]))
    voided = ok(sell(admin, customer["id"], default_location_id, [{"item": item, "qty": 1}]))
    ok(admin.post(f"/api/v1/transactions/{voided['id']}/void", {"reason": "wrong customer"}), 200)
    payment = ok(
        admin.post(
            "/api/v1/payments", {"customer": customer["id"], "amount": "500.00", "method": "cash"}
        )
    )
    return {"item": item, "customer": customer, "sale": sale, "payment": payment}


@pytest.mark.django_db
def test_verify_state_names_each_row_edited_outside_the_pipeline(
    admin: Api, default_location_id: str, capsys: pytest.CaptureFixture[str], checkpoint_dir: Path
) -> None:
    day = shop_day(admin, default_location_id)
    code, out = cli(capsys, "audit", "verify", "--state")
    assert code == 0, out
    assert "tables agree with the chain" in out

    payment_id, item_id = day["payment"]["id"], day["item"]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE sales_payment SET amount_minor = amount_minor * 100")
        cursor.execute(
            "UPDATE inventory_stock SET qty = qty + 5 WHERE location_id = %s",
            [
                default_location_id.replace("-", "")
                if connection.vendor == "sqlite"
                else default_location_id
            ],
        )
        cursor.execute("UPDATE inventory_item SET name = 'cylinder 19 kg'")
        cursor.execute("UPDATE sales_customer SET name = 'Someone Else'")
        cursor.execute(
            "UPDATE sales_saletransaction SET status = 'draft' WHERE id = %s",
            [
                day["sale"]["id"].replace("-", "")
                if connection.vendor == "sqlite"
                else day["sale"]["id"]
            ],
        )

    code, out = cli(capsys, "audit", "verify", "--state")

    assert code == 1
    assert f'payment {payment_id}: amount is "50000.00" in the table, "500.00" in the chain' in out
    assert f"stock {item_id}:{default_location_id}: qty is 13 in the table, 8 in the chain" in out
    assert (
        f'item {item_id}: name is "cylinder 19 kg" in the table, "cylinder 14.2 kg" in the chain'
        in out
    )
    assert f'customer {day["customer"]["id"]}: name is "Someone Else"' in out
    assert (
        f'sale {day["sale"]["id"]}: status is "draft" in the table, "confirmed" in the chain' in out
    )
    assert "audit BROKEN: 5 problems" in out


@pytest.mark.django_db
def test_an_invoice_proof_checks_offline_against_the_published_checkpoint(
    admin: Api,
    staff: Api,
    default_location_id: str,
    capsys: pytest.CaptureFixture[str],
    checkpoint_dir: Path,
    tmp_path: Path,
) -> None:
    day = shop_day(admin, default_location_id)
    invoice_id = day["sale"]["invoice"]["id"]
    query = f"/api/v1/audit/proof?entity_type=invoice&entity_id={invoice_id}"
    assert admin.get(query).body["code"] == "no_checkpoint"

    code, out = cli(capsys, "audit", "checkpoint")
    assert code == 0, out
    [published] = checkpoint_dir.glob("checkpoint-*.json")
    _, public_key = cli(capsys, "audit", "public-key")
    later = make_item(admin, "regulator")  # after the checkpoint: not provable yet

    proof = admin.get(query)

    assert proof.status == 200, proof.body
    assert proof.body["public_key"] == public_key.strip()
    [entry] = proof.body["entries"]
    assert json.loads(entry["leaf_input"].split("\n", 1)[1])["after"]["total"] == "1900.00"
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proof.body))
    verified = verify_offline(proof_file, public_key.strip(), published, f"invoice:{invoice_id}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VERIFIED" in verified.stdout

    # A total changed in the proof, or a proof held to another record, does not verify.
    forged = dict(
        proof.body,
        entries=[dict(entry, leaf_input=entry["leaf_input"].replace('"1900.00"', '"19.00"'))],
    )
    proof_file.write_text(json.dumps(forged))
    assert (
        verify_offline(
            proof_file, public_key.strip(), published, f"invoice:{invoice_id}"
        ).returncode
        == 1
    )
    proof_file.write_text(json.dumps(proof.body))
    assert (
        verify_offline(
            proof_file, public_key.strip(), published, "invoice:someone-elses"
        ).returncode
        == 1
    )

    assert admin.get(f"/api/v1/audit/proof?entity_type=item&entity_id={later}").status == 404
    assert staff.get(query).status == 403
    assert admin.get("/api/v1/audit/proof?entity_type=invoice").status == 400


def verify_offline(
    proof: Path, public_key: str, checkpoint: Path, entity: str
) -> subprocess.CompletedProcess[str]:
    """The documented script, run with nothing of the project on its path."""
    return subprocess.run(
        [
            sys.executable,
            "-I",
            str(ROOT / "docs" / "verify_audit_proof.py"),
            str(proof),
            "--public-key",
            public_key,
            "--checkpoint",
            str(checkpoint),
            "--entity",
            entity,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=proof.parent,
    )
