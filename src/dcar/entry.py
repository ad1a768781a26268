"""The `dcar` console script: import the CLI, then run it.

Importing the commands (typer, rich, numpy) takes a noticeable moment; a Ctrl-C in that moment is
an interruption like any other, so it exits 130 with one line instead of an import traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from dcar.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    cli_main()
