"""Corpus readers: each yields `Example`s with the text the model reads at run time."""

from training.corpora.example import HAM, LABELS, SPAM, Example

__all__ = ["HAM", "LABELS", "SPAM", "Example"]
