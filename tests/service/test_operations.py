"""The operating routes of `dcar serve`: policy decisions, the token-protected review queue, A/B."""

from __future__ import annotations

import hashlib
from pathlib import Path
import io

import pytest
from PIL import Image

from dcar.abtest.online import EventLog, analyse, read_events
from dcar.errors import DcarError
from dcar.index import Index
from dcar.policy.policy import Policy
from dcar.review import ReviewQueue
from dcar.serving import Limits, create_app

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

LIMITS = Limits(max_upload_bytes=100_000, max_pixels=4_000_000)
TOKEN = "t0ken-for-the-review-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def index(built_index) -> Index:
    return Index.open(built_index)


def _policy(enc, **kw) -> Policy:
    base = dict(task="knn", score="top1", lambda_hi=0.9999, lambda_lo=-1.0, target_precision=0.9, confidence=0.9,
                max_review=1.0, model=enc.spec, checkpoint=None,
                encoder=hashlib.sha256(enc.fingerprint().encode()).hexdigest()[:16], data={}, sample_size=100,
                date="2026-11-30T00:00:00+00:00")
    return Policy(**{**base, **kw})


@pytest.fixture
def served(index, tiny_encoder, tmp_path):
    from dcar.review.web import add_review

    app = create_app(index, tiny_encoder, LIMITS)
    queue = ReviewQueue(tmp_path / "review.sqlite")
    add_review(app, index, tiny_encoder, _policy(tiny_encoder), queue, TOKEN, LIMITS)
    return TestClient(app, raise_server_exceptions=False), queue


