"""Loss curve (and held-out R@1) from a training log CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from dcar.atomic import save_figure_atomic


def read_log(path: str | Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, loss) rows and (step, held-out image->text R@1) rows of a train_log.csv."""
    losses, evals = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("loss"):
                losses.append((int(row["step"]), float(row["loss"])))
            if row.get("eval_i2t_r1"):
                evals.append((int(row["step"]), float(row["eval_i2t_r1"])))
    return losses, evals


def plot_loss_curve(log: str | Path, out: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses, evals = read_log(log)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if losses:
        steps, values = zip(*losses)
        ax.plot(steps, values, lw=0.8, color="tab:blue", label="contrastive loss (batch)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if evals:
        ax2 = ax.twinx()
        s2, r2 = zip(*evals)
        ax2.plot(s2, r2, "o-", color="tab:red", ms=3, label="held-out image->text R@1")
        ax2.set_ylabel("held-out R@1 (%)", color="tab:red")
        ax2.set_ylim(0, 100)
    ax.set_title(title)
    fig.tight_layout()
    save_figure_atomic(fig, out)
    plt.close(fig)
    return Path(out)
