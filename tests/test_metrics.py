"""Metrics against hand-computed values and their invariants."""

from __future__ import annotations

import numpy as np
import pytest
from ecgarena import metrics
from ecgarena.perturbation_stats import perturbation_stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


def test_multiclass_accuracy_and_f1():
    y = np.array([0, 0, 1, 2])
    logits = np.eye(3)[[0, 1, 1, 2]]
    m = metrics.classification(logits, y, "multiclass", ("a", "b", "c"))
    assert m["accuracy"] == 0.75
    # class a: tp1 fn1 fp0 → 2/3; b: tp1 fp1 → 2/3; c: 1
    assert m["per_class_f1"] == pytest.approx({"a": 2 / 3, "b": 2 / 3, "c": 1.0})
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_abstaining_decisions_count_wrong_and_auc_stays_on_the_logits():
    logits = np.array([[2.0, 0], [0, 2], [2, 0], [0, 2]])
    y = np.array([0, 1, 1, 0])
    pred = np.array([0, metrics.ABSTAIN, 1, metrics.ABSTAIN])
    m = metrics.classification(logits, y, "multiclass", ("a", "b"), pred=pred)
    assert m["accuracy"] == 0.5 and m["abstain_rate"] == 0.5
    # class a: tp 1, 2 true, 1 predicted → 2/3; class b: tp 1, 2 true, 1 predicted → 2/3
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert (
        m["macro_auc"] == metrics.classification(logits, y, "multiclass", ("a", "b"))["macro_auc"]
    )
    ml = metrics.classification(
        np.zeros((2, 2)),
        np.array([[1, 0], [0, 1]]),
        "multilabel",
        ("a", "b"),
        pred=np.array([[1, metrics.ABSTAIN], [metrics.ABSTAIN, 1]]),
    )
    # an undecided label is wrong either way: record 1 gains a false b, record 2 a false a
    assert ml["accuracy"] == 0.0 and ml["abstain_rate"] == 1.0
    assert ml["macro_f1"] == pytest.approx(2 / 3)
    fool = metrics.fooling(logits, logits, y, "multiclass", (pred, np.array([1, 1, 1, 0])))
    assert fool["n_correct_clean"] == 2 and fool["fooling_rate"] == 0.5
    moved = metrics.targets(logits, logits, "multiclass", ("a", "b"), (pred, np.full(4, -1)))
    assert moved["n_changed"] == 2 and moved["abstained"] == 2 and moved["top_class"] is None


def test_auroc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    s, lab = rng.normal(size=50), rng.integers(0, 2, 50)
    pos, neg = s[lab == 1], s[lab == 0]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert metrics.auroc(s, lab) == pytest.approx(pairs)
    assert np.isnan(metrics.auroc(s, np.ones(50)))


def test_multilabel_metrics_skip_absent_classes():
    y = np.array([[1, 0], [0, 0], [1, 0]], np.float32)
    logits = np.array([[2.0, -1], [-2, -1], [1, -3]])
    m = metrics.classification(logits, y, "multilabel", ("x", "y"))
    assert m["macro_auc"] == 1.0 and m["auc_classes"] == 1
    assert m["accuracy"] == 1.0


def test_fooling_rate_counts_only_correct_records():
    y = np.array([0, 1, 1, 0])
    clean = np.eye(2)[[0, 1, 0, 0]]  # records 0,1,3 correct
    adv = np.eye(2)[[1, 1, 1, 0]]  # record 0 flips; record 2 (wrong) flips too
    f = metrics.fooling(clean, adv, y, "multiclass")
    assert f["fooling_rate"] == pytest.approx(1 / 3)
    assert f["flip_rate"] == pytest.approx(2 / 4)
    assert metrics.fooling(clean, clean, y, "multiclass")["fooling_rate"] == 0.0


@settings(max_examples=200)
@given(st.integers(0, 10_000))
def test_zero_perturbation_fools_nobody(seed):
    rng = np.random.default_rng(seed)
    logits, y = rng.normal(size=(20, 5)), rng.integers(0, 2, (20, 5)).astype(np.float32)
    f = metrics.fooling(logits, logits, y, "multilabel")
    assert f["flip_rate"] == 0.0 and (np.isnan(f["fooling_rate"]) or f["fooling_rate"] == 0.0)


def test_perturbation_stats():
    x = np.ones((2, 2, 100), np.float32)
    d = np.zeros_like(x)
    d[:, 1] = 0.1
    p = perturbation_stats(x, d, 100.0, 15.0)
    assert p["linf_mv"] == pytest.approx(0.1)
    assert p["per_lead_max_mv"] == pytest.approx([0.0, 0.1])
    assert p["l2_mv"] == pytest.approx(0.1 * np.sqrt(100), rel=1e-5)
    assert p["snr_db"] == pytest.approx(10 * np.log10(200 / 1.0), rel=1e-4)
    assert p["energy_above_cutoff"] == pytest.approx(0.0, abs=1e-6)  # Hann leakage only


grids = st.lists(st.floats(0.001, 1.0), min_size=1, max_size=6, unique=True).map(
    lambda e: [0.0, *sorted(e)]
)


@settings(max_examples=200, deadline=None)
@given(eps=grids, data=st.data())
def test_robust_score_invariants(eps, data):
    """METHODS.md §10: in [0, 1]; a flat curve gives the clean score; a curve never above
    clean gives ≤ clean; monotone in each point; independent of the ε unit."""
    values = data.draw(st.lists(st.floats(0, 1), min_size=len(eps), max_size=len(eps)))
    score = metrics.robust_score(eps, values)
    assert 0 <= score <= 1
    assert metrics.robust_score(eps, [values[0]] * len(eps)) == pytest.approx(values[0])
    capped = [values[0]] + [min(v, values[0]) for v in values[1:]]
    assert metrics.robust_score(eps, capped) <= values[0] + 1e-12
    i = data.draw(st.integers(0, len(eps) - 1))
    raised = [min(1.0, v + 0.1) if j == i else v for j, v in enumerate(values)]
    assert metrics.robust_score(eps, raised) >= score - 1e-12
    assert metrics.robust_score([e * 1000 for e in eps], values) == pytest.approx(score)


def test_robust_score_rejects_a_grid_without_zero_or_bad_scores():
    with pytest.raises(ValueError, match="starting at 0"):
        metrics.robust_score([0.01, 0.02], [0.9, 0.8])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.robust_score([0, 0.01], [0.9, 1.5])
    assert metrics.robust_score([0, 1], [1.0, 0.0]) == pytest.approx(np.sqrt(0.5))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6).flatmap(lambda k: arrays(bool, st.tuples(st.just(k), st.integers(1, 40)))))
def test_at_least_k_correct_is_monotone_with_any_and_all_at_the_ends(correct):
    n_members = correct.shape[0]
    values = [metrics.at_least_k_correct(correct, k) for k in range(1, n_members + 1)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[0] == pytest.approx(correct.any(0).mean())
    assert values[-1] == pytest.approx(correct.all(0).mean())
    with pytest.raises(ValueError, match=f"k={n_members + 1}"):
        metrics.at_least_k_correct(correct, n_members + 1)


def test_at_least_k_correct_names_a_bad_k():
    with pytest.raises(ValueError, match="k=4"):
        metrics.at_least_k_correct(np.ones((3, 5), bool), 4)
