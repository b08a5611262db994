"""The web page in headless Chromium: type, get a translation, alternatives and attention.

Runs when Debian's chromium (/usr/bin/chromium) and the Python `playwright` package are
installed (`apt-get install -y chromium` and `pip install playwright`; no browser download is
needed), and is skipped otherwise.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
if not shutil.which("chromium"):
    pytest.skip("Debian chromium is not installed", allow_module_level=True)


def test_translate_as_you_type(live_server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(live_server)
            page.wait_for_selector("#pair option", state="attached")
            assert page.locator("#pair option").first.text_content().startswith("de → en")
            page.fill("#source", "ein hund rennt")
            page.wait_for_function("document.getElementById('output').textContent.length > 0",
                                   timeout=15_000)
            # The attention heat-map: one row per output subword, one cell per input subword.
            page.wait_for_selector("#attention tbody tr")
            assert page.locator("#attention-section").is_visible()
            assert page.locator("#attention thead th").count() > 1
            assert page.locator("#error").text_content() == ""
            assert errors == []
        finally:
            browser.close()
