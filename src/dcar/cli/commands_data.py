"""`dcar data ...` commands: validate, synth, build, negatives."""

from dcar.cli.app import data_app  # noqa: F401
