"""Methods by name. Adding a method: one folder under dcar/methods/ and one line here."""

from __future__ import annotations

from typing import Any

from dcar.backbone.base import Backbone
from dcar.methods.base import MethodConfig, RetrievalMethod
from dcar.methods.clip_adapter import ClipAdapterMethod
from dcar.methods.coop import CoOp
from dcar.methods.dcar import Dcar
from dcar.methods.finetune import FineTune
from dcar.methods.maple import MaPLe
from dcar.methods.zeroshot import ZeroShot
from dcar.errors import DcarError

METHODS: dict[str, type[RetrievalMethod]] = {
    "zeroshot": ZeroShot,
    "coop": CoOp,
    "clip-adapter": ClipAdapterMethod,
    "maple": MaPLe,
    "dcar": Dcar,
    "finetune": FineTune,
}


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


def build_method(name: str, backbone: Backbone, overrides: dict[str, Any] | None = None) -> RetrievalMethod:
    config = make_config(name, overrides)
    try:
        return method_class(name)(backbone, config)
    except ValueError as err:  # a setting the method rejects (e.g. n_ctx 0)
        raise DcarError(f"method {name}: {err}") from None
