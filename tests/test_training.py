"""fit_classifier's defaults: early stopping on the validation metric (best epoch restored),
learning-rate schedules, class-balanced losses, determinism, and the TrainSpec checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ecgarena import Classifier, training
from ecgarena.protocols import DatasetInfo, FitContext, Split
from ecgarena.specs import TrainSpec
from ecgarena.testing import toy_fit_context
from ecgarena.training import class_weights, fit_classifier, task_loss
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError
from torch import nn


def with_spec(ctx: FitContext, **train) -> FitContext:
    return dataclasses.replace(ctx, train_spec=TrainSpec(batch_size=16, **train))


def scripted_scores(monkeypatch, scores: list[float]) -> list[np.ndarray]:
    """Make epoch i's validation score scores[i] (the last one repeats); returns the validation
    logits seen at each epoch."""
    seen: list[np.ndarray] = []

    def score(logits, y, task, classes):
        seen.append(np.array(logits, copy=True))
        return scores[min(len(seen), len(scores)) - 1]

    monkeypatch.setattr(training, "validation_score", score)
    return seen


def fit(ctx: FitContext, seed: int = 0, **kw):
    torch.manual_seed(seed)
    clf = Classifier(ctx.build_net())
    return clf, fit_classifier(clf, ctx, **kw)


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch(monkeypatch):
    seen = scripted_scores(monkeypatch, [0.5, 0.7, 0.6, 0.65, 0.69, 0.6, 0.9])
    ctx = with_spec(toy_fit_context(), epochs=50, patience=4, schedule="none")
    clf, summary = fit(ctx)
    # best at epoch 2; epochs 3-6 bring no gain: stop after epoch 6, before the 0.9 of epoch 7
    assert summary["epochs_run"] == 6 and len(seen) == 6
    assert summary["best_epoch"] == 2 and summary["best_val_score"] == 0.7
    assert summary["stopped"] == "early stopping" and summary["stopped_early"] is True
    restored = training.predict_logits(clf, ctx.val.x, ctx.device)
    np.testing.assert_allclose(restored, seen[1], rtol=1e-6, atol=1e-6)
    assert not np.allclose(restored, seen[-1])  # the last epoch's weights were discarded
    assert [h["epoch"] for h in summary["history"]] == list(range(1, 7))


def test_min_delta_gains_below_it_do_not_count(monkeypatch):
    scripted_scores(monkeypatch, [0.5, 0.505, 0.509, 0.51, 0.6])
    ctx = with_spec(toy_fit_context(), epochs=50, patience=3, min_delta=0.01, schedule="none")
    _, summary = fit(ctx)
    assert summary["best_epoch"] == 1 and summary["epochs_run"] == 4


def test_hitting_the_epoch_cap_is_reported(monkeypatch):
    scripted_scores(monkeypatch, [0.1, 0.2, 0.3])
    _, summary = fit(with_spec(toy_fit_context(), epochs=3, patience=3))
    assert summary["epochs_run"] == 3 and summary["best_epoch"] == 3
    assert summary["stopped"] == "epoch cap" and summary["stopped_early"] is False
    assert summary["max_epochs"] == 3 and summary["patience"] == 3


def test_plateau_schedule_lowers_the_rate_after_lr_patience_epochs_without_gain(monkeypatch):
    scripted_scores(monkeypatch, [0.5, 0.6])  # epoch 2 is the best; nothing after it
    ctx = with_spec(
        toy_fit_context(),
        epochs=11,
        patience=11,
        lr=1e-2,
        schedule="plateau",
        lr_patience=2,
        lr_factor=0.5,
        min_lr=3e-3,
    )
    _, summary = fit(ctx)
    lrs = [h["lr"] for h in summary["history"]]
    # more than lr_patience (2) epochs without gain (3, 4, 5) halve the rate from epoch 6 on,
    # three more (6, 7, 8) lower it again from epoch 9 on, to the floor min_lr instead of 2.5e-3
    assert lrs[:5] == pytest.approx([1e-2] * 5)
    assert lrs[5:8] == pytest.approx([5e-3] * 3)
    assert lrs[8:] == pytest.approx([3e-3] * 3)
    assert summary["lr_final"] == pytest.approx(3e-3)
    assert "plateau" in summary["schedule"] and "more than 2 epochs" in summary["schedule"]


def test_patience_is_relative_to_the_data_size_unless_given():
    spec = TrainSpec()  # batch 64: ⌈60 steps / batches per epoch⌉ in [3, 10]
    assert spec.patience is None and spec.epochs == 100
    assert spec.patience_for(352) == 10  # the PTB-XL subset's folds 1-8: 6 batches an epoch
    assert spec.patience_for(640) == 6 and spec.patience_for(1600) == 3  # synthetic: 25 batches
    assert spec.patience_for(1) == 10 and spec.patience_for(100_000) == 3
    assert TrainSpec(patience=7).patience_for(100_000) == 7
    assert TrainSpec(batch_size=16).patience_for(352) == 3  # 22 steps an epoch
    assert spec.plateau_patience(10) == 3 and spec.plateau_patience(3) == 1
    assert TrainSpec(lr_patience=2).plateau_patience(10) == 2


def test_auto_patience_is_used_and_reported(monkeypatch):
    scripted_scores(monkeypatch, [0.5, 0.6])
    ctx = dataclasses.replace(toy_fit_context(n=48), train_spec=TrainSpec(batch_size=16))
    _, summary = fit(ctx)  # 3 batches an epoch → patience 10 (⌈60 / 3⌉ = 20, clipped)
    assert summary["patience"] == 10 and summary["patience_auto"] is True
    assert summary["epochs_run"] == 12 and summary["best_epoch"] == 2
    assert "more than 3 epochs" in summary["schedule"]


def test_cosine_schedule_decays_to_min_lr_and_none_keeps_the_rate():
    ctx = with_spec(toy_fit_context(), epochs=5, patience=5, lr=1e-2, schedule="cosine", min_lr=0)
    _, summary = fit(ctx)
    lrs = [h["lr"] for h in summary["history"]]
    expected = [0.5e-2 * (1 + np.cos(np.pi * e / 5)) for e in range(5)]
    assert lrs == pytest.approx(expected)
    _, flat = fit(with_spec(toy_fit_context(), epochs=3, patience=3, lr=1e-2, schedule="none"))
    assert [h["lr"] for h in flat["history"]] == pytest.approx([1e-2] * 3)


def multilabel_context(y: np.ndarray, time: int = 16) -> FitContext:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (len(y), 1, time)).astype(np.float32)
    classes = tuple(f"c{i}" for i in range(y.shape[1]))
    info = DatasetInfo("toy-ml", "multilabel", classes, ("I",), 100.0, time)
    return FitContext(
        info,
        Split(x, y, []),
        Split(x, y, []),
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(time, y.shape[1])),
        TrainSpec(epochs=2, patience=2, batch_size=8),
        torch.device("cpu"),
        0,
    )


def test_multilabel_pos_weight_is_negatives_over_positives_and_reported():
    y = np.zeros((40, 3), np.float32)
    y[:20, 0] = 1  # 20 / 20 → 1
    y[:4, 1] = 1  # 36 / 4 → 9
    y[:1, 2] = 1  # 39 / 1 → clipped to 10
    np.testing.assert_allclose(class_weights(y, "multilabel", 3), [1.0, 9.0, 10.0])
    _, summary = fit(multilabel_context(y))
    assert summary["class_weights"] == pytest.approx({"c0": 1.0, "c1": 9.0, "c2": 10.0})
    assert summary["class_weights_kind"] == "bce pos_weight" and summary["class_weights_applied"]
    plain_spec = TrainSpec(epochs=1, patience=1, batch_size=8, class_balance=False)
    _, plain = fit(dataclasses.replace(multilabel_context(y), train_spec=plain_spec))
    assert plain["class_weights"] is None and plain["class_weights_applied"] is False


def test_weighted_task_loss_matches_the_formula():
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.1]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([3.0, 0.5])
    p = torch.sigmoid(logits)
    manual = -(w * y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert task_loss(logits, y, "multilabel", w) == pytest.approx(manual.item(), rel=1e-6)
    labels = torch.tensor([0, 1, 1])
    z = torch.tensor([[1.0, 0.0], [0.2, 0.4], [-1.0, 1.0]])
    wc = torch.tensor([2.0, 1.0])
    nll = -z.log_softmax(1)[torch.arange(3), labels]
    expected = (wc[labels] * nll).sum() / wc[labels].sum()
    assert task_loss(z, labels, "multiclass", wc) == pytest.approx(expected.item(), rel=1e-6)


label_matrices = st.integers(1, 6).flatmap(
    lambda c: arrays(
        np.float32, st.tuples(st.integers(1, 120), st.just(c)), elements=st.sampled_from([0.0, 1.0])
    )
)


@settings(max_examples=200, deadline=None)
@given(label_matrices, st.floats(1.0, 100.0))
def test_multilabel_class_weights_property(y, max_weight):
    w = class_weights(y, "multilabel", y.shape[1], max_weight)
    assert w.shape == (y.shape[1],) and np.isfinite(w).all() and (w > 0).all()
    assert (w >= 1 / max_weight - 1e-6).all() and (w <= max_weight + 1e-6).all()
    pos = y.sum(0)
    for a in range(len(w)):
        for b in range(len(w)):
            if pos[a] < pos[b]:  # a rarer: at least b's weight, strictly more unless clipped
                assert w[a] >= w[b]
                if 1 / max_weight < w[b] <= w[a] < max_weight:
                    assert w[a] > w[b]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda c: st.tuples(st.just(c), st.lists(st.integers(0, c - 1), min_size=1, max_size=150))
    ),
    st.floats(1.0, 100.0),
)
def test_multiclass_class_weights_property(case, max_weight):
    n_classes, labels = case
    y = np.asarray(labels, np.int64)
    w = class_weights(y, "multiclass", n_classes, max_weight)
    assert w.shape == (n_classes,) and np.isfinite(w).all() and (w > 0).all()
    counts = np.bincount(y, minlength=n_classes)
    assert (w * counts).sum() / len(y) == pytest.approx(1.0, rel=1e-5)  # mean record weight 1
    assert w.max() / w.min() <= max_weight**2 * (1 + 1e-5)
    for a in range(n_classes):
        for b in range(n_classes):
            if counts[a] < counts[b]:
                assert w[a] >= w[b] * (1 - 1e-6)
    present = counts > 0
    if present.all() and counts.max() / counts.min() < max_weight:  # nothing clipped: ∝ 1/n_c
        np.testing.assert_allclose(w * counts, (w * counts)[0], rtol=1e-5)


def test_custom_losses_keep_working_and_may_take_the_class_weights():
    ctx = toy_fit_context(epochs=1)
    got = []

    def plain(clf, x, y):
        return task_loss(clf(x), y, "multiclass")

    def weighted(clf, x, y, *, class_weight=None):
        got.append(class_weight)
        return task_loss(clf(x), y, "multiclass", class_weight)

    _, summary = fit(ctx, loss=plain)
    assert summary["class_weights"] is not None and summary["class_weights_applied"] is False
    _, summary = fit(ctx, loss=weighted)
    assert summary["class_weights_applied"] is True and got
    expected = class_weights(ctx.train.y, "multiclass", 2)
    np.testing.assert_allclose(got[0].numpy(), expected)
    got.clear()
    fit(
        dataclasses.replace(ctx, train_spec=TrainSpec(epochs=1, class_balance=False)), loss=weighted
    )
    assert got and all(w is None for w in got)


def test_training_is_deterministic_for_a_fixed_seed():
    def net():
        return nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 2))

    ctx = with_spec(toy_fit_context(build_net=net), epochs=4, patience=2)
    a_clf, a = fit(ctx, seed=3)
    b_clf, b = fit(ctx, seed=3)
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    for k, v in a_clf.state_dict().items():
        assert torch.equal(v, b_clf.state_dict()[k]), k
    _, c = fit(dataclasses.replace(ctx, seed=4), seed=4)
    assert [h["loss"] for h in c["history"]] != [h["loss"] for h in a["history"]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patience": 3, "lr_patience": 3}, "lr_patience 3 must be smaller than patience 3"),
        ({"lr": 1e-3, "min_lr": 1e-2}, "min_lr 0.01 must not exceed lr 0.001"),
        ({"schedule": "step"}, "plateau"),
        ({"max_class_weight": 0.5}, "max_class_weight"),
        ({"lr_factor": 1.0}, "lr_factor"),
        ({"epochs": 0}, "epochs"),
        ({"class_balance": "maybe"}, "class_balance"),
    ],
)
def test_bad_train_specs_are_rejected_clearly(options, message):
    with pytest.raises(ValidationError, match=message):
        TrainSpec(**options)


def test_plain_training_stays_reachable():
    plain = TrainSpec(epochs=8, patience=8, schedule="none", class_balance=False)
    assert plain.schedule == "none" and not plain.class_balance
    assert TrainSpec(schedule="none", patience=2, lr_patience=5).lr_patience == 5  # unused


def test_recipes_state_valid_early_stopping_train_sections():
    import tomllib

    from .conftest import ROOT

    recipes = {p.name: tomllib.loads(p.read_text()) for p in (ROOT / "recipes").glob("*.toml")}
    assert recipes
    for name, recipe in recipes.items():
        spec = TrainSpec(**recipe["train"])
        assert spec.patience is not None and spec.patience < spec.epochs, name
        assert spec.schedule != "none" and spec.class_balance, name
    # zero-shot reuses the weights of cpr_table1: the same training spec
    assert recipes["cpr_zeroshot.toml"]["train"] == recipes["cpr_table1.toml"]["train"]


def test_validation_metric_is_macro_auc_for_multilabel_and_macro_f1_for_multiclass():
    # multiclass: perfectly ranked scores but every argmax wrong → F1 0, not AUROC 1
    logits = np.array([[0.0, 0.2], [0.0, 0.1], [0.0, 0.4], [0.0, 0.3]])
    y = np.array([0, 0, 1, 1])
    assert training.validation_score(logits, y, "multiclass", ("a", "b")) < 0.7
    ml = np.array([[2.0, -1.0], [-1.0, 2.0], [1.0, 1.0], [-2.0, -2.0]])
    yl = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    assert training.validation_score(ml, yl, "multilabel", ("a", "b")) == pytest.approx(1.0)
