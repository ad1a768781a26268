"""Best-on-val selection: scoring a method on the validation split after each epoch.

(Checking a dataset's files is something else: :mod:`dcar.data.validate`.)
"""

from __future__ import annotations

from typing import Any, Callable

from dcar.evaluation.evaluate import EvalDataset, evaluate
from dcar.methods.base import RetrievalMethod
from dcar.methods.encoder import MethodEncoder

ValScorer = Callable[[RetrievalMethod], dict[str, Any]]


def score_val(dataset: EvalDataset, batch_size: int) -> ValScorer:
    """A function giving a method's retrieval metrics on the validation ``dataset``."""

    def score(method: RetrievalMethod) -> dict[str, Any]:
        results = evaluate(MethodEncoder(method), [dataset], batch_size=batch_size, num_workers=0, progress=False)
        return results["datasets"][dataset.name]

    return score


def selection_score(metrics: dict[str, Any]) -> float:
    """Mean of image-to-text and text-to-image R@1: what best-on-val maximises."""
    return 0.5 * (metrics["i2t"]["R@1"] + metrics["t2i"]["R@1"])
