"""The pretraining loop behind `dcar pretrain --preset NAME --out DIR`.

DIR holds: ``checkpoint.safetensors`` (resume point, replaced atomically every ``ckpt_every`` steps
and on SIGINT/SIGTERM), ``train_log.csv`` (one row per ``log_every`` steps, plus eval rows),
``model/`` (the final open_clip local-dir folder), ``loss_curve.png`` and ``metrics.json``.
Re-running the same command after a kill continues from the checkpoint and ends with the same
weights an uninterrupted run would have.
"""

from __future__ import annotations

import csv
import math
import signal
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from tqdm import tqdm

from dcar.atomic import write_csv_atomic, write_json_atomic
from dcar.errors import DcarError
from dcar.evaluation.recall import recall_at_k
from dcar.checkpoint import load_checkpoint, save_checkpoint
from dcar.pretrain.data import WorldPairs, collate, normalise, pretrain_loader
from dcar.pretrain.model import build_model, encode_text_fast, save_local_dir
from dcar.pretrain.presets import Preset
from dcar.world.domains import get_domain

LOG_FIELDS = ["step", "epoch", "loss", "logit_scale", "lr", "samples_per_s", "elapsed_s", "eval_i2t_r1", "eval_t2i_r1"]
MAX_LOGIT_SCALE = math.log(100.0)


