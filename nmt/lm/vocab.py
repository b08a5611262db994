"""Language models: vocabularies: characters (saved as data) or the product's SentencePiece pieces.

Both turn lines into one token stream in which every line ends with a separator token (the
newline character, or EOS for subwords), so the model learns where sentences end and the state
can flow from one line into the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nmt.tokenization import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

UNK_CHAR = "\ufffd"  # shown for the unknown symbol when decoding
NEWLINE = "\n"


class VocabError(ValueError):
    """Stored vocabulary data is missing or malformed."""


class CharVocab:
    """Id 0 is the unknown symbol; then every distinct character, sorted, newline included."""

    kind = "char"

    def __init__(self, chars: Sequence[str]):
        if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise VocabError("a character vocabulary needs distinct single characters")
        self.chars = [UNK_CHAR, *chars]
        self._index = {c: i for i, c in enumerate(self.chars) if i > 0}
        if NEWLINE not in self._index:
            raise VocabError("a character vocabulary must contain the newline separator")
        self.separator_id = self._index[NEWLINE]
        self.unk_id = 0

    @classmethod
    def from_text(cls, lines: Iterable[str]) -> CharVocab:
        chars = {NEWLINE}
        for line in lines:
            chars.update(line)
        chars.discard(UNK_CHAR)
        return cls(sorted(chars))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self._index.get(c, 0) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_data(self) -> dict[str, Any]:
        return {"kind": "char", "chars": "".join(self.chars[1:])}


class SubwordVocab:
    """SentencePiece ids (PAD/UNK/BOS/EOS fixed by nmt.tokenization); EOS separates lines."""

    kind = "spm"

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.separator_id = EOS_ID
        self.unk_id = UNK_ID

    @property
    def size(self) -> int:
        return self.tokenizer.vocab_size

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode([text])[0]

    def decode(self, ids: Sequence[int]) -> str:
        """EOS becomes a newline; PAD and BOS are dropped."""
        lines: list[str] = []
        current: list[int] = []
        for i in ids:
            if i == EOS_ID:
                lines.append(self.tokenizer.decode(current))
                current = []
            elif i not in (PAD_ID, BOS_ID):
                current.append(i)
        return NEWLINE.join([*lines, self.tokenizer.decode(current)])

    def to_data(self) -> dict[str, Any]:
        return {"kind": "spm", "spm": self.tokenizer.model_proto}


Vocab = CharVocab | SubwordVocab


def vocab_from_data(data: dict[str, Any]) -> Vocab:
    """Inverse of `to_data` (as stored in an LM bundle)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "char" and isinstance(data.get("chars"), str):
        return CharVocab(list(data["chars"]))
    if kind == "spm" and isinstance(data.get("spm"), bytes):
        return SubwordVocab(Tokenizer(data["spm"], origin="<lm vocab>"))
    raise VocabError(f"unknown or malformed vocabulary data (kind {kind!r})")


def encode_stream(vocab: Vocab, lines: Iterable[str]) -> list[int]:
    """All lines as one id stream, each followed by the separator."""
    stream: list[int] = []
    for line in lines:
        stream.extend(vocab.encode(line))
        stream.append(vocab.separator_id)
    return stream


def count_chars(lines: Iterable[str]) -> int:
    """Characters of the text as the stream holds it: each line plus its newline."""
    return sum(len(line) + 1 for line in lines)
