"""Language models: the recurrent LM (embedding, tanh RNN/GRU/LSTM, tied output) and its state."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nmt.lm.config import LMModelConfig
from nmt.models.encoder import make_rnn


@dataclass(frozen=True)
class LMState:
    hidden: Tensor  # (L, B, H)
    cell: Tensor | None  # (L, B, H), LSTM only

    def select(self, indices: Tensor) -> LMState:
        """Rows in the order of `indices` (beam reordering, dropping finished rows)."""
        return LMState(
            hidden=self.hidden.index_select(1, indices),
            cell=None if self.cell is None else self.cell.index_select(1, indices),
        )

    def detach(self) -> LMState:
        """The same values cut from the graph: TBPTT stops gradients at window boundaries."""
        return LMState(self.hidden.detach(), None if self.cell is None else self.cell.detach())


class RecurrentLM(nn.Module):
    """p(x_t | x_<t) from a recurrent state; pure: the caller carries the state."""

    def __init__(self, *, vocab_size: int, emb_dim: int, hidden_dim: int, cell: str = "lstm",
                 num_layers: int = 1, dropout: float = 0.0, tie_output: bool = True):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.rnn = make_rnn(cell, input_size=emb_dim, hidden_size=hidden_dim,
                            num_layers=num_layers, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.cell = cell
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        if tie_output:
            # Tying needs the output in embedding space; project first when sizes differ.
            self.pre_output = (nn.Linear(hidden_dim, emb_dim, bias=False)
                               if hidden_dim != emb_dim else None)
            self.output = None
        else:
            self.pre_output = None
            self.output = nn.Linear(hidden_dim, vocab_size, bias=False)
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LMState:
        zeros = torch.zeros(self.num_layers, batch_size, self.hidden_dim, device=device)
        return LMState(hidden=zeros, cell=zeros.clone() if self.cell == "lstm" else None)

    def logits(self, outputs: Tensor) -> Tensor:
        """(..., H) -> (..., V)."""
        x = self.dropout(outputs)
        if self.output is not None:
            return self.output(x) + self.output_bias
        if self.pre_output is not None:
            x = self.pre_output(x)
        return x @ self.embedding.weight.t() + self.output_bias

    def forward(self, tokens: Tensor, state: LMState | None = None) -> tuple[Tensor, LMState]:
        """Runs over a window.

        Args:
            tokens: (B, T) input ids.
            state: the state after the previous window; None starts from zeros.

        Returns:
            logits (B, T, V) for the next token at every position, and the state after the window.
        """
        if state is None:
            state = self.initial_state(tokens.size(0), tokens.device)
        emb = self.dropout(self.embedding(tokens))  # (B, T, E)
        if self.cell == "lstm":
            out, (h, c) = self.rnn(emb, (state.hidden, state.cell))
        else:
            out, h = self.rnn(emb, state.hidden)
            c = None
        return self.logits(out), LMState(hidden=h, cell=c)

    def step(self, prev_tokens: Tensor, state: LMState) -> tuple[Tensor, LMState]:
        """(B,) previous ids -> log-probs (B, V) float32 and the next state."""
        logits, state = self(prev_tokens[:, None], state)
        return logits[:, 0].float().log_softmax(dim=-1), state


def build_lm(cfg: LMModelConfig, *, vocab_size: int) -> RecurrentLM:
    model = RecurrentLM(vocab_size=vocab_size, emb_dim=cfg.emb_dim, hidden_dim=cfg.hidden,
                        cell=cfg.cell, num_layers=cfg.layers, dropout=cfg.dropout,
                        tie_output=cfg.tie_output)
    _init_weights(model)
    return model


def _init_weights(model: RecurrentLM) -> None:
    """Orthogonal recurrent matrices, scaled-normal embeddings, LSTM forget-gate bias 1."""
    for name, param in model.named_parameters():
        if "weight_hh" in name:
            for chunk in param.data.chunk(param.size(0) // param.size(1), dim=0):
                nn.init.orthogonal_(chunk)
        elif name == "embedding.weight":
            nn.init.normal_(param.data, std=param.size(1) ** -0.5)
        elif param.dim() > 1:
            nn.init.xavier_uniform_(param.data)
        else:
            nn.init.zeros_(param.data)
    if model.cell == "lstm":
        # Gates are ordered (input, forget, cell, output); an open forget gate lets the memory
        # (and its gradient) last from the start (Jozefowicz et al., 2015).
        h = model.hidden_dim
        for name, param in model.rnn.named_parameters():
            if name.startswith("bias_ih"):
                param.data[h : 2 * h] = 1.0
