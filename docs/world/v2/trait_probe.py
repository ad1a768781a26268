"""Which sibling traits has a model's image tower learnt? (docs/world/v2.md)

For each form (meta-category) and each of its binary traits, a linear probe on the frozen image
embeddings of clean pretraining-style images of that form (all attribute variation, no catalog
look) predicts the trait; balanced accuracy on held-out images, chance 50%. A 16-sibling probe of
70% needs every trait at about 91%, so this shows which traits hold the world back.

  python docs/world/v2/trait_probe.py MODEL_SPEC [N_PER_FORM]
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "experiments"))
from calibrate_world import _embed_images, linear_probe  # noqa: E402

from dcar.backbone import load_backbone  # noqa: E402
from dcar.world.sample import make_sample  # noqa: E402
from dcar.world.vocab import META_BY_NAME_V2  # noqa: E402


def main(spec: str, n: int = 600) -> None:
    torch.set_num_threads(1)
    backbone = load_backbone(spec)
    by_form: dict[str, list] = {}
    i = 0
    while min((len(v) for v in by_form.values()), default=0) < n or len(by_form) < 6:
        s = make_sample("pretrain-v2", "test", i, 0)
        i += 1
        if len(by_form.setdefault(s.meta, [])) < n:
            by_form[s.meta].append(s)
    for form, samples in by_form.items():
        x = _embed_images(backbone, samples, 96)
        half = n // 2
        cells = []
        for trait, values in META_BY_NAME_V2[form].traits:
            y = torch.tensor([values.index(s.traits[trait]) for s in samples])
            acc = linear_probe(x[:half], y[:half], x[half:], y[half:])
            cells.append(f"{trait} {acc:.0f}")
        print(f"{form:9s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
