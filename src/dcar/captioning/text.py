"""Cleaning model answers and rejecting the ones that are not captions.

Vision-language models wrap answers in chatter and markdown, repeat sentences, refuse
("I'm sorry, I cannot ..."), or loop on one phrase. A caption that names the wrong thing is the
verifier's job; this module only catches answers that are not descriptions at all.
"""

from __future__ import annotations

import re

_CHATTER = re.compile(
    r"^(?:sure|certainly|of course|absolutely|okay|ok)\b[^.:!\n]*[.:!]\s*"
    r"|^(?:here is|here's)\b[^:\n]*:\s*",
    re.IGNORECASE,
)
_MARKDOWN = re.compile(r"(\*\*|__|`|^#+\s*|^\s*(?:[-*\u2022]|\d+[.)])\s+)", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")

REFUSAL_PATTERNS = [
    r"\bI(?:'| a)m sorry\b",
    r"\bsorry,? (?:but )?I\b",
    r"\bI (?:cannot|can't|can not|am unable to|'m unable to|am not able to|won't be able to)\b",
    r"\bI(?:'| a)m not able to\b",
    r"\bas an AI\b",
    r"\bI apologi[sz]e\b",
    r"\bunable to (?:see|view|process|analy[sz]e|access|describe)\b",
    r"\bno image (?:was |has been |is )?(?:provided|attached|uploaded|shown)\b",
    r"\bI do not have the ability\b",
]
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Split after ``.``, ``!`` or ``?`` followed by whitespace."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def clean_answer(text: str) -> str:
    """One line of prose: chatter, markdown and repeated sentences removed, quotes unwrapped."""
    text = _MARKDOWN.sub("", text or "")
    text = " ".join(text.split())
    while (stripped := _CHATTER.sub("", text, count=1).strip()) != text:  # "Sure! Here is ...:"
        text = stripped
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return " ".join(unique_sentences(sentences(text)))


def unique_sentences(parts: list[str]) -> list[str]:
    """``parts`` without case-insensitive repeats (models often say the same thing twice)."""
    seen: set[str] = set()
    kept = []
    for sentence in parts:
        norm = " ".join(sentence.lower().split())
        if norm not in seen:
            seen.add(norm)
            kept.append(sentence)
    return kept


def reject_reason(text: str) -> str | None:
    """Why ``text`` (already cleaned) is not a usable caption: ``empty``, ``refusal``,
    ``repetitive``, or ``None`` when it is fine."""
    if sum(c.isalpha() for c in text) < 3:
        return "empty"
    if _REFUSAL.search(text):
        return "refusal"
    if _repetitive(text):
        return "repetitive"
    return None


def _repetitive(text: str) -> bool:
    """Degenerate generation: a long run of one character, one word many times in a row, or
    a text made mostly of the same few word trigrams."""
    if re.search(r"(.)\1{19,}", text):
        return True
    words = re.findall(r"[\w'-]+", text.lower())
    run = 1
    for a, b in zip(words, words[1:]):
        run = run + 1 if a == b else 1
        if run >= 4:
            return True
    trigrams = list(zip(words, words[1:], words[2:]))
    return len(trigrams) >= 12 and len(set(trigrams)) / len(trigrams) < 0.5
