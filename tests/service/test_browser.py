"""End to end in a real headless Chromium: `dcar serve`'s page over an index of real flower images.

Needs selenium, Debian's ``chromium`` and ``chromium-driver`` (installed by .ci/run) and the shared
flower images; skipped with the reason when one of them is missing. The screenshots go to
``$DCAR_SCREENSHOT_DIR`` when set (for people to look at), else to the test's temporary folder.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from browser_helpers import browser, screenshot_dir  # noqa: F401  (browser: a fixture)
from dcar.api import load
from dcar.index import Index, read_catalog
from dcar.serving import create_app

PER_CLASS, CLASSES = 4, 12


@pytest.fixture(scope="module")
def flower_index(shared_data, tmp_path_factory) -> Path:
    """A few images of each of the first flower classes, with their FDRD captions, built-in model."""
    folder = shared_data / "images" / "flower" / "test"
    by_class: dict[str, list[Path]] = {}
    for p in sorted(folder.glob("*.jpg")):
        by_class.setdefault(p.name.rsplit("_image_", 1)[0], []).append(p)
    picked = [p for cls in sorted(by_class)[:CLASSES] for p in by_class[cls][:PER_CLASS]]
    root = tmp_path_factory.mktemp("flowers")
    listing = root / "catalog.txt"
    listing.write_text("".join(f"{p}\n" for p in picked))
    catalog = read_catalog(listing, shared_data / "fdrd" / "flower_test.json")
    out = root / "index"
    Index.build(out, load("builtin:synthetic-small", device="cpu"), catalog.items, workers=0, progress=False)
    return out


@pytest.fixture(scope="module")
def server(flower_index):
    import uvicorn

    index = Index.open(flower_index)
    app = create_app(index, index.load_encoder("cpu"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", index
    srv.should_exit = True
    thread.join(timeout=10)


def _wait_results(driver, label: str, timeout: float = 60.0):
    """Wait for a search labelled ``label`` to render, and for its thumbnails to load."""
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    wait.until(lambda d: d.find_element("id", "results").get_attribute("data-state") in ("done", "error")
               and label in d.find_element("id", "message").text)
    wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('.result img')].every(i => i.complete && i.naturalWidth > 0)"))
    return driver.find_elements("css selector", ".result")


def test_text_and_image_search_in_a_real_browser(server, browser, tmp_path):
    url, index = server
    browser.get(url + "/")
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda d: f"{len(index)} images" in d.find_element("id", "status").text)

    # Text search: typed in the box, Enter.
    box = browser.find_element("id", "q")
    box.send_keys("This is a bishop of llandaff. A bright red flower with a dark centre", Keys.ENTER)
    cards = _wait_results(browser, "bishop of llandaff")
    assert browser.find_element("id", "results").get_attribute("data-state") == "done"
    assert len(cards) == min(24, len(index))
    scores = [float(c.get_attribute("data-score")) for c in cards]
    assert scores == sorted(scores, reverse=True)
    shown = [float(c.find_element("css selector", ".score").text) for c in cards]
    assert shown == pytest.approx(scores, abs=5e-4)
    first = index.item(int(cards[0].get_attribute("data-id")))
    assert cards[0].find_element("css selector", ".category").get_attribute("title") == first["category"]
    assert cards[0].find_element("css selector", ".caption").text.startswith(first["caption"][:20])
    shots = screenshot_dir(tmp_path)
    browser.save_screenshot(str(shots / "service.png"))
    assert Image.open(shots / "service.png").size[0] >= 1000

    # Image search: a catalog image chosen through the drop zone's file input.
    query = index.item(9)
    file_input = browser.find_element("id", "file")
    browser.execute_script("arguments[0].hidden = false", file_input)  # what a click on the zone opens
    file_input.send_keys(query["path"])
    cards = _wait_results(browser, Path(query["path"]).name)
    assert int(cards[0].get_attribute("data-id")) == 9
    assert float(cards[0].get_attribute("data-score")) == pytest.approx(1.0, abs=1e-4)
    assert browser.execute_script("return document.getElementById('preview').naturalWidth") > 0
    browser.execute_script("arguments[0].hidden = true", file_input)
    browser.save_screenshot(str(shots / "service-image-search.png"))

    # A bad upload: the page shows the server's one-line reason, and the next search still works.
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    browser.execute_script("arguments[0].hidden = false", file_input)
    file_input.send_keys(str(bad))
    WebDriverWait(browser, 30).until(lambda d: "not an image" in d.find_element("id", "message").text)
    assert "error" in browser.find_element("id", "message").get_attribute("class")
    cards[0].find_element("css selector", ".pic").click()  # "more like this" on the first result
    cards = _wait_results(browser, "item 9")
    assert int(cards[0].get_attribute("data-id")) == 9
