"""The clean-model gate: the trivial baseline, bootstrap intervals, tuned thresholds and each
rule that marks a clean model degenerate."""

from __future__ import annotations

import numpy as np
import pytest
from ecgarena import bootstrap, metrics
from ecgarena.gate import degenerate_reasons, gate, largest_prediction_share, trivial
from hypothesis import given, settings
from hypothesis import strategies as st

CLASSES = ("CD", "HYP", "MI", "NORM", "STTC")


def multilabel(n: int, seed: int, prevalence=(0.2, 0.1, 0.25, 0.45, 0.25)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, len(prevalence))) < np.asarray(prevalence)).astype(np.int64)


def test_trivial_multilabel_takes_the_best_constant_label_set():
    y_train = np.array([[0, 0, 0, 1, 0]] * 6 + [[1, 0, 0, 0, 1]] * 2)
    y = multilabel(400, 1)
    t = trivial(y_train, y, "multilabel", CLASSES)
    all_pos = np.mean([2 * p / (1 + p) for p in y.mean(0)])  # mean_c 2π_c/(1+π_c)
    assert t["macro_f1_candidates"]["every label positive"] == pytest.approx(all_pos)
    assert t["macro_f1"] == max(t["macro_f1_candidates"].values())
    assert t["macro_f1"] == pytest.approx(all_pos) and "every label positive" in t["predictor"]
    norm_only = t["macro_f1_candidates"]["{NORM} for every record"]
    assert norm_only == pytest.approx(2 * y[:, 3].mean() / (1 + y[:, 3].mean()) / 5)
    assert t["macro_auc"] == 0.5 and t["prevalence"]["NORM"] == pytest.approx(0.75)


def test_trivial_multiclass_is_the_majority_training_class():
    t = trivial(np.array([0, 1, 1, 2, 1]), np.array([1, 1, 0, 2]), "multiclass", ("a", "b", "c"))
    assert t["accuracy"] == 0.5 and "always b" in t["predictor"]
    assert t["macro_f1"] == pytest.approx((0 + 2 / 3 + 0) / 3)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 200))
def test_bootstrap_interval_contains_the_point_estimate_and_is_seeded(seed, n):
    y = multilabel(n, seed)
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=y.shape) + 1.5 * y
    adv = logits - 2 * y
    ci = bootstrap.intervals(logits, adv, y, "multilabel", seed=seed, n=200)
    clean = metrics.classification(logits, y, "multilabel", CLASSES)
    for key in ("macro_f1", "macro_auc", "accuracy"):
        lo, hi = ci["clean"][key]
        assert lo <= clean[key] + 1e-9 and clean[key] <= hi + 1e-9 and lo <= hi
    assert ci == bootstrap.intervals(logits, adv, y, "multilabel", seed=seed, n=200)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_every_resample_holds_both_outcomes_of_every_scored_class(seed):
    y = multilabel(40, seed, prevalence=(0.05, 0.5, 0.03, 0.9, 0.5))
    counts = bootstrap.resample_counts(y, 300, seed)
    assert (counts.sum(1) == 40).all()
    scored = y.any(0) & ~y.all(0)
    assert ((counts @ y[:, scored]) > 0).all() and ((counts @ (1 - y[:, scored])) > 0).all()


def test_weighted_auc_equals_the_auc_of_the_resampled_records():
    rng = np.random.default_rng(0)
    scores, labels = np.round(rng.normal(size=50), 1), rng.random(50) < 0.4
    counts = rng.integers(0, 3, (1, 50)).astype(float)
    expanded = np.repeat(np.arange(50), counts[0].astype(int))
    want = metrics.auroc(scores[expanded], labels[expanded])
    assert bootstrap.weighted_auc(scores, labels, counts)[0] == pytest.approx(want)


def test_tuned_thresholds_maximise_validation_f1():
    rng = np.random.default_rng(3)
    y = multilabel(300, 3)
    logits = rng.normal(size=y.shape) + 1.2 * y - 1.0  # calibrated low: 0.5 under-predicts
    cuts = metrics.tune_thresholds(logits, y)
    tuned = metrics.classification(logits, y, "multilabel", CLASSES, cuts)
    assert tuned["macro_f1_tuned"] >= tuned["macro_f1"]
    for c in range(len(cuts)):
        for other in np.linspace(-3, 3, 25):
            pred = (logits[:, c] > other).astype(int)
            assert metrics.f1_per_class(y[:, c : c + 1], pred[:, None], 1)[0] <= (
                tuned["per_class_f1_tuned"][CLASSES[c]] + 1e-9
            )


def _verdict(logits, y, y_train, task="multilabel"):
    cuts = metrics.tune_thresholds(logits, y) if task == "multilabel" else None
    clean = metrics.classification(logits, y, task, CLASSES, cuts)
    ci = bootstrap.intervals(logits, logits, y, task, cuts, n=300)
    return gate(clean, ci, trivial(y_train, y, task, CLASSES), logits, task)


def test_always_norm_is_degenerate_on_every_rule():
    y, y_train = multilabel(300, 0), multilabel(600, 1)
    logits = np.tile(np.array([-3.0, -3.0, -3.0, 3.0, -3.0]), (300, 1))
    logits += np.random.default_rng(0).normal(0, 1e-3, logits.shape)  # nearly constant scores
    verdict = _verdict(logits, y, y_train)
    assert verdict["degenerate"] and len(verdict["reasons"]) == 3
    assert verdict["largest_prediction_share"] == 1.0


def test_a_good_model_passes_the_gate():
    y, y_train = multilabel(300, 0), multilabel(600, 1)
    logits = np.random.default_rng(1).normal(size=y.shape) + 3.0 * (2 * y - 1)
    verdict = _verdict(logits, y, y_train)
    assert not verdict["degenerate"], verdict["reasons"]


def test_each_rule_alone():
    base = {"macro_f1": 0.45, "macro_auc": 0.80}
    ci = {"clean": {"macro_f1": [0.41, 0.49]}}
    t = {"macro_f1": 0.39}
    assert degenerate_reasons(base, ci, t, 0.5) == []
    assert (
        "trivial macro_f1"
        in degenerate_reasons(base, {"clean": {"macro_f1": [0.38, 0.5]}}, t, 0.5)[0]
    )
    assert "macro_auc 0.550 < 0.6" in degenerate_reasons({**base, "macro_auc": 0.55}, ci, t, 0.5)[0]
    assert "one predicted label set for 92%" in degenerate_reasons(base, ci, t, 0.92)[0]
    # a tuned F1 clear of trivial keeps the F1 rule quiet even if F1 at 0.5 is not
    both = {"clean": {"macro_f1": [0.30, 0.42], "macro_f1_tuned": [0.44, 0.55]}}
    assert degenerate_reasons({**base, "macro_f1_tuned": 0.5}, both, t, 0.5) == []


def test_largest_prediction_share_multiclass_and_multilabel():
    assert largest_prediction_share(np.array([0, 0, 1, 0])) == 0.75
    assert largest_prediction_share(np.array([[1, 0], [1, 0], [1, 1], [0, 0]])) == 0.5
    assert largest_prediction_share(np.array([-1, -1, -1, 2])) == 0.75  # abstaining counts too
