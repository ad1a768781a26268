"""The questions a vision-language model is asked and how answers become one caption.

Defaults follow FDRD: InternLM-XComposer2.5 answered two question templates, one about the
subject's appearance and one about its setting, and captions start "This is a {class}.".
"""

from __future__ import annotations

from dcar.captioning.text import sentences, unique_sentences
from dcar.negatives.mentions import display_name, indefinite_article

APPEARANCE_PROMPT = (
    "Describe the appearance of the main subject of this image in one or two sentences: "
    "its colours, shape, parts, texture and pattern. Do not name its species or type."
)
SETTING_PROMPT = (
    "Describe the setting of this image in one sentence: the background, the surroundings "
    "and where the main subject is."
)
DEFAULT_PROMPTS: tuple[str, ...] = (APPEARANCE_PROMPT, SETTING_PROMPT)
DEFAULT_PREFIX = "This is {a} {class}."

VERIFY_PROMPT = (
    'Here is a description of this image: "{caption}"\n'
    "Does the description match the image, and could the main subject be {a} {class}? "
    "Answer yes or no."
)


def fill(template: str, category: str, meta_category: str | None = None, **extra: str) -> str:
    """Fill ``{class}``, ``{a}`` (a/an for the class), ``{meta}`` and any ``extra`` fields."""
    name = display_name(category)
    fields = {"class": name, "a": indefinite_article(name), "meta": display_name(meta_category or ""), **extra}
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(f"template {template!r}: unknown or malformed field ({err})") from None


def compose(answers: list[str], category: str, prefix: str | None = DEFAULT_PREFIX) -> str:
    """Prefix plus the answers, each ending with sentence punctuation; a sentence already said
    (by the prefix or an earlier answer) is not repeated."""
    parts = [fill(prefix, category)] if prefix else []
    for a in answers:
        a = a.strip()
        if a:
            parts.extend(sentences(a if a.endswith((".", "!", "?")) else a + "."))
    return " ".join(unique_sentences(parts))
