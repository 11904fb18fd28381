"""CPR's losses pinned to the paper's form (METHODS.md §9 "Corrections"): Eq. 1's background
term decodes from D(0, z_s), the latent-swap term has no label term unless asked for, and the
invariance FGSM runs at its own training budget, not the evaluation budget of the recipe."""

from __future__ import annotations

import tomllib
from pathlib import Path

import ecgarena_cpr
import pytest
import torch
import torch.nn.functional as F
from ecgarena import Classifier, MatrixSpec
from ecgarena.testing import toy_fit_context
from ecgarena_cpr import CPRDefense, reconstruction, swap_consistency
from ecgarena_cpr.model import CPRNet
from torch import nn

LEADS, T, D = 2, 64, 4
RECIPE = Path(__file__).parents[3] / "recipes" / "cpr_table1.toml"


def tiny_classifier(seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(CPRNet(LEADS, T, 3, latent=D, width=4)).train()


def batch(seed: int = 0, n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, LEADS, T, generator=g) * 0.3
    y = torch.randint(0, 3, (n,), generator=g)
    mask = (torch.rand(n, 1, T, generator=g) > 0.5).float()
    return x, y, mask


def test_eq1_equals_a_hand_computation_with_z_c_zeroed_in_the_background():
    torch.manual_seed(0)
    lin = nn.Linear(2 * D, LEADS * T)
    decoder = nn.Sequential(lin, nn.Unflatten(1, (LEADS, T)))
    x, _, mask = batch()
    z_c, z_s = torch.randn(6, D), torch.randn(6, D)
    alpha = 0.3
    w, b = lin.weight.detach(), lin.bias.detach()
    fg = (torch.cat([z_c, z_s], 1) @ w.T + b).view(6, LEADS, T)
    bg = (torch.cat([torch.zeros(6, D), z_s], 1) @ w.T + b).view(6, LEADS, T)
    m = mask.expand(6, LEADS, T)
    inside = float(((x - fg) ** 2 * m).sum() / m.sum())
    outside = float(((x - bg) ** 2 * (1 - m)).sum() / (1 - m).sum())
    got = reconstruction(decoder, x, z_c, z_s, mask, alpha).item()
    assert got == pytest.approx(inside + alpha * outside, rel=1e-5)
    # the old form, D(z_c, z_s) in both terms, is a different number: this test tells them apart
    old = inside + alpha * float(((x - fg) ** 2 * (1 - m)).sum() / (1 - m).sum())
    assert abs(got - old) > 1e-3


def test_background_term_has_no_gradient_to_z_c_but_the_masked_term_has():
    decoder = CPRNet(LEADS, T, 3, latent=D, width=4).decoder.train()  # with batch norm
    x, _, mask = batch()
    z_c = torch.randn(6, D, requires_grad=True)
    z_s = torch.randn(6, D, requires_grad=True)
    background_only = reconstruction(decoder, x, z_c, z_s, torch.zeros_like(mask), 1.0)
    g_c, g_s = torch.autograd.grad(background_only, (z_c, z_s), allow_unused=True)
    assert g_c is None or not g_c.any()
    assert g_s is not None and g_s.abs().sum() > 0
    inside_only = reconstruction(decoder, x, z_c, z_s, torch.ones_like(mask), 1.0)
    (g_c,) = torch.autograd.grad(inside_only, z_c)
    assert g_c.abs().sum() > 0


def test_the_defense_background_term_does_not_train_the_content_encoder():
    clf = tiny_classifier()
    x, y, mask = batch()
    terms = CPRDefense(latent=D, width=4).terms(clf, x, y, torch.zeros_like(mask), "multiclass")
    content = list(clf.net.content.parameters())
    grads = torch.autograd.grad(terms["rec"], content, allow_unused=True, retain_graph=True)
    assert all(g is None or not g.any() for g in grads)
    style = torch.autograd.grad(terms["rec"], list(clf.net.style.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in style)


def swap_term(defense: CPRDefense, y: torch.Tensor) -> float:
    clf = tiny_classifier()
    x, _, mask = batch()
    gen = torch.Generator().manual_seed(3)
    return defense.terms(clf, x, y, mask, "multiclass", gen)["swap"].item()


def test_swap_term_has_no_label_term_by_default_and_the_option_adds_one():
    _, y, _ = batch()
    other = (y + 1) % 3
    default = CPRDefense(latent=D, width=4)
    assert default.swap_label_loss is False
    assert swap_term(default, y) == swap_term(default, other)
    with_labels = CPRDefense(latent=D, width=4, swap_label_loss=True)
    assert abs(swap_term(with_labels, y) - swap_term(with_labels, other)) > 1e-4
    assert swap_term(with_labels, y) > swap_term(default, y)


def test_swap_term_is_the_content_distance_of_the_swapped_decoding():
    net = CPRNet(LEADS, T, 3, latent=D, width=4).train()
    z_c, z_s = torch.randn(6, D), torch.randn(6, D)
    perm = torch.tensor([1, 2, 3, 4, 5, 0])
    swapped = net.decoder(torch.cat([z_c, z_s[perm]], 1))
    expected = F.mse_loss(net.content(swapped), z_c)
    got = swap_consistency(net, z_c, z_s, perm, y=None, task="multiclass")  # y is never read
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.fixture
def fgsm_budgets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Each FGSM call of the plugin: (the threat's budget, the max |δ| it returned)."""
    seen: list[tuple[float, float]] = []
    real = ecgarena_cpr.fgsm

    def spy(model, x, y, threat, task):  # noqa: ANN001, ANN202 - the core's fgsm signature
        delta = real(model, x, y, threat, task)
        seen.append((threat.budget_mv, float(delta.abs().max())))
        return delta

    monkeypatch.setattr(ecgarena_cpr, "fgsm", spy)
    return seen


def test_invariance_fgsm_uses_the_training_budget_option(fgsm_budgets):
    clf = tiny_classifier()
    x, y, mask = batch()
    CPRDefense(latent=D, width=4, adv_train_eps_mv=0.123).terms(clf, x, y, mask, "multiclass")
    assert fgsm_budgets == [(0.123, pytest.approx(0.123, rel=1e-5))]


def test_training_runs_fgsm_at_the_default_training_budget_not_the_eval_budget(
    fgsm_budgets, tmp_path
):
    defense = CPRDefense(latent=D, width=4)
    ctx = toy_fit_context(n=16, time=T, epochs=1, batch_size=8, cache_dir=tmp_path)
    summary = defense.train(defense.build(ctx), ctx)
    assert len(fgsm_budgets) == 2  # one per batch
    assert {b for b, _ in fgsm_budgets} == {defense.adv_train_eps_mv} == {0.1}
    assert summary["adv_train_eps_mv"] == 0.1


def test_the_table1_recipe_trains_cpr_off_its_evaluation_budget_and_has_both_rows():
    if not RECIPE.exists():
        pytest.skip(f"{RECIPE} is not part of this checkout")
    text = RECIPE.read_text()
    spec = MatrixSpec.model_validate(tomllib.loads(text))
    assert {"denoising-autoencoder", "adversarial-distillation", "cpr"} <= set(spec.defenses)
    for options in spec.options("cpr"):
        budget = CPRDefense(**options).adv_train_eps_mv
        assert all(budget != pytest.approx(eps) for eps in spec.eps if eps is not None)
        assert f"adv_train_eps_mv = {budget:g}" in text  # the recipe states the budget it uses
