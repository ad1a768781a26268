"""Every kind of bad input in the corpus, through every command that reads it: a clean one-line
error (exit 2) or a counted skip (exit 0, reported); never a traceback, never a hang."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from cli_helpers import run_cli

import corpus as C

REPO = Path(__file__).resolve().parents[2]
SUBPROCESS_TIMEOUT = 120  # seconds; importing torch alone takes a few on the shared CPU
SKIP_LINE = re.compile(r"warning:|(skip|unreadable|not found|missing|failed|problem)[^\n]*?\b[1-9]", re.IGNORECASE)
# Odd but valid input, accepted as is: CLIP cuts long captions at its context (validate counts
# them), and the image index walks past symlink loops.
ACCEPTED = {("caption of 100k characters", "train"), ("caption of 100k characters", "train --method dcar"),
            ("caption of 100k characters", "eval"), ("symlink loop in the image folder", "train"),
            ("symlink loop in the image folder", "eval"), ("symlink loop in the image folder", "embed"),
            ("symlink loop in the image folder", "data build"), ("caption of 100k characters", "data negatives"),
            ("no image found", "data negatives"),  # negatives are made from captions alone
            ("caption of 100k characters", "data split"), ("caption of 100k characters", "data build"),
            ("symlink loop in the image folder", "data validate")}
# `data build --captioner template` writes captions from class names without opening the images
# (as documented); `data validate`, `train` and `eval` are the commands that read them.
ACCEPTED |= {(kind, "data build") for kind in C.IMAGE_KINDS}
TALLY: dict[str, dict] = {}  # case id -> {"kind", "command", "outcome"}; printed by conftest


@dataclass(frozen=True)
class Case:
    kind: str
    command: str
    args: Callable[[C.Work], list]
    blocking: bool = False  # an input that could block a read (a FIFO): run under a timeout
    subprocess: bool = False  # with blocking: in a child process (one such case checks the whole CLI)

    @property
    def id(self) -> str:
        return f"{self.kind} -> {self.command}"


def _train(w: C.Work, src, *extra, images=None, method="coop", out=None) -> list:
    return ["train", "--method", method, "--model", w.spec, "--train", src, "--images", images or w.images,
            "--out", out or w.tmp / "out_run", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--device", "cpu", *extra]


def _train_settings_from(w: C.Work, config: Path) -> list:
    """`dcar train --config FILE` with no option that would override what the file sets."""
    return ["train", "--method", "coop", "--model", w.spec, "--train", w.csv, "--images", w.images,
            "--out", w.tmp / "out_run", "--config", config, "--workers", "0", "--device", "cpu"]


def _eval(w: C.Work, src, *extra, images=None, model=None, out=None) -> list:
    model = ["--model", w.spec if model is None else model] if "--checkpoint" not in extra else []
    return ["eval", *model, "--fdrd", src, "--images", images or w.images, "--out", out or w.tmp / "r.json",
            "--workers", "0", "--device", "cpu", *extra]


def _data_commands(w: C.Work, src, images=None) -> dict[str, list]:
    images = images or w.images
    return {
        "data validate": ["data", "validate", src, "--images", images],
        "data split": ["data", "split", src, "--images", images, "--out", w.tmp / "split"],
        "data negatives": ["data", "negatives", src, "--out", w.tmp / "neg.json"],
        "data build": ["data", "build", "--images", src, "--image-root", images, "--out", w.tmp / "built.json",
                       "--captioner", "template", "--no-progress"],
        "train": _train(w, src, images=images),
        "eval": _eval(w, src, images=images),
    }


DATA_COMMANDS = ("data validate", "data split", "data negatives", "data build", "train", "eval")
IMAGE_COMMANDS = ("data validate", "data build", "train", "eval")


def _embed_list(w: C.Work, lines: bytes | str) -> list:
    return ["embed", "--model", w.spec, "--images", w.file("list.txt", lines), "--out", w.tmp / "f.npy", "--workers", "0", "--device", "cpu"]


def _cases() -> list[Case]:
    cases: list[Case] = []
    for kind, make in C.DATA_KINDS.items():
        for command in DATA_COMMANDS:
            cases.append(Case(kind, command, lambda w, make=make, command=command: _data_commands(w, make(w))[command]))
    for kind in ("lone-surrogate caption", "caption of 100k characters"):
        make = C.DATA_KINDS[kind]
        cases.append(Case(kind, "train --method dcar", lambda w, make=make: _train(
            w, make(w), "--config", w.json("dcar.json", {"method": {"depth": 2}}), method="dcar")))
    for command in DATA_COMMANDS:
        cases.append(Case("FIFO as the dataset", command, lambda w, command=command: _data_commands(w, w.fifo("pipe.json"))[command],
                          blocking=True, subprocess=command == "data validate"))
    for kind, make in C.IMAGE_KINDS.items():
        for command in IMAGE_COMMANDS:
            cases.append(Case(kind, command, lambda w, make=make, command=command: _data_commands(w, *make(w))[command]))
        cases.append(Case(kind, "embed", lambda w, make=make: _embed_list(w, "".join(
            f"{p}\n" for p in sorted(make(w)[1].iterdir())))))
    for command in ("data validate", "eval", "train"):
        cases.append(Case(C.FIFO_IMAGE, command, lambda w, command=command: _data_commands(
            w, w.fdrd_naming("pipe.png"), w.image_root_with("pipe.png", make=os.mkfifo))[command], blocking=True))
    cases.append(Case(C.FIFO_IMAGE, "embed", lambda w: _embed_list(w, f"{w.fifo('pipe.png')}\n"), blocking=True))

    for kind, make in C.TAXONOMY_KINDS.items():
        cases += [
            Case(kind, "train", lambda w, make=make: _train(w, w.csv, "--taxonomy", make(w))),
            Case(kind, "data negatives", lambda w, make=make: ["data", "negatives", w.fdrd, "--out", w.tmp / "n.json", "--taxonomy", make(w)]),
            Case(kind, "data build", lambda w, make=make: ["data", "build", "--images", w.csv, "--out", w.tmp / "b.json", "--captioner", "template", "--no-progress", "--taxonomy", make(w)]),
            Case(kind, "data split", lambda w, make=make: ["data", "split", w.csv, "--out", w.tmp / "s", "--taxonomy", make(w)]),
        ]
    cases.append(Case("FIFO as the taxonomy", "train", lambda w: _train(w, w.csv, "--taxonomy", w.fifo("tax.json")), blocking=True))
    for kind, make in C.CONFIG_KINDS.items():
        cases.append(Case(kind, "train", lambda w, make=make: _train_settings_from(w, make(w))))
    cases.append(Case("FIFO as the config", "train", lambda w: _train(w, w.csv, "--config", w.fifo("cfg.json")), blocking=True))

    for kind, edit in C.RUN_KINDS.items():
        cases += [
            Case(kind, "eval --checkpoint", lambda w, edit=edit: _eval(w, w.fdrd, "--checkpoint", w.tampered_run(edit))),
            Case(kind, "embed --checkpoint", lambda w, edit=edit: ["embed", "--checkpoint", w.tampered_run(edit), "--texts",
                                                                   w.file("t.txt", "a zorblat\n"), "--out", w.tmp / "e.npy", "--device", "cpu"]),
        ]
    for kind, edit in {**C.STATE_KINDS, **{k: v for k, v in C.RUN_KINDS.items() if k.startswith("run.json")}}.items():
        cases.append(Case(kind, "train --resume", lambda w, edit=edit: _resume_args(w, w.tampered_run(edit))))

    for kind, out in {
        "--out under a file": lambda w: w.file("afile", "x") / "sub" / "o",
        "--out name too long": lambda w: w.tmp / ("x" * 300),
    }.items():
        for command, args in _output_commands().items():
            cases.append(Case(kind, command, lambda w, out=out, args=args: args(w, out(w))))
    for command, args in _output_commands().items():
        kind = "--out is a folder, a file expected" if command in FILE_OUTPUTS else "--out is a file, a folder expected"
        make = (lambda w: (w.tmp / "d").mkdir() or w.tmp / "d") if command in FILE_OUTPUTS else (lambda w: w.file("f", "x"))
        cases.append(Case(kind, command, lambda w, make=make, args=args: args(w, make(w))))

    for kind, spec in {"unknown model prefix": "nope:x", "unknown open_clip architecture": "open_clip:NoSuchNet",
                       "model folder missing": "open_clip:local-dir:/nonexistent/dir", "empty model spec": ""}.items():
        cases += [
            Case(kind, "eval", lambda w, spec=spec: _eval(w, w.fdrd, model=spec)),
            Case(kind, "embed", lambda w, spec=spec: ["embed", "--model", spec, "--texts", w.file("t.txt", "x\n"), "--out", w.tmp / "e.npy"]),
            Case(kind, "train", lambda w, spec=spec: [a if a != w.spec else spec for a in _train(w, w.csv)]),
        ]
    for kind, device in {"unknown device": "tpu", "absent GPU": "cuda:7"}.items():
        if device == "cuda:7" and _has_cuda():
            continue
        cases += [
            Case(kind, "eval", lambda w, device=device: [a if a != "cpu" else device for a in _eval(w, w.fdrd)]),
            Case(kind, "train", lambda w, device=device: [a if a != "cpu" else device for a in _train(w, w.csv)]),
        ]
    for kind, lines in {"empty list": b"", "only blank lines": b"\n\n  \n", "list not UTF-8": b"caf\xe9.png\n",
                        "NUL in a listed path": "a\x00b.png\n", "listed path too long": "x" * 5000 + ".png\n",
                        "listed folder": None}.items():
        cases.append(Case(kind, "embed", lambda w, lines=lines: _embed_list(w, lines if lines is not None else f"{w.images}\n")))
    cases.append(Case("list is a folder", "embed", lambda w: ["embed", "--model", w.spec, "--texts", w.images, "--out", w.tmp / "e.npy"]))
    cases.append(Case("FIFO as the list", "embed", lambda w: ["embed", "--model", w.spec, "--texts", w.fifo("l.txt"), "--out", w.tmp / "e.npy"], blocking=True))
    for kind, make in {"results not a results file": lambda w: w.json("r.json", {"a": 1}),
                       "results invalid JSON": lambda w: w.file("r.json", "{"),
                       "run folder without results": lambda w: w.run_copy(),
                       "results 100k-deep": lambda w: w.file("r.json", _deep_text()),
                       "results datasets not an object": lambda w: w.json("r.json", {"datasets": 3, "method": "x"})}.items():
        cases.append(Case(kind, "compare", lambda w, make=make: ["compare", make(w), "--out", w.tmp / "cmp"]))
    cases += [
        Case("unknown domain", "data synth", lambda w: ["data", "synth", "--domain", "atlantis", "--out", w.tmp / "s"]),
        Case("unknown split", "data synth", lambda w: ["data", "synth", "--domain", "garden", "--split", "dev", "--out", w.tmp / "s"]),
        Case("unknown preset", "pretrain", lambda w: ["pretrain", "--preset", "huge", "--out", w.tmp / "p"]),
        Case("unknown domain", "demo", lambda w: ["demo", "--domain", "atlantis", "--out", w.tmp / "d"]),
    ]
    for kind, spec in {"unknown captioner": "nope:", "openai captioner without a model": "openai:",
                       "openai captioner on ftp": "openai:m@ftp://example.org/v1", "hf captioner folder missing": "hf:/nonexistent",
                       "caption file missing": "file:/nonexistent.csv", "template file missing": "template:/nonexistent.txt"}.items():
        cases.append(Case(kind, "data build", lambda w, spec=spec: ["data", "build", "--images", w.csv, "--out", w.tmp / "b.json",
                                                                    "--captioner", spec, "--no-progress"]))
    cases += _service_cases()
    cases += _ops_cases()
    return cases


def _service_cases() -> list[Case]:
    """The index, search, serve and world commands (added after the corpus was first written)."""
    index_build = lambda w, images: ["index", "build", "--images", images, "--model", w.spec, "--out", w.tmp / "idx",  # noqa: E731
                                     "--workers", "0", "--device", "cpu", "--no-progress"]
    cases = [Case(kind, "index build", lambda w, make=C.DATA_KINDS[kind]: index_build(w, make(w)))
             for kind in ("missing file", "folder without images", "empty file", "binary garbage", "latin-1 text",
                          "CSV without the columns", "CSV with NUL bytes", "JSONL bad line")]
    cases += [
        Case("FIFO as the catalog", "index build", lambda w: index_build(w, w.fifo("list.txt")), blocking=True),
        Case("--out under a file", "index build", lambda w: [*index_build(w, w.images)[:5], "--out", w.file("f", "x") / "idx"]),
        Case("--captions invalid JSON", "index build", lambda w: [*index_build(w, w.images), "--captions", w.file("c.json", "{")]),
        Case("missing index", "search", lambda w: ["search", w.tmp / "none", "--text", "x"]),
        Case("index folder is a file", "search", lambda w: ["search", w.file("idx", "x"), "--text", "x"]),
        Case("not an index folder", "search", lambda w: ["search", w.images, "--text", "x"]),
        Case("not an index folder", "index add", lambda w: ["index", "add", w.images, "--images", w.images, "--no-progress"]),
        Case("missing index", "serve", lambda w: ["serve", w.tmp / "none", "--port", "0"], blocking=True),
        Case("not an index folder", "serve", lambda w: ["serve", w.images, "--port", "0"], blocking=True),
        Case("unknown model prefix", "world diagnose", lambda w: ["world", "diagnose", "--model", "nope:x", "--n-test", "2"]),
        Case("--from-json invalid", "world diagnose", lambda w: ["world", "diagnose", "--from-json", w.file("d.json", "{")]),
        Case("--from-json 100k-deep", "world diagnose", lambda w: ["world", "diagnose", "--from-json", w.file("d.json", _deep_text())]),
        Case("--from-json not a report", "world diagnose", lambda w: ["world", "diagnose", "--from-json", w.json("d.json", [1])]),
        Case("FIFO as --from-json", "world diagnose", lambda w: ["world", "diagnose", "--from-json", w.fifo("d.json")], blocking=True),
    ]
    return cases


# The operating commands: each file they read, in every way it can be wrong.
OPS_FILE_KINDS = ("missing file", "empty file", "invalid JSON", "JSON array", "100k-deep nested JSON",
                  "binary garbage", "UTF-16 JSON", "NaN in JSON")


def _ops_cases() -> list[Case]:
    """calibrate, match, review and ab: policies, queues, event logs and held-out sets."""
    calibrate = lambda w, data: ["calibrate", "--data", data, "--images", w.images, "--model", w.spec,  # noqa: E731
                                 "--out", w.tmp / "policy.json", "--workers", "0", "--device", "cpu"]
    match = lambda w, policy: ["match", "--policy", policy, "--text", "a zorblat", "--gallery", w.fdrd,  # noqa: E731
                               "--gallery-images", w.images, "--device", "cpu"]
    cases = []
    for kind in OPS_FILE_KINDS:
        make = C.DATA_KINDS[kind]
        cases += [
            Case(kind, "calibrate", lambda w, make=make: calibrate(w, make(w))),
            Case(kind, "match --policy", lambda w, make=make: match(w, make(w))),
            Case(kind, "ab report", lambda w, make=make: ["ab", "report", make(w)]),
            Case(kind, "review list", lambda w, make=make: ["review", "list", make(w)]),
            Case(kind, "review export", lambda w, make=make: ["review", "export", make(w), "--out", w.tmp / "x.json"]),
        ]
    cases += [
        Case("policy with a non-finite threshold", "match --policy", lambda w: match(w, w.file(
            "p.json", '{"task": "t2i", "lambda_hi": NaN, "lambda_lo": 0.1, "model": "x"}'))),
        Case("policy of another kind", "match --policy", lambda w: match(w, w.json("p.json", {"task": "poetry"}))),
        Case("A/B log with a bad line", "ab report", lambda w: ["ab", "report", w.file(
            "ab.jsonl", '{"event": "impression"}\n{nope\n')]),
        Case("queue is a folder without one", "review list", lambda w: ["review", "list", w.images]),
        Case("queue is a folder without one", "review decide", lambda w: [
            "review", "decide", w.images, "1", "--decision", "accept", "--reviewer", "me"]),
        Case("FIFO as the policy", "match --policy", lambda w: match(w, w.fifo("p.json")), blocking=True),
        Case("FIFO as the log", "ab report", lambda w: ["ab", "report", w.fifo("ab.jsonl")], blocking=True),
    ]
    return cases


FILE_OUTPUTS = ("eval", "embed", "data negatives", "data build")


def _output_commands() -> dict[str, Callable[[C.Work, Path], list]]:
    return {
        "eval": lambda w, out: _eval(w, w.fdrd, out=out),
        "embed": lambda w, out: ["embed", "--model", w.spec, "--texts", w.file("t.txt", "x\n"), "--out", out],
        "data negatives": lambda w, out: ["data", "negatives", w.fdrd, "--out", out],
        "data build": lambda w, out: ["data", "build", "--images", w.csv, "--out", out, "--captioner", "template", "--no-progress"],
        "train": lambda w, out: _train(w, w.csv, out=out),
        "compare": lambda w, out: ["compare", w.json("r.json", {"datasets": {}}), "--out", out],
        "data split": lambda w, out: ["data", "split", w.csv, "--out", out],
        "data synth": lambda w, out: ["data", "synth", "--domain", "garden", "--n", "4", "--out", out],
        "pretrain": lambda w, out: ["pretrain", "--preset", "tiny", "--max-steps", "1", "--out", out],
        "demo": lambda w, out: ["demo", "--epochs", "1", "--out", out],
    }


def _resume_args(w: C.Work, run: Path) -> list:
    return ["train", "--method", "coop", "--model", w.spec, "--train", w.csv, "--images", w.images, "--out", run,
            "--epochs", "2", "--batch-size", "8", "--workers", "0", "--device", "cpu", "--resume"]


def _deep_text() -> str:
    return '{"datasets": ' + "[" * 100_000 + "]" * 100_000 + "}"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


CASES = _cases()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clean_error_or_a_counted_skip(case: Case, work_factory, capsys):
    w = work_factory()
    args = [str(a) for a in case.args(w)]
    if case.subprocess:
        code, out, err = _run_isolated(args, w.tmp)
    elif case.blocking:
        code, out, err = _run_watched(args, capsys, w.tmp)
    else:
        code, out, err = run_cli(args, capsys)
    text = out + err
    assert "Traceback" not in text, text[-3000:]
    assert code in (0, 2), f"exit {code}: {text[-2000:]}"
    if code == 2:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert last.startswith("error:") or "Usage:" in err, err[-2000:]
        outcome = "clean error"
    elif (case.kind, case.command) in ACCEPTED:
        outcome = "accepted"
    else:
        assert SKIP_LINE.search(text), f"exit 0 without reporting the bad input:\n{text[-2000:]}"
        outcome = "counted skip"
    TALLY[case.id] = {"kind": case.kind, "command": case.command, "outcome": outcome}


def _run_watched(args: list[str], capsys, folder: Path) -> tuple[int, str, str]:
    """In-process, but in a thread with a timeout: a read that blocks fails the case as a hang
    (the FIFOs under ``folder`` are then opened for writing, which releases the blocked reader)."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(run_cli(args, capsys)), daemon=True)
    thread.start()
    thread.join(SUBPROCESS_TIMEOUT)
    if thread.is_alive():
        for fifo in folder.rglob("*"):
            if fifo.is_fifo():
                with suppress(OSError):
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"hang: `dcar {' '.join(args)}` still running after {SUBPROCESS_TIMEOUT} s")
    if not result:
        pytest.fail("the command raised instead of exiting (see the thread's traceback above)")
    return result[0]


def _run_isolated(args: list[str], cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run([sys.executable, "-m", "dcar", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=SUBPROCESS_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: `dcar {' '.join(args)}` still running after {SUBPROCESS_TIMEOUT} s")
    return done.returncode, done.stdout, done.stderr
