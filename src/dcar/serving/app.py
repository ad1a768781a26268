"""The FastAPI application behind `dcar serve`: a JSON API and a web page over one index.

Routes (OpenAPI docs at /docs):
  GET  /                         the search page
  GET  /api/health               index size, model, backends
  GET  /api/search/text?q=&k=    text -> images
  POST /api/search/image?k=&to=  uploaded image (multipart field ``file``) -> images or captions
  GET  /api/search/item/{id}     an indexed item's image -> images or captions (?k=&to=)
  GET  /api/items/{id}           one item's metadata
  GET  /images/{id}, /thumbs/{id}   the item's catalog image, or a JPEG thumbnail of it

Files are only ever found through an item id of the index (no client-supplied path reaches the
file system). Every answer to a bad request is a 4xx with ``{"detail": "one line"}``; the search
endpoints change nothing, so they need no token.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import FastAPI, File, HTTPException, Path as PathParam, Query, Request, UploadFile
from PIL import Image
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import dcar
from dcar.data.images import UnreadableImage, load_image
from dcar.index import Index
from dcar.serving.limits import BodyLimit, Limits, UploadRejected, decode_upload

log = logging.getLogger("dcar.serve")
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
THUMB_SIZES = (128, 256, 512)
Space = Literal["images", "texts"]


def create_app(index: Index, encoder, limits: Limits | None = None) -> FastAPI:
    """The app for ``index``, queries encoded by ``encoder`` (the index's own model)."""
    from dcar.index.backend import set_search_threads

    limits = limits or Limits()
    set_search_threads(1)  # concurrency comes from parallel requests
    app = FastAPI(title="dcar search", version=dcar.__version__,
                  description="Search a catalog indexed by `dcar index build` by text or by image.")
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)
    _error_handlers(app)
    model_lock = threading.Lock()  # one model call at a time: the CPU threads are the model's
    app.state.model_lock = model_lock  # routes added later (review, A/B) share it
    page = resources.files("dcar.serving").joinpath("static/index.html").read_text(encoding="utf-8")
    K = Query(10, ge=1, le=limits.max_k, description="number of results")

    def item_or_404(item_id: int) -> dict:
        try:
            return index.item(item_id)
        except KeyError:
            raise HTTPException(404, f"no item {item_id} in this index (ids 0..{len(index) - 1})") from None

    def results(vectors: np.ndarray, k: int, space: str, query: dict, started: float) -> dict:
        if space == "texts" and "texts" not in index.backends:
            raise HTTPException(409, "this index holds no captions; search images instead (to=images)")
        hits = [_public(h) for h in index.hits(vectors, k, space)[0]]
        return {"query": query, "to": space, "took_ms": round((time.perf_counter() - started) * 1000, 2), "results": hits}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"})

    @app.get("/api/health")
    def health() -> dict:
        return {
            "status": "ok",
            "count": len(index),
            "texts": int(index.info["texts"]),
            "dim": index.dim,
            "model": {k: index.model[k] for k in ("spec", "method", "run", "weights")},
            "backends": {s: {"kind": d["kind"], **d.get("params", {})} for s, d in index.info["backends"].items()},
            "max_upload_bytes": limits.max_upload_bytes,
            "max_k": limits.max_k,
        }

    @app.get("/api/search/text")
    def search_text(q: str = Query(..., max_length=limits.max_query_chars, description="the text to search for"),
                    k: int = K) -> dict:
        started = time.perf_counter()
        if not q.strip():
            raise HTTPException(400, "q: empty query")
        with model_lock:
            vector = encoder.encode_text([q]).numpy()
        return results(vector, k, "images", {"text": q}, started)

    @app.post("/api/search/image")
    def search_image(file: UploadFile = File(..., description="an image file"), k: int = K,
                     to: Space = Query("images", description="images or texts (captions)")) -> dict:
        started = time.perf_counter()
        name, _, image = read_upload(file, limits)
        with model_lock:
            vector = encoder.encode_image([image]).numpy()
        return results(vector, k, to, {"image": name, "width": image.width, "height": image.height}, started)

    @app.get("/api/search/item/{item_id}")
    def search_item(item_id: int = PathParam(..., description="an item id"), k: int = K,
                    to: Space = Query("images")) -> dict:
        started = time.perf_counter()
        item_or_404(item_id)
        return results(index.vector(item_id)[None], k, to, {"item": item_id}, started)

    @app.get("/api/items/{item_id}")
    def get_item(item_id: int) -> dict:
        return _public(item_or_404(item_id))

    @app.get("/images/{item_id}")
    def image_file(item_id: int) -> FileResponse:
        path = Path(item_or_404(item_id)["path"])
        if not path.is_file():
            raise HTTPException(404, f"the image of item {item_id} is no longer on disk")
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=3600"})

    @lru_cache(maxsize=2048)
    def thumbnail(item_id: int, size: int) -> bytes | None:
        try:
            image = load_image(index.item(item_id)["path"])
        except UnreadableImage:
            return None
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85)
        return buf.getvalue()

    @app.get("/thumbs/{item_id}")
    def thumb(item_id: int, size: int = Query(256, description=f"one of {THUMB_SIZES}")) -> Response:
        if size not in THUMB_SIZES:
            raise HTTPException(422, f"size: must be one of {', '.join(map(str, THUMB_SIZES))}")
        item_or_404(item_id)
        data = thumbnail(item_id, size)
        if data is None:
            raise HTTPException(404, f"the image of item {item_id} can no longer be read")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    return app


def _public(item: dict) -> dict:
    """An item as clients see it: no file system path, links to the image and thumbnail."""
    out = {k: v for k, v in item.items() if k not in ("path", "has_text")}
    out["image_url"] = f"/images/{item['id']}"
    out["thumb_url"] = f"/thumbs/{item['id']}"
    return out


def read_upload(file: UploadFile, limits: Limits) -> tuple[str, bytes, Image.Image]:
    """An uploaded image: its printable name, its bytes and the decoded picture, or a 4xx."""
    name = _safe_name(file.filename)
    data = file.file.read(limits.max_upload_bytes + 1)
    try:
        return name, data, decode_upload(data, name, limits)
    except UploadRejected as err:
        raise HTTPException(err.status, err.message) from None


def _safe_name(filename: str | None) -> str:
    """A client file name fit for a one-line message (no path, no control characters, short)."""
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:80]
    return name or "upload"


def _error_handlers(app: FastAPI) -> None:
    """Every error as ``{"detail": "one line"}``; validation errors name the parameter."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        lines = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body"))
            lines.append(f"{where or 'request'}: {e.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(lines)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # a bug, not bad input
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (logged by the server)"}, status_code=500)
