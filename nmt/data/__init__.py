"""Data: corpus reading and filtering, batching, and dataset preparation."""
