"""Methods by name. Adding a method: one folder under dcar/methods/ whose model class is decorated
with :func:`register_method`, and one import line in ``dcar/methods/__init__.py``."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch

from dcar.backbone.base import Backbone
from dcar.errors import DcarError
from dcar.methods.base import MethodConfig, RetrievalMethod

METHODS: dict[str, type[RetrievalMethod]] = {}
DESCRIPTIONS: dict[str, str] = {}

M = TypeVar("M", bound=type[RetrievalMethod])


def register_method(description: str) -> Callable[[M], M]:
    """Class decorator: file the method under its config's name (``XConfig.method``) with a
    one-line ``description`` (what the CLI's help shows)."""

    def register(cls: M) -> M:
        name = cls.config_class.method
        if not name or name in METHODS:
            raise ValueError(f"{cls.__name__}: method name {name!r} is empty or taken")
        METHODS[name] = cls
        DESCRIPTIONS[name] = description
        return cls

    return register


def method_help() -> str:
    """One line per registered method, for ``--method`` help texts."""
    return "; ".join(f"{name}: {DESCRIPTIONS[name]}" for name in METHODS)


def method_class(name: str) -> type[RetrievalMethod]:
    try:
        return METHODS[name]
    except KeyError:
        raise DcarError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}") from None


def make_config(name: str, overrides: dict[str, Any] | None = None) -> MethodConfig:
    """The method's default config with ``overrides`` (e.g. from a --config JSON) applied."""
    cls = method_class(name).config_class
    try:
        return cls.from_dict(dict(overrides or {}))
    except (TypeError, ValueError) as err:
        raise DcarError(f"method {name}: {err}") from None


def build_method(
    name: str, backbone: Backbone, overrides: dict[str, Any] | None = None, seed: int | None = None
) -> RetrievalMethod:
    """The method ``name`` around ``backbone``; with ``seed``, its trainable parameters are
    initialised from that seed (a training run passes its run seed, so two runs start equal)."""
    config = make_config(name, overrides)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        return method_class(name)(backbone, config)
    except ValueError as err:  # a setting the method rejects (e.g. n_ctx 0)
        raise DcarError(f"method {name}: {err}") from None
