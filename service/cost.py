"""Service: the cost model: what a request will make the model do, refused before any work starts.

Characters do not measure work. NFKC turns one U+FDFA into 18 characters (5,000 of them are
30,002 subwords), and one letter repeated 5,000 times is 5,000 subwords. So the limits count what
the model will do, with the model's own tokenizer and sentence splitter:

* source subwords, after normalisation, per text (NMT_MAX_TEXT_TOKENS) and per request
  (NMT_MAX_REQUEST_TOKENS);
* model inputs per request (NMT_MAX_REQUEST_UNITS): the sentences, and the clauses of sentences
  too long for the model, that the texts become (format html: those of the texts' blocks);
* decoding steps per request (NMT_MAX_DECODE_STEPS): over the inputs, the output length cap
  (decode.max_len_a x source subwords + max_len_b, at least min_len + 1) times the beam width,
  i.e. the hypothesis extensions the decoder may make. The n-best list costs nothing beyond its
  beam (the service always decodes n-best with a beam of at least n).

Each limit is checked before the next is measured, so sentence planning (the slow part: cutting a
3,000-subword run without punctuation into clauses takes a quarter of a second) only sees texts
within the token limits.

Where measuring runs (service/pricing.py): a request of under `INLINE_CHARS` characters is
measured on the event loop (well under a millisecond; a hop elsewhere would cost more). A longer
one goes to the pricing process when the service has model workers, else to the one pricing
thread (`_PRICER`): planning is Python and holds the GIL, so there the event loop competes with
at most one pricing thread for it. Either way long requests take turns, and one whose client has
gone by its turn is not measured (499).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from nmt.translator import TranslationModel
from service.errors import ApiError
from service.metrics import CLIENT_CLOSED
from service.pricing import Measure, ModelPricing, measure
from service.request_scope import current_gone
from service.settings import ServiceSettings

COST_STATUS = 413  # the request is well-formed but more than this server does for one request
INLINE_CHARS = 2000  # requests shorter than this are priced on the event loop
_PRICER = ThreadPoolExecutor(1, thread_name_prefix="nmt-pricing")


class RequestBudget:
    """One request's cost limits, charged per model call (a LibreTranslate request with source
    `auto` translates each detected language with its own model, all within one budget).

    Args:
        settings: the limits.
        field: the texts' field, for messages ("texts", "q").
        n_texts: texts in the request; a lone text is named without an index.
        prefix: put before every message ("Invalid request: " for LibreTranslate).
    """

    def __init__(self, settings: ServiceSettings, *, field: str, n_texts: int, prefix: str = ""):
        self.settings = settings
        self.field = field
        self.n_texts = n_texts
        self.prefix = prefix
        self.tokens = 0
        self.units = 0
        self.steps = 0

    async def charge(self, translator: TranslationModel, texts: Sequence[str], *,
                     indices: Sequence[int], fmt: str, beam_size: int | None,
                     on_gone: Callable[[], None] | None = None,
                     pricing: ModelPricing | None = None) -> list[int]:
        """Prices `texts` (the request's texts at `indices`) for `translator` and adds them to
        the budget; returns each text's source subwords.

        Args:
            beam_size: the beam the texts are decoded with; None: the model's default.
            on_gone: called when the client hung up before its request was priced (the
                model's batcher counts it as a rejection, reason client_gone).
            pricing: the pricing process, for this model, that measures long requests; None:
                the pricing thread does.

        Raises:
            ApiError: 413 naming the field, the limit's setting and its value; 499 when the
                client hung up before a long request's turn came.
        """
        texts, indices = list(texts), list(indices)
        limits = {"max_text_tokens": self.settings.max_text_tokens,
                  "max_total_tokens": self.settings.max_request_tokens - self.tokens}
        if sum(len(t) for t in texts) < INLINE_CHARS:
            return self._charge(translator, measure(translator, texts, fmt, **limits), indices,
                                beam_size)
        gone = current_gone.get()

        def hung_up() -> bool:
            return gone is not None and gone.is_set()

        found: Measure | None
        if pricing is not None:
            found = await pricing.measure(texts, fmt, skip=hung_up, **limits)
        else:
            def measure_here() -> Measure | None:
                return None if hung_up() else measure(translator, texts, fmt, **limits)

            found = await asyncio.get_running_loop().run_in_executor(_PRICER, measure_here)
        if found is None:  # hung up while waiting for its turn
            if on_gone is not None:
                on_gone()
            raise ApiError(CLIENT_CLOSED, "the client closed the connection")
        return self._charge(translator, found, indices, beam_size)

    def _charge(self, translator: TranslationModel, found: Measure, indices: list[int],
                beam_size: int | None) -> list[int]:
        s = self.settings
        tokens = found.tokens
        for i, n in zip(indices, tokens, strict=True):
            if n > s.max_text_tokens:
                where = f"{self.field}[{i}]" if self.n_texts > 1 else self.field
                self._refuse(f"{where}: {n} source subwords exceed "
                             f"NMT_MAX_TEXT_TOKENS={s.max_text_tokens}")
        self.tokens += sum(tokens)
        if self.tokens > s.max_request_tokens:
            self._refuse(f"{self.field}: {self.tokens} source subwords exceed "
                         f"NMT_MAX_REQUEST_TOKENS={s.max_request_tokens} per request")
        assert found.units is not None  # measured: the subwords were within both limits
        units = found.units
        self.units += units
        if self.units > s.max_request_units:
            self._refuse(f"{self.field}: {self.units} model inputs (sentences and clauses) "
                         f"exceed NMT_MAX_REQUEST_UNITS={s.max_request_units} per request")
        dec = translator.config.decode
        beam = dec.beam_size if beam_size is None else beam_size
        prefix = 1 if translator.domains else 0  # the domain tag is one more source position
        # Per input: max(a * (subwords + prefix) + b, min_len + 1) <= a * (...) + max(b, ...).
        cap = math.ceil(dec.max_len_a * (sum(tokens) + prefix * units)
                        + units * max(dec.max_len_b, dec.min_len + 1))
        self.steps += cap * beam
        if self.steps > s.max_decode_steps:
            self._refuse(f"{self.field}: {self.steps} decoding steps (output length caps x beam "
                         f"{beam}) exceed NMT_MAX_DECODE_STEPS={s.max_decode_steps} per request; "
                         "send less text or use a smaller beam")
        return tokens

    def _refuse(self, message: str) -> None:
        raise ApiError(COST_STATUS, self.prefix + message)
