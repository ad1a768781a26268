"""Does a CLIP pretrained on the world behave like the paper's setting?

Measures, for any model spec ``load_backbone`` reads (default: the shipped ``builtin:synthetic-small``):

- held-out pretraining-style pairs (a gallery of 1,000): zero-shot Recall@K;
- each downstream domain's test split: zero-shot Recall@K, and what the top-1 mistakes are:
  a sibling subcategory (same meta-category), the right subcategory with other attributes, or
  something else; plus hard-negative accuracy on the world's negatives and zero-shot subcategory
  classification ("This is a {subcategory}.") as a direct probe of fine-grained knowledge.

Run: ``dcar world diagnose [--model SPEC] [--out docs/world]`` (writes diagnose.json/.md).
Images go through the model's own preprocessing, as real images would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dcar.atomic import write_json_atomic, write_text_atomic
from dcar.backbone import Backbone, load_backbone
from dcar.evaluation.recall import hard_negative_accuracy, recall_at_k
from dcar.world.captions import caption, name_sentence
from dcar.world.domains import PRETRAIN, downstream_domains, get_domain, split_size
from dcar.world.structural_negatives import negative_captions
from dcar.world.render import render
from dcar.world.sample import Sample, make_sample

ATTRIBUTES = ("colour", "size", "position", "background", "count", "pattern")


@torch.no_grad()
def embed_texts(model: Backbone, texts: list[str], batch: int = 512) -> torch.Tensor:
    out = [model.encode_text(model.tokenize(texts[i:i + batch]).to(model.device)) for i in range(0, len(texts), batch)]
    return F.normalize(torch.cat(out).float(), dim=-1).cpu()


@torch.no_grad()
def embed_samples(model: Backbone, samples: list[Sample], batch: int = 256) -> torch.Tensor:
    """Rendered at the model's input size, then through its own eval preprocessing."""
    preprocess, size = model.image_transform(train=False), model.info.image_size
    out = []
    for i in range(0, len(samples), batch):
        pixels = torch.stack([preprocess(render(s, size)) for s in samples[i:i + batch]])
        out.append(model.encode_image(pixels.to(model.device)))
    return F.normalize(torch.cat(out).float(), dim=-1).cpu()


def classify_error(query: Sample, got: Sample) -> str:
    """What kind of mistake retrieving ``got`` for ``query`` is (by caption content)."""
    same_attrs = all(getattr(query, a) == getattr(got, a) for a in ATTRIBUTES)
    if query.meta != got.meta:
        return "other_meta"
    if query.named != got.named:
        return "sibling_same_attributes" if same_attrs else "sibling_other_attributes"
    return "same_name_other_wording" if same_attrs else "same_name_other_attributes"


def error_breakdown(sim: torch.Tensor, samples: list[Sample], captions: list[str]) -> dict:
    """Shares (percent of top-1 errors) per kind, both directions."""
    out = {}
    for direction, top in (("i2t", sim.argmax(1)), ("t2i", sim.argmax(0))):
        counts: dict[str, int] = {}
        errors = 0
        for q, t in enumerate(top.tolist()):
            if t == q or captions[t] == captions[q]:
                continue
            errors += 1
            kind = classify_error(samples[q], samples[t])
            counts[kind] = counts.get(kind, 0) + 1
        shares = {k: round(100 * v / max(1, errors), 1) for k, v in sorted(counts.items())}
        shares["sibling_total"] = round(sum(v for k, v in shares.items() if k.startswith("sibling")), 1)
        out[direction] = {"errors": errors, "shares": shares}
    return out


@torch.no_grad()
def negatives_accuracy(model: Backbone, img: torch.Tensor, samples: list[Sample], pos: torch.Tensor) -> float:
    """Share of images whose caption beats all 4 world negatives (percent)."""
    negs = [negative_captions(s) for s in samples]
    flat = embed_texts(model, [t for group in negs for t in group]).view(len(samples), -1, img.shape[1])
    return round(hard_negative_accuracy(img, pos, flat), 2)


@torch.no_grad()
def subcategory_accuracy(model: Backbone, img: torch.Tensor, samples: list[Sample], subs: tuple[str, ...]) -> dict:
    """Zero-shot classification with "This is a {name}." among the domain's subcategories."""
    prompts = [name_sentence(s) for s in subs]
    pred = (img @ embed_texts(model, prompts).T).argmax(1).tolist()
    truth = [subs.index(s.subcategory) for s in samples]
    meta_of = [get_domain(samples[0].domain).taxonomy[s] for s in subs]
    return {
        "subcategory_top1": round(100 * float(np.mean([p == t for p, t in zip(pred, truth)])), 2),
        "meta_top1": round(100 * float(np.mean([meta_of[p] == meta_of[t] for p, t in zip(pred, truth)])), 2),
        "chance_subcategory": round(100 / len(subs), 2),
    }


