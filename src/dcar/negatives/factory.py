"""One way to build the generator from user options, shared by the CLI and the training code."""

from __future__ import annotations

from typing import Callable, Iterable

from dcar.negatives.generator import NegativeGenerator, Strategy
from dcar.negatives.siblings import EmbeddingRanker, TextEncoder


def make_generator(
    categories: Iterable[str],
    k: int = 4,
    strategy: Strategy = "mixed",
    taxonomy: dict[str, str] | None = None,
    model: str | TextEncoder | None = None,
    seed: int = 0,
    device: str = "cpu",
    fits: Callable[[str], bool] | None = None,
) -> NegativeGenerator:
    """The generator; ``model`` (a backbone spec or a loaded backbone) ranks hard siblings by
    text-embedding similarity, otherwise names are compared lexically."""
    categories = list(dict.fromkeys(categories))
    sibling_fn = None
    if model is not None:
        if isinstance(model, str):
            from dcar.backbone import load_backbone  # torch models load only when asked for

            model = load_backbone(model, device=device)
        sibling_fn = EmbeddingRanker(categories, model)
    return NegativeGenerator(
        categories, taxonomy=taxonomy, sibling_fn=sibling_fn, k=k, strategy=strategy, seed=seed, fits=fits
    )
