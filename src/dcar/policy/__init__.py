"""Operating rules for matches: scores, calibrated accept/review/reject thresholds, decisions.

- :mod:`~dcar.evaluation.topk` (shared with evaluation): ranked candidates and the confidence score
  (top-1 similarity or the margin to the second candidate);
- :mod:`~dcar.policy.tasks`: labelled matches from a held-out set (image -> category,
  image -> caption, caption -> image), with whether each top-1 is right;
- :mod:`~dcar.policy.calibrate`: Learn-then-Test thresholds with a finite-sample precision guarantee;
- :mod:`~dcar.policy.policy`: the policy file (thresholds + provenance) and its decisions;
- :mod:`~dcar.policy.plot`: the precision-coverage chart.
"""

from dcar.policy.policy import DECISIONS, Policy, load_policy

__all__ = ["DECISIONS", "Policy", "load_policy"]
