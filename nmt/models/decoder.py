"""Models: the recurrent decoder, with or without attention, and its explicit state."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nmt.models.attention import build_attention
from nmt.models.encoder import EncoderOutput, make_rnn


@dataclass(frozen=True)
class DecoderState:
    hidden: Tensor  # (L, B, H)
    cell: Tensor | None  # (L, B, H), LSTM only
    input_feed: Tensor | None  # (B, H) previous attentional vector, input feeding only

    def select(self, indices: Tensor) -> DecoderState:
        """Reorders rows (beams) by `indices`, returning a new state."""
        return DecoderState(
            hidden=self.hidden.index_select(1, indices),
            cell=None if self.cell is None else self.cell.index_select(1, indices),
            input_feed=None
            if self.input_feed is None
            else self.input_feed.index_select(0, indices),
        )


class TiedProjection(nn.Module):
    """x @ weight.T with a weight another module owns (the output layer tied to the embedding).

    A module of its own, holding nothing, so that the kernel choice for a whole model
    (`nmt.models.kernels.use_fast_cpu_kernels`) reaches this product like every Linear layer.
    """

    def forward(self, x: Tensor, weight: Tensor) -> Tensor:
        """(..., I), (O, I) -> (..., O)."""
        return F.linear(x, weight)


class RNNDecoder(nn.Module):
    """Embeds the previous target token, runs the RNN, attends, and predicts the next token.

    With `attention="none"` this is the classic context-vector decoder: the encoder's summary
    initialises the state (via the bridge) and is fed again at every step (Cho et al., 2014).
    Without input feeding, training runs the RNN over the whole target in one call.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        emb_dim: int,
        hidden_dim: int,
        enc_dim: int,
        cell: str = "gru",
        num_layers: int = 1,
        attention: str = "bahdanau",
        attn_dim: int = 256,
        input_feeding: bool = False,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        tie_output: bool = False,
        embedding: nn.Embedding | None = None,
    ):
        super().__init__()
        self.embedding = embedding or nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.cell = cell
        self.input_feeding = input_feeding and attention != "none"
        self.attention = build_attention(
            attention, query_dim=hidden_dim, key_dim=enc_dim, attn_dim=attn_dim
        )
        extra = hidden_dim if self.input_feeding else (enc_dim if self.attention is None else 0)
        self.rnn = make_rnn(
            cell,
            input_size=emb_dim + extra,
            hidden_size=hidden_dim,
            num_layers=num_layers,
            dropout=dropout,
        )
        # The attentional (or context-conditioned) vector: tanh(W [rnn_out; context]).
        self.combine = nn.Linear(hidden_dim + enc_dim, hidden_dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        if tie_output:
            self.pre_output = (
                nn.Linear(hidden_dim, emb_dim, bias=False) if hidden_dim != emb_dim else None
            )
            self.output = None
        else:
            self.pre_output = None
            self.output = nn.Linear(hidden_dim, vocab_size, bias=False)
        self.tied_projection = TiedProjection()
        self.hidden_dim = hidden_dim

    def logits(self, attentional: Tensor) -> Tensor:
        """(..., H) -> (..., V)."""
        x = self.dropout(attentional)
        if self.pre_output is not None:
            x = self.pre_output(x)
        if self.output is not None:
            # Untied, or tied but given its own (int8) copy by `quantize_model`.
            return self.output(x)
        return self.tied_projection(x, self.embedding.weight)

    def _rnn(self, inputs: Tensor, state: DecoderState) -> tuple[Tensor, Tensor, Tensor | None]:
        if self.cell == "lstm":
            out, (h, c) = self.rnn(inputs, (state.hidden, state.cell))
            return out, h, c
        out, h = self.rnn(inputs, state.hidden)
        return out, h, None

    def _attend(self, rnn_out: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor | None]:
        """(B, T, H) -> attentional (B, T, H) and weights (B, T, S) or None."""
        if self.attention is None:
            context = enc.final.unsqueeze(1).expand(-1, rnn_out.size(1), -1)
            weights = None
        else:
            context, weights = self.attention(rnn_out, enc.proj_keys, enc.outputs, enc.mask)
        return self.combine(torch.cat([rnn_out, context], dim=-1)).tanh(), weights

    def forward(self, tgt_in: Tensor, state: DecoderState, enc: EncoderOutput) -> Tensor:
        """Teacher forcing over a whole target.

        Args:
            tgt_in: (B, T) BOS + target ids.

        Returns:
            (B, T, V) logits.
        """
        if self.input_feeding:
            steps = []
            for t in range(tgt_in.size(1)):
                attentional, state, _ = self.step(tgt_in[:, t], state, enc)
                steps.append(attentional)
            return self.logits(torch.stack(steps, dim=1))
        emb = self.emb_dropout(self.embedding(tgt_in))  # (B, T, E)
        if self.attention is None:
            emb = torch.cat([emb, enc.final.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)
        rnn_out, _, _ = self._rnn(emb, state)  # (B, T, H)
        attentional, _ = self._attend(rnn_out, enc)
        return self.logits(attentional)

    def step(
        self, prev_tokens: Tensor, state: DecoderState, enc: EncoderOutput
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoding step of R = B * K rows: the K beams of each of enc's B sentences, in
        consecutive rows (K = 1 for greedy search and training).

        The encoder output is not repeated per beam: the K rows of a sentence are its K queries
        against one copy of its keys and values, so a beam search never copies them K times.

        Args:
            prev_tokens: (R,) previous target ids.
            state: R rows.
            enc: B sentences.

        Returns:
            attentional vector (R, H), the next state, attention weights (R, S) or None.
        """
        rows, batch = prev_tokens.size(0), enc.mask.size(0)
        beams = rows // batch if batch else 1
        if rows != batch * beams:
            raise ValueError(f"{rows} decoder rows are not K beams of each of {batch} sentences")
        emb = self.emb_dropout(self.embedding(prev_tokens))  # (R, E)
        if self.input_feeding:
            assert state.input_feed is not None  # init_state makes one when input feeding
            emb = torch.cat([emb, state.input_feed], dim=-1)
        elif self.attention is None:
            final = enc.final if beams == 1 else enc.final.repeat_interleave(beams, dim=0)
            emb = torch.cat([emb, final], dim=-1)  # (R, E + D)
        rnn_out, h, c = self._rnn(emb.unsqueeze(1), state)  # (R, 1, H)
        # A sentence's K beams are its K queries (the T of `_attend`).
        attentional, weights = self._attend(rnn_out.reshape(batch, beams, self.hidden_dim), enc)
        attentional = attentional.reshape(rows, self.hidden_dim)  # (B, K, H) -> (R, H)
        next_state = DecoderState(
            hidden=h, cell=c, input_feed=attentional if self.input_feeding else None
        )
        if weights is not None:
            weights = weights.reshape(rows, weights.size(-1))  # (B, K, S) -> (R, S)
        return attentional, next_state, weights
