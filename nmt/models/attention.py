"""Models: attention over encoder states (Bahdanau's additive, Luong's dot and general)."""

from __future__ import annotations

from torch import Tensor, nn


class Attention(nn.Module):
    """Scores T queries against S keys at once; a decoding step is the case T = 1.

    Keys are projected once per batch by `project_keys`, not at every decoder step.
    """

    def project_keys(self, keys: Tensor) -> Tensor:
        """(B, S, D) encoder outputs -> (B, S, A) keys ready for `scores`."""
        raise NotImplementedError

    def scores(self, query: Tensor, proj_keys: Tensor) -> Tensor:
        """(B, T, H) queries, (B, S, A) keys -> (B, T, S) unnormalised scores."""
        raise NotImplementedError

    def forward(self, query: Tensor, proj_keys: Tensor, values: Tensor, mask: Tensor
                ) -> tuple[Tensor, Tensor]:
        """Attention weights and context vectors.

        Args:
            query: (B, T, H) decoder states.
            proj_keys: (B, S, A) from `project_keys`.
            values: (B, S, D) encoder outputs.
            mask: (B, S) bool, True at real tokens.

        Returns:
            context (B, T, D) and weights (B, T, S).
        """
        scores = self.scores(query, proj_keys)
        weights = scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(dim=-1)
        return weights @ values, weights


class BahdanauAttention(Attention):
    """score(q, k) = v . tanh(W_q q + W_k k)."""

    def __init__(self, *, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=False)
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.key_proj(keys)

    def scores(self, query: Tensor, proj_keys: Tensor) -> Tensor:
        q = self.query_proj(query)  # (B, T, A)
        return self.v(q.unsqueeze(2).add(proj_keys.unsqueeze(1)).tanh_()).squeeze(-1)  # (B, T, S)


class LuongAttention(Attention):
    """dot: score = q . k (needs equal sizes); general: score = q . W k."""

    def __init__(self, *, query_dim: int, key_dim: int, general: bool):
        super().__init__()
        if not general and query_dim != key_dim:
            raise ValueError(
                f"luong_dot needs decoder hidden size ({query_dim}) equal to encoder output size "
                f"({key_dim}); use luong_general or bahdanau"
            )
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False) if general else None

    def project_keys(self, keys: Tensor) -> Tensor:
        return keys if self.key_proj is None else self.key_proj(keys)

    def scores(self, query: Tensor, proj_keys: Tensor) -> Tensor:
        return query @ proj_keys.transpose(1, 2)


def build_attention(kind: str, *, query_dim: int, key_dim: int, attn_dim: int) -> Attention | None:
    if kind == "none":
        return None
    if kind == "bahdanau":
        return BahdanauAttention(query_dim=query_dim, key_dim=key_dim, attn_dim=attn_dim)
    if kind in ("luong_dot", "luong_general"):
        return LuongAttention(query_dim=query_dim, key_dim=key_dim, general=kind == "luong_general")
    raise ValueError(f"attention must be none, bahdanau, luong_dot or luong_general, got {kind!r}")
