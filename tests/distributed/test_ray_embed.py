"""`dcar embed --ray`: Ray Data (local, num_cpus=2) gives the single-process features."""

from __future__ import annotations

import re
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


def test_index_build_on_ray_writes_the_single_process_shards_and_resumes(shared_data, local_ray, tmp_path, capsys, monkeypatch):
    from dcar.distributed import ray_embed

    listing = _image_list(shared_data, tmp_path, 11)  # 12 lines: 3 shards of 4, one image unreadable
    common = ["index", "build", "--model", "builtin:synthetic-small", "--images", str(listing), "--device", "cpu",
              "--shard-size", "4", "--batch-size", "4", "--no-progress"]
    code, _, err = run_cli([*common, "--out", str(tmp_path / "one"), "--workers", "0"], capsys)
    assert code == 0, err

    real = ray_embed.embed_blocks_ray

    def killed_after_one_shard(*args, **kwargs):  # the job dies once its first shard is written
        blocks = real(*args, **kwargs)
        yield next(blocks)
        blocks.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(ray_embed, "embed_blocks_ray", killed_after_one_shard)
    from dcar.api import load
    from dcar.cli.commands_index import _ray_options
    from dcar.index import Index, read_catalog

    items = read_catalog(listing, None).items
    with pytest.raises(KeyboardInterrupt):
        Index.build(tmp_path / "ray", load("builtin:synthetic-small", device="cpu"), items, shard_size=4, batch_size=4,
                    progress=False, ray=_ray_options("builtin:synthetic-small", "cpu", None, 2))
    assert len(list((tmp_path / "ray" / "shards").glob("done-*.json"))) == 1
    monkeypatch.setattr(ray_embed, "embed_blocks_ray", real)
    code, _, err = run_cli([*common, "--out", str(tmp_path / "ray"), "--ray", "--ray-workers", "2"], capsys)
    assert code == 0, err
    assert re.search(r"shards reused \(finished before\)\W+1\b", err) and re.search(r"shards embedded now\W+2\b", err), err
    for s in range(3):
        one = np.load(tmp_path / "one" / "shards" / f"images-{s:05d}.npy")
        ray = np.load(tmp_path / "ray" / "shards" / f"images-{s:05d}.npy")
        assert one.shape == ray.shape and float(np.abs(one - ray).max()) < 1e-5
        assert (tmp_path / "one" / "shards" / f"meta-{s:05d}.parquet").read_bytes() != b""
    import pyarrow.parquet as pq

    for s in range(3):
        a = pq.read_table(tmp_path / "one" / "shards" / f"meta-{s:05d}.parquet").to_pylist()
        b = pq.read_table(tmp_path / "ray" / "shards" / f"meta-{s:05d}.parquet").to_pylist()
        assert a == b
    info = {k: __import__("json").loads((tmp_path / k / "index.json").read_text()) for k in ("one", "ray")}
    assert info["one"]["count"] == info["ray"]["count"] == 11 and info["ray"]["skipped"] == 1
