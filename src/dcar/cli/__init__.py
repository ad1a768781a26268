"""Command-line interface: `dcar COMMAND`. One module per group of commands."""

from __future__ import annotations

import sys

import typer
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

USAGE_STATUS = 2  # every user error: usage mistakes and bad input alike


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: every user error is one short message on stderr and exit status 2.

    Usage mistakes (unknown command or option, missing value) get click's short usage message;
    bad input gets one line from :class:`~dcar.errors.DcarError`. Anything else is a bug in dcar
    and keeps its traceback.
    """
    from dcar.locking import set_command

    args = sys.argv[1:] if argv is None else list(argv)
    set_command(args)
    try:
        code = app(args=args, prog_name="dcar", standalone_mode=False)
    except DcarError as err:
        _error(str(err))
        sys.exit(USAGE_STATUS)
    except typer.TyperException as err:  # click's usage errors (typer vendors click)
        err.show()
        sys.exit(getattr(err, "exit_code", USAGE_STATUS))
    except (KeyboardInterrupt, typer.Abort):
        _error("interrupted")
        sys.exit(130)
    except OSError as err:
        if err.filename is None:
            raise
        # A file the user pointed at, or the disk under it (full, read-only, gone): the cause and
        # the path are all they need.
        _error(f"{err.filename}: {err.strerror or err}")
        sys.exit(USAGE_STATUS)
    if isinstance(code, int) and code:
        sys.exit(code)


def _error(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True, markup=True)
