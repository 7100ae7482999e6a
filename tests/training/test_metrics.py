"""Metrics and the validation-chosen threshold."""

from __future__ import annotations

import math

import pytest

from training.metrics import choose_threshold, compute_metrics, missed_at_no_false_positive, roc_auc


def test_roc_auc_perfect_random_and_ties() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))


def test_confusion_matrix_and_rates() -> None:
    m = compute_metrics([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.6, 0.3, 0.9, 0.4], threshold=0.5)
    assert (m.tn, m.fp, m.fn, m.tp) == (3, 1, 1, 1)
    assert m.false_positive_rate == 0.25 and m.false_negative_rate == 0.5
    assert m.precision == 0.5 and m.recall == 0.5 and m.f1 == 0.5
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.to_dict()["confusion_matrix"] == {"tn": 3, "fp": 1, "fn": 1, "tp": 1}


def test_threshold_keeps_validation_false_positives_within_budget() -> None:
    labels = [0] * 100 + [1] * 10
    scores = [i / 100 for i in range(100)] + [0.95] * 10
    t = choose_threshold(labels, scores, max_fpr=0.0)
    assert t > 0.99 and compute_metrics(labels, scores, t).fp == 0
    t2 = choose_threshold(labels, scores, max_fpr=0.05)
    assert compute_metrics(labels, scores, t2).fp == 5
    assert choose_threshold([0, 1], [0.1, 0.9], max_fpr=0.0) == 0.5  # never below the floor


def test_missed_at_no_false_positive_counts_spam_at_or_below_the_top_ham() -> None:
    labels = [0, 0, 1, 1, 1, 1]
    scores = [0.2, 0.7, 0.1, 0.7, 0.71, 0.99]
    assert missed_at_no_false_positive(labels, scores) == 2  # 0.1, and 0.7 tied with a ham
    assert missed_at_no_false_positive([1, 1], [0.1, 0.9]) == 0  # no ham: nothing to avoid
    assert missed_at_no_false_positive([0, 1], [0.3, 0.3]) == 1
