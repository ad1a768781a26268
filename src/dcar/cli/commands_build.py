"""`dcar build` commands."""

from dcar.cli.app import app, data_app  # noqa: F401
