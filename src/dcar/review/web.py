"""The review queue and policy decisions in `dcar serve`: match endpoints and the review page.

Routes added to the service app (see :mod:`dcar.serving.app` for the search routes):
  POST /api/match/image?k=      uploaded image -> top matches with accept / review / reject
  GET  /api/match/text?q=&k=    caption -> images, the same (t2i policies)
  GET  /review                  the review page (the token is typed into the page)
  GET  /api/review/items        pending (or decided) items                     token
  GET  /api/review/items/{id}/query   the query image of an item               token
  POST /api/review/items/{id}   {"decision", "label", "reviewer"}             token

Matching changes nothing unless the caller presents the token: then review-band matches are
queued (the upload is kept, content-addressed, next to the queue). Every review route needs
``Authorization: Bearer TOKEN``, the token given at server start; it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import Body, FastAPI, File, Header, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, HTMLResponse

from dcar.atomic import atomic_path
from dcar.errors import DcarError
from dcar.policy.policy import Policy
from dcar.policy.tasks import category_texts
from dcar.review.queue import DECISIONS, ReviewQueue

UPLOADS = "review-queries"


def add_review(app: FastAPI, index, encoder, policy: Policy, queue: ReviewQueue, token: str, limits) -> None:
    """Add the match and review routes for ``policy`` over ``index`` to the service app."""
    from dcar.serving.app import PAGE_CSP, _public, read_upload

    check_policy(policy, index, encoder)
    uploads = queue.path.parent / UPLOADS
    page = resources.files("dcar.review").joinpath("static/review.html").read_text(encoding="utf-8")
    category_vectors = (encoder.encode_text(category_texts(policy.categories, policy.template)).numpy()
                        if policy.task == "category" else None)

    def authorised(header: str | None) -> bool:
        given = (header or "").removeprefix("Bearer ").strip()
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    def require(header: str | None) -> None:
        if not authorised(header):
            raise HTTPException(401, "review actions need the token printed by `dcar serve` (Authorization: Bearer TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    def decide(vector: np.ndarray, k: int, query: str, kind: str, request: str | None) -> dict:
        candidates = _candidates(index, policy, vector, k, category_vectors)
        if not candidates:
            raise HTTPException(409, "the index holds nothing to match against")
        sims = [c["similarity"] for c in candidates]
        score = sims[0] if policy.score == "top1" else sims[0] - (sims[1] if len(sims) > 1 else -1.0)
        decision = str(policy.decide(score)[0])
        item_id = None
        if decision == "review" and request is not None:
            item_id = queue.enqueue(request, policy.task, query, kind, candidates, score, policy=policy.date)
        public = [{**c, **({"item": _public(index.item(c["item_id"]))} if "item_id" in c else {})} for c in candidates]
        return {"decision": decision, "score": score, "score_kind": policy.score, "review_item": item_id,
                "policy": {"task": policy.task, "lambda_hi": policy.lambda_hi, "lambda_lo": policy.lambda_lo,
                           "target_precision": policy.target_precision, "confidence": policy.confidence},
                "candidates": public}

    @app.post("/api/match/image")
    def match_image(file: UploadFile = File(...), k: int = Query(5, ge=2, le=limits.max_k),
                    authorization: str | None = Header(None)) -> dict:
        if policy.task == "t2i":
            raise HTTPException(409, "this policy matches captions to images: use /api/match/text")
        name, data, image = read_upload(file, limits)
        with app.state.model_lock:
            vector = encoder.encode_image([image]).numpy()
        request = None
        if authorised(authorization):  # only the token holder's matches enter the queue
            digest = hashlib.sha256(data).hexdigest()
            path = uploads / f"{digest}.png"
            if not path.exists():
                with atomic_path(path) as tmp:
                    image.save(tmp, format="PNG")
            request, name = f"{policy.date}|{digest}", str(path)
        elif authorization:
            require(authorization)
        return decide(vector, k, name, "image", request)

    @app.get("/api/match/text")
    def match_text(q: str = Query(..., max_length=limits.max_query_chars), k: int = Query(5, ge=2, le=limits.max_k),
                   authorization: str | None = Header(None)) -> dict:
        if policy.task != "t2i":
            raise HTTPException(409, f"this policy matches images ({policy.task}): use /api/match/image")
        if not q.strip():
            raise HTTPException(400, "q: empty query")
        if authorization:
            require(authorization)
        request = f"{policy.date}|text|{q}" if authorization else None
        with app.state.model_lock:
            vector = encoder.encode_text([q]).numpy()
        return decide(vector, k, q, "text", request)

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"})

    @app.get("/api/review/items")
    def list_items(status: str = Query("pending", pattern="^(pending|decided|all)$"), limit: int = Query(20, ge=1, le=200),
                   authorization: str | None = Header(None)) -> dict:
        require(authorization)
        items = queue.items(status, limit)
        return {"counts": queue.counts(), "items": [_item_json(it) for it in items]}

    @app.get("/api/review/items/{item_id}/query")
    def query_image(item_id: int, authorization: str | None = Header(None)) -> FileResponse:
        require(authorization)
        it = _get(queue, item_id)
        path = Path(it.query)
        # Only files this server saved into its uploads folder are ever served.
        if it.query_kind != "image" or path.parent.resolve() != uploads.resolve() or not path.is_file():
            raise HTTPException(404, f"item {item_id} has no stored query image")
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})

    @app.post("/api/review/items/{item_id}")
    def post_decision(item_id: int, body: dict = Body(...), authorization: str | None = Header(None)) -> dict:
        require(authorization)
        decision, reviewer, label = body.get("decision"), body.get("reviewer"), body.get("label")
        if decision not in DECISIONS:
            raise HTTPException(422, f"decision: must be one of {', '.join(DECISIONS)}")
        if not isinstance(reviewer, str) or not reviewer.strip() or len(reviewer) > 100:
            raise HTTPException(422, "reviewer: give the reviewer's name (at most 100 characters)")
        if label is not None and (not isinstance(label, str) or len(label) > 2000):
            raise HTTPException(422, "label: a string of at most 2000 characters")
        _get(queue, item_id)
        try:
            return _item_json(queue.decide(item_id, decision, reviewer, label))
        except DcarError as err:
            raise HTTPException(409 if "already decided" in str(err) else 422, str(err)) from None


def check_policy(policy: Policy, index, encoder) -> None:
    """A policy holds only for the encoder it was calibrated on, and for a task the index can answer."""
    mine = hashlib.sha256(encoder.fingerprint().encode()).hexdigest()[:16]
    if policy.encoder != mine:
        raise DcarError(f"the policy was calibrated for encoder {policy.encoder}, the index's model gives {mine}: "
                        "calibrate again with this model")
    if policy.task == "i2t" and "texts" not in index.backends:
        raise DcarError("an i2t policy matches images to captions, but this index holds no captions")


def _candidates(index, policy: Policy, vector: np.ndarray, k: int, category_vectors) -> list[dict]:
    if policy.task == "category":
        sims = (category_vectors @ vector[0]).astype(np.float64)
        order = np.argsort(-sims, kind="stable")[:k]
        return [{"match": policy.categories[i], "similarity": float(sims[i])} for i in order]
    space = "texts" if policy.task == "i2t" else "images"
    out = []
    for hit in index.hits(vector, k, space)[0]:
        label = {"i2t": hit.get("caption"), "knn": hit.get("category")}.get(policy.task, hit.get("path"))
        out.append({"match": label, "similarity": float(hit["score"]), "item_id": int(hit["id"]),
                    "category": hit.get("category")})
    return out


def _get(queue: ReviewQueue, item_id: int):
    try:
        return queue.get(item_id)
    except DcarError:
        raise HTTPException(404, f"no review item {item_id}") from None


def _item_json(it) -> dict:
    out = dict(it.__dict__)
    if it.query_kind == "image":
        out["query"] = Path(it.query).name  # no server paths to the client
        out["query_url"] = f"/api/review/items/{it.id}/query"
    return out


def review_token(token_file: Path | None) -> tuple[str, bool]:
    """The token review actions need: from a file, from $DCAR_REVIEW_TOKEN, or a new one
    (the flag says whether it is new, and so must be shown to the operator)."""
    import os
    import secrets

    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
            raise DcarError(f"{token_file}: cannot read the review token") from None
        if len(token) < 16:
            raise DcarError(f"{token_file}: the token must have at least 16 characters")
        return token, False
    if len(os.environ.get("DCAR_REVIEW_TOKEN", "").strip()) >= 16:
        return os.environ["DCAR_REVIEW_TOKEN"].strip(), False
    return secrets.token_urlsafe(24), True


def add_operations(app: FastAPI, index, encoder, limits, index_dir: Path, policy_file: Path | None, queue_file: Path | None,
                   token_file: Path | None, ab_index: Path | None, ab_mode: str, ab_log: Path | None, ab_salt: str,
                   device: str | None) -> str | None:
    """`dcar serve`'s operating options: the policy routes and review page, and the A/B arm B.
    Returns the token when it was generated here (the CLI prints it once)."""
    from dcar.policy import load_policy

    token, new = review_token(token_file)
    if policy_file is not None:
        queue = ReviewQueue(queue_file or index_dir)
        add_review(app, index, encoder, load_policy(policy_file), queue, token, limits)
    if ab_index is not None:
        from dcar.abtest.online import MODES, EventLog
        from dcar.abtest.serving import add_ab
        from dcar.index import Index

        if ab_mode not in MODES:
            raise DcarError(f"--ab-mode must be one of {', '.join(MODES)}, got {ab_mode!r}")
        other = Index.open(ab_index)
        arms = {"a": (index, encoder), "b": (other, other.load_encoder(device))}
        add_ab(app, arms, ab_mode, EventLog(ab_log or index_dir / "ab-events.jsonl"), ab_salt, token, limits)
    return token if new else None