def _png(colour=(10, 200, 30), size=32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


def test_match_decides_and_only_the_token_holder_queues(served, index):
    client, queue = served
    with open(index.item(3)["path"], "rb") as f:
        own = f.read()
    got = client.post("/api/match/image", files={"file": ("a.png", own, "image/png")}).json()
    assert got["decision"] == "accept" and got["candidates"][0]["item"]["id"] == 3  # itself, similarity 1
    new = client.post("/api/match/image", files={"file": ("b.png", _png(), "image/png")}).json()
    assert new["decision"] == "review" and new["review_item"] is None and queue.counts()["items"] == 0
    assert new["score"] == pytest.approx(new["candidates"][0]["similarity"])
    queued = client.post("/api/match/image", files={"file": ("b.png", _png(), "image/png")}, headers=AUTH).json()
    again = client.post("/api/match/image", files={"file": ("b.png", _png(), "image/png")}, headers=AUTH).json()
    assert queued["review_item"] == again["review_item"] is not None and queue.counts()["items"] == 1
    bad = client.post("/api/match/image", files={"file": ("b.png", _png(), "image/png")}, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert client.get("/api/match/text", params={"q": "a red thing"}).status_code == 409  # knn policy: images


def test_review_routes_need_the_token_and_store_decisions(served):
    client, queue = served
    item = client.post("/api/match/image", files={"file": ("c.png", _png((200, 0, 0)), "image/png")}, headers=AUTH).json()["review_item"]
    for method, url in (("get", "/api/review/items"), ("get", f"/api/review/items/{item}/query"), ("post", f"/api/review/items/{item}")):
        r = getattr(client, method)(url, **({"json": {"decision": "accept", "reviewer": "x"}} if method == "post" else {}))
        assert r.status_code == 401 and "token" in r.json()["detail"]
    listed = client.get("/api/review/items", headers=AUTH).json()
    assert listed["counts"]["pending"] == 1 and listed["items"][0]["id"] == item
    assert "/" not in listed["items"][0]["query"]  # no server path
    img = client.get(f"/api/review/items/{item}/query", headers=AUTH)
    assert img.status_code == 200 and Image.open(io.BytesIO(img.content)).size == (32, 32)
    assert client.post(f"/api/review/items/{item}", json={"decision": "maybe", "reviewer": "x"}, headers=AUTH).status_code == 422
    assert client.post(f"/api/review/items/{item}", json={"decision": "accept"}, headers=AUTH).status_code == 422
    ok = client.post(f"/api/review/items/{item}", json={"decision": "correct", "label": "quenmore", "reviewer": "ann"}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["decided_at"]
    twice = client.post(f"/api/review/items/{item}", json={"decision": "reject", "reviewer": "bob"}, headers=AUTH)
    assert twice.status_code == 409 and "ann" in twice.json()["detail"]
    assert client.post("/api/review/items/999", json={"decision": "reject", "reviewer": "bob"}, headers=AUTH).status_code == 404
    stored = queue.get(item)
    assert (stored.decision, stored.label, stored.reviewer) == ("correct", "quenmore", "ann")
    page = client.get("/review")
    assert page.status_code == 200 and 'id="token"' in page.text


def test_a_policy_of_another_model_is_refused(index, tiny_encoder, tmp_path):
    from dcar.review.web import add_review

    app = create_app(index, tiny_encoder, LIMITS)
    with pytest.raises(DcarError, match="calibrate again"):
        add_review(app, index, tiny_encoder, _policy(tiny_encoder, encoder="0" * 16), ReviewQueue(tmp_path), TOKEN, LIMITS)


@pytest.mark.parametrize("mode", ["split", "interleave"])
def test_ab_routes_log_impressions_and_clicks(index, tiny_encoder, tmp_path, mode):
    from dcar.abtest.serving import add_ab

    app = create_app(index, tiny_encoder, LIMITS)
    log = tmp_path / "events.jsonl"
    add_ab(app, {"a": (index, tiny_encoder), "b": (index, tiny_encoder)}, mode, EventLog(log, durable=False), "s", TOKEN, LIMITS)
    client = TestClient(app, raise_server_exceptions=False)
    for u in range(8):
        got = client.get("/api/ab/search/text", params={"q": "a red plarvik", "k": 5, "user": f"user{u}"}).json()
        keys = [r["key"] for r in got["results"]]
        assert len(keys) == len(set(keys)) == 5 and "arm" not in got["results"][0]
        if u % 2:
            assert client.post("/api/ab/click", json={"impression": got["impression"], "position": 1}).json() == {"logged": True}
    assert client.post("/api/ab/click", json={"impression": "made-up", "position": 0}).status_code == 404
    assert client.post("/api/ab/click", json={"impression": got["impression"], "position": 9}).status_code == 422
    assert client.post("/api/ab/review", json={"impression": got["impression"], "decision": "accept"}).status_code == 401
    assert client.post("/api/ab/review", json={"impression": got["impression"], "decision": "accept"}, headers=AUTH).status_code == 200
    cookie_user = client.get("/api/ab/search/text", params={"q": "x"})
    assert "dcar_ab" in cookie_user.cookies
    events, bad = read_events(log)
    assert bad == 0 and sum(e["type"] == "impression" for e in events) == 9 and sum(e["type"] == "click" for e in events) == 4
    if mode == "split":
        arms = {e["unit"]: e["arm"] for e in events if e["type"] == "impression" and e["unit"].startswith("user")}
        from dcar.abtest.online import assign

        assert all(arm == assign(unit, "s") for unit, arm in arms.items())  # sticky: the salted hash
    else:
        report = analyse(events)
        assert report["mode"] == "interleave" and report["review_outcomes"] == {"accept": 1}


def test_calibrate_and_match_against_an_index(built_index, labelled_set, catalog_dir, tmp_path, capsys):
    import json

    from cli_helpers import run_cli
    from dcar.data.records import write_fdrd

    entries, _ = labelled_set  # the same pictures as the index, at other paths: held out from it
    heldout = tmp_path / "heldout.json"
    root = Path(entries[0].image).parent
    write_fdrd([e.__class__(e.key, e.caption, e.category, Path(e.image).name) for e in entries], heldout)
    policy = tmp_path / "policy.json"
    code, out, err = run_cli(["calibrate", "--index", str(built_index), "--task", "knn", "--data", str(heldout),
                              "--images", str(root), "--target-precision", "0.5", "--confidence", "0.5",
                              "--out", str(policy), "--workers", "0", "--device", "cpu"], capsys)
    assert code == 0, err
    p = json.loads(policy.read_text())
    assert p["task"] == "knn" and p["data"]["index"] == str(built_index.resolve()) and p["sample_size"] == 16
    assert p["calibration"]["top1_right_overall"] == 1.0  # each picture finds its own copy
    code, out, err = run_cli(["match", "--policy", str(policy), "--index", str(built_index), "--image", entries[0].image,
                              "--json", "--device", "cpu"], capsys)
    assert code == 0, err
    row = json.loads(out)
    assert row["candidates"][0]["match"].startswith(entries[0].category + ": ") and row["decision"] == "accept"
    # the index's own images are not held out
    code, _, err = run_cli(["calibrate", "--index", str(built_index), "--task", "knn", "--data", str(catalog_dir / "captions.csv"),
                            "--images", str(catalog_dir / "images"), "--target-precision", "0.5", "--confidence", "0.5",
                            "--out", str(tmp_path / "p2.json"), "--workers", "0", "--device", "cpu"], capsys)
    assert code == 2 and "16 of its images are in the index" in err


def test_serve_options_wire_the_ab_arm_and_refuse_a_bad_mode(index, built_index, tiny_encoder, tmp_path, monkeypatch):
    from dcar.review.web import add_operations, review_token

    monkeypatch.delenv("DCAR_REVIEW_TOKEN", raising=False)
    app = create_app(index, tiny_encoder, LIMITS)
    token = add_operations(app, index, tiny_encoder, LIMITS, built_index, None, None, None, built_index, "interleave",
                           tmp_path / "ab.jsonl", "salt", "cpu")
    assert token is not None and len(token) >= 24  # generated, to be printed once
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/api/ab/search/text", params={"q": "a plarvik", "user": "u1"}).status_code == 200
    assert (tmp_path / "ab.jsonl").read_text().count('"impression"') == 1
    with pytest.raises(DcarError, match="--ab-mode"):
        add_operations(create_app(index, tiny_encoder, LIMITS), index, tiny_encoder, LIMITS, built_index, None, None, None,
                       built_index, "coinflip", tmp_path / "ab2.jsonl", "s", "cpu")
    (tmp_path / "short").write_text("abc")
    with pytest.raises(DcarError, match="at least 16"):
        review_token(tmp_path / "short")
    (tmp_path / "good").write_text("x" * 20 + "\n")
    assert review_token(tmp_path / "good") == ("x" * 20, False)
