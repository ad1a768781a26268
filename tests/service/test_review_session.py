"""A review session in headless Chromium against a real `dcar serve` process: the token is required,
decisions survive a kill -9 of the server, and the export trains a model.

Needs selenium, Debian's ``chromium`` and ``chromium-driver``; skipped with the reason otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from browser_helpers import new_browser, screenshot_dir
from cli_helpers import run_cli
from dcar.review import ReviewQueue

pytestmark = pytest.mark.slow
TOKEN = "session-token-0123456789"
SRC = Path(__file__).resolve().parents[2] / "src"


def _serve(index: Path, policy: Path, queue: Path, token_file: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "dcar", "serve", str(index), "--port", str(port), "--policy", str(policy),
                             "--queue", str(queue), "--token-file", str(token_file), "--device", "cpu"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "dcar serve did not start"
        time.sleep(0.3)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(colour) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (32, 32), (255, 255, 255))
    img.paste(colour, (6, 6, 26, 26))
    img.save(buf, "PNG")
    return buf.getvalue()


def test_review_session_in_a_browser_survives_kill_9_and_trains(built_index, tiny_encoder, tiny_spec, tmp_path, capsys):
    import httpx
    from selenium.webdriver.support.ui import WebDriverWait

    driver = new_browser(1300, 1000)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({
        "task": "knn", "score": "top1", "lambda_hi": 0.9999, "lambda_lo": -1.0, "target_precision": 0.9,
        "confidence": 0.9, "max_review": 1.0, "model": tiny_encoder.spec, "checkpoint": None,
        "encoder": hashlib.sha256(tiny_encoder.fingerprint().encode()).hexdigest()[:16], "data": {}, "sample_size": 100,
        "date": "2026-11-30T00:00:00+00:00", "template": "", "categories": [], "calibration": {}, "version": 1}))
    (tmp_path / "token").write_text(TOKEN)
    queue = tmp_path / "review.sqlite"
    port = _port()
    server = _serve(built_index, policy, queue, tmp_path / "token", port)
    url = f"http://127.0.0.1:{port}"
    shots = screenshot_dir(tmp_path)
    try:
        colours = [(220, 30, 30), (30, 200, 60), (40, 60, 220), (230, 210, 40)]
        for c in colours:  # the operator's pipeline matches new photos; uncertain ones are queued
            r = httpx.post(f"{url}/api/match/image", files={"file": ("new.png", _png(c), "image/png")},
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
            assert r["decision"] == "review" and r["review_item"] is not None

        driver.get(f"{url}/review")
        wait = WebDriverWait(driver, 30)
        # Without the token the page gets nothing but the server's reason.
        driver.find_element("id", "load").click()
        wait.until(lambda d: d.find_element("id", "items").get_attribute("data-state") == "error")
        assert "token" in driver.find_element("id", "message").text
        driver.find_element("id", "token").send_keys(TOKEN)
        driver.find_element("id", "reviewer").send_keys("ann")
        driver.find_element("id", "load").click()
        wait.until(lambda d: len(d.find_elements("css selector", ".item")) == 4)
        wait.until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('.item img')].every(i => i.complete && i.naturalWidth > 0)"))
        driver.save_screenshot(str(shots / "review.png"))

        def act(i: int, how: str) -> None:
            card = driver.find_elements("css selector", ".item")[0]
            item_id = card.get_attribute("data-item-id")
            if how == "correct":
                card.find_element("css selector", ".fix").send_keys("stondrel")
            card.find_element("css selector", f".{how}").click()
            wait.until(lambda d: not d.find_elements("css selector", f'[data-item-id="{item_id}"]'))

        act(0, "accept")
        act(1, "pick")  # another candidate is the right one
        act(2, "correct")  # typed label
        server.send_signal(signal.SIGKILL)  # the server dies right after the third decision
        server.wait()
        server = _serve(built_index, policy, queue, tmp_path / "token", port)
        driver.refresh()  # the token stays in the tab's session storage
        driver.find_element("id", "load").click()
        wait.until(lambda d: d.find_element("id", "items").get_attribute("data-state") == "done")
        assert len(driver.find_elements("css selector", ".item")) == 1
        assert "1 pending · 1 accepted · 2 corrected" in driver.find_element("id", "counts").text
        driver.save_screenshot(str(shots / "review-after-restart.png"))
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
        driver.quit()

    q = ReviewQueue(queue)
    decided = q.items("decided")
    assert [(it.decision, it.reviewer) for it in decided] == [("accept", "ann"), ("correct", "ann"), ("correct", "ann")]
    assert decided[2].label == "stondrel"
    out = tmp_path / "reviewed.json"
    code, _, err = run_cli(["review", "export", str(queue), "--format", "fdrd", "--out", str(out)], capsys)
    assert code == 0, err
    root = err.split("--images ")[1].split()[0]
    assert len(json.loads(out.read_text())) == 3
    code, _, err = run_cli(["train", "--method", "coop", "--model", tiny_spec, "--train", str(out), "--images", root,
                            "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "2", "--device", "cpu",
                            "--workers", "0"], capsys)
    assert code == 0, err
