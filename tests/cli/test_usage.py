"""Usage mistakes end in a short usage message and exit 2, never a traceback; --version; help defaults."""

from __future__ import annotations

import pytest
from cli_helpers import run_cli

import dcar


@pytest.mark.parametrize(
    "args,says",
    [
        ([], "Usage: dcar"),
        (["trian"], "No such command 'trian'"),
        (["train", "--methd", "dcar"], "No such option: --methd"),
        (["eval"], "Missing option"),
        (["embed", "--model"], "requires an argument"),
        (["train", "--method", "dcar", "--model", "m", "--train", "t", "--out", "o", "--epochs", "x"], "'--epochs'"),
        (["train", "--method", "dcar", "--model", "m", "--train", "t", "--out", "o", "--epochs", "0"], "'--epochs'"),
        (["data"], "Usage: dcar data"),
        (["data", "splt"], "No such command 'splt'"),
        (["compare"], "Missing argument"),
        (["--verison"], "No such option"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args, says, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert says in out + err
    assert "Traceback" not in out + err and "site-packages" not in out + err
    if args and args != ["data"]:  # a bare group prints its help; a mistake prints a few lines
        assert len(err.strip().splitlines()) <= 5, err


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"dcar {dcar.__version__}"


def test_train_help_shows_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per option
    code, out, _ = run_cli(["train", "--help"], capsys)
    flat = " ".join(out.split())
    assert code == 0
    for shown in ("Epochs. [default: (10)]", "[default: (32)]", "[default: (the method's reference rate)]", "[default: (no limit)]"):
        assert shown in flat, shown


def test_eval_help_shows_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    code, out, _ = run_cli(["eval", "--help"], capsys)
    assert code == 0 and "[default: 64]" in out
