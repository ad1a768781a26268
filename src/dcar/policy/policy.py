"""The policy file: calibrated thresholds, what they were calibrated on, and the decisions they make.

A match is *accepted* at or above ``lambda_hi``, sent to *review* in ``[lambda_lo, lambda_hi)``
and *rejected* below ``lambda_lo``. ``lambda_hi`` is null when no threshold met the target at the
chosen confidence (nothing is accepted automatically).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dcar.atomic import write_json_atomic
from dcar.errors import DcarError
from dcar.evaluation.topk import SCORES
from dcar.policy.tasks import TASKS

DECISIONS = ("accept", "review", "reject")
POLICY_VERSION = 1


@dataclass
class Policy:
    task: str  # category | i2t | t2i
    score: str  # top1 | margin
    lambda_hi: float | None
    lambda_lo: float | None
    target_precision: float
    confidence: float
    max_review: float
    model: str  # backbone spec
    checkpoint: str | None  # the `dcar train` run folder, when not zero-shot
    encoder: str  # the encoder's fingerprint: a policy only holds for the encoder it was fitted on
    data: dict  # the calibration set: path, sha256, entries, skipped
    sample_size: int  # labelled queries calibrated on
    date: str  # ISO 8601, UTC
    template: str = ""  # category task: how a category becomes a text
    categories: list[str] = field(default_factory=list)  # category task: the candidates
    calibration: dict = field(default_factory=dict)  # band shares, precision, per-score results
    version: int = POLICY_VERSION

    def decide(self, scores: np.ndarray | float) -> np.ndarray:
        """accept / review / reject for each score."""
        s = np.atleast_1d(np.asarray(scores, dtype=np.float64))
        hi = np.inf if self.lambda_hi is None else self.lambda_hi
        lo = hi if self.lambda_lo is None else self.lambda_lo
        return np.where(s >= hi, "accept", np.where(s >= lo, "review", "reject"))

    def save(self, path: str | Path) -> None:
        write_json_atomic(asdict(self), path)


def load_policy(path: str | Path) -> Policy:
    """Read a policy file written by ``dcar calibrate``; a wrong file is a one-line error."""
    from dcar.files import read_json

    path = Path(path)
    if not path.exists():
        raise DcarError(f"{path}: policy file not found (write one with `dcar calibrate`)")
    raw = read_json(path, "policy file")  # a folder, a pipe, bad text or JSON: one line each
    if not isinstance(raw, dict) or raw.get("version") != POLICY_VERSION:
        raise DcarError(f"{path}: not a dcar policy file (version {POLICY_VERSION})")
    try:
        policy = Policy(**raw)
    except TypeError as err:
        raise DcarError(f"{path}: not a dcar policy file ({err})") from None
    if policy.task not in TASKS or policy.score not in SCORES:
        raise DcarError(f"{path}: task {policy.task!r} / score {policy.score!r} unknown")
    for name in ("lambda_hi", "lambda_lo"):
        value = getattr(policy, name)
        if value is not None and (not isinstance(value, (int, float)) or not np.isfinite(value)):
            raise DcarError(f"{path}: {name} must be a finite number or null, got {value!r}")
    if policy.lambda_hi is not None and policy.lambda_lo is not None and policy.lambda_lo > policy.lambda_hi:
        raise DcarError(f"{path}: lambda_lo {policy.lambda_lo} is above lambda_hi {policy.lambda_hi}")
    return policy
