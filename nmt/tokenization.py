"""Tokenization: SentencePiece subword (unigram, BPE) and character models with fixed special ids.

A `Tokenizer` holds the serialized SentencePiece model, so checkpoints and bundles carry it as
plain bytes and nothing has to be found on disk later.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
# SentencePiece encodes a list on a pool of threads it starts per call: ~60 us for one short
# sentence, where encoding it alone takes ~8 us. Below this many texts, one call per text is
# faster (a server encodes a few sentences per request, training data comes by the thousand).
BATCH_ENCODE_FROM = 64
SPECIAL_IDS = {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}


class TokenizerError(ValueError):
    """A SentencePiece model could not be trained or loaded."""


class Tokenizer:
    """Text <-> subword ids for one language (or both, with a joint vocabulary)."""

    def __init__(self, model_proto: bytes, *, origin: str = "<bytes>"):
        self.model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(self.model_proto)
        except Exception as err:  # sentencepiece raises RuntimeError/OSError with C++ messages
            raise TokenizerError(f"{origin}: not a valid SentencePiece model ({err})") from err
        expected = {PAD_ID: "pad", UNK_ID: "unk", BOS_ID: "bos", EOS_ID: "eos"}
        got = {
            PAD_ID: self._sp.pad_id(),
            UNK_ID: self._sp.unk_id(),
            BOS_ID: self._sp.bos_id(),
            EOS_ID: self._sp.eos_id(),
        }
        if any(got[i] != i for i in expected):
            raise TokenizerError(
                f"{origin}: special ids must be pad=0 unk=1 bos=2 eos=3, got "
                + " ".join(f"{expected[i]}={got[i]}" for i in expected)
            )

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise TokenizerError(f"cannot read SentencePiece model {path}: {err.strerror}") from err
        return cls(data, origin=str(path))

    def __reduce__(self) -> tuple[type[Tokenizer], tuple[bytes]]:
        # Pickled as the model's bytes (the SentencePiece processor itself does not pickle).
        return (Tokenizer, (self.model_proto,))

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.model_proto)

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if len(texts) < BATCH_ENCODE_FROM:
            return [self._sp.encode(text, out_type=int) for text in texts]
        return self._sp.encode(list(texts), out_type=int)

    def encode_pieces(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.decode([i for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID)])

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        return self._sp.decode_pieces(list(pieces))

    def id_to_piece(self, i: int) -> str:
        return self._sp.id_to_piece(i)

    def piece_to_id(self, piece: str) -> int | None:
        """The id of a whole piece (a domain tag, a placeholder); None if it is not one."""
        i = self._sp.piece_to_id(piece)
        return None if i == UNK_ID and piece != self._sp.id_to_piece(UNK_ID) else i


def train_tokenizer(
    sentences: Iterable[str],
    *,
    model_type: str = "unigram",
    vocab_size: int = 8000,
    character_coverage: float = 1.0,
    seed_sentencepiece_size: int = 1_000_000,
    byte_fallback: bool = False,
    user_symbols: Sequence[str] = (),
) -> Tokenizer:
    """Trains a SentencePiece model in memory.

    Args:
        sentences: normalised training text, one sentence each.
        model_type: "unigram", "bpe" or "char".
        vocab_size: target size; an upper bound (small corpora get fewer pieces, not an error).
        byte_fallback: characters outside the vocabulary become UTF-8 byte pieces, not <unk>.
        user_symbols: strings that are always one piece (domain tags, placeholders).
    """
    buffer = io.BytesIO()
    sentences = [s for s in sentences if s]
    if not sentences:
        raise TokenizerError("cannot train a SentencePiece model on no text")
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=buffer,
            model_type=model_type,
            vocab_size=vocab_size,
            character_coverage=character_coverage,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            hard_vocab_limit=False,
            input_sentence_size=2_000_000,
            shuffle_input_sentence=True,
            seed_sentencepiece_size=seed_sentencepiece_size,
            num_threads=2,
            minloglevel=2,
            byte_fallback=byte_fallback,
            user_defined_symbols=list(user_symbols),
        )
    except RuntimeError as err:
        raise TokenizerError(f"SentencePiece training failed: {err}") from err
    return Tokenizer(buffer.getvalue(), origin="<trained>")
