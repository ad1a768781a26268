"""`dcar embed` and `dcar eval`."""

from dcar.cli.app import app  # noqa: F401
