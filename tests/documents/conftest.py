"""Document test helpers: a fake translate function that uppercases every word except the
protected terms, with the identity word alignment."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from nmt.documents.base import Translated


def upper_words(texts: list[str], terms: Sequence[str] = ()) -> list[Translated]:
    pattern = re.compile("|".join(map(re.escape, sorted(terms, key=len, reverse=True))))
    out = []
    for text in texts:
        pos, parts = 0, []
        for match in pattern.finditer(text) if terms else ():
            parts += [text[pos:match.start()].upper(), match.group()]
            pos = match.end()
        parts.append(text[pos:].upper())
        out.append(("".join(parts), list(range(len(text.split())))))
    return out


@pytest.fixture
def upper() -> object:
    return upper_words
