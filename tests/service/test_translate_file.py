"""LibreTranslate's /translate_file and /download_file, and the native /v1/documents, with the
fake translator ("[en] reversed words"): the client's form fields, one-time download and
expiry, limits naming the setting, and hostile uploads."""

from __future__ import annotations

import os
import time
import urllib.parse

import pytest

from service.files import FileStore

SRT = (b"1\n00:00:01,000 --> 00:00:02,000\nEin Hund rennt\n\n"
       b"2\n00:00:03,000 --> 00:00:04,000\nHallo\n")


@pytest.fixture
def app(serve_fakes, tmp_path):
    return serve_fakes(files_dir=str(tmp_path / "store"), files_ttl_min=1.0)


def _upload(client, data=SRT, name="talk.de.srt", **fields):
    form = {"source": "de", "target": "en", **fields}
    return client.post("/translate_file", data=form, files={"file": (name, data)})


def test_translate_file_then_download_once(app):
    answer = _upload(app.client, api_key="")
    assert answer.status_code == 200, answer.text
    url = answer.json()["translatedFileUrl"]
    assert url.startswith("http://testserver/download_file/")
    path = urllib.parse.urlparse(url).path
    first = app.client.get(path)
    assert first.status_code == 200
    assert first.content == (b"1\n00:00:01,000 --> 00:00:02,000\n[en] rennt Hund Ein\n\n"
                             b"2\n00:00:03,000 --> 00:00:04,000\n[en] Hallo\n")
    assert first.headers["content-type"].startswith("application/x-subrip")
    assert 'filename="talk.en.srt"' in first.headers["content-disposition"]
    assert app.client.get(path).status_code == 404  # gone after one download


def test_frontend_settings_report_file_translation(app):
    settings = app.client.get("/frontend/settings").json()
    assert settings["filesTranslation"] is True
    assert {".txt", ".docx", ".srt", ".html", ".md", ".po"} <= set(settings["supportedFilesFormat"])


def test_expired_files_are_not_served(app, tmp_path):
    answer = _upload(app.client)
    name = answer.json()["translatedFileUrl"].rsplit("/", 1)[1]
    stored = tmp_path / "store" / name
    old = time.time() - 120
    os.utime(stored, (old, old))
    assert app.client.get(f"/download_file/{name}").status_code == 404
    assert not stored.exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "x.srt",
                                  "A" * 32 + ".srt/../x"])
def test_download_names_never_reach_the_file_system(app, name):
    assert app.client.get(f"/download_file/{name}").status_code == 404


def test_store_is_bounded_oldest_first(tmp_path):
    store = FileStore(tmp_path, ttl_s=60, max_bytes=2_500)
    first = store.put(b"a" * 1_000, suffix=".txt", filename="a.txt", media_type="text/plain")
    store.put(b"b" * 1_000, suffix=".txt", filename="b.txt", media_type="text/plain")
    store.put(b"c" * 1_000, suffix=".txt", filename="c.txt", media_type="text/plain")
    assert store.take(first) is None


def test_missing_fields_and_bad_files_are_400(app):
    assert "missing target" in _upload(app.client, target="").json()["error"]
    no_file = app.client.post("/translate_file", data={"source": "de", "target": "en"},
                              files={"other": ("x.txt", b"x")})
    assert no_file.status_code == 400 and "missing file" in no_file.json()["error"]
    odt = _upload(app.client, b"PK\x03\x04", name="x.odt")
    assert odt.status_code == 400 and "unknown file type .odt" in odt.json()["error"]
    lying = _upload(app.client, b"PK\x03\x04\x14\x00rest", name="x.srt")
    assert lying.status_code == 400 and "zip archive" in lying.json()["error"]
    broken = _upload(app.client, b"1\n00:00:01 --> 2\nText\n")
    assert broken.status_code == 400 and "line 2: broken timing" in broken.json()["error"]
    unknown = _upload(app.client, target="xx")
    assert unknown.status_code == 400 and "xx is not supported" in unknown.json()["error"]


def test_limits_name_the_setting(serve_fakes, tmp_path):
    app = serve_fakes(files_dir=str(tmp_path), max_file_bytes=2_000, max_document_units=3,
                      max_document_chars=50)
    big = _upload(app.client, b"x" * 3_000, name="a.txt")
    assert big.status_code == 413 and "NMT_MAX_FILE_BYTES" in big.json()["error"]
    units = _upload(app.client, b"a\nb\nc\nd\n", name="a.txt")
    assert units.status_code == 400 and "NMT_MAX_DOCUMENT_UNITS" in units.json()["error"]
    chars = _upload(app.client, b"x" * 60, name="a.txt")
    assert chars.status_code == 400 and "NMT_MAX_DOCUMENT_CHARS" in chars.json()["error"]


def test_api_key_in_the_form(serve_fakes, tmp_path):
    app = serve_fakes(files_dir=str(tmp_path), api_keys=["k1"])
    assert _upload(app.client).status_code == 403
    assert _upload(app.client, api_key="k1").status_code == 200


def test_long_documents_go_through_the_batcher_in_slices(app):
    text = "".join(f"Satz {i}\n" for i in range(70)).encode()
    assert _upload(app.client, text, name="a.txt").status_code == 200
    calls = app.translators["fake-de-en"].calls
    assert sum(len(c["texts"]) for c in calls) == 70
    assert max(len(c["texts"]) for c in calls) <= 32


def test_native_documents_answers_with_the_file(app):
    answer = app.client.post("/v1/documents", data={"source": "de", "target": "en",
                                                    "beam_size": "2"},
                             files={"file": ("page.html", b"<p>Ein <b>Hund</b></p>")})
    assert answer.status_code == 200, answer.text
    assert answer.content == b"<p>[en] <b>Hund</b> Ein</p>"
    assert answer.headers["content-type"].startswith("text/html")
    assert 'filename="page.en.html"' in answer.headers["content-disposition"]
    assert app.translators["fake-de-en"].calls[-1]["beam_size"] == 2
    bad = app.client.post("/v1/documents", data={"target": "en", "model": "nope"},
                          files={"file": ("a.txt", b"Hallo")})
    assert bad.status_code == 400 and "no model named 'nope'" in bad.json()["error"]
