"""Online A/B in `dcar serve`: a second index (arm B) beside the served one (arm A).

Routes added to the service app:
  GET  /api/ab/search/text?q=&k=&user=   text -> images from the user's arm, or interleaved
  POST /api/ab/search/image?k=&user=     uploaded image -> images, the same
  POST /api/ab/click                     {"impression", "item", "position"}: a click on a result
  POST /api/ab/review                    {"impression", "decision"}: a review outcome (token)

The user is the ``user`` parameter or, without one, a random id kept in the ``dcar_ab`` cookie.
Each answer carries an impression id (random, unguessable); a click is logged only for an
impression this server issued, so the log cannot be filled with clicks on results never shown.
Items are identified across the two indexes by their catalog ``key``.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

from fastapi import Body, Cookie, FastAPI, File, Header, HTTPException, Query, Response, UploadFile

from dcar.abtest.online import MODES, EventLog, assign, team_draft

REMEMBERED_IMPRESSIONS = 100_000  # clickable impressions kept in memory (oldest forgotten first)


def add_ab(app: FastAPI, arms: dict, mode: str, log: EventLog, salt: str, token: str | None, limits) -> None:
    """``arms``: {"a": (index, encoder), "b": (index, encoder)}."""
    from dcar.serving.app import _public, read_upload

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    issued: OrderedDict[str, list[str]] = OrderedDict()
    lock = threading.Lock()

    def user_of(user: str | None, cookie: str | None, response: Response) -> str:
        if user:
            return user[:200]
        if cookie:
            return cookie[:200]
        uid = secrets.token_urlsafe(12)
        response.set_cookie("dcar_ab", uid, max_age=180 * 24 * 3600, httponly=True, samesite="lax")
        return uid

    def ranked(arm: str, encode, k: int) -> list[dict]:
        index, encoder = arms[arm]
        with app.state.model_lock:
            vector = encode(encoder)
        return [_public(h) | {"arm": arm} for h in index.hits(vector, k, "images")[0]]

    def serve(encode, k: int, unit: str, query: dict) -> dict:
        impression = secrets.token_urlsafe(16)
        if mode == "split":
            arm = assign(unit, salt)
            results = ranked(arm, encode, k)
            teams = [arm] * len(results)
        else:
            arm = "ab"
            a, b = ranked("a", encode, k), ranked("b", encode, k)
            by_key = {r["key"]: r for r in b} | {r["key"]: r for r in a}
            keys, teams = team_draft([r["key"] for r in a], [r["key"] for r in b], k, impression)
            results = [by_key[key] | {"arm": t} for key, t in zip(keys, teams)]
        keys = [r["key"] for r in results]
        log.append({"type": "impression", "id": impression, "unit": unit, "mode": mode, "arm": arm, "items": keys,
                    "teams": teams, "query": query})
        with lock:
            issued[impression] = keys
            while len(issued) > REMEMBERED_IMPRESSIONS:
                issued.popitem(last=False)
        # The arm is not shown to the user, only the impression to report clicks with.
        return {"impression": impression, "query": query, "results": [{k2: v for k2, v in r.items() if k2 != "arm"} for r in results]}

    @app.get("/api/ab/search/text")
    def ab_text(response: Response, q: str = Query(..., max_length=limits.max_query_chars), k: int = Query(10, ge=1, le=limits.max_k),
                user: str | None = Query(None, max_length=200), dcar_ab: str | None = Cookie(None)) -> dict:
        if not q.strip():
            raise HTTPException(400, "q: empty query")
        return serve(lambda enc: enc.encode_text([q]).numpy(), k, user_of(user, dcar_ab, response), {"text": q})

    @app.post("/api/ab/search/image")
    def ab_image(response: Response, file: UploadFile = File(...), k: int = Query(10, ge=1, le=limits.max_k),
                 user: str | None = Query(None, max_length=200), dcar_ab: str | None = Cookie(None)) -> dict:
        name, _, image = read_upload(file, limits)
        return serve(lambda enc: enc.encode_image([image]).numpy(), k, user_of(user, dcar_ab, response), {"image": name})

    @app.post("/api/ab/click")
    def ab_click(body: dict = Body(...)) -> dict:
        impression, position = body.get("impression"), body.get("position")
        with lock:
            keys = issued.get(impression) if isinstance(impression, str) else None
        if keys is None:
            raise HTTPException(404, "impression: unknown or expired (clicks are logged for issued impressions only)")
        if not isinstance(position, int) or not 0 <= position < len(keys):
            raise HTTPException(422, f"position: an integer in [0, {len(keys)})")
        log.append({"type": "click", "impression": impression, "item": keys[position], "position": position})
        return {"logged": True}

    @app.post("/api/ab/review")
    def ab_review(body: dict = Body(...), authorization: str | None = Header(None)) -> dict:
        import hmac

        given = (authorization or "").removeprefix("Bearer ").strip()
        if not token or not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "review outcomes need the token printed by `dcar serve`", headers={"WWW-Authenticate": "Bearer"})
        impression, decision = body.get("impression"), body.get("decision")
        with lock:
            known = isinstance(impression, str) and impression in issued
        if not known:
            raise HTTPException(404, "impression: unknown or expired")
        if decision not in ("accept", "correct", "reject"):
            raise HTTPException(422, "decision: accept, correct or reject")
        log.append({"type": "review", "impression": impression, "decision": decision})
        return {"logged": True}
