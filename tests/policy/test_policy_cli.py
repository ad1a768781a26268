"""`dcar calibrate` and `dcar match` on a small split of the built-in world."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run_cli
BUILTIN = "builtin:synthetic-small"


@pytest.fixture(scope="module")
def calibrated(world_val, tmp_path_factory):
    """A policy for image -> caption at a target the 128 queries can support."""
    fdrd, images = world_val
    out = tmp_path_factory.mktemp("policy") / "policy.json"
    from dcar.cli import main

    main(["calibrate", "--data", str(fdrd), "--images", str(images), "--model", BUILTIN, "--task", "i2t",
          "--target-precision", "0.8", "--confidence", "0.8", "--max-review", "0.3", "--out", str(out),
          "--workers", "0", "--device", "cpu"])
    return out


def test_calibrate_writes_policy_with_provenance_and_chart(calibrated, world_val):
    p = json.loads(calibrated.read_text())
    assert p["task"] == "i2t" and p["model"] == BUILTIN and p["sample_size"] == 128
    assert p["data"]["path"] == str(world_val[0].resolve()) and len(p["data"]["sha256"]) == 64
    assert p["date"].startswith("20") and p["score"] in ("top1", "margin")
    bands = p["calibration"]["bands"]
    assert sum(b["count"] for b in bands.values()) == 128
    assert bands["review"]["share"] <= 0.3
    assert set(p["calibration"]["scores"]) == {"top1", "margin"}
    assert calibrated.with_suffix(".png").stat().st_size > 1000


def test_match_decisions_follow_the_policy_thresholds(calibrated, world_val, capsys):
    fdrd, images = world_val
    queries = sorted(images.glob("*.png"))[:6]
    args = ["match", "--policy", str(calibrated), "--gallery", str(fdrd), "--gallery-images", str(images), "--json", "--device", "cpu"]
    for q in queries:
        args += ["--image", str(q)]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    policy = json.loads(calibrated.read_text())
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["query"] for r in rows] == [str(q) for q in queries]
    hi = float("inf") if policy["lambda_hi"] is None else policy["lambda_hi"]
    lo = hi if policy["lambda_lo"] is None else policy["lambda_lo"]
    for r in rows:
        expected = "accept" if r["score"] >= hi else "review" if r["score"] >= lo else "reject"
        assert r["decision"] == expected
        sims = [c["similarity"] for c in r["candidates"]]
        assert sims == sorted(sims, reverse=True)
        margin = sims[0] - sims[1]
        assert r["score"] == pytest.approx(sims[0] if policy["score"] == "top1" else margin, abs=1e-6)


def test_match_refuses_the_wrong_query_kind_and_missing_gallery(calibrated, capsys):
    code, _, err = run_cli(["match", "--policy", str(calibrated), "--text", "a flower"], capsys)
    assert code == 2 and "give --image" in err and "Traceback" not in err
    code, _, err = run_cli(["match", "--policy", str(calibrated), "--image", "x.png"], capsys)
    assert code == 2 and "--gallery" in err or "not found" in err


def test_match_refuses_a_policy_of_another_encoder(calibrated, tmp_path, capsys):
    raw = json.loads(calibrated.read_text())
    raw["encoder"] = "0" * 16
    other = tmp_path / "other.json"
    other.write_text(json.dumps(raw))
    code, _, err = run_cli(["match", "--policy", str(other), "--text", "x"], capsys)
    assert code == 2 and "calibrate again" in err


def test_calibrate_refuses_too_small_a_sample(world_val, tmp_path, capsys):
    fdrd, images = world_val
    code, _, err = run_cli(["calibrate", "--data", str(fdrd), "--images", str(images), "--model", BUILTIN,
                            "--target-precision", "0.99", "--confidence", "0.99", "--out", str(tmp_path / "p.json"),
                            "--workers", "0", "--device", "cpu"], capsys)
    assert code == 2 and "cannot show precision 0.99" in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "p.json").exists()