def linear_probe(model: Backbone, domain: str, seed: int, test_img: torch.Tensor, test_samples: list[Sample]) -> float:
    """Test accuracy (percent) of a logistic-regression probe on frozen image features trained on
    the domain's few-shot train split: how much subcategory information the frozen image tower
    already carries (the head-room a prompt method can reach without changing the encoders)."""
    d = get_domain(domain)
    train = [make_sample(d, "train", i, seed) for i in range(split_size(d, "train"))]
    x = embed_samples(model, train)
    y = torch.tensor([d.subcategories.index(s.subcategory) for s in train])
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], len(d.subcategories))
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(head(x * 10), y).backward()
        opt.step()
    truth = torch.tensor([d.subcategories.index(s.subcategory) for s in test_samples])
    with torch.no_grad():
        return round(float((head(test_img * 10).argmax(1) == truth).float().mean()) * 100, 2)


def evaluate(model: Backbone, samples: list[Sample], subs=None) -> dict:
    captions = [caption(s) for s in samples]
    img = embed_samples(model, samples)
    txt = embed_texts(model, captions)
    sim = img @ txt.T
    recall = recall_at_k(img, txt, torch.arange(len(samples)))
    result = {"n": len(samples),
              "recall": {d: {k: round(v, 2) for k, v in r.items()} for d, r in recall.items()},
              "top1_errors": error_breakdown(sim, samples, captions),
              "hard_negative_accuracy": negatives_accuracy(model, img, samples, txt)}
    if subs:
        result["zero_shot_classification"] = subcategory_accuracy(model, img, samples, subs)
        result["zero_shot_classification"]["linear_probe_16shot"] = linear_probe(
            model, samples[0].domain, samples[0].seed, img, samples)
    return result


def diagnose(model: str, seed: int = 0, n_pretrain: int = 1000, device: str = "cpu",
             domains: list[str] | None = None, n_test: int | None = None) -> dict:
    """The report for model spec ``model`` on the held-out pretraining pairs and the test split of
    each of ``domains`` (default: every downstream domain), at most ``n_test`` images each."""
    backbone = load_backbone(model, device=device).freeze().eval()
    report = {"model": model, "seed": seed, "domains": {}}
    heldout = [make_sample(PRETRAIN, "test", i, seed) for i in range(n_pretrain)]
    report["pretrain_heldout"] = evaluate(backbone, heldout)
    for name in domains or downstream_domains():
        d = get_domain(name)
        n = min(split_size(d, "test"), n_test or split_size(d, "test"))
        samples = [make_sample(d, "test", i, seed) for i in range(n)]
        report["domains"][name] = evaluate(backbone, samples, d.subcategories)
    return report


def to_markdown(report: dict) -> str:
    rows = [("pretrain held-out", report["pretrain_heldout"])] + list(report["domains"].items())
    lines = [
        f"# World diagnosis: `{report['model']}`",
        "",
        "Zero-shot retrieval, one caption per image, gallery = the whole split. The error columns",
        "split the image-to-text top-1 mistakes (percent of them) by what the retrieved caption says:",
        "a sibling subcategory of the same meta-category (same or other attributes), the right name",
        "with other attributes, the right name and attributes in other words (another template), or",
        "another meta-category. Hard-neg: share of images whose caption beats its 4 world negatives.",
        "Zero-shot / probe: subcategory accuracy of \"This is a {name}.\" prompts, and of a linear",
        "probe on frozen image features trained on the 16-shot train split.",
        "",
        "| split | n | I2T R@1 | R@5 | R@10 | T2I R@1 | R@5 | R@10 | errors | sibling, same attrs | sibling, other attrs "
        "| right name, other attrs | right name+attrs, other words | other meta | hard-neg | zero-shot / probe (chance) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows:
        i2t, t2i = r["recall"]["i2t"], r["recall"]["t2i"]
        err = r["top1_errors"]["i2t"]
        sh = err["shares"]
        zs = r.get("zero_shot_classification", {})
        zs_txt = (f"{zs['subcategory_top1']} / {zs['linear_probe_16shot']} ({zs['chance_subcategory']})"
                  if zs else "-")
        lines.append(
            f"| {name} | {r['n']} | {i2t['R@1']} | {i2t['R@5']} | {i2t['R@10']} | {t2i['R@1']} | {t2i['R@5']} | "
            f"{t2i['R@10']} | {err['errors']} | {sh.get('sibling_same_attributes', 0)} | "
            f"{sh.get('sibling_other_attributes', 0)} | {sh.get('same_name_other_attributes', 0)} | "
            f"{sh.get('same_name_other_wording', 0)} | {sh.get('other_meta', 0)} | {r['hard_negative_accuracy']} | {zs_txt} |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: str | Path) -> None:
    out = Path(out)
    write_json_atomic(report, out / "diagnose.json")
    write_text_atomic(to_markdown(report), out / "diagnose.md")
