"""Language models: sampling text with temperature and top-k, reproducible with a seed."""

from __future__ import annotations

import torch

from nmt.lm.model import RecurrentLM
from nmt.lm.vocab import Vocab


@torch.inference_mode()
def sample(model: RecurrentLM, vocab: Vocab, *, prompt: str = "", length: int = 200,
           temperature: float = 1.0, top_k: int = 0, seed: int | None = None,
           num_samples: int = 1) -> list[str]:
    """Continues `prompt` (read as the start of a line) by `length` sampled tokens.

    Args:
        temperature: > 0; below 1 sharpens the distribution. 0 means greedy (argmax).
        top_k: sample only among the k most likely tokens (0: all).
        seed: for a private generator; the global RNG is not touched.
        num_samples: independent continuations, sampled together as a batch.

    Returns:
        The prompt followed by each continuation (line separators shown as newlines).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    prompt_ids = vocab.encode(prompt)
    context = [vocab.separator_id, *prompt_ids]
    inputs = torch.tensor([context] * num_samples, device=device)  # (B, P)
    logits, state = model(inputs)
    last = logits[:, -1].float()  # (B, V)
    out: list[list[int]] = [[] for _ in range(num_samples)]
    for _ in range(length):
        nxt = _draw(last, temperature, top_k, generator)  # (B,)
        for row, token in zip(out, nxt.tolist(), strict=True):
            row.append(token)
        logits, state = model(nxt[:, None], state)
        last = logits[:, 0].float()
    if vocab.kind == "spm":
        # Subwords carry their own leading spaces: decode prompt and continuation together.
        return [vocab.decode(prompt_ids + row) for row in out]
    return [prompt + vocab.decode(row) for row in out]


def _draw(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator
          ) -> torch.Tensor:
    """(B, V) logits -> (B,) ids."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
