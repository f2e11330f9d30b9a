"""Did a network learn? One decision, shared by training, tables, figures and the report.

A network that did not learn (signal lost with depth, a learning rate that keeps it bouncing, labels
that do not match the inputs) still yields checkpoints, kernels and regressions that look complete.
`did_learn` names such a run so that every artefact built on it can say so.

Rule: a test accuracy counts as learned when it exceeds the chance level by a margin that is both

* statistically clear: 3 binomial standard deviations of a chance-level classifier on ``n_test``
  examples, sqrt(p(1-p)/n) with p the chance level (one-sided false-alarm rate ≈ 0.13 %), and
* practically meaningful: the smaller of half the chance level and a twentieth of the chance-level
  error, i.e. 1.5 × chance for more than 11 classes (100 classes: 0.015) and chance + 0.05 (1 - chance)
  for fewer (10 classes: 0.145, 2 classes: 0.525), so that a huge test set does not call 0.11 on
  10 classes learned.

The chance level is the accuracy of the best constant guess: the majority class's share of the test
labels when they are known, else 1 / num_classes.

This module is pure Python (no torch) so that tables and the report can import it cheaply.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Z_MARGIN = 3.0  # binomial standard deviations above chance (one-sided p ≈ 0.0013)
RELATIVE_MARGIN = 0.5  # fraction of the chance level (binding for > 11 classes)
ERROR_MARGIN = 0.05  # fraction of the chance-level error (binding for <= 11 classes)


def chance_accuracy(num_classes: int, labels: Sequence[int] | None = None) -> float:
    """Accuracy of the best constant prediction: the majority share of ``labels`` if given, else 1/O."""
    if int(num_classes) < 2:
        raise ValueError(f"num_classes: a classifier needs at least 2 classes, got {num_classes}")
    if labels is None or len(labels) == 0:
        return 1.0 / int(num_classes)
    return max(Counter(int(y) for y in labels).values()) / len(labels)


def learned_threshold(chance: float, n_test: int | None = None) -> float:
    """Smallest test accuracy that counts as learned for a chance level and test-set size (module doc)."""
    if not 0.0 < chance <= 1.0:
        raise ValueError(f"chance: expected a chance accuracy in (0, 1], got {chance}")
    practical = chance + min(RELATIVE_MARGIN * chance, ERROR_MARGIN * (1.0 - chance))
    if not n_test:
        return practical
    if n_test < 0:
        raise ValueError(f"n_test: expected the number of test examples (>= 0), got {n_test}")
    statistical = chance + Z_MARGIN * math.sqrt(chance * (1.0 - chance) / n_test)
    return max(practical, statistical)


def did_learn(test_acc: float, num_classes: int, *, n_test: int | None = None,
              chance: float | None = None) -> bool:
    """True when ``test_acc`` is clearly above chance (see the module doc for the rule).

    test_acc     accuracy in [0, 1] on the test set; NaN (no evaluation, diverged) counts as not learned
    num_classes  O, the number of classes (>= 2)
    n_test       test-set size, for the binomial margin; None uses the practical margin alone
    chance       chance accuracy (e.g. `chance_accuracy(O, y_test)`); None means 1 / num_classes
    """
    chance = chance_accuracy(num_classes) if chance is None else float(chance)
    threshold = learned_threshold(chance, n_test)
    test_acc = float(test_acc)
    if math.isnan(test_acc):
        return False
    if not 0.0 <= test_acc <= 1.0:
        raise ValueError(f"test_acc: expected an accuracy in [0, 1], got {test_acc}")
    return test_acc >= threshold


def learning_verdict(test_acc: float, num_classes: int, test_labels: Sequence[int]) -> dict:
    """What a run records about a test accuracy: {learned, test_acc, chance_acc, learned_threshold, n_test}."""
    chance = chance_accuracy(num_classes, test_labels)
    n_test = len(test_labels)
    return {"learned": did_learn(test_acc, num_classes, n_test=n_test, chance=chance), "test_acc": float(test_acc),
            "chance_acc": chance, "learned_threshold": learned_threshold(chance, n_test), "n_test": n_test}
