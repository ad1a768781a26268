"""CLIP BPE tokenization with room left for prompt tokens.

Every supported backbone (open_clip CLIP and the HF CLIPModel) uses the same byte-level BPE with
start id 49406 and end id 49407, so open_clip's SimpleTokenizer serves both. Padding is id 0,
which is also a real token ("!"): code must find the end token by position (argmax / first EOT),
never by comparing with the pad id.

This module is the one place that counts tokens: dataset checks (``dcar data validate``), caption
truncation (``dcar data build``) and DCAR's negatives all ask :func:`token_count` / :func:`fits`.
A loaded model's own context length is ``backbone.info.context_length``; :data:`CLIP_CONTEXT_LENGTH`
is the default where no model is at hand (every released CLIP uses 77).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Iterable

import torch
from open_clip.tokenizer import SimpleTokenizer

SOT_ID = 49406
EOT_ID = 49407
VOCAB_SIZE = 49408
CLIP_CONTEXT_LENGTH = 77
SPECIAL_TOKENS = 2  # start and end
_ENCODE_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _simple_tokenizer() -> SimpleTokenizer:
    # Loading the BPE merges takes a fraction of a second: do it once per process.
    return SimpleTokenizer()


def token_count(text: str) -> int:
    """Positions ``text`` takes in the text encoder's context, start and end tokens included."""
    with _ENCODE_LOCK:  # the BPE cache is a plain dict; the caption builder counts from threads
        return len(_simple_tokenizer().encode(text)) + SPECIAL_TOKENS


def fits(text: str, context_length: int = CLIP_CONTEXT_LENGTH, prompt_length: int = 0) -> bool:
    """Whether ``text`` is encoded whole next to ``prompt_length`` prompt tokens."""
    return token_count(text) + prompt_length <= context_length


def count_over_length(texts: Iterable[str], context_length: int = CLIP_CONTEXT_LENGTH) -> int:
    """How many texts a text encoder would truncate (each distinct text encoded once)."""
    lengths: dict[str, int] = {}
    over = 0
    for t in texts:
        if t not in lengths:
            lengths[t] = token_count(t)
        over += lengths[t] > context_length
    return over


def tokenize(texts: list[str], context_length: int, prompt_length: int = 0) -> torch.Tensor:
    """Ids ``[N, context_length - prompt_length]``: SOT, caption, EOT, zero padding.

    Over-long captions are cut and their last kept token is replaced by EOT, so every row has
    exactly one EOT and pooling stays valid after the k prompts are inserted.
    """
    if isinstance(texts, str):
        texts = [texts]
    room = context_length - prompt_length
    if prompt_length < 0 or room < 2:
        raise ValueError(
            f"prompt_length={prompt_length} leaves no room for SOT and EOT in a context of {context_length}"
        )
    return _simple_tokenizer()(list(texts), context_length=room)


def eot_positions(ids: torch.Tensor) -> torch.Tensor:
    """Index of the (first) end token of each row. For SimpleTokenizer ids this equals
    ``ids.argmax(-1)`` (EOT is the largest id) and HF's first-eos rule."""
    return (ids == EOT_ID).int().argmax(dim=-1)
