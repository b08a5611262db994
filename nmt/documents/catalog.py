"""Documents: gettext catalogs (.po, .pot) with polib: every untranslated `msgstr` is filled
from its `msgid` (plural forms: `msgstr[0]` from `msgid`, the others from `msgid_plural`), and
placeholders (`%s`, `%(name)s`, `{name}`, `%1$s`) are kept verbatim. Entries already translated,
obsolete entries and the header are left as they are, except the header's Language.
"""

from __future__ import annotations

import os
import re
import tempfile

import polib

from nmt.documents.base import Document, DocumentError, Translated, decode_text

PLACEHOLDER = re.compile(
    r"%(?:\(\w+\)|\d+\$)?[-+ #0]*(?:\d+|\*)?(?:\.\d+)?[hlLqjzt]*[diouxXeEfFgGcrsa%]"
    r"|\{[\w.\[\]]*(?:![rsa])?(?::[^{}]*)?\}")
_NPLURALS = re.compile(r"nplurals\s*=\s*(\d+)")


def _parse(text: str) -> polib.POFile:
    # polib.pofile() takes a path *or* content and decides by whether such a file exists, so
    # uploaded content is always handed over as a file of our own.
    fd, path = tempfile.mkstemp(suffix=".po")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return polib.pofile(path, encoding="utf-8", wrapwidth=78)
    except (OSError, ValueError) as err:
        raise DocumentError(f"not a readable .po file: {err}") from None
    finally:
        os.unlink(path)


def read_po(data: bytes, *, target_lang: str | None = None) -> Document:
    text = decode_text(data, "po")
    if "msgid" not in text:
        raise DocumentError("not a .po file: it holds no msgid")
    catalog = _parse(text)
    match = _NPLURALS.search(catalog.metadata.get("Plural-Forms", ""))
    nplurals = int(match.group(1)) if match else 2
    slots: list[tuple[polib.POEntry, int | None]] = []  # (entry, plural index or None)
    texts: list[str] = []
    for entry in catalog:
        if entry.obsolete or not entry.msgid or entry.translated():
            continue
        if entry.msgid_plural:
            forms = sorted(entry.msgstr_plural) or list(range(nplurals))
            for n in forms:
                slots.append((entry, n))
                texts.append(entry.msgid if n == 0 else entry.msgid_plural)
        else:
            slots.append((entry, None))
            texts.append(entry.msgid)
    terms = tuple(dict.fromkeys(m.group() for t in texts for m in PLACEHOLDER.finditer(t)
                                if m.group() != "%%"))

    def render(translations: list[Translated]) -> bytes:
        for (entry, n), (translated, _), source in zip(slots, translations, texts, strict=True):
            value = _keep_edges(source, translated)
            if n is None:
                entry.msgstr = value
            else:
                entry.msgstr_plural[n] = value
        if target_lang and "Language" in catalog.metadata:
            catalog.metadata["Language"] = target_lang
        out = str(catalog)
        if not catalog.header and out.startswith("#\n"):
            out = out[2:]  # polib writes an empty header comment as a lone "#"
        return out.encode("utf-8")

    return Document("po", texts, render, terms)


def _keep_edges(source: str, translated: str) -> str:
    """The translation with the msgid's leading/trailing whitespace and newlines (gettext tools
    check that msgid and msgstr both end in a newline, or neither)."""
    lead = source[: len(source) - len(source.lstrip())]
    trail = source[len(source.rstrip()):]
    return lead + translated.strip() + trail
