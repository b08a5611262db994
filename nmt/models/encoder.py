"""Models: the recurrent encoder (tanh RNN, GRU or LSTM; optionally bidirectional)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# Callables, not type[nn.RNNBase]: RNNBase's own __init__ takes the mode first; theirs do not.
RNN_CLASSES: dict[str, Callable[..., nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU,
                                                      "lstm": nn.LSTM}


def make_rnn(
    cell: str,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    bidirectional: bool = False,
) -> nn.RNNBase:
    """torch's own RNN modules (cuDNN on CUDA); `rnn` is the Elman tanh RNN."""
    if cell not in RNN_CLASSES:
        raise ValueError(f"cell must be one of {sorted(RNN_CLASSES)}, got {cell!r}")
    kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    return RNN_CLASSES[cell](
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0,
        bidirectional=bidirectional,
        **kwargs,
    )


@dataclass(frozen=True)
class EncoderOutput:
    outputs: Tensor  # (B, S, D) top-layer states, D = hidden * directions
    mask: Tensor  # (B, S) bool, True at real tokens
    final: Tensor  # (B, D) top layer's last state (both directions): the context vector
    final_cell: Tensor | None  # (B, D) LSTM memory cell of the top layer, else None
    proj_keys: Tensor | None = None  # (B, S, A) keys projected once per batch for attention

    def select(self, indices: Tensor) -> EncoderOutput:
        """Rows in the order of `indices` (beam search repeats each sentence K times)."""
        return EncoderOutput(
            outputs=self.outputs.index_select(0, indices),
            mask=self.mask.index_select(0, indices),
            final=self.final.index_select(0, indices),
            final_cell=None
            if self.final_cell is None
            else self.final_cell.index_select(0, indices),
            proj_keys=None if self.proj_keys is None else self.proj_keys.index_select(0, indices),
        )


class RNNEncoder(nn.Module):
    def __init__(
        self,
        *,
        vocab_size: int,
        emb_dim: int,
        hidden_dim: int,
        cell: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        embedding: nn.Embedding | None = None,
    ):
        super().__init__()
        self.embedding = embedding or nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.rnn = make_rnn(
            cell,
            input_size=emb_dim,
            hidden_size=hidden_dim,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.out_dropout = nn.Dropout(dropout)
        self.cell = cell
        self.directions = 2 if bidirectional else 1
        self.output_dim = hidden_dim * self.directions

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encodes a padded batch.

        Args:
            src: (B, S) token ids, right-padded.
            src_lengths: (B,) true lengths, on the CPU.
        """
        emb = self.emb_dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(
            emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))
        hidden, cell = state if isinstance(state, tuple) else (state, None)
        return EncoderOutput(
            outputs=self.out_dropout(outputs),
            mask=src != 0,
            final=self._top_layer(hidden),
            final_cell=None if cell is None else self._top_layer(cell),
        )

    def _top_layer(self, state: Tensor) -> Tensor:
        """(L * dirs, B, H) -> (B, dirs * H): the top layer, directions concatenated."""
        top = state[-self.directions :]  # (dirs, B, H)
        return torch.cat(list(top), dim=-1)
