"""``tokenomy keys`` and ``tokenomy gateway`` from the command line."""

from __future__ import annotations

import json

import pytest

from tokenomy.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_keys_create_list_budget_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys", "create", "--name", "alice", "--budget-usd", "50")
    assert code == 0
    secret = out.splitlines()[0]
    assert secret.startswith("tk-") and "shown once" in out
    code, out, _ = run(capsys, "keys", "list", "--json")
    [row] = json.loads(out)
    assert row["name"] == "alice" and row["budget_usd"] == "50" and row["revoked_at"] is None
    assert secret not in out  # the key is never shown again
    key_id = row["key_id"]
    code, out, _ = run(capsys, "keys", "budget", key_id, "--usd", "12.5")
    assert code == 0 and "$12.50" in out
    code, out, _ = run(capsys, "keys", "revoke", key_id)
    assert code == 0 and "revoked" in out
    code, out, _ = run(capsys, "keys", "list")
    assert "revoked" in out and key_id in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("keys", "create", "--budget-usd", "lots"), "a budget is a number of USD"),
        (("keys", "create", "--budget-usd", "-1"), "≥ 0"),
        (("keys", "revoke", "tkid_nope"), "no gateway key 'tkid_nope'"),
        (("gateway", "--mode", "fast"), "--mode must be optimize or observe"),
    ],
)
def test_bad_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], needle: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err


def test_gateway_refuses_a_remote_upstream_offline(capsys: pytest.CaptureFixture[str]) -> None:
    # TOKENOMY_OFFLINE=1 in tests: the real API is refused before anything starts
    code, _, err = run(capsys, "gateway", "--upstream", "https://api.anthropic.com")
    assert code == 2 and "offline mode" in err
