"""pntk.train.learned: the did-it-learn decision on synthetic accuracies (chance, near chance, learned, many
classes)."""
from __future__ import annotations

import math

import pytest

from pntk.train.learned import chance_accuracy, did_learn, learned_threshold, learning_verdict


@pytest.mark.parametrize("num_classes", [2, 10, 100])
def test_chance_accuracy_is_not_learned(num_classes):
    chance = 1 / num_classes
    assert not did_learn(chance, num_classes)
    assert not did_learn(chance, num_classes, n_test=10_000)
    assert not did_learn(0.0, num_classes)


def test_the_stuck_convnet_of_issue_13_is_not_learned():
    # ConvNet-8 under PyTorch's default init: 0.100-0.102 on the 450 digits test images, every epoch.
    for acc in (0.100, 0.102, 0.113):
        assert not did_learn(acc, 10, n_test=450)


@pytest.mark.parametrize("acc, learned", [(0.12, False), (0.14, False), (0.16, True), (0.5, True), (0.97, True)])
def test_ten_classes_near_chance_and_learned(acc, learned):
    assert did_learn(acc, 10, n_test=450) is learned


def test_ten_classes_threshold_is_the_larger_of_the_two_margins():
    # 450 examples: 3σ of chance = 3·sqrt(0.09/450) = 0.0424 < the practical 0.05·0.9 = 0.045
    assert learned_threshold(0.1, 450) == pytest.approx(0.145)
    # 100 examples: 3σ = 0.09 dominates
    assert learned_threshold(0.1, 100) == pytest.approx(0.19)
    assert not did_learn(0.18, 10, n_test=100) and did_learn(0.18, 10, n_test=450)


def test_large_test_set_does_not_call_a_sliver_above_chance_learned():
    # 10,000 examples make 0.11 statistically above 0.1 (3σ = 0.009) but it is still near chance.
    assert not did_learn(0.11, 10, n_test=10_000)
    assert did_learn(0.15, 10, n_test=10_000)


def test_hundred_classes_uses_one_and_a_half_times_chance():
    assert learned_threshold(0.01) == pytest.approx(0.015)
    assert learned_threshold(0.01, 10_000) == pytest.approx(0.015)  # 3σ = 0.00298 is smaller
    assert not did_learn(0.012, 100, n_test=10_000)
    assert did_learn(0.05, 100, n_test=10_000)  # 5× chance on CIFAR-100 is learning, if little
    assert did_learn(0.03, 100, n_test=10_000)
    assert not did_learn(0.03, 100, n_test=200)  # ... but 200 examples cannot tell 0.03 from 0.01 (3σ = 0.021)


def test_two_classes():
    assert learned_threshold(0.5) == pytest.approx(0.525)
    assert not did_learn(0.55, 2, n_test=450)  # 3σ = 0.0707 above 0.5
    assert did_learn(0.6, 2, n_test=450)


def test_majority_class_is_the_chance_level_of_imbalanced_labels():
    labels = [0] * 80 + [1] * 10 + [2] * 10
    assert chance_accuracy(3, labels) == pytest.approx(0.8)
    assert chance_accuracy(3) == pytest.approx(1 / 3)
    # always predicting class 0 scores 0.8: far above 1/3, but no learning
    assert did_learn(0.8, 3, n_test=100)
    assert not did_learn(0.8, 3, n_test=100, chance=chance_accuracy(3, labels))
    assert did_learn(0.99, 3, n_test=100, chance=chance_accuracy(3, labels))


def test_nan_accuracy_is_not_learned():
    assert not did_learn(math.nan, 10, n_test=450)


def test_verdict_records_the_numbers_behind_the_decision():
    labels = [i % 10 for i in range(450)]
    v = learning_verdict(0.5, 10, labels)
    assert v == {"learned": True, "test_acc": 0.5, "chance_acc": pytest.approx(45 / 450),
                 "learned_threshold": pytest.approx(0.145), "n_test": 450}
    assert learning_verdict(0.101, 10, labels)["learned"] is False


@pytest.mark.parametrize("call, key", [
    (lambda: did_learn(0.5, 1), "num_classes"),
    (lambda: did_learn(1.5, 10), "test_acc"),
    (lambda: did_learn(-0.1, 10), "test_acc"),
    (lambda: did_learn(0.5, 10, chance=0.0), "chance"),
    (lambda: learned_threshold(0.1, -5), "n_test"),
])
def test_bad_input_names_the_argument(call, key):
    with pytest.raises(ValueError, match=key):
        call()
