"""The bad-input corpus: kinds of bad input, each driven through the commands that read it.

A case is one kind of bad input given to one command. Every case must end in a clean error (exit
status 2, the last line `error: ...`, no traceback) or, where a command skips bad entries, exit 0
with the skip counted in its report. Cases that could block on a read (FIFOs) run under a
timeout: in a thread, and one of them in a child process running the real `dcar` entry point.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from safetensors.torch import save_file
import torch


@dataclass
class Work:
    """Where a case builds its inputs: ``tmp`` is the case's own folder, the rest is shared and good."""

    tmp: Path
    spec: str  # a tiny random-weight model
    fdrd: Path  # a good FDRD file whose images are under ``images``
    csv: Path  # the same set as a CSV table
    images: Path
    run: Path  # a finished 1-epoch coop run
    captions: list[str] = field(default_factory=list)

    def file(self, name: str, content: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
        return path

    def json(self, name: str, obj: object) -> Path:
        return self.file(name, json.dumps(obj))

    def fifo(self, name: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return path

    def fdrd_with(self, name: str, bad: dict) -> Path:
        """The good FDRD file plus ``bad`` entries."""
        good = json.loads(self.fdrd.read_text())
        return self.file(name, json.dumps({**good, **bad}, ensure_ascii=True))

    def image_root_with(self, name: str, content: bytes | None = None, make: Callable[[Path], None] | None = None) -> Path:
        """A copy of the good image folder (and FDRD file naming the extra image) plus one bad image."""
        root = self.tmp / "imgs"
        if not root.exists():
            shutil.copytree(self.images, root)
        if content is not None:
            (root / name).write_bytes(content)
        if make is not None:
            make(root / name)
        return root

    def fdrd_naming(self, image_name: str) -> Path:
        good = json.loads(self.fdrd.read_text())
        key = Path(image_name).stem
        extra = {key: {"file_name": image_name, "file_path": image_name, "class_name": "zorblat",
                       "positive": "This is a zorblat. A strange one.", "negative": []}}
        return self.file("with_extra.json", json.dumps({**good, **extra}))

    def run_copy(self) -> Path:
        dst = self.tmp / "run"
        if not dst.exists():
            shutil.copytree(self.run, dst)
        return dst

    def tampered_run(self, edit: Callable[[Path], None]) -> Path:
        run = self.run_copy()
        edit(run)
        return run


def _deep(n: int = 100_000) -> str:
    return "[" * n + "]" * n


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb): no pixel data needed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- data files
# Each makes a bad dataset file; it is given to every command that reads a dataset.
DATA_KINDS: dict[str, Callable[[Work], Path]] = {
    "missing file": lambda w: w.tmp / "nope.json",
    "folder without images": lambda w: (w.tmp / "empty").mkdir() or w.tmp / "empty",
    "empty file": lambda w: w.file("empty.json", b""),
    "invalid JSON": lambda w: w.file("bad.json", '{"a": '),
    "JSON array": lambda w: w.json("array.json", [1, 2, 3]),
    "JSON scalar": lambda w: w.json("scalar.json", 42),
    "100k-deep nested JSON": lambda w: w.file("deep.json", _deep()),
    "100k-deep nested entry": lambda w: w.file("deep_entry.json", '{"k": ' + _deep() + "}"),
    "binary garbage": lambda w: w.file("garbage.json", bytes(range(256)) * 64),
    "latin-1 text": lambda w: w.file("latin.csv", "image,category\ncaf\xe9.jpg,zorblat\n".encode("latin-1")),
    "UTF-16 JSON": lambda w: w.file("utf16.json", json.dumps({"a": {"positive": "x"}}).encode("utf-16")),
    "entry not an object": lambda w: w.fdrd_with("notobj.json", {"zorblat_99": ["a list"]}),
    "entry without positive": lambda w: w.fdrd_with("nopos.json", {"zorblat_99": {"negative": []}}),
    "misspelt key": lambda w: w.fdrd_with("misspelt.json", {"zorblat_99": {"postive": "x", "class_name": "zorblat"}}),
    "positive is a number": lambda w: w.fdrd_with("numpos.json", {"zorblat_99": {"positive": 3}}),
    "negatives not a list": lambda w: w.fdrd_with("negstr.json", {"zorblat_0": {"positive": "x", "negative": "oops"}}),
    "lone-surrogate caption": lambda w: w.file("surrogate.json", _surrogate_fdrd(w)),
    "caption of 100k characters": lambda w: w.fdrd_with("long.json", {"zorblat_0": {"positive": "very " * 20000, "negative": [], "class_name": "zorblat"}}),
    "NaN in JSON": lambda w: w.file("nan.json", '{"zorblat_0": {"positive": NaN, "negative": []}}'),
    "CSV without the columns": lambda w: w.file("nocols.csv", "a,b\n1,2\n"),
    "CSV empty category": lambda w: w.file("nocat.csv", "image,category\nzorblat_0.png,\n"),
    "CSV ragged rows": lambda w: w.file("ragged.csv", "image,category\nzorblat_0.png\nzorblat_1.png,zorblat,extra,more\n"),
    "CSV with NUL bytes": lambda w: w.file("nul.csv", b"image,category\nzorb\x00lat_0.png,zorblat\n"),
    "JSONL bad line": lambda w: w.file("bad.jsonl", '{"image": "zorblat_0.png", "category": "zorblat"}\n{nope\n'),
    "no image found": lambda w: w.json("noimg.json", {"ghost_1": {"positive": "a ghost", "class_name": "ghost", "negative": []}}),
}


def _surrogate_fdrd(w: Work) -> str:
    good = json.loads(w.fdrd.read_text())
    first = next(iter(good))
    good[first]["positive"] = "This is a zorblat \ud800 with a broken character."
    good[first]["negative"] = ["This is a plarvik \udfff."]
    return json.dumps(good, ensure_ascii=True)  # \\ud800 escapes: valid JSON, invalid text


# --------------------------------------------------------------------------- images
# Each adds one bad image to a copy of the good image folder (and an FDRD entry naming it).
IMAGE_KINDS: dict[str, Callable[[Work], tuple[Path, Path]]] = {
    "truncated image": lambda w: (w.fdrd_naming("cut.png"), w.image_root_with("cut.png", (w.images / "zorblat_0.png").read_bytes()[:60])),
    "zero-byte image": lambda w: (w.fdrd_naming("zero.png"), w.image_root_with("zero.png", b"")),
    "text file named .png": lambda w: (w.fdrd_naming("text.png"), w.image_root_with("text.png", b"hello, not an image")),
    "decompression bomb": lambda w: (w.fdrd_naming("bomb.png"), w.image_root_with("bomb.png", _png_header(100_000, 100_000))),
    "dangling symlink image": lambda w: (w.fdrd_naming("dangling.png"), w.image_root_with("dangling.png", make=lambda p: p.symlink_to(p.parent / "gone.png"))),
    "symlink loop in the image folder": lambda w: (w.fdrd, w.image_root_with("loop", make=lambda p: p.symlink_to(p.parent, target_is_directory=True))),
}
FIFO_IMAGE = "FIFO named .png"


# --------------------------------------------------------------------------- side files of train
TAXONOMY_KINDS: dict[str, Callable[[Work], Path]] = {
    "taxonomy not an object": lambda w: w.json("tax.json", ["zorblat", "widget"]),
    "taxonomy value not a string": lambda w: w.json("tax.json", {"zorblat": 3}),
    "taxonomy invalid JSON": lambda w: w.file("tax.json", "{zorblat: widget}"),
}
CONFIG_KINDS: dict[str, Callable[[Work], Path]] = {
    "config epochs as a string": lambda w: w.json("cfg.json", {"train": {"epochs": "3"}}),
    "config n_ctx 0": lambda w: w.json("cfg.json", {"method": {"n_ctx": 0}}),
    "config unknown key": lambda w: w.json("cfg.json", {"train": {"epoch": 3}}),
    "config not an object": lambda w: w.json("cfg.json", [1]),
    "config batch size 1": lambda w: w.json("cfg.json", {"train": {"batch_size": 1}}),
    "config negative lr": lambda w: w.json("cfg.json", {"train": {"lr": -1}}),
    "config lr NaN": lambda w: w.file("cfg.json", '{"train": {"lr": NaN}}'),
    "config epochs 0": lambda w: w.json("cfg.json", {"train": {"epochs": 0}}),
    "config optimizer unknown": lambda w: w.json("cfg.json", {"train": {"optimizer": "adam"}}),
    "config amp a string": lambda w: w.json("cfg.json", {"train": {"amp": "yes"}}),
    "config 100k-deep": lambda w: w.file("cfg.json", '{"method": ' + _deep() + "}"),
}


# --------------------------------------------------------------------------- run folders
def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text(text)


def _tensors(make: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        from safetensors.torch import load_file

        save_file(make(load_file(str(run / "best.safetensors"))), str(run / "best.safetensors"))
    return edit


RUN_KINDS: dict[str, Callable[[Path], None]] = {
    "run.json invalid": _write("run.json", "{"),
    "run.json an array": _write("run.json", "[]"),
    "run.json without backbone": lambda run: _edit_json(run / "run.json", lambda d: d.pop("backbone")),
    "run.json unknown method": lambda run: _edit_json(run / "run.json", lambda d: d.update(method="nope")),
    "run.json method_config a string": lambda run: _edit_json(run / "run.json", lambda d: d.update(method_config="x")),
    "best.safetensors garbage": lambda run: (run / "best.safetensors").write_bytes(b"\x00" * 100),
    "best.safetensors wrong shapes": _tensors(lambda t: {k: torch.zeros(3, 3) for k in t}),
    "best.safetensors wrong names": _tensors(lambda t: {"other": torch.zeros(1)}),
    "best.safetensors all NaN": _tensors(lambda t: {k: torch.full_like(v, float("nan")) for k, v in t.items()}),
    "best.safetensors missing": lambda run: (run / "best.safetensors").unlink(),
}
STATE_KINDS: dict[str, Callable[[Path], None]] = {
    "state.json epoch -3": lambda run: _edit_json(run / "state.json", lambda d: d.update(epoch=-3)),
    "state.json epoch 99": lambda run: _edit_json(run / "state.json", lambda d: d.update(epoch=99)),
    "state.json epoch a string": lambda run: _edit_json(run / "state.json", lambda d: d.update(epoch="1")),
    "state.json invalid": _write("state.json", "{"),
    "state.json without optimizer": lambda run: _edit_json(run / "state.json", lambda d: d.pop("optimizer")),
    "optimiser tensors garbage": lambda run: (run / "resume" / "optim-2.safetensors").write_bytes(b"junk"),
    "optimiser tensors of another shape": lambda run: save_file({"0.momentum_buffer": torch.zeros(2)}, str(run / "resume" / "optim-2.safetensors")),
    "last epoch's tensors missing": lambda run: (run / "resume" / "epoch-2.safetensors").unlink(),
    "history shorter than the epoch": lambda run: _edit_json(run / "state.json", lambda d: d.update(history=d["history"][:1])),
    "best_score NaN": lambda run: _edit_json(run / "state.json", lambda d: d.update(best_score=float("nan"))),
}


def _edit_json(path: Path, edit: Callable[[dict], object]) -> None:
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))
