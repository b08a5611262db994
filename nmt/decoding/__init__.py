"""Decoding: greedy and batched beam search over a Seq2Seq model, one n-best contract for both."""
