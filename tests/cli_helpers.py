"""Running the CLI in-process from tests."""

from __future__ import annotations

from dcar.cli import main


def cli_status(args: list[str]) -> int:
    """The exit status of `dcar ARGS` (its output goes where the test's output goes)."""
    try:
        main(args)
    except SystemExit as exit_:
        return exit_.code or 0
    return 0


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `dcar ARGS`."""
    code = cli_status(args)
    out = capsys.readouterr()
    return code, out.out, out.err
