"""The HTTP API with FastAPI's test client: answers, and a clear 4xx (never a 500) to bad requests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcar.index import Index
from dcar.serving import Limits, create_app

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

LIMITS = Limits(max_upload_bytes=100_000, max_pixels=4_000_000)


@pytest.fixture(scope="module")
def index(built_index) -> Index:
    return Index.open(built_index)


@pytest.fixture(scope="module")
def client(index, tiny_encoder) -> TestClient:
    # raise_server_exceptions=False: a bug answers 500 here as it would to a real client.
    return TestClient(create_app(index, tiny_encoder, LIMITS), raise_server_exceptions=False)


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, "PNG")
    return buf.getvalue()


def test_health_and_page(client, index):
    health = client.get("/api/health").json()
    assert health["count"] == len(index) == 16 and health["texts"] == 16 and health["dim"] == 32
    page = client.get("/")
    assert page.status_code == 200 and 'id="drop"' in page.text and 'id="q"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/api/search/text", "/api/search/image"}


def test_text_search_matches_the_python_index_search(client, index, tiny_encoder):
    got = client.get("/api/search/text", params={"q": "This is a plarvik. A red plarvik", "k": 5}).json()
    expected = index.hits(tiny_encoder.encode_text(["This is a plarvik. A red plarvik"]).numpy(), 5)[0]
    assert [r["id"] for r in got["results"]] == [h["id"] for h in expected]
    assert [r["score"] for r in got["results"]] == pytest.approx([h["score"] for h in expected], abs=1e-6)
    first = got["results"][0]
    assert "path" not in first  # clients never see server paths
    assert first["thumb_url"] == f"/thumbs/{first['id']}" and first["caption"]


def test_image_search_by_upload_and_by_item(client, index):
    path = index.item(3)["path"]
    with open(path, "rb") as f:
        got = client.post("/api/search/image", files={"file": ("query.png", f, "image/png")}, params={"k": 4}).json()
    assert got["results"][0]["id"] == 3 and got["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    by_item = client.get("/api/search/item/3", params={"k": 4}).json()
    assert [r["id"] for r in by_item["results"]] == [r["id"] for r in got["results"]]
    captions = client.get("/api/search/item/3", params={"k": 3, "to": "texts"}).json()
    assert captions["to"] == "texts" and all(r["caption"] for r in captions["results"])


def test_catalog_images_and_thumbnails_by_id_only(client, index):
    original = client.get("/images/2")
    assert original.status_code == 200 and original.content == Path(index.item(2)["path"]).read_bytes()
    thumb = client.get("/thumbs/2", params={"size": 128})
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (32, 32)  # never enlarged


BAD_REQUESTS = [
    # (what, method, url, request kwargs, status, words in the message)
    ("empty text query", "GET", "/api/search/text?q=%20", {}, 400, "empty query"),
    ("missing text query", "GET", "/api/search/text", {}, 422, "q: Field required"),
    ("k is zero", "GET", "/api/search/text?q=x&k=0", {}, 422, "k: Input should be greater than or equal to 1"),
    ("k is not a number", "GET", "/api/search/text?q=x&k=ten", {}, 422, "k: Input should be a valid integer"),
    ("k above the limit", "GET", "/api/search/text?q=x&k=101", {}, 422, "less than or equal to 100"),
    ("query text too long", "GET", "/api/search/text?q=" + "a" * 1001, {}, 422, "at most 1000 characters"),
    ("unknown item id", "GET", "/api/items/16", {}, 404, "no item 16 in this index (ids 0..15)"),
    ("negative item id", "GET", "/api/search/item/-1", {}, 404, "no item -1"),
    ("item id not a number", "GET", "/images/abc", {}, 422, "item_id: Input should be a valid integer"),
    ("path traversal, encoded", "GET", "/images/..%2F..%2Fetc%2Fpasswd", {}, 404, "Not Found"),
    ("path traversal, plain", "GET", "/images/../../etc/passwd", {}, 404, "Not Found"),
    ("unknown search space", "GET", "/api/search/item/1?to=audio", {}, 422, "to: Input should be 'images' or 'texts'"),
    ("thumbnail size not offered", "GET", "/thumbs/1?size=5000", {}, 422, "size: must be one of 128, 256, 512"),
    ("upload without a file", "POST", "/api/search/image", {}, 422, "file: Field required"),
    ("empty upload", "POST", "/api/search/image", {"files": {"file": ("a.jpg", b"", "image/jpeg")}}, 400, "a.jpg: empty file"),
    ("not an image", "POST", "/api/search/image", {"files": {"file": ("notes.txt", b"plain text", "text/plain")}}, 415, "notes.txt: not an image"),
    ("truncated image", "POST", "/api/search/image", {"files": {"file": ("cut.png", _png(64, 64)[:60], "image/png")}}, 422, "cut.png: the image cannot be decoded"),
    ("too many pixels", "POST", "/api/search/image", {"files": {"file": ("wide.png", _png(4000, 1001, "1"), "image/png")}}, 413, "exceeds the limit of 4000000"),
    ("decompression bomb", "POST", "/api/search/image", {"files": {"file": ("bomb.png", _png(20000, 20000, "1"), "image/png")}}, 413, "decompression bomb"),
    ("oversize upload", "POST", "/api/search/image", {"files": {"file": ("big.png", _png(8, 8) + b"\0" * 200_000, "image/png")}}, 413, "exceeds the upload limit of 100000 bytes"),
    ("bad Content-Length", "POST", "/api/search/image", {"headers": {"content-length": "lots"}}, 400, "invalid Content-Length"),
    ("wrong method", "DELETE", "/api/items/1", {}, 405, "Method Not Allowed"),
    ("file name with a path", "POST", "/api/search/image", {"files": {"file": ("../../x.txt", b"zz", "text/plain")}}, 415, "x.txt: not an image"),
]


@pytest.mark.parametrize("what,method,url,kwargs,status,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(client, what, method, url, kwargs, status, message):
    response = client.request(method, url, **kwargs)
    detail = response.json()["detail"]
    assert response.status_code == status, (what, response.status_code, detail)
    assert isinstance(detail, str) and "\n" not in detail and message in detail, (what, detail)
    assert client.get("/api/search/text", params={"q": "zorblat", "k": 2}).status_code == 200


def test_image_captions_space_is_refused_where_the_index_has_no_captions(catalog_dir, tiny_encoder, tmp_path):
    from dcar.index import read_catalog

    out = tmp_path / "plain"
    Index.build(out, tiny_encoder, read_catalog(catalog_dir / "images").items[:4], workers=0, progress=False)
    client = TestClient(create_app(Index.open(out), tiny_encoder, LIMITS), raise_server_exceptions=False)
    response = client.get("/api/search/item/0", params={"to": "texts"})
    assert response.status_code == 409 and "holds no captions" in response.json()["detail"]


def test_a_catalog_image_gone_from_disk_is_a_404_not_a_500(catalog_dir, tiny_encoder, tmp_path):
    from dcar.index import read_catalog
    import shutil

    images = tmp_path / "images"
    shutil.copytree(catalog_dir / "images" / "plarvik", images / "plarvik")
    out = tmp_path / "idx"
    Index.build(out, tiny_encoder, read_catalog(images).items, workers=0, progress=False)
    index = Index.open(out)
    Path(index.item(0)["path"]).unlink()
    client = TestClient(create_app(index, tiny_encoder, LIMITS), raise_server_exceptions=False)
    for url in ("/images/0", "/thumbs/0"):
        response = client.get(url)
        assert response.status_code == 404 and "item 0" in response.json()["detail"]
    assert np.isfinite(client.get("/api/search/item/0").json()["results"][0]["score"])


def test_dcar_serve_binds_loopback_by_default_and_refuses_a_non_index(built_index, tmp_path, monkeypatch, capsys):
    import uvicorn

    from cli_helpers import run_cli

    import torch

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    threads = torch.get_num_threads()
    try:
        code, _, err = run_cli(["serve", str(built_index), "--max-upload-mb", "1", "--device", "cpu"], capsys)
        assert torch.get_num_threads() == 1  # one thread per request: requests run in parallel
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000 and "serving 16 items" in err
    client = TestClient(seen["app"], raise_server_exceptions=False)
    response = client.post("/api/search/image", files={"file": ("big.png", b"\0" * 1_200_000, "image/png")})
    assert response.status_code == 413 and "1048576 bytes" in response.json()["detail"]
    code, _, err = run_cli(["serve", str(tmp_path)], capsys)
    assert code == 2 and "not an index" in err and len(err.strip().splitlines()) == 1
