"""Round trips of .docx files: every paragraph, cell, header and footer translated, run
formatting and hyperlinks carried over, the result opening in LibreOffice; hostile archives
refused before python-docx sees them."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import docx
import pytest
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from nmt.documents.base import DocumentError
from nmt.documents.formats import read_document, translate_document
from nmt.documents.word import MAX_UNPACKED_BYTES


def _add_link(paragraph, url: str, text: str) -> None:
    rel = paragraph.part.relate_to(url, docx.opc.constants.RELATIONSHIP_TYPE.HYPERLINK,
                                   is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rel)
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def make_docx(path: Path, pages: int = 1) -> Path:
    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = "Eine Kopfzeile"
    d.sections[0].footer.paragraphs[0].text = "Eine Fußzeile"
    for page in range(pages):
        d.add_heading(f"Kapitel {page + 1}", level=1)
        p = d.add_paragraph("Der ")
        p.add_run("große").bold = True
        p.add_run(" Hund rennt ")
        p.add_run("schnell").italic = True
        p.add_run(" durch den Park, siehe ")
        _add_link(p, "https://example.org/park", "die Karte")
        p.add_run(".")
        table = d.add_table(rows=2, cols=2)
        for i, cell in enumerate(table._cells):
            cell.text = f"Zelle {i} mit Text"
        tabbed = d.add_paragraph("Name\tWert")
        tabbed.runs[0].add_break()
        d.add_paragraph("")
    d.save(path)
    return path


def _structure(data: bytes) -> tuple[int, int, int, int]:
    d = docx.Document(io.BytesIO(data))
    cells = sum(len(t._cells) for t in d.tables)
    return len(d.paragraphs), len(d.tables), cells, len(d.sections)


def test_docx_round_trip_keeps_structure_and_formatting(upper, tmp_path):
    src = make_docx(tmp_path / "in.docx").read_bytes()
    out = translate_document(src, "docx", upper)
    assert _structure(out) == _structure(src)
    d = docx.Document(io.BytesIO(out))
    assert d.paragraphs[0].text == "KAPITEL 1"
    body = d.paragraphs[1]
    assert body.text == "DER GROSSE HUND RENNT SCHNELL DURCH DEN PARK, SIEHE DIE KARTE."
    assert [r.text for r in body.runs if r.bold] == ["GROSSE"]
    assert [r.text for r in body.runs if r.italic] == ["SCHNELL"]
    links = body.hyperlinks
    assert [(h.text, h.url) for h in links] == [("DIE KARTE", "https://example.org/park")]
    assert [c.text for c in d.tables[0]._cells] == [f"ZELLE {i} MIT TEXT" for i in range(4)]
    assert d.paragraphs[2].text == "NAME\tWERT\n"  # the tab and the break stay
    assert d.sections[0].header.paragraphs[0].text == "EINE KOPFZEILE"
    assert d.sections[0].footer.paragraphs[0].text == "EINE FUSSZEILE"


def test_docx_opens_in_libreoffice_or_validates_as_xml(upper, tmp_path, capsys):
    out = tmp_path / "out.docx"
    out.write_bytes(translate_document(make_docx(tmp_path / "in.docx").read_bytes(), "docx",
                                       upper))
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        # No LibreOffice here: re-open with python-docx and parse every XML part instead.
        with capsys.disabled():
            print("\nLibreOffice is not installed: checked the .docx with python-docx and an "
                  "XML parse of every part instead")
        docx.Document(str(out))
        from lxml import etree
        with zipfile.ZipFile(out) as archive:
            for name in archive.namelist():
                if name.endswith((".xml", ".rels")):
                    etree.fromstring(archive.read(name))
        return
    profile = tmp_path / "lo-profile"
    result = subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
         "pdf", "--outdir", str(tmp_path), str(out)], capture_output=True, text=True,
        timeout=180)
    pdf = tmp_path / "out.pdf"
    assert result.returncode == 0 and pdf.is_file() and pdf.stat().st_size > 1000, result.stderr
    assert pdf.read_bytes().startswith(b"%PDF")


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_zip_bomb_is_refused_before_unpacking():
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>",
                 "big.bin": b"\0" * (MAX_UNPACKED_BYTES + 1)})
    assert len(bomb) < 1_000_000
    with pytest.raises(DocumentError, match="zip bomb"):
        read_document(bomb, "docx")


def test_entity_expansion_is_refused(tmp_path):
    src = make_docx(tmp_path / "in.docx")
    with zipfile.ZipFile(src) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    laughs = (b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;">]>'
              b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
              b'main"><w:body><w:p><w:r><w:t>&b;</w:t></w:r></w:p></w:body></w:document>')
    files["word/document.xml"] = laughs
    with pytest.raises(DocumentError, match="DTD or entities"):
        read_document(_zip(files), "docx")


@pytest.mark.parametrize(("data", "problem"), [
    (b"Ein Hund rennt.\n", "not a zip archive"),
    (b"PK\x03\x04broken", "broken zip archive"),
    (_zip({"hello.txt": b"hi"}), "no word/document.xml"),
])
def test_corrupt_docx_is_refused(data, problem):
    with pytest.raises(DocumentError, match=problem):
        read_document(data, "docx")
