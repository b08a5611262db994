"""Splits the Tatoeba German-English pairs into train, valid and test with no sentence leakage.

Tatoeba repeats sentences: about 34k English sentences appear with several German translations
(and some German ones with several English). A split by line would put "I'm tired." in train
with one translation and in test with another. Here every pair is an edge between its German
and its English sentence (after normalisation); the connected groups of that graph are dealt
out whole, so no German and no English sentence of valid or test occurs anywhere in train.

Deterministic: the same input files and seed give byte-identical outputs.

    python data/scripts/split_tatoeba.py --src-dir ../shared/data/tatoeba --out-dir data/tatoeba
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

HELD_OUT_PAIRS = 2000  # about this many pairs each for valid and test
MAX_GROUP = 8  # larger groups (a sentence with many translations) always go to train
SEED = 20261201
_NOT_WORD = re.compile(r"[\W_]+")


def sentence_key(text: str) -> str:
    """What counts as "the same sentence": NFKC, case-folded, punctuation and spacing ignored."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


class _Groups:
    """Union-find over sentence keys."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def split_pairs(
    de: Sequence[str], en: Sequence[str], *, held_out: int = HELD_OUT_PAIRS, seed: int = SEED
) -> dict[str, list[int]]:
    """Line indices of train, valid and test.

    Groups of connected pairs (sharing a German or an English sentence) of at most `MAX_GROUP`
    pairs are shuffled with `seed` and dealt to test, then valid, until each holds `held_out`
    pairs; everything else is train.
    """
    groups = _Groups()
    for d, e in zip(de, en, strict=True):
        groups.union("de:" + sentence_key(d), "en:" + sentence_key(e))
    members: dict[str, list[int]] = {}
    for i, d in enumerate(de):
        members.setdefault(groups.find("de:" + sentence_key(d)), []).append(i)
    candidates = sorted(
        (lines for lines in members.values() if len(lines) <= MAX_GROUP), key=lambda g: g[0]
    )
    random.Random(seed).shuffle(candidates)
    split: dict[str, list[int]] = {"test": [], "valid": [], "train": []}
    held: set[int] = set()
    for name in ("test", "valid"):
        while len(split[name]) < held_out and candidates:
            group = candidates.pop()
            split[name].extend(group)
            held.update(group)
    split["train"] = [i for i in range(len(de)) if i not in held]
    for name in split:
        split[name].sort()
    return split


def leaks(de: Sequence[str], en: Sequence[str], split: dict[str, list[int]]) -> list[str]:
    """Held-out sentences (by key) that also occur in train; empty when the split is clean."""
    train_keys = {"de:" + sentence_key(de[i]) for i in split["train"]}
    train_keys |= {"en:" + sentence_key(en[i]) for i in split["train"]}
    found = []
    for name in ("valid", "test"):
        for i in split[name]:
            for key in ("de:" + sentence_key(de[i]), "en:" + sentence_key(en[i])):
                if key in train_keys:
                    found.append(f"{name} line {i + 1}: {key}")
    return found


def _read(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
        return [line.rstrip("\n") for line in handle]


def _write(path: Path, lines: Sequence[str]) -> None:
    # mtime=0 and no file name in the header: the same lines give the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as handle:
        handle.write("".join(line + "\n" for line in lines).encode("utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src-dir", type=Path, required=True,
                        help="folder with train.de.gz and train.en.gz (the full export)")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--held-out", type=int, default=HELD_OUT_PAIRS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    de, en = _read(args.src_dir / "train.de.gz"), _read(args.src_dir / "train.en.gz")
    if len(de) != len(en):
        print(f"error: {len(de)} German lines but {len(en)} English lines", file=sys.stderr)
        return 1
    split = split_pairs(de, en, held_out=args.held_out, seed=args.seed)
    found = leaks(de, en, split)
    if found:
        print(f"error: {len(found)} held-out sentences occur in train, e.g. {found[0]}",
              file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, lines in split.items():
        _write(args.out_dir / f"{name}.de.gz", [de[i] for i in lines])
        _write(args.out_dir / f"{name}.en.gz", [en[i] for i in lines])
        print(f"{name}: {len(lines)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
