"""Reliability tools: API fuzzing, load and soak, training under kill -9 (see RELIABILITY.md)."""
