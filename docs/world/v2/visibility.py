"""Can the image tower see the sibling traits at all? (docs/world/v2.md)

Trains the synthetic-v2 image tower *supervised* (subcategory labels of the pretraining corpus, 96
classes) for a few hundred steps, then reports sibling accuracy on each catalog's test split. High
accuracy here with a low linear probe after contrastive pretraining means the contrastive signal,
not the pixels, is what keeps the traits unlearnt.

  python docs/world/v2/visibility.py STEPS [THREADS] [easy]

``easy`` trains and tests on the same samples with the nuisance removed (one large, plain object in
the centre): if the tower learns the traits then, the nuisance is what makes them slow to learn.
``single`` removes only pairs and patterns (one plain object; sizes and positions still vary);
``large`` and ``center`` are ``single`` with one of the two left fixed, to tell them apart;
``plain`` is the world as it is with patterns off.
"""

import math
import sys
import time

import torch
import torch.nn.functional as F

from dcar.pretrain import get_preset
from dcar.pretrain.data import normalise
from dcar.pretrain.model import build_model
from dcar.world.domains import downstream_domains, get_domain, split_size
from dcar.world.render import render_array
from dcar.world.sample import make_sample


MODES = ("easy", "single", "large", "center", "plain")


def batch(domain, split, idx, size, mode=""):
    samples = [make_sample(domain, split, i, 0) for i in idx]
    if mode == "easy":
        samples = [s.with_changes(size="large", count=1, pattern="plain", position="center") for s in samples]
    elif mode == "single":
        samples = [s.with_changes(count=1, pattern="plain") for s in samples]
    elif mode == "large":  # single, and always large: does size alone matter?
        samples = [s.with_changes(count=1, pattern="plain", size="large") for s in samples]
    elif mode == "center":  # single, and always centred: does placement alone matter?
        samples = [s.with_changes(count=1, pattern="plain", position="center") for s in samples]
    elif mode == "plain":  # the world as it is, with patterns off: do patterns hide the traits?
        samples = [s.with_changes(pattern="plain") for s in samples]
    x = torch.stack([torch.from_numpy(render_array(s, size).copy()).permute(2, 0, 1) for s in samples])
    return normalise(x), samples


def main(steps: int, threads: int = 1, mode: str = "") -> None:
    torch.set_num_threads(threads)
    p = get_preset("synthetic-v2")
    visual = build_model(p.model_cfg, 0).visual
    subs = get_domain("pretrain-v2").subcategories
    head = torch.nn.Linear(p.model_cfg["embed_dim"], len(subs))
    opt = torch.optim.AdamW(list(visual.parameters()) + list(head.parameters()), lr=5e-4, weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(steps):
        x, samples = batch("pretrain-v2", "train", torch.randint(200_000, (128,), generator=g).tolist(), 96, mode)
        y = torch.tensor([subs.index(s.subcategory) for s in samples])
        loss = F.cross_entropy(head(visual(x)), y)
        for group in opt.param_groups:  # the pretraining recipe's schedule: warm-up, then cosine
            group["lr"] = p.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f} acc {(head(visual(x)).argmax(1) == y).float().mean():.2f} "
                  f"{time.time() - t0:.0f}s", flush=True)
    visual.eval()
    with torch.no_grad():
        x, samples = batch("pretrain-v2", "test", range(960), 96, mode)
        acc = (head(visual(x)).argmax(1) == torch.tensor([subs.index(s.subcategory) for s in samples])).float().mean()
        print(f"pretraining look (held out): supervised accuracy among all {len(subs)} subcategories {100 * acc:.1f}%")
        for name in () if mode else downstream_domains(2):
            d = get_domain(name)
            x, samples = batch(name, "test", range(min(480, split_size(d, "test"))), d.image_size)
            logits = head(visual(x))
            allowed = torch.tensor([[s in d.subcategories for s in subs]])
            pred = logits.masked_fill(~allowed, float("-inf")).argmax(1)
            acc = (pred == torch.tensor([subs.index(s.subcategory) for s in samples])).float().mean()
            print(f"{name}: supervised accuracy among its {len(d.subcategories)} subcategories {100 * acc:.1f}%", flush=True)


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:3] if a.isdigit()]
    main(*numbers, mode=sys.argv[-1] if sys.argv[-1] in MODES else "")
