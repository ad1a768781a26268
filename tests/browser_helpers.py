"""A real headless Chromium for tests of the web pages (the search page, the demo page).

Needs selenium, Debian's ``chromium`` and ``chromium-driver`` (installed by .ci/run); a test that
asks for the ``browser`` fixture is skipped with the reason when one of them is missing.
Screenshots go to ``$DCAR_SCREENSHOT_DIR`` when set (for people to look at), else to the test's
temporary folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def browser_binaries() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no headless browser here: install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
    return browser, driver


def new_browser(width: int = 1400, height: int = 1050):
    """A headless Chromium driven by selenium (skips the test when there is none)."""
    binary, driver_path = browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser():
    driver = new_browser()
    yield driver
    driver.quit()


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DCAR_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
