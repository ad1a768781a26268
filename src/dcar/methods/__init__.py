"""Retrieval methods, one folder each; each registers itself by name in :mod:`dcar.methods.registry`."""

from dcar.methods.base import MethodConfig, RetrievalMethod, TrainBatch
from dcar.methods.registry import METHODS, build_method, make_config, method_class, method_help, register_method

# Importing a method's folder registers it; this order is the order of help texts and tables.
from dcar.methods import zeroshot, coop, clip_adapter, maple, dcar, finetune  # noqa: E402,F401  isort: skip

__all__ = [
    "METHODS", "MethodConfig", "RetrievalMethod", "TrainBatch", "build_method", "make_config", "method_class",
    "method_help", "register_method",
]
