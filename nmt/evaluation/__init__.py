"""Evaluation: sacrebleu metrics with confidence intervals and significance, and reports."""
