"""`dcar embed --ray`: Ray Data (local, num_cpus=2) gives the single-process features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_cli

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def local_ray():
    from dcar.distributed import ray_embed

    ray_embed.start(num_cpus=2)
    yield
    ray_embed.stop()


def _image_list(shared_data: Path, tmp_path: Path, n: int) -> Path:
    flowers = sorted((shared_data / "images" / "flower").rglob("*.jpg"))[:n]
    broken = tmp_path / "truncated.jpg"
    broken.write_bytes(flowers[0].read_bytes()[:300])  # a download cut short: skipped and counted
    listing = tmp_path / "images.txt"
    listing.write_text("\n".join(str(p) for p in [*flowers[:3], broken, *flowers[3:]]) + "\n")
    return listing


def test_ray_features_equal_the_single_process_ones(shared_data, local_ray, tmp_path, capsys):
    listing = _image_list(shared_data, tmp_path, 12)
    common = ["embed", "--model", "builtin:synthetic-small", "--images", str(listing), "--device", "cpu", "--batch-size", "4"]
    code, _, err = run_cli([*common, "--out", str(tmp_path / "one.npy"), "--workers", "0"], capsys)
    assert code == 0, err
    code, _, err = run_cli([*common, "--out", str(tmp_path / "ray.npy"), "--ray", "--ray-workers", "2"], capsys)
    assert code == 0, err
    one, ray = np.load(tmp_path / "one.npy"), np.load(tmp_path / "ray.npy")
    assert one.shape == ray.shape == (12, 128)
    diff = float(np.abs(one - ray).max())
    print(f"Ray vs single process: max abs difference {diff:.3g}")
    assert diff < 1e-5
    skipped = (tmp_path / "ray.npy.skipped.tsv").read_text().splitlines()
    assert skipped == (tmp_path / "one.npy.skipped.tsv").read_text().splitlines()
    assert len(skipped) == 2 and skipped[1].startswith("4\t") and "truncated.jpg" in skipped[1]
    assert "1 unreadable images skipped" in err
