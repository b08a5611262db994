"""nmt: recurrent sequence-to-sequence machine translation."""

__version__ = "0.1.0"
