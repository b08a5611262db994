"""Service: language detection among the loaded source languages, with py3langid.

py3langid (a maintained fork of langid.py: naive Bayes over byte n-grams, 97 languages, the model
shipped inside the package) won a comparison with lingua-language-detector on short, name-laden
and mixed German/English/French texts; docs/service.md has the figures. The detector only chooses
among the languages the service can translate from, which is what `source: auto` and /detect need.

The model (about 90 MiB in memory) loads on first use, once per process, behind a lock; later
calls only read it, so any number of threads may detect at once.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier


class LanguageDetector:
    """Ranks candidate languages for a text: (code, confidence 0-100), best first.

    Every non-empty candidate list gets an answer, also for one word, digits only, or mixed
    languages: a text without any clue gets equal shares.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._full: Any = None  # LanguageIdentifier over every language py3langid knows
        self._restricted: dict[frozenset[str], Any] = {}  # the same, limited to a candidate set

    @property
    def loaded(self) -> bool:
        return self._full is not None

    def load(self) -> None:
        """Reads the model (about a second); idempotent and thread-safe."""
        with self._lock:
            if self._full is None:
                self._full = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    async def rank(self, text: str, candidates: list[str]) -> list[tuple[str, float]]:
        """`detect` for the event loop: the first load runs in a thread, so it stalls no other
        request."""
        if len(candidates) > 1 and not self.loaded:
            await asyncio.to_thread(self.load)
        return self.detect(text, candidates)

    def detect(self, text: str, candidates: list[str]) -> list[tuple[str, float]]:
        """Scores `candidates` for `text`; returns (code, confidence 0-100), best first.

        Codes py3langid does not know come last with confidence 0 (or share equally when no
        candidate is known).
        """
        if len(candidates) <= 1:  # nothing to choose: no need to load the model
            return [(lang, 100.0) for lang in candidates]
        identifier = self._identifier(frozenset(candidates))
        if identifier is None:
            share = round(100.0 / len(candidates), 1)
            return [(lang, share) for lang in sorted(candidates)]
        scores = dict(identifier.rank(text))
        ranked = sorted(candidates, key=lambda lang: (-scores.get(lang, 0.0), lang))
        return [(lang, round(100.0 * float(scores.get(lang, 0.0)), 1)) for lang in ranked]

    def _identifier(self, candidates: frozenset[str]) -> Any:
        """An identifier restricted to the known `candidates`; None when none is known."""
        if candidates in self._restricted:  # a few sets at most: one per target, and all sources
            return self._restricted[candidates]
        self.load()
        with self._lock:
            if candidates not in self._restricted:
                known = sorted(candidates & set(self._full.labels))
                restricted = None
                if known:
                    # Restricting renormalises over the candidates alone; a shallow copy shares
                    # the full model's arrays and gets its own (small) candidate columns.
                    restricted = copy.copy(self._full)
                    restricted.set_languages(known)
                self._restricted[candidates] = restricted
            return self._restricted[candidates]
