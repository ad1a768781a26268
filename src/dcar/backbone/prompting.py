"""Library-independent pieces of the prompted forward, shared by every backbone implementation.

Both towers run the same loop: blocks in order, and before block i (1 <= i < J) the k prompt slots
are overwritten with fresh prompts (deep prompting). Only the slot position differs: right after
the start token in the text tower, the last k tokens in the image tower.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from dcar.backbone.base import TowerPrompts

BlockCall = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def batch_prompts(
    prompts: TowerPrompts | None,
    batch: int,
    width: int,
    n_blocks: int,
    dtype: torch.dtype,
    tower: str,
) -> list[torch.Tensor]:
    """Check ``prompts`` against the tower and return each layer as ``[batch, k, width]`` in ``dtype``.

    Shared ``[k, width]`` prompts are expanded (a view, no copy), so a shared prompt costs the same
    as a per-sample one. An empty list means "no prompts".
    """
    if prompts is None or prompts.depth == 0:
        return []
    if prompts.depth > n_blocks:
        raise ValueError(f"{tower} prompts have depth {prompts.depth} but the tower has {n_blocks} blocks")
    k = prompts.length
    out = []
    for i, p in enumerate(prompts.layers):
        if p.dim() == 2:
            p = p.unsqueeze(0).expand(batch, -1, -1)
        elif p.dim() != 3 or p.shape[0] != batch:
            raise ValueError(
                f"{tower} prompts layer {i}: expected [k, width] or [{batch}, k, width], got {list(p.shape)}"
            )
        if p.shape[1] != k or p.shape[2] != width:
            raise ValueError(
                f"{tower} prompts layer {i}: expected k={k}, width={width}, got {list(p.shape)}"
            )
        out.append(p.to(dtype))
    return out


def replace_slots(x: torch.Tensor, prompt: torch.Tensor, start: int) -> torch.Tensor:
    """``x`` with rows ``start .. start+k`` replaced by ``prompt`` ([B, k, W]); out of place so
    autograd sees a plain concatenation and the previous block's output is left intact."""
    k = prompt.shape[1]
    return torch.cat([x[:, :start], prompt, x[:, start + k :]], dim=1)


def run_blocks(
    x: torch.Tensor,
    blocks: Iterable[nn.Module],
    deep: list[torch.Tensor],
    slot_start: int,
    call: BlockCall,
) -> torch.Tensor:
    """Run ``blocks`` on ``x``; before block i (1 <= i < len(deep)) replace the prompt slots with
    ``deep[i]`` (no positional embedding). ``deep[0]`` is assumed to be in ``x`` already; blocks at or
    beyond ``len(deep)`` carry the previous block's prompt outputs along."""
    for i, block in enumerate(blocks):
        if 1 <= i < len(deep):
            x = replace_slots(x, deep[i], slot_start)
        x = call(block, x)
    return x


def insert_text_prompts(embeds: torch.Tensor, first: torch.Tensor | None) -> torch.Tensor:
    """[SOS][k prompts][caption ... EOT pad]: prompts go right after the start token."""
    if first is None:
        return embeds
    return torch.cat([embeds[:, :1], first, embeds[:, 1:]], dim=1)


def weight_tokens(embeds: torch.Tensor, token_weights: torch.Tensor | None) -> torch.Tensor:
    """Multiply each token's input embedding by its weight (DTR); ``None`` leaves them unchanged."""
    if token_weights is None:
        return embeds
    if token_weights.shape != embeds.shape[:2]:
        raise ValueError(
            f"token_weights must be [N, L] = {list(embeds.shape[:2])}, got {list(token_weights.shape)}"
        )
    return embeds * token_weights.unsqueeze(-1).to(embeds.dtype)


def trim_after_end(
    ids: torch.Tensor, end_positions: torch.Tensor, token_weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Drop the padding columns after the batch's last end token.

    Under the causal mask no position attends to a later one, so padding after a caption's end
    token never reaches its pooled row: removing it is exact and makes the text tower cost
    proportional to the longest caption in the batch instead of the full context (77).
    """
    if ids.shape[0] == 0:
        return ids, token_weights
    end = int(end_positions.max()) + 1
    if end >= ids.shape[1]:
        return ids, token_weights
    return ids[:, :end], (token_weights[:, :end] if token_weights is not None else None)


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[n, index[n]]`` for every n: one row per sequence ([N, L, W] -> [N, W])."""
    return x[torch.arange(x.shape[0], device=x.device), index.to(x.device)]


def check_text_length(length: int, k: int, context_length: int) -> None:
    if length + k > context_length:
        raise ValueError(
            f"{length} caption tokens + {k} prompts exceed the context length {context_length}; "
            f"tokenize with prompt_length={k}"
        )
