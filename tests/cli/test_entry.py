"""The console script's entry: a Ctrl-C while the CLI is still importing is one line, exit 130."""

from __future__ import annotations

import builtins
import tomllib
from pathlib import Path

import pytest

from dcar import entry


def test_interrupt_during_import_exits_130_without_a_traceback(monkeypatch, capsys):
    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "dcar.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as exc:
        entry.main()
    assert exc.value.code == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_console_script_points_at_the_entry():
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["dcar"] == "dcar.entry:main"
