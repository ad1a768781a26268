"""The catalog index: build, search, add, approximate backends, and the refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from dcar.errors import DcarError
from dcar.evaluation.embed import embed_images, embed_texts
from dcar.index import Index, read_catalog
from dcar.index.backend import FaissBackend, exact_neighbours, recall_at_k


def test_build_records_model_and_layout_and_skips_the_unreadable_image(built_index, tiny_encoder, catalog_dir):
    info = json.loads((built_index / "index.json").read_text())
    assert info["model"]["spec"] == tiny_encoder.spec and info["model"]["weights"] == tiny_encoder.weights
    assert info["model"]["fingerprint"] == tiny_encoder.fingerprint()
    assert info["dim"] == 32 and info["count"] == 16 and info["texts"] == 16
    assert info["skipped"] == 1
    assert "broken.jpg" in (built_index / "skipped.tsv").read_text()
    # 17 images in sorted order (zorblat/broken.jpg is the 13th): shard 2 lost one row
    assert [s["rows"] for s in info["shards"]] == [5, 5, 4, 2]
    assert info["backends"]["images"]["kind"] == "flat"
    index = Index.open(built_index)
    assert index.table.column_names == ["key", "path", "category", "caption", "width", "height", "has_text"]
    item = index.item(0)
    assert (item["width"], item["height"]) == (32, 32) and item["caption"].startswith("This is a")
    assert item["category"] == Path(item["path"]).parent.name


def test_stored_vectors_are_the_evaluation_pipeline_s(built_index, tiny_encoder):
    index = Index.open(built_index)
    paths = index.table.column("path").to_pylist()
    expected = embed_images(tiny_encoder.retrieval, paths, num_workers=0, progress=False).features
    got = np.stack([index.vector(i) for i in range(len(index))])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    texts = embed_texts(tiny_encoder.retrieval, index.table.column("caption").to_pylist(), progress=False)
    stored = np.concatenate([np.load(p) for p in sorted((built_index / "shards").glob("texts-*.npy"))])
    np.testing.assert_allclose(stored, texts, atol=1e-6)


def test_search_finds_each_image_itself_first_and_captions_map_to_items(built_index):
    index = Index.open(built_index)
    vectors = np.stack([index.vector(i) for i in range(len(index))])
    scores, ids = index.search(vectors, k=3)
    assert ids[:, 0].tolist() == list(range(len(index)))
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    scores, ids = index.search(vectors[:2], k=50, space="texts")
    assert ids.shape == (2, 16)  # capped at what the space holds
    hits = index.hits(vectors[:1], k=2, space="texts")[0]
    assert {"id", "score", "caption", "category", "key"} <= set(hits[0])
    with pytest.raises(DcarError, match="dimension"):
        index.search(np.zeros((1, 7), np.float32))
    with pytest.raises(KeyError):
        index.item(len(index))


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "shards").iterdir())}


def test_add_appends_new_items_without_touching_old_shards(catalog_dir, tiny_encoder, tmp_path):
    out = tmp_path / "idx"
    catalog = read_catalog(catalog_dir / "images", catalog_dir / "captions.csv")
    first, rest = catalog.items[:9], catalog.items[9:]
    Index.build(out, tiny_encoder, first, shard_size=4, workers=0, progress=False)
    before = _digests(out)
    report = Index.add(out, catalog.items, encoder=tiny_encoder, workers=0, progress=False)
    assert report.already_indexed == 9 and report.items == len(rest)
    assert report.added == len(rest) - 1 and len(report.skipped) == 1  # the broken JPEG again
    after = _digests(out)
    assert all(after[name] == digest for name, digest in before.items())
    index = Index.open(out)
    assert len(index) == 16 and index.info["texts"] == 16
    assert sorted(index.table.column("path").to_pylist()) == sorted(it.path for it in catalog.items if "broken" not in it.path)
    vectors = np.stack([index.vector(i) for i in range(len(index))])
    assert index.search(vectors, k=1)[1][:, 0].tolist() == list(range(16))
    assert len(list(out.glob("images-*.faiss"))) == 1  # the previous generation is gone


def test_build_refuses_an_existing_index_and_another_model(built_index, catalog_dir, tiny_encoder, tmp_path):
    catalog = read_catalog(catalog_dir / "images")
    with pytest.raises(DcarError, match="already holds an index"):
        Index.build(built_index, tiny_encoder, catalog.items, progress=False)
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(built_index, copy)
    info = json.loads((copy / "index.json").read_text())
    info["model"]["fingerprint"] = "zeroshot|other|0000"
    (copy / "index.json").write_text(json.dumps(info))
    with pytest.raises(DcarError, match="rebuild"):
        Index.open(copy).load_encoder("cpu")
    with pytest.raises(DcarError, match="not an index"):
        Index.open(tmp_path)


def test_approximate_backends_report_recall_against_exact_search():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32))
    x = centres[rng.integers(0, 40, 6000)] + 0.4 * rng.normal(size=(6000, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    flat = FaissBackend.create(x, "auto", exact_max=10_000)
    assert flat.kind == "flat" and flat.tune(x) is None
    ivf = FaissBackend.create(x, "auto", exact_max=1000)
    assert ivf.kind == "ivf"
    recall = ivf.tune(x, target=0.95)
    queries = x[:300]
    truth = exact_neighbours(x, queries, 10)
    measured = recall_at_k(ivf.search(queries, 10)[1], truth)
    assert recall >= 0.95 and measured >= 0.9
    assert recall_at_k(flat.search(queries, 10)[1], truth) == 1.0
    hnsw = FaissBackend.create(x, "hnsw")
    assert hnsw.tune(x) >= 0.95
    assert recall_at_k(truth[:, ::-1], truth) == 1.0 and recall_at_k(truth[:, :5], truth) == 0.5


def test_catalog_from_a_list_with_missing_files_and_captions_found_by_folder(catalog_dir, tmp_path):
    listing = tmp_path / "list.txt"
    paths = sorted(str(p) for p in (catalog_dir / "images").rglob("*.png"))
    listing.write_text("\n".join(paths[:3] + ["/nowhere/x.png", ""]) + "\n")
    catalog = read_catalog(listing, catalog_dir / "captions.csv")
    assert len(catalog.items) == 3 and catalog.missing == ["/nowhere/x.png"]
    assert all(it.caption.startswith("This is a") for it in catalog.items)
    assert any("not found" in p for p in catalog.problems)
    with pytest.raises(DcarError, match="not found"):
        read_catalog(tmp_path / "absent")


def test_shards_of_an_unfinished_job_with_other_inputs_are_not_reused(catalog_dir, tiny_encoder, tmp_path):
    from dcar.index.store import JOB_FILE

    out = tmp_path / "idx"
    items = read_catalog(catalog_dir / "images").items[:6]
    Index.build(out, tiny_encoder, items, shard_size=3, workers=0, progress=False)
    reference = np.load(out / "shards" / "images-00001.npy")
    (out / "index.json").unlink()  # as if the build had been killed just before its commit
    (out / JOB_FILE).write_text(json.dumps({"key": "other"}))
    report = Index.build(out, tiny_encoder, items, shard_size=3, workers=0, progress=False)
    assert report.shards_embedded == 2  # a job.json of other inputs: nothing is reused
    np.testing.assert_array_equal(np.load(out / "shards" / "images-00001.npy"), reference)
