"""The newcomer's rough edges (issue 10, item 11): clean CLI errors, `quartermaster locations`,
`serve` on a busy port, `stock rebuild --check` naming what differs, the agent's exit code and
`--new-temp-id`, the README walkthrough run as written, and the op catalogue published."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.test_served_api import start_quartermaster, stop
from tests.client.test_agent_cli import agent
from tests.test_cli import run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_createuser_with_a_bad_location_says_so_and_locations_lists_them(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0

    not_an_id = run(
        ["createuser", "clerk", "--role", "staff", "--location", "depot"],
        tmp_path,
        stdin="s3cret-pass!\n",
    )
    unknown = run(
        [
            "createuser",
            "clerk",
            "--role",
            "staff",
            "--location",
            "0b1ee3bc-5ce3-4ca1-9588-a6e7b47af6bd",
        ],
        tmp_path,
        stdin="s3cret-pass!\n",
    )
    empty = run(["createuser", "clerk", "--role", "staff"], tmp_path, stdin="\n")
    listed = run(["locations"], tmp_path)

    for result in (not_an_id, unknown, empty):
        assert result.returncode == 2
        assert "Traceback" not in result.stderr + result.stdout
    assert "'depot' is not a location id" in not_an_id.stdout
    assert "no location has the id 0b1ee3bc-5ce3-4ca1-9588-a6e7b47af6bd" in unknown.stdout
    assert "`quartermaster locations` lists them" in unknown.stdout
    assert "the password is empty" in empty.stdout
    default = [line for line in listed.stdout.splitlines() if line.endswith("(default)")]
    assert len(default) == 1
    location_id = default[0].split()[0]
    created = run(
        ["createuser", "clerk", "--role", "staff", "--location", location_id],
        tmp_path,
        stdin="s3cret-pass!\n",
    )
    assert created.returncode == 0, created.stdout + created.stderr


def test_serve_on_a_busy_port_fails_before_saying_it_serves(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run(["serve", "--port", str(port)], tmp_path)

    assert result.returncode == 2
    assert "serving" not in result.stdout
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stdout


def test_stock_rebuild_check_names_the_item_and_the_location(tmp_path: Path) -> None:
    assert run(["demo"], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "quartermaster.sqlite3") as db:
        (sku, name) = db.execute(
            "SELECT sku, name FROM inventory_item ORDER BY sku LIMIT 1"
        ).fetchone()
        db.execute(
            "UPDATE inventory_stock SET qty = qty + 1 WHERE item_id = (SELECT id FROM inventory_item WHERE sku = ?)",
            (sku,),
        )
        (location,) = db.execute("SELECT name FROM inventory_location WHERE is_default").fetchone()

    result = run(["stock", "rebuild", "--check"], tmp_path)

    assert result.returncode == 1
    assert f"item {sku} {name!r}" in result.stdout and f"{location!r}" in result.stdout
    assert "1 stock row differs from the movement ledger" in result.stdout


def test_new_temp_id_prints_only_the_id(tmp_path: Path) -> None:
    made = agent(
        ["record", "item.create", "--payload", '{"item_name": "Valve", "qty": 5}', "--new-temp-id"],
        tmp_path / "agent.sqlite3",
    )

    assert made.returncode == 0, made.stdout + made.stderr
    assert re.fullmatch(r"temp_\S+\n", made.stdout), made.stdout


def test_agent_sync_exits_non_zero_when_the_server_rejected_ops(tmp_path: Path) -> None:
    process, base = start_quartermaster(tmp_path, ["demo", "--serve"])
    try:
        db = tmp_path / "agent.sqlite3"
        login = {
            "QM_AGENT_SERVER": base,
            "QM_AGENT_USERNAME": "admin",
            "QM_AGENT_PASSWORD": "admin-demo-pass",
        }
        agent(["record", "item.create", "--payload", '{"item_name": "Valve", "qty": 5}'], db)
        clean = agent(["sync", "--once"], db, **login)
        agent(
            [
                "record",
                "item.adjust",
                "--payload",
                '{"item_id": "0b1ee3bc-5ce3-4ca1-9588-a6e7b47af6bd", "delta": -1}',
            ],
            db,
        )
        rejected = agent(["sync", "--once"], db, **login)
    finally:
        stop(process)

    assert clean.returncode == 0, clean.stdout
    assert rejected.returncode == 3, rejected.stdout
    assert "rejected" in rejected.stdout


def readme_walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("Try it, on fresh demo data")
    return readme[
        readme.index("```sh\n", start) + 6 : readme.index(
            "```\n", readme.index("```sh\n", start) + 6
        )
    ]


def test_the_readme_walkthrough_works_as_written_on_fresh_demo_data(tmp_path: Path) -> None:
    process, base = start_quartermaster(tmp_path, ["demo", "--serve"])
    try:
        script = readme_walkthrough().replace("localhost:8000", base.removeprefix("http://"))
        # Each answer's status on its own line after it; the commands inside $( ) as written.
        lines = [
            line.replace("curl -s ", "curl -s -w '\\n%{http_code}\\n' ", 1)
            if line.startswith("curl -s ")
            else line
            for line in script.splitlines()
            if not line.startswith("#")
        ]
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(lines)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop(process)

    assert result.returncode == 0, result.stdout + result.stderr
    statuses = [line for line in result.stdout.splitlines() if re.fullmatch(r"\d{3}", line)]
    # items, qty, price (fresh version), price (the same version again: stale), resolve
    assert statuses == ["200", "200", "200", "409", "200"], result.stdout


def test_the_op_catalogue_is_published_and_docs_are_current(tmp_path: Path) -> None:
    generated = run(["op-catalogue", "--markdown"], tmp_path)
    as_json = json.loads(run(["op-catalogue"], tmp_path).stdout)

    assert generated.returncode == 0
    assert generated.stdout == (ROOT / "docs" / "op-catalogue.md").read_text(), (
        "docs/op-catalogue.md is stale: quartermaster op-catalogue --markdown > docs/op-catalogue.md"
    )
    assert {"item.create", "item.adjust", "sale.record", "stock.move"} <= as_json.keys()
    # Named after its kind, as every reference is (`item_id` is still accepted: core.references)
    assert as_json["item.adjust"]["payload"]["required"] == ["item", "delta"]
    assert "session.login" not in as_json  # not every command is an op
