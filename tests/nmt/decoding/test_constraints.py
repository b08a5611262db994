import pytest
import torch

from nmt.decoding.constraints import ban_repeated_ngrams, resolve_max_len


def test_bigram_ban_blocks_only_the_completing_token():
    tokens = torch.tensor([[5, 6, 7, 5]])  # next after 5 would repeat (5, 6)
    log_probs = torch.zeros(1, 10)
    ban_repeated_ngrams(log_probs, tokens, 2)
    banned = (log_probs[0] == float("-inf")).nonzero().flatten().tolist()
    assert 6 in banned and all(t in (0, 6) for t in banned)


def test_unigram_ban_blocks_every_seen_token():
    log_probs = torch.zeros(2, 10)
    ban_repeated_ngrams(log_probs, torch.tensor([[4, 5, 9], [7, 7, 7]]), 1)
    assert set((log_probs[0] == float("-inf")).nonzero().flatten().tolist()) <= {0, 4, 5, 9}
    assert {4, 5, 9} <= set((log_probs[0] == float("-inf")).nonzero().flatten().tolist())
    assert log_probs[1, 7] == float("-inf") and log_probs[1, 4] == 0


def test_ngram_ban_needs_a_full_window():
    log_probs = torch.zeros(1, 10)
    ban_repeated_ngrams(log_probs, torch.tensor([[5, 6]]), 3)
    ban_repeated_ngrams(log_probs, torch.tensor([[5, 6]]), 0)
    assert (log_probs == 0).all()


def test_resolve_max_len():
    assert resolve_max_len(4, 3, torch.device("cpu")).tolist() == [4, 4, 4]
    assert resolve_max_len(torch.tensor([1, 2]), 2, torch.device("cpu")).tolist() == [1, 2]
    with pytest.raises(ValueError, match="shape"):
        resolve_max_len(torch.tensor([1, 2]), 3, torch.device("cpu"))
    with pytest.raises(ValueError, match=">= 0"):
        resolve_max_len(-1, 2, torch.device("cpu"))
