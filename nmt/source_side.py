"""The source side of a model: how texts become model inputs, without the model.

Normalisation, SentencePiece and sentence planning (lines, sentences, and clauses of sentences
too long for the model) are all the Translator does before it decodes. They are kept here, apart
from the network, so that what a request will cost can be measured where the model is not
loaded: this module imports no torch, and a `SourceSide` pickles (its tokenizer as the
SentencePiece model's bytes), so the service's pricing process starts in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nmt.data.corpus import normalize
from nmt.text.plan import TextPlan, plan_text
from nmt.tokenization import Tokenizer


@dataclass(frozen=True)
class SourceSide:
    """The source tokenizer and the limits that decide how a text is cut.

    Attributes:
        tokenizer: the source SentencePiece model.
        lang: the source language (its sentence splitter).
        placeholders: placeholder tokens the model was trained with (protected spans).
        max_input_tokens: the longest input, in subwords, the model takes (its tag excluded).
        truncate: True with `decode.long_input: truncate` (over-long sentences are cut after
            encoding instead of split into clauses).
    """

    tokenizer: Tokenizer
    lang: str
    placeholders: int
    max_input_tokens: int
    truncate: bool = False

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Source subwords per text, after normalisation (what the limits count)."""
        return [len(ids) for ids in self.tokenizer.encode([normalize(t) for t in texts])]

    def plan(self, texts: Sequence[str], *, terms: Sequence[str] = (),
             glossary: Mapping[str, str] | None = None,
             encoded: dict[str, list[int]] | None = None) -> list[TextPlan]:
        """How each text is cut into sentences and model inputs (see `nmt.text.plan`).

        `encoded` collects the source ids of every string whose length was checked.
        """
        cache = {} if encoded is None else encoded

        def fits(text: str) -> bool:
            if self.truncate:
                return True  # cut to the limit after encoding, with a warning
            if text not in cache:
                cache[text] = self.tokenizer.encode([text])[0]
            return len(cache[text]) <= self.max_input_tokens

        return [plan_text(t, self.lang, placeholders=self.placeholders, fits=fits,
                          terms=terms, glossary=glossary) for t in texts]

    def count_units(self, texts: Sequence[str]) -> int:
        """How many model inputs `texts` become (sentences, clauses)."""
        return sum(1 for plan in self.plan(texts) for sentence in plan.sentences
                   for part in sentence.parts if not part.verbatim)
