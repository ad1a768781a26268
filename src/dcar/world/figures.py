"""Figures of the world for the docs: siblings side by side, and sample plates per domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcar.atomic import save_figure_atomic
from dcar.world.domains import downstream_domains, get_domain
from dcar.world.render import render_array
from dcar.world.sample import make_sample
from dcar.world.vocab import META_CATEGORIES


def _save(fig, out: Path) -> Path:
    return save_figure_atomic(fig, out)


def sibling_grid(out: str | Path, seed: int = 0) -> Path:
    """One row per meta-category, one column per subcategory: varied attributes, then one clean
    large view so the traits (the only thing separating a row's columns) can be compared."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(META_CATEGORIES) * 2
    fig, axes = plt.subplots(rows, 8, figsize=(12, rows * 1.45), dpi=100)
    for mi, meta in enumerate(META_CATEGORIES):
        for k, sub in enumerate(meta.subcategories):
            varied = make_sample("pretrain", "val", mi * 8 + k, seed).with_changes(
                meta=meta.name, subcategory=sub, named=sub)
            clean = varied.with_changes(size="large", position="center", count=1, pattern="plain",
                                        background="white")
            for row, s in ((2 * mi, clean), (2 * mi + 1, varied)):
                ax = axes[row, k]
                ax.imshow(render_array(s), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 2 * mi:
                    traits = ", ".join(meta.trait_values(k).values())
                    ax.set_title(f"{sub}\n({traits})", fontsize=6.5)
            axes[2 * mi, 0].set_ylabel(meta.name, fontsize=9)
    fig.suptitle("Subcategories per meta-category (top: clean view; bottom: with random attributes)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return _save(fig, Path(out))


def domain_plates(out: str | Path, per_domain: int = 16, seed: int = 0) -> Path:
    """The first test images of each downstream domain, with their captions' first sentence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = downstream_domains()
    fig, axes = plt.subplots(len(names), per_domain, figsize=(per_domain * 1.0, len(names) * 1.35), dpi=100)
    for di, name in enumerate(names):
        d = get_domain(name)
        for i in range(per_domain):
            s = make_sample(d, "test", i, seed)
            ax = axes[di, i]
            ax.imshow(np.asarray(render_array(s)), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(s.subcategory.replace(" ", "\n", 1), fontsize=5)
        axes[di, 0].set_ylabel(name, fontsize=9)
    fig.suptitle("Downstream domains (test split): catalogs with their own style", fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(out))


if __name__ == "__main__":
    import sys

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/world")
    print(sibling_grid(folder / "siblings_grid.png"), domain_plates(folder / "domain_plates.png"))
