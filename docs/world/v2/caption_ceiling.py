"""How well could anything retrieve a v2 catalog's test captions? (docs/world/v2.md)

An oracle reads what each caption states and the image shows (colour, count, pattern, background,
a trait; not the filler, and not the position: since commit 87d90e9 every v2 object is centred, so
position words are not grounded) and ranks, for each test image, the captions consistent with the image at random:
its expected I2T R@1 without names, knowing the form (meta-category), and knowing every name.
A model's zero-shot R@1 can only approach the last with perfect fine-grained knowledge.

    python docs/world/v2/caption_ceiling.py meadow pond airshow cabinet
"""
import re, sys
import numpy as np
from dcar.world import make_sample, get_domain, caption
from dcar.world.domains import split_size
from dcar.world.captions import TRAIT_WORDS, BACKGROUND_WORDS
from dcar.world.vocab import COLOURS

def facts(s, text):
    body = text.split(". ", 1)[1]
    f = {}
    for bg, w in BACKGROUND_WORDS.items():
        if w in body: f["background"] = bg
        body = body.replace(w, "BG")
    for c in COLOURS:
        if re.search(rf"\b{c}\b", body): f["colour"] = c
    if re.search(r"\btwo\b", body, re.I): f["count"] = 2
    for p in ("striped", "dotted", "plain"):
        if re.search(rf"\b{p}\b", body): f["pattern"] = p
    for trait, (a, b) in TRAIT_WORDS[s.meta].items():
        for v, w in zip(("0", "1"), (a, b)):
            if w in body: f["trait:" + trait] = (a, b).index(w)
    return f

def truth(s):
    t = {"colour": s.colour, "count": s.count, "pattern": s.pattern, "background": s.background}
    from dcar.world.vocab import META_BY_NAME_V2
    tv = s.traits
    for trait, values in META_BY_NAME_V2[s.meta].traits:
        t["trait:" + trait] = values.index(tv[trait])
    return t

for dom in sys.argv[1:]:
    d = get_domain(dom)
    ss = [make_sample(d, "test", i) for i in range(split_size(d, "test"))]
    F = [facts(s, caption(s)) for s in ss]
    T = [truth(s) for s in ss]
    blind, named, meta = [], [], []
    for i, t in enumerate(T):
        comp = [j for j, f in enumerate(F) if all(t.get(k) == v for k, v in f.items())]
        assert i in comp, (caption(ss[i]), F[i], t)
        blind.append(1 / len(comp))
        named.append(1 / sum(1 for j in comp if ss[j].subcategory == ss[i].subcategory))
        meta.append(1 / sum(1 for j in comp if ss[j].meta == ss[i].meta))
    print(f"{dom}: oracle R@1 name-blind {100*np.mean(blind):.1f}  meta known {100*np.mean(meta):.1f}  names known {100*np.mean(named):.1f}")
