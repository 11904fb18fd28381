"""Adversarial distillation: softened targets, the T²-scaled distillation loss, and training."""

from __future__ import annotations

import pytest
import torch
from ecgarena import Host
from ecgarena.testing import toy_fit_context
from ecgarena_adversarial_distillation import distillation_loss, soft_labels
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    temp=st.floats(1, 100),
    task=st.sampled_from(["multiclass", "multilabel"]),
)
def test_soft_targets_are_distributions_and_the_loss_is_minimal_at_the_teacher(seed, temp, task):
    torch.manual_seed(seed)
    teacher = torch.randn(6, 4) * 5
    targets = soft_labels(teacher, temp, task)
    assert ((targets >= 0) & (targets <= 1)).all()
    if task == "multiclass":
        assert torch.allclose(targets.sum(1), torch.ones(6))
    student = teacher.clone().requires_grad_(True)
    at_teacher = distillation_loss(student, targets, temp, task)
    (grad,) = torch.autograd.grad(at_teacher, student)
    assert grad.abs().max() < 1e-4 * temp  # the teacher's own logits are a stationary point
    other = distillation_loss(teacher + torch.randn(6, 4), targets, temp, task)
    assert float(other) >= float(at_teacher.detach()) - 1e-6


def test_higher_temperature_gives_softer_targets():
    z = torch.tensor([[4.0, 0.0, -4.0]])
    assert soft_labels(z, 10, "multiclass").max() < soft_labels(z, 1, "multiclass").max()


def test_defense_trains_teacher_and_student():
    defense = Host().create("defenses", "adversarial-distillation", {"temperature": 5, "steps": 2})
    ctx = toy_fit_context()
    clf = defense.build(ctx)
    summary = defense.train(clf, ctx)
    assert summary["teacher"]["epochs_run"] >= 1 and summary["epochs_run"] >= 1
    assert not any(p.requires_grad is False for p in clf.parameters())  # the student trains
    with pytest.raises(Exception, match="temperature"):
        Host().create("defenses", "adversarial-distillation", {"temperature": 0.5})
