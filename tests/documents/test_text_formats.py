"""Round trips of the text formats (txt, html, srt, vtt, md, po) with a fake translation:
same structure, every unit translated, protected spans and timings byte for byte."""

from __future__ import annotations

import re

import polib
import pytest
from markdown_it import MarkdownIt

from nmt.documents.base import DocumentError, wrap_words
from nmt.documents.formats import format_for, read_document, translate_document

SRT = (
    "1\r\n00:00:01,000 --> 00:00:02,500\r\nEin Hund rennt\r\ndurch den Park.\r\n\r\n"
    "2\r\n00:00:03,000 --> 00:00:04,000\r\n- Hallo!\r\n- Guten Tag.\r\n\r\n"
    "3\r\n00:01:05,250 --> 00:01:07,000 X1:10\r\nZwei Katzen schlafen.\r\n"
)


def test_txt_keeps_lines_blank_lines_and_line_endings(upper):
    src = "Ein Hund.\r\n\r\n  Zwei Katzen schlafen.  \nletzte Zeile"
    out = translate_document(src.encode(), "txt", upper).decode()
    assert out == "EIN HUND.\r\n\r\n  ZWEI KATZEN SCHLAFEN.  \nLETZTE ZEILE"


def test_html_translates_text_title_and_alt_and_keeps_code(upper):
    src = ('<!DOCTYPE html><html lang="de"><head><title>Ein Hund</title>'
           '<style>p { color: red }</style><script>var s = "<p title=x>Text</p>";</script>'
           '</head><body><p>Der <b>Hund</b> rennt <code>x = 1</code>.</p>'
           '<img src="a.png" alt="Ein Bild"><pre>Nicht <b>hier</b></pre></body></html>')
    out = translate_document(src.encode(), "html", upper, target_lang="en").decode()
    assert '<html lang="en">' in out
    assert "<title>EIN HUND</title>" in out
    assert '<p>DER <b>HUND</b> RENNT <code>x = 1</code>.</p>' in out
    assert 'alt="EIN BILD"' in out and 'src="a.png"' in out
    assert "<style>p { color: red }</style>" in out
    assert '<script>var s = "<p title=x>Text</p>";</script>' in out
    assert "<pre>Nicht <b>hier</b></pre>" in out


def test_srt_keeps_numbers_and_timings_and_rewraps_cues(upper):
    doc = read_document(SRT.encode(), "srt")
    assert doc.texts == ["Ein Hund rennt durch den Park.", "- Hallo!", "- Guten Tag.",
                         "Zwei Katzen schlafen."]
    out = doc.render(upper(doc.texts)).decode()
    src_blocks, out_blocks = SRT.split("\r\n\r\n"), out.split("\r\n\r\n")
    assert len(out_blocks) == len(src_blocks)
    for src_block, out_block in zip(src_blocks, out_blocks, strict=True):
        src_lines, out_lines = src_block.split("\r\n"), out_block.split("\r\n")
        assert out_lines[:2] == src_lines[:2]  # number and timing, byte for byte
        assert len(out_lines) == len(src_lines)  # re-wrapped to the cue's line count
    assert "EIN HUND RENNT\r\nDURCH DEN PARK." in out
    assert "- HALLO!\r\n- GUTEN TAG." in out


def test_vtt_keeps_header_notes_and_cue_settings(upper):
    src = ("WEBVTT - Beispiel\n\nNOTE nicht übersetzen\n\nintro\n"
           "00:01.000 --> 00:02.000 align:start\nEin Hund\n\n00:00:03.000 --> 00:00:04.000\n"
           "Eine Katze\n")
    out = translate_document(src.encode(), "vtt", upper).decode()
    assert out == src.replace("Ein Hund", "EIN HUND").replace("Eine Katze", "EINE KATZE")


@pytest.mark.parametrize(("srt", "problem"), [
    ("1\n00:00:01,000 -> 00:00:02,000\nText\n", "line 2: broken timing"),
    ("1\n00:00:05,000 --> 00:00:02,000\nText\n", "ends (00:00:02,000) before it starts"),
    ("eins\n00:00:01,000 --> 00:00:02,000\nText\n", "line 1: expected a cue number"),
    ("1\n00:00:01,000 --> 00:00:02,000\nA\n\n2\n00:00:03,000 --> 00:99:04,000\nB\n",
     "line 6: broken timing"),
])
def test_srt_with_broken_timings_is_refused_naming_the_line(srt, problem):
    with pytest.raises(DocumentError, match=re.escape(problem)):
        read_document(srt.encode(), "srt")


