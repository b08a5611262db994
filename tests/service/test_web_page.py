"""The web page in headless Chromium: type, get a translation, alternatives and attention; pick
a model and a domain; beams 1 and 2; clearing the text while a request is on its way; a file
translated and downloaded from the file section, and a broken file's error shown.

Runs when Debian's chromium (/usr/bin/chromium) and the Python `playwright` package are
installed (`apt-get install -y chromium` and `pip install playwright`; no browser download is
needed), and is skipped otherwise.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
if not shutil.which("chromium"):
    pytest.skip("Debian chromium is not installed", allow_module_level=True)

STATUS = "document.getElementById('status').textContent"


@contextmanager
def _browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        try:
            yield browser
        finally:
            browser.close()


def test_translate_as_you_type(live_server):
    with _browser() as browser:
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
        assert page.locator("#attention-scale").is_visible()  # the colour scale is shown too
        assert page.locator("#attention thead th").count() > 1
        assert page.locator("#error").text_content() == ""
        assert errors == []


def test_model_and_domain_pickers(live_multi_server):
    with _browser() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(live_multi_server)
        page.wait_for_selector("#model option", state="attached")
        # Two models for de -> en: the one with domains is the pair's default, and selected.
        assert page.locator("#pair option").count() == 1
        assert page.locator("#model option").all_text_contents() == [
            "tiny-general-de-en (default)", "tiny-de-en"]
        assert page.input_value("#model") == "tiny-general-de-en"
        assert page.text_content("#model-description") == "A tiny general-purpose test model."
        assert page.is_visible("#domain-label")
        assert page.locator("#domain option").all_text_contents() == ["general", "caption"]
        assert page.input_value("#domain") == "general"
        assert page.get_attribute("#beam", "max") == "8"  # the server's max_beam

        with page.expect_request("**/v1/translate") as request:
            page.fill("#source", "ein hund")
        sent = request.value.post_data_json
        assert (sent["model"], sent["domain"]) == ("tiny-general-de-en", "general")
        page.wait_for_function(f"{STATUS}.includes(' ms')")
        assert page.text_content("#status").startswith("tiny-general-de-en · general · ")

        with page.expect_request("**/v1/translate") as request:
            page.select_option("#domain", "caption")
        assert request.value.post_data_json["domain"] == "caption"
        page.wait_for_function(f"{STATUS}.includes('caption')")

        # The model without tags: no domain picker and no domain sent.
        with page.expect_request("**/v1/translate") as request:
            page.select_option("#model", "tiny-de-en")
        sent = request.value.post_data_json
        assert sent["model"] == "tiny-de-en" and "domain" not in sent
        assert not page.is_visible("#domain-label")
        assert "no model card" in page.text_content("#model-description")
        page.wait_for_function(f"{STATUS}.startsWith('tiny-de-en · ')")

        # Beams 1 and 2 are sent as chosen, with no more candidates than beams.
        for beam in (1, 2):
            with page.expect_request("**/v1/translate") as request:
                page.fill("#beam", str(beam))
                page.dispatch_event("#beam", "change")
            sent = request.value.post_data_json
            assert (sent["beam_size"], sent["nbest"]) == (beam, beam)
        page.wait_for_function(f"{STATUS}.includes(' ms')")
        assert page.text_content("#error") == ""

        # Clearing the text while a request is held: the page does not wait for it, and its
        # late answer is dropped.
        held: list[Any] = []
        page.route("**/v1/translate", lambda route: held.append(route))
        page.fill("#source", "der mann")
        page.wait_for_function(f"{STATUS} === 'Translating…'")
        while not held:
            page.wait_for_timeout(20)
        page.fill("#source", "")
        assert page.text_content("#status") == ""
        held[0].continue_()
        page.wait_for_timeout(500)
        assert page.text_content("#status") == ""
        assert page.text_content("#output") == ""
        assert page.text_content("#error") == ""
        assert errors == []


def test_an_error_that_is_not_json_is_shown(live_server):
    with _browser() as browser:
        page = browser.new_page()
        page.route("**/v1/translate", lambda route: route.fulfill(
            status=502, content_type="text/html", body="<html>Bad Gateway</html>"))
        page.goto(live_server)
        page.wait_for_selector("#model option", state="attached")
        page.fill("#source", "ein hund")
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert page.text_content("#error").startswith("502")
        assert page.text_content("#status") == ""


def test_the_file_section_translates_a_subtitle_file(live_server):
    """Pick a .srt, translate it: the download link gives an .srt with the same cues and timings,
    its text translated (it differs from the source), named after the target language."""
    source = ("1\n00:00:01,000 --> 00:00:02,500\nein hund rennt\n\n"
              "2\n00:00:03,000 --> 00:00:04,000\nder mann schläft\n")
    with _browser() as browser:
        page = browser.new_page(accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(live_server)
        page.wait_for_selector("#pair option", state="attached")
        page.set_input_files("#file", files=[{"name": "talk.de.srt", "mimeType": "text/plain",
                                              "buffer": source.encode()}])
        page.click("#file-translate")
        page.wait_for_selector("#file-download:not([hidden])", timeout=30_000)
        assert page.locator("#file-status").text_content() == ""
        with page.expect_download() as download_info:
            page.click("#file-download")
        download = download_info.value
        assert download.suggested_filename == "talk.en.srt"
        translated = open(download.path(), encoding="utf-8").read()
        assert errors == []
    blocks = [b.splitlines() for b in translated.strip().split("\n\n")]
    assert [b[:2] for b in blocks] == [["1", "00:00:01,000 --> 00:00:02,500"],
                                       ["2", "00:00:03,000 --> 00:00:04,000"]]
    assert all(len(b) >= 3 and b[2].strip() for b in blocks)
    assert [b[2] for b in blocks] != ["ein hund rennt", "der mann schläft"]


def test_the_file_section_shows_the_servers_error(live_server):
    with _browser() as browser:
        page = browser.new_page()
        page.goto(live_server)
        page.wait_for_selector("#pair option", state="attached")
        page.set_input_files("#file", files=[{"name": "broken.docx", "mimeType":
                                              "application/octet-stream",
                                              "buffer": b"this is not a zip file"}])
        page.click("#file-translate")
        page.wait_for_function(
            "document.getElementById('file-status').textContent.startsWith('Error: ')",
            timeout=30_000)
        assert "docx" in page.locator("#file-status").text_content().lower()
        assert page.locator("#file-download").is_hidden()
