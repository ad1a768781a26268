"""Command-line interface: `dcar COMMAND`. One module per group of commands."""

from __future__ import annotations

import sys

from rich.console import Console

from dcar.cli.app import app
from dcar.errors import DcarError

# Each import registers its commands on `app` / `data_app`.
from dcar.cli import commands_data  # noqa: F401,E402
from dcar.cli import commands_retrieval  # noqa: F401,E402
from dcar.cli import commands_world  # noqa: F401,E402
from dcar.cli import commands_build  # noqa: F401,E402
from dcar.cli import commands_train  # noqa: F401,E402
from dcar.cli import commands_demo  # noqa: F401,E402
from dcar.cli import commands_index  # noqa: F401,E402
from dcar.cli import commands_serve  # noqa: F401,E402
from dcar.cli import commands_policy  # noqa: F401,E402
from dcar.cli import commands_review  # noqa: F401,E402
from dcar.cli import commands_ab  # noqa: F401,E402


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: user errors become one line on stderr and exit status 2."""
    try:
        app(args=argv, standalone_mode=False)
    except DcarError as err:
        Console(stderr=True).print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SystemExit:
        raise
    except Exception as err:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        raise
