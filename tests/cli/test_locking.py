"""Output locks: a second job on the same output is refused with one line naming the first;
a lock left by a killed job is taken over; bad output paths are refused before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import run_cli

from dcar.errors import DcarError
from dcar.locking import LockedError, lock_file_of, output_lock

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from dcar.locking import output_lock
with output_lock(sys.argv[1], sys.argv[2], command="dcar holder-job"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(path: Path, kind: str = "file") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), kind], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_job_on_a_held_output_is_refused_with_the_holder(tmp_path, capsys):
    out = tmp_path / "results.json"
    proc = _holder(out)
    try:
        code, _, err = run_cli(["eval", "--model", "m", "--fdrd", "x.json", "--images", "i", "--out", str(out)], capsys)
    finally:
        proc.kill()
        proc.wait()
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"pid {proc.pid}" in err and "dcar holder-job" in err and "in use" in err and str(out) in err


def test_a_dead_holders_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    proc = _holder(out, "folder")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert lock_file_of(out).exists()  # the killed job could not clean up
    with output_lock(out, "folder") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()  # removed when the job ends


def test_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path):
    out = tmp_path / "o.npy"
    with output_lock(out):
        with output_lock(out):  # a command calling a library function that locks the same output
            pass
        assert lock_file_of(out).exists()
        code = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom dcar.locking import output_lock\nwith output_lock(sys.argv[1]): pass", str(out)],
            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True,
        )
        assert code.returncode != 0 and "LockedError" in code.stderr
    assert not lock_file_of(out).exists()


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _file(path: Path) -> Path:
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    "make,kind,says",
    [
        (lambda t: _folder(t / "d"), "file", "is a folder"),
        (lambda t: _file(t / "f"), "folder", "is a file"),
        (lambda t: _file(t / "f") / "sub" / "out.json", "file", "is a file, not a folder"),
    ],
)
def test_outputs_that_cannot_be_written_are_refused_first(tmp_path, make, kind, says):
    with pytest.raises(DcarError, match=says):
        with output_lock(make(tmp_path), kind):
            pass


def test_cli_refuses_a_folder_as_eval_out_before_loading_anything(tmp_path, capsys):
    code, _, err = run_cli(["eval", "--model", "m", "--fdrd", "x.json", "--images", "i", "--out", str(tmp_path)], capsys)
    assert code == 2 and "is a folder" in err and len(err.strip().splitlines()) == 1


def test_two_concurrent_trainings_on_one_out(tiny_spec, labelled_csv, tmp_path, capsys):
    """A real `dcar train` in another process holds --out; a second one is refused at once, and the
    first finishes unharmed and leaves the output free."""
    table, images = labelled_csv
    run = tmp_path / "run"
    args = ["train", "--method", "coop", "--model", tiny_spec, "--train", str(table), "--images", str(images),
            "--out", str(run), "--epochs", "2", "--batch-size", "8", "--workers", "0", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen([sys.executable, "-m", "dcar", *args], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not lock_file_of(run).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    code, _, err = run_cli(args, capsys)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert code == 2 and f"pid {first.pid}" in err and "in use" in err and len(err.strip().splitlines()) == 1
    assert (run / "best.safetensors").exists() and json.loads((run / "state.json").read_text())["epoch"] == 2
    assert not lock_file_of(run).exists()
