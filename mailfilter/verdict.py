"""A scored message's verdict: p(spam) against the threshold, with an optional unsure band;
mail from a welcomed sender (`mailfilter.welcomelist`) is ham whatever its score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mailfilter.welcomelist import welcomed_sender

if TYPE_CHECKING:
    from mailfilter.settings import Settings

Label = Literal["spam", "ham", "unsure"]


@dataclass(frozen=True)
class Verdict:
    """What the classifier concluded about one message."""

    score: float
    threshold: float
    label: Label
    model_id: str
    welcomed: bool = False  # the sender is on the welcomelist: ham whatever the score

    @property
    def is_spam(self) -> bool:
        """True only for a confident spam verdict; unsure mail is left alone."""
        return self.label == "spam"


def decide(
    score: float, threshold: float, model_id: str, unsure_band: float = 0.0,
    welcomed: bool = False,
) -> Verdict:
    """Turn p(spam) into a Verdict; scores within `unsure_band` of the threshold are unsure, and
    a welcomed sender's mail is ham."""
    if welcomed:
        label: Label = "ham"
    elif unsure_band > 0 and abs(score - threshold) < unsure_band:
        label = "unsure"
    elif score >= threshold:
        label = "spam"
    else:
        label = "ham"
    return Verdict(score=score, threshold=threshold, label=label, model_id=model_id,
                   welcomed=welcomed)


def threshold_of(settings: Settings, model_threshold: float) -> float:
    """The threshold in force: the user's `threshold` if set, else the model's own."""
    return settings.threshold if settings.threshold is not None else model_threshold


def judge(
    raw: bytes, score: float, settings: Settings, model_threshold: float, model_id: str,
) -> Verdict:
    """One scored message's verdict under the user's settings: threshold, unsure band and
    welcomelist, the same for the daemon's socket and `mailfilter filter`."""
    welcomed = welcomed_sender(raw, settings.welcomelist_from) is not None
    return decide(score, threshold_of(settings, model_threshold), model_id,
                  settings.unsure_band, welcomed)
