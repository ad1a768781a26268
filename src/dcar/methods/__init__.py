"""Retrieval methods, one folder each, found by name in :mod:`dcar.methods.registry`."""

from dcar.methods.base import MethodConfig, RetrievalMethod, TrainBatch
from dcar.methods.registry import METHODS, build_method, make_config, method_class

__all__ = ["METHODS", "MethodConfig", "RetrievalMethod", "TrainBatch", "build_method", "make_config", "method_class"]