MD = """# Ein *schöner* Titel

Der Hund `pip install nmt` rennt [im Park](https://example.org/park "Park") und **schnell**.
Zweite Zeile mit <https://example.org> darin.

> Ein Zitat
> geht weiter

| Spalte | Andere |
|--------|--------|
| eins   | zwei   |

```python
print("nicht übersetzen")
```

    eingerückter Code

Setext Titel
============

- erster *Punkt*
- zweiter Punkt\\
  mit Umbruch
1. nummeriert
"""


def _shape(markdown: str) -> list[tuple[str, str]]:
    """Block structure: token types with their tags, and every code block's content."""
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)
    return [(t.type, t.content if t.type in ("fence", "code_block") else t.markup)
            for t in tokens if t.type != "inline"]


def test_markdown_keeps_structure_code_and_links(upper):
    out = translate_document(MD.encode(), "md", upper).decode()
    assert _shape(out) == _shape(MD)
    assert "# EIN *SCHÖNER* TITEL" in out
    assert "`pip install nmt`" in out
    assert '[IM PARK](https://example.org/park "Park")' in out and "**SCHNELL**" in out
    assert "<https://example.org>" in out
    assert '```python\nprint("nicht übersetzen")\n```' in out
    assert "    eingerückter Code" in out
    assert "SETEXT TITEL\n============" in out
    assert re.search(r"^\| EINS +\| ZWEI +\|$", out, re.M)
    assert "- ZWEITER PUNKT\\\n" in out  # the hard break stays


PO = r'''msgid ""
msgstr ""
"Language: de\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

#: app.py:10
msgid "Hallo %(name)s, du hast {count} neue Nachrichten"
msgstr ""

msgid "Eine Datei"
msgid_plural "%d Dateien"
msgstr[0] ""
msgstr[1] ""

msgid "Schon übersetzt"
msgstr "Already translated"
'''


def test_po_fills_msgstr_and_plurals_keeping_placeholders(upper, tmp_path):
    out = translate_document(PO.encode(), "po", upper, target_lang="en")
    path = tmp_path / "out.po"
    path.write_bytes(out)
    catalog = polib.pofile(str(path))
    entries = {e.msgid: e for e in catalog}
    assert entries["Hallo %(name)s, du hast {count} neue Nachrichten"].msgstr == \
        "HALLO %(name)s, DU HAST {count} NEUE NACHRICHTEN"
    assert entries["Eine Datei"].msgstr_plural == {0: "EINE DATEI", 1: "%d DATEIEN"}
    assert entries["Schon übersetzt"].msgstr == "Already translated"
    assert catalog.metadata["Language"] == "en"
    assert "#: app.py:10" in out.decode()


def test_po_content_naming_a_path_is_read_as_content(upper, tmp_path):
    # polib.pofile() reads a file when its argument names one: an upload must never do that.
    secret = tmp_path / "secret.po"
    secret.write_text('msgid "geheim"\nmsgstr ""\n')
    with pytest.raises(DocumentError):
        read_document(str(secret).encode(), "po")


@pytest.mark.parametrize("fmt", ["txt", "html", "srt", "md", "po"])
def test_invalid_utf8_names_the_line(fmt):
    data = b"1\n00:00:01,000 --> 00:00:02,000\n" + b"caf\xe9\n"
    with pytest.raises(DocumentError, match="line 3 is not valid UTF-8"):
        read_document(data, fmt)


@pytest.mark.parametrize("fmt", ["txt", "html", "srt", "md", "po"])
def test_a_suffix_that_lies_is_refused(fmt):
    with pytest.raises(DocumentError, match="zip archive"):
        read_document(b"PK\x03\x04\x14\x00\x00\x00rest of a docx", fmt)
    with pytest.raises(DocumentError, match="PDF"):
        read_document(b"%PDF-1.7\n...", fmt)


def test_format_from_suffix_or_forced():
    assert format_for("talk.de.SRT") == "srt" and format_for("a.htm") == "html"
    assert format_for("notes", "md") == "md"
    with pytest.raises(DocumentError, match="unknown file type .odt"):
        format_for("x.odt")


def test_wrap_words_balances_lines_and_never_leaves_one_empty():
    assert wrap_words("a dog runs through the park", 2) == ["a dog runs", "through the park"]
    assert wrap_words("hello", 3) == ["hello"]
    assert wrap_words("one two three", 3) == ["one", "two", "three"]
