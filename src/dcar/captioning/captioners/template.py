"""``template:[FILE]``: captions from class-name templates, offline and instant.

Not a description of the image: the fallback when no model is at hand, and a baseline for
what a real captioner adds. Templates may use ``{class}``, ``{a}`` (a/an) and ``{meta}``; those with
``{meta}`` are used only for entries that have a meta-category. One template per entry, picked by
a hash of its key so reruns agree. FILE holds one template per line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from dcar.captioning.captioners.base import CaptionerOptions, CaptionItem, Captioner, register
from dcar.captioning.questions import fill
from dcar.errors import DcarError

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "A photo of {a} {class}.",
    "A close-up photo of {a} {class}.",
    "A cropped photo of the {class}.",
    "A bright photo of {a} {class}.",
    "A good photo of the {class}.",
    "A photo of {a} {class}, a type of {meta}.",
    "A close-up photo of {a} {class}, a kind of {meta}.",
)


@register("template")
class TemplateCaptioner(Captioner):
    needs_image = False
    cacheable = False
    can_verify = False

    def __init__(self, spec: str, rest: str, options: CaptionerOptions | None = None) -> None:
        super().__init__(spec)
        self.templates = _read_templates(Path(rest)) if rest else DEFAULT_TEMPLATES

    def questions(self, prompts: tuple[str, ...]) -> tuple[str, ...]:
        return ("",)

    def answer(self, item: CaptionItem, question: str) -> str:
        usable = [t for t in self.templates if "{meta}" not in t or item.meta_category]
        if not usable:
            return ""
        pick = int(hashlib.sha256(item.key.encode("utf-8")).hexdigest()[:8], 16) % len(usable)
        return fill(usable[pick], item.category, item.meta_category)


def _read_templates(path: Path) -> tuple[str, ...]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DcarError(f"{path}: cannot read templates ({err})") from None
    templates = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not templates:
        raise DcarError(f"{path}: no templates (one per line)")
    for t in templates:
        try:
            fill(t, "x", "y")
        except ValueError as err:
            raise DcarError(f"{path}: {err}") from None
    return templates
