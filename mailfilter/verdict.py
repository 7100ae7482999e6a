"""A scored message's verdict: p(spam) against the threshold, with an optional unsure band."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Label = Literal["spam", "ham", "unsure"]


@dataclass(frozen=True)
class Verdict:
    """What the classifier concluded about one message."""

    score: float
    threshold: float
    label: Label
    model_id: str

    @property
    def is_spam(self) -> bool:
        """True only for a confident spam verdict; unsure mail is left alone."""
        return self.label == "spam"


def decide(score: float, threshold: float, model_id: str, unsure_band: float = 0.0) -> Verdict:
    """Turn p(spam) into a Verdict; scores within `unsure_band` of the threshold are unsure."""
    if unsure_band > 0 and abs(score - threshold) < unsure_band:
        label: Label = "unsure"
    elif score >= threshold:
        label = "spam"
    else:
        label = "ham"
    return Verdict(score=score, threshold=threshold, label=label, model_id=model_id)
