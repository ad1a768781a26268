"""The captioner interface and the registry that maps a spec's prefix to an implementation.

A spec is ``PREFIX:REST`` (``openai:qwen2-vl@http://localhost:8000/v1``, ``hf:./blip``,
``template:``, ``file:captions.csv``). A captioner answers one question about one image; the
builder asks every question, caches, retries, cleans and composes the caption.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dcar.errors import DcarError


@dataclass(frozen=True)
class CaptionItem:
    """What a captioner may look at for one image."""

    key: str
    image: Path | None
    category: str
    meta_category: str | None = None
    caption: str = ""  # a caption the input already carries (used by ``file:``)


class Captioner(ABC):
    """Answers questions about images.

    ``needs_image``: whether answers depend on the image (``template:`` does not).
    ``cacheable``: whether answers are worth caching (network and model calls are; table look-ups
    are not). ``can_verify``: whether it can answer a free yes/no question about an image.
    """

    needs_image: bool = True
    cacheable: bool = True
    can_verify: bool = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def identity(self) -> str:
        """Everything that changes answers (spec, generation options): part of cache keys."""
        return self.spec

    def questions(self, prompts: tuple[str, ...]) -> tuple[str, ...]:
        """The questions actually asked; captioners that ignore prompts ask one empty question."""
        return prompts

    @abstractmethod
    def answer(self, item: CaptionItem, question: str) -> str:
        """One raw answer. Raises :mod:`dcar.captioning.failures` exceptions on failure."""

    def close(self) -> None:
        """Release resources (connections, models)."""


@dataclass(frozen=True)
class CaptionerOptions:
    """Settings a captioner may use (each uses those that apply to it)."""

    timeout: float = 120.0  # seconds per HTTP request
    max_new_tokens: int = 160  # answer length limit
    device: str | None = None  # local models: default cuda when available, else cpu
    api_key_env: str | None = None  # HTTP captioners: the variable holding the key for the spec's host
    allow_insecure_key: bool = False  # send a key over plain http to a host that is not this machine


Factory = Callable[[str, str, CaptionerOptions], Captioner]  # (full spec, text after the prefix, options)
_REGISTRY: dict[str, Factory] = {}


def register(prefix: str) -> Callable[[Factory], Factory]:
    """Class or function decorator adding a captioner for ``prefix:`` specs."""

    def wrap(factory: Factory) -> Factory:
        _REGISTRY[prefix] = factory
        return factory

    return wrap


def available() -> list[str]:
    _import_builtins()
    return sorted(_REGISTRY)


def load_captioner(spec: str, options: CaptionerOptions | None = None) -> Captioner:
    """The captioner for ``spec``; a clear one-line error for an unknown prefix."""
    _import_builtins()
    prefix, _, rest = spec.partition(":")  # "template" means "template:" (nothing after the colon)
    if prefix not in _REGISTRY:
        raise DcarError(
            f"captioner spec {spec!r}: expected PREFIX:..., PREFIX one of {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[prefix](spec, rest, options or CaptionerOptions())


def _import_builtins() -> None:
    # Importing registers them; heavy libraries (transformers) load only when a model is used.
    from dcar.captioning.captioners import file_captions, hf_local, openai_chat, template  # noqa: F401