def lr_at(step: int, p: Preset) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at the last step."""
    if step < p.warmup:
        return p.lr * (step + 1) / p.warmup
    t = (step - p.warmup) / max(1, p.steps - p.warmup)
    return p.min_lr + 0.5 * (p.lr - p.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def make_optimizer(model: torch.nn.Module, p: Preset) -> torch.optim.AdamW:
    """AdamW; no weight decay on gains, biases, embeddings of positions and the logit scale (as open_clip)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        skip = param.ndim < 2 or "ln" in name or "bias" in name or "logit_scale" in name or "positional" in name
        (no_decay if skip else decay).append(param)
    return torch.optim.AdamW(
        [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": p.weight_decay}],
        lr=p.lr, betas=(0.9, 0.98), eps=1e-6,
    )


@torch.no_grad()
def heldout_recall(model, p: Preset, n: int) -> tuple[float, float]:
    """R@1 (image->text, text->image), in percent, on the first ``n`` held-out pretraining pairs."""
    model.eval()
    device = next(model.parameters()).device
    data = WorldPairs(p.domain, "test", n, p.world_seed, p.image_size)
    feats_i, feats_t = [], []
    for start in range(0, n, 256):
        images, ids, _ = collate([data[i] for i in range(start, min(n, start + 256))])
        feats_i.append(F.normalize(model.encode_image(normalise(images).to(device)), dim=-1))
        feats_t.append(F.normalize(encode_text_fast(model, ids.to(device)), dim=-1))
    r = recall_at_k(torch.cat(feats_i).cpu(), torch.cat(feats_t).cpu(), torch.arange(n), ks=(1,))
    model.train()
    return r["i2t"]["R@1"], r["t2i"]["R@1"]


class _CsvLog:
    """Appends rows; on resume drops rows past the checkpoint (they will be recomputed)."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        rows = []
        if resume_step and path.exists():
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    try:
                        if int(row["step"]) <= resume_step:
                            rows.append(row)
                    except (KeyError, TypeError, ValueError):
                        continue  # a line cut short by the kill
        write_csv_atomic(rows, LOG_FIELDS, path)
        self.file = open(path, "a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, LOG_FIELDS)

    def write(self, **row) -> None:
        self.writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and exits cleanly at the end of the step."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. some test runners): no handler
                pass
        return self

    def _handle(self, *_):
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


AUX_HEAD = "aux_head"  # the tag head's attribute on the model while training; never exported


def build_training_model(p: Preset) -> torch.nn.Module:
    """The recipe's fresh CLIP, with its tag head when it has one (as its checkpoints hold it)."""
    model = build_model(p.model_cfg, p.seed)
    if p.aux_labels:  # a submodule, so that the optimiser and the checkpoint carry it like the rest
        n_classes = len(get_domain(p.domain).subcategories)
        model.add_module(AUX_HEAD, torch.nn.Linear(p.model_cfg["embed_dim"], n_classes))
    return model


def _restore(p: Preset, ckpt: Path, device: str) -> tuple[torch.nn.Module, torch.optim.Optimizer, int, float]:
    """A fresh model and optimiser, or the checkpoint's: (model, opt, step, elapsed seconds so far)."""
    model = build_training_model(p).to(device)
    opt = make_optimizer(model, p)
    if not ckpt.exists():
        return model, opt, 0, 0.0
    step, info = load_checkpoint(ckpt, model, opt)
    if info.get("fingerprint") != p.fingerprint():
        raise DcarError(f"{ckpt}: written by another recipe (preset {info.get('preset')!r}); "
                        f"use another --out or delete it")
    return model, opt, step, float(info.get("elapsed_s", 0.0))


def train_step(model, opt, loss_fn, images: torch.Tensor, ids: torch.Tensor, lr: float, p: Preset,
               labels: torch.Tensor | None = None) -> float:
    """One step on a batch (uint8 images, token ids, subcategory labels): the contrastive loss,
    plus ``p.aux_labels`` times the tag loss when the recipe has one; returns the total loss."""
    device = next(model.parameters()).device
    for group in opt.param_groups:
        group["lr"] = lr
    emb = model.encode_image(normalise(images).to(device))
    ft = F.normalize(encode_text_fast(model, ids.to(device)), dim=-1)
    loss = loss_fn(F.normalize(emb, dim=-1), ft, model.logit_scale.exp())
    if p.aux_labels:
        if labels is None:
            raise ValueError(f"preset {p.name!r} has a tag loss (aux_labels) but the batch has no labels")
        loss = loss + p.aux_labels * F.cross_entropy(getattr(model, AUX_HEAD)(emb), labels.to(device))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
    return loss.item()


def train(p: Preset, out: str | Path, max_steps: int | None = None, progress: bool = True,
          device: str = "cpu") -> dict:
    """Run (or resume) the recipe into ``out``. ``max_steps`` stops early (tests, pilots) after
    that many total steps, leaving a resumable checkpoint. Returns the final metrics (or progress)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(p.threads)
    ckpt = out / "checkpoint.safetensors"
    model, opt, step, elapsed0 = _restore(p, ckpt, device)
    stop_at = p.steps if max_steps is None else min(p.steps, max_steps)
    log = _CsvLog(out / "train_log.csv", step)
    loss_fn = ClipLoss()
    t0 = time.time()
    elapsed = lambda: elapsed0 + time.time() - t0  # noqa: E731  (wall time across resumed runs)
    last = (time.time(), step)  # for samples/s between log rows
    model.train()
    loader = pretrain_loader(p.corpus, p.batch_size, p.seed, p.world_seed, p.image_size, step, stop_at,
                             p.workers, p.domain)
    bar = tqdm(total=stop_at, initial=step, desc=f"pretrain {p.name}", unit="step", disable=not progress)
    try:
        with _StopFlag() as flag:
            for images, ids, labels in loader:
                loss = train_step(model, opt, loss_fn, images, ids, lr_at(step, p), p, labels)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
                if step % p.log_every == 0 or step == stop_at:
                    rate = (step - last[1]) * p.batch_size / max(1e-9, time.time() - last[0])
                    log.write(step=step, epoch=f"{step * p.batch_size / p.corpus:.3f}", loss=f"{loss:.5f}",
                              logit_scale=f"{model.logit_scale.exp().item():.3f}", lr=f"{lr_at(step - 1, p):.3e}",
                              samples_per_s=f"{rate:.1f}", elapsed_s=f"{elapsed():.1f}")
                    last = (time.time(), step)
                if step % p.eval_every == 0 or step == p.steps:
                    i2t, t2i = heldout_recall(model, p, p.eval_n)
                    log.write(step=step, eval_i2t_r1=f"{i2t:.2f}", eval_t2i_r1=f"{t2i:.2f}", elapsed_s=f"{elapsed():.1f}")
                    bar.write(f"step {step}: held-out R@1 i2t {i2t:.1f}% t2i {t2i:.1f}% (n={p.eval_n})")
                if step % p.ckpt_every == 0 or step == stop_at or flag.stop:
                    info = {"preset": p.name, "fingerprint": p.fingerprint(), "elapsed_s": elapsed(), "step": step}
                    save_checkpoint(ckpt, model, opt, step, info)
                if flag.stop:
                    bar.write(f"stopped at step {step}; run the same command again to resume")
                    break
    finally:
        bar.close()
        log.close()
    if step < p.steps:
        return {"step": step, "finished": False}
    return _finish(model, p, out, elapsed())


def _finish(model, p: Preset, out: Path, elapsed: float) -> dict:
    """Export the model folder, the loss curve and the final metrics."""
    from dcar.pretrain.plot import plot_loss_curve

    provenance = {"preset": p.name, "fingerprint": p.fingerprint(), "recipe": asdict(p)}
    if hasattr(model, AUX_HEAD):  # training-only: the exported model is a plain open_clip CLIP
        delattr(model, AUX_HEAD)
    model_dir = save_local_dir(model.cpu(), p.model_cfg, p.image_size, out / "model", provenance)
    plot_loss_curve(out / "train_log.csv", out / "loss_curve.png", title=f"dcar pretrain --preset {p.name}")
    weights = model_dir / "open_clip_model.safetensors"
    metrics = {
        "preset": p.name,
        "steps": p.steps,
        "samples_seen": p.steps * p.batch_size,
        "train_wall_s": round(elapsed, 1),
        "model_bytes": weights.stat().st_size,
        "params": sum(t.numel() for t in model.parameters()),
    }
    write_json_atomic(metrics, out / "metrics.json")
    return {"step": p.steps, "finished": True, **metrics}
