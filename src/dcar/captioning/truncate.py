"""Fitting captions into the text encoder's context (CLIP: 77 tokens with start and end).

Captions are cut at a sentence boundary so the text the model sees is whole sentences; only a
first sentence that alone is too long is cut at a word boundary. Token counts come from
:mod:`dcar.backbone.tokenizer`, as in ``dcar data validate``, so a built file never shows
over-length captions there.
"""

from __future__ import annotations

from dcar.backbone.tokenizer import CLIP_CONTEXT_LENGTH, fits
from dcar.captioning.text import sentences


def truncate_caption(text: str, max_tokens: int = CLIP_CONTEXT_LENGTH) -> tuple[str, bool]:
    """``text`` cut to at most ``max_tokens`` (start and end included); returns it and whether
    anything was cut."""
    if fits(text, max_tokens):
        return text, False
    parts = sentences(text)
    kept: list[str] = []
    for part in parts:
        if not fits(" ".join(kept + [part]), max_tokens):
            break
        kept.append(part)
    if kept:
        return " ".join(kept), True
    words = parts[0].split() if parts else text.split()
    lo, hi = 0, len(words)  # longest prefix of words that fits, with a closing full stop
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(" ".join(words[:mid]).rstrip(",;:") + ".", max_tokens):
            lo = mid
        else:
            hi = mid - 1
    cut = " ".join(words[:lo]).rstrip(",;:")
    return (cut + "." if cut and not cut.endswith((".", "!", "?")) else cut), True
