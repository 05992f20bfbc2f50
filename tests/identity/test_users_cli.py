"""The CLI manages people through the same commands as the users API (issue 10 item 12), and
says counts in the right number (item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import run

pytestmark = pytest.mark.slow


def test_setpassword_deactivate_and_activate_run_the_users_commands(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0
    assert (
        run(["createuser", "boss", "--role", "admin"], tmp_path, stdin="first secret\n").returncode
        == 0
    )
    assert (
        run(["createuser", "ravi", "--role", "staff"], tmp_path, stdin="first secret\n").returncode
        == 0
    )

    reset = run(["setpassword", "ravi"], tmp_path, stdin="second secret\n")
    weak = run(["setpassword", "ravi"], tmp_path, stdin="short\n")
    unknown = run(["setpassword", "nobody"], tmp_path, stdin="second secret\n")
    off = run(["deactivate", "ravi"], tmp_path)
    last_admin = run(["deactivate", "boss"], tmp_path)
    on = run(["activate", "ravi"], tmp_path)
    verified = run(["audit", "verify"], tmp_path)

    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert "password of ravi reset" in reset.stdout
    assert weak.returncode == 1 and "password" in weak.stdout
    assert unknown.returncode == 2 and "no user is named 'nobody'" in unknown.stdout
    assert (off.returncode, off.stdout.strip()) == (0, "ravi is deactivated")
    assert last_admin.returncode == 1 and "last active admin" in last_admin.stdout
    assert (on.returncode, on.stdout.strip()) == (0, "ravi is active")
    # two created, password reset, deactivated, activated: 5 entries, said in the plural
    assert "audit chain OK: 5 entries" in verified.stdout
