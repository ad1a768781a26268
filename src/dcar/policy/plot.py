"""The precision-coverage chart of ``dcar calibrate``: one curve per score tried, the target, the
chosen thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcar.atomic import atomic_path
from dcar.policy.calibrate import Fit


def precision_coverage_chart(fit: Fit, n_queries: int, target: float, path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, t in fit.tried.items():
        n, k = t.curve["n"], t.curve["k"]
        keep = np.concatenate([[True], np.diff(n) != 0]) & (n > 0)  # one point per distinct count
        line = ax.plot(n[keep] / n_queries, k[keep] / n[keep], label=f"{name}", lw=1.5)[0]
        if t.lambda_hi is not None:
            ax.plot([t.n_accepted / n_queries], [t.right_accepted / t.n_accepted], "o", color=line.get_color(),
                    label=f"{name}: accept >= {t.lambda_hi:.4f}" + (" (kept)" if name == fit.score else ""))
    ax.axhline(target, color="gray", ls="--", lw=1, label=f"target {target}")
    ax.set_xlabel("coverage (share of queries accepted)")
    ax.set_ylabel("precision of accepted top-1")
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
