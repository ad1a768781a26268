"""CLIP BPE tokenization with room left for prompt tokens.

Every supported backbone (open_clip CLIP and the HF CLIPModel) uses the same byte-level BPE with
start id 49406 and end id 49407, so open_clip's SimpleTokenizer serves both. Padding is id 0,
which is also a real token ("!"): code must find the end token by position (argmax / first EOT),
never by comparing with the pad id.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from open_clip.tokenizer import SimpleTokenizer

SOT_ID = 49406
EOT_ID = 49407
VOCAB_SIZE = 49408


@lru_cache(maxsize=1)
def _simple_tokenizer() -> SimpleTokenizer:
    # Loading the BPE merges takes a fraction of a second: do it once per process.
    return SimpleTokenizer()


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
