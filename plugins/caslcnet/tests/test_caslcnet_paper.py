"""CASLCNet in the paper's form (METHODS.md §7 corrections): MART on the main head and on every
CAS head (Eq. 8, α = 2), the clean MSE of Eq. 9 only when enabled, the inner PGD on CE with 10
steps of ε/10, ε in the paper's units converted per lead by max |x_train|, and no certificate
(the standalone ℓ∞-dist net keeps its own)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from ecgarena import Host, Split, UserError
from ecgarena.testing import toy_fit_context
from ecgarena_caslcnet import cas_defenses
from ecgarena_caslcnet.cas import cas_outputs
from ecgarena_caslcnet.cas_defenses import caslcnet_loss, clean_mse, lead_max_mv
from ecgarena_caslcnet.losses import mart_example, task_ce
from pydantic import ValidationError

TIME = 48


def hand_mart(clean: list[list[float]], adv: list[list[float]], y: list[int], beta: float):
    """MART written out per record with `math` only (Wang et al. 2020, METHODS §6)."""

    def softmax(z: list[float]) -> list[float]:
        e = [math.exp(v - max(z)) for v in z]
        return [v / sum(e) for v in e]

    bce, robust = 0.0, 0.0
    for zc, za, t in zip(clean, adv, y):
        p, q = softmax(zc), softmax(za)
        wrong = max(v for k, v in enumerate(q) if k != t)
        bce += -math.log(q[t]) - math.log(1.0001 - wrong + 1e-12)
        kl = sum(pk * (math.log(pk) - math.log(qk)) for pk, qk in zip(p, q))
        robust += kl * (1.0000001 - p[t])
    return bce / len(y) + beta * robust / len(y)


def hand_brier(logits: list[list[float]], y: list[int]) -> float:
    total = 0.0
    for z, t in zip(logits, y):
        e = [math.exp(v) for v in z]
        total += sum((float(k == t) - v / sum(e)) ** 2 for k, v in enumerate(e))
    return total / len(y)


Z = [[2.0, -1.0, 0.5], [0.1, 0.3, -0.2]]
Z_ADV = [[0.5, 0.4, 0.2], [1.0, -0.5, 0.0]]
A = [[[1.0, 0.0, -1.0], [0.2, 0.2, 0.1]], [[-0.3, 0.9, 0.4], [0.0, 1.5, -1.0]]]
A_ADV = [[[0.1, 0.6, -0.2], [0.8, -0.1, 0.3]], [[0.5, 0.2, 0.2], [-0.4, 0.3, 0.9]]]
Y = [0, 1]


def tensors() -> tuple[tuple, tuple, torch.Tensor]:
    t = torch.tensor
    clean = (t(Z, dtype=torch.float64), [t(a, dtype=torch.float64) for a in A])
    adv = (t(Z_ADV, dtype=torch.float64), [t(a, dtype=torch.float64) for a in A_ADV])
    return clean, adv, torch.tensor(Y)


def test_eq8_is_mart_on_the_main_head_plus_alpha_over_r_mart_on_each_cas_head():
    clean, adv, y = tensors()
    got = float(caslcnet_loss(clean, adv, y, "multiclass", alpha=2.0, beta=6.0, mse=False))
    heads = [hand_mart(a, b, Y, 6.0) for a, b in zip(A, A_ADV)]
    want = hand_mart(Z, Z_ADV, Y, 6.0) + 2.0 / len(heads) * sum(heads)
    assert got == pytest.approx(want, rel=1e-9)
    # the former loss (CE on the CAS heads of x') is a different number on this example
    ce_heads = sum(float(task_ce(a, y, "multiclass")) for a in adv[1]) / 2
    assert abs(hand_mart(Z, Z_ADV, Y, 6.0) + 2.0 * ce_heads - got) > 1e-3


def test_eq9_clean_mse_is_one_hot_minus_softmax_squared_and_only_when_enabled():
    clean, adv, y = tensors()
    assert float(clean_mse(clean[0], y, "multiclass")) == pytest.approx(hand_brier(Z, Y))
    off = caslcnet_loss(clean, adv, y, "multiclass", 2.0, 6.0, mse=False)
    on = caslcnet_loss(clean, adv, y, "multiclass", 2.0, 6.0, mse=True)
    assert float(on - off) == pytest.approx(hand_brier(Z, Y), rel=1e-9)
    multi = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    want = ((multi - clean[0].sigmoid()) ** 2).sum(1).mean()
    assert float(clean_mse(clean[0], multi, "multilabel")) == pytest.approx(float(want))


@pytest.fixture(scope="module")
def host() -> Host:
    return Host()


def context(host: Host, **kw):
    built = host.create("models", "caslcnet", {"width": 4})
    return toy_fit_context(n=16, time=TIME, build_net=lambda: built.build(2, TIME, 2), **kw)


def captured_loss(host: Host, monkeypatch: pytest.MonkeyPatch, options: dict, ctx=None):
    """The defense's training loss (fit_classifier replaced by a stub that keeps it), the
    classifier, and the arguments its inner attack got (mart_example spied)."""
    ctx = ctx or context(host)
    kept, calls = {}, []

    def fake_fit(classifier, ctx, loss, description):
        kept["loss"] = loss
        return {}

    def spy(clf, x, y, task, eps, step, steps, std, gen):
        calls.append({"eps": eps, "step": step, "steps": steps})
        return mart_example(clf, x, y, task, eps, step, steps, std, gen)

    monkeypatch.setattr(cas_defenses, "fit_classifier", fake_fit)
    monkeypatch.setattr(cas_defenses, "mart_example", spy)
    d = host.create("defenses", "caslcnet", options)
    clf = d.build(ctx)
    summary = d.train(clf, ctx)
    return kept["loss"], clf, calls, summary, ctx


@pytest.mark.parametrize("mse", [False, True])
def test_the_defense_trains_on_eq8_with_the_models_own_heads(host, monkeypatch, mse):
    loss, clf, calls, summary, ctx = captured_loss(
        host, monkeypatch, {"eps_mv": 0.1, "clean_mse": mse}
    )
    x, y = torch.as_tensor(ctx.train.x[:8]), torch.as_tensor(ctx.train.y[:8])
    fixed = x + 0.05
    monkeypatch.setattr(cas_defenses, "mart_example", lambda *a: fixed)
    clf.train()
    got = float(loss(clf, x, y).detach())
    (z, a), (z2, a2) = cas_outputs(clf, x, y), cas_outputs(clf, fixed, y)
    rows = [t.tolist() for t in (z, z2)]
    heads = [hand_mart(p.tolist(), q.tolist(), y.tolist(), 6.0) for p, q in zip(a, a2)]
    want = hand_mart(*rows, y.tolist(), 6.0) + 2.0 * sum(heads) / len(heads)
    want += hand_brier(rows[0], y.tolist()) if mse else 0.0
    assert got == pytest.approx(want, rel=1e-4)
    assert summary["clean_mse"] is mse


def test_inner_attack_is_pgd_with_ten_steps_of_eps_over_ten(host, monkeypatch):
    loss, clf, calls, summary, ctx = captured_loss(host, monkeypatch, {"eps_mv": 0.1})
    x, y = torch.as_tensor(ctx.train.x[:4]), torch.as_tensor(ctx.train.y[:4])
    loss(clf.train(), x, y)
    (call,) = calls
    assert call["steps"] == 10
    assert torch.allclose(call["eps"], torch.full((1, 2, 1), 0.1))
    assert torch.allclose(call["step"], torch.full((1, 2, 1), 0.01))
    assert summary["eps_mv_per_lead"] == pytest.approx([0.1, 0.1])


def test_eps_paper_converts_per_lead_with_the_training_max(host, monkeypatch):
    ctx = context(host)
    x = np.array(ctx.train.x)
    x[3, 0, 5], x[7, 1, 9] = -2.0, 0.5  # per-lead max |x|: 2.0 mV and 0.5 mV
    x[:, 1] = np.clip(x[:, 1], -0.5, 0.5)
    x[:, 0] = np.clip(x[:, 0], -2.0, 2.0)
    ctx = dataclasses.replace(ctx, train=Split(x, ctx.train.y, []))
    assert lead_max_mv(x) == pytest.approx([2.0, 0.5])
    _, clf, _, summary, _ = captured_loss(
        host, monkeypatch, {"eps_paper": {"toy": 0.1, "cpsc2018": 0.01}}, ctx
    )
    assert summary["eps_mv_per_lead"] == pytest.approx([0.2, 0.05])
    assert summary["step_mv_per_lead"] == pytest.approx([0.02, 0.005])
    assert "0.1 paper units = 0.2, 0.05 mV per lead" in clf.info.notes
    eps = torch.tensor([0.2, 0.05]).view(1, 2, 1)
    xt, yt = torch.as_tensor(x[:6]), torch.as_tensor(ctx.train.y[:6])
    adv = mart_example(clf, xt, yt, "multiclass", eps, eps / 10, 10, 1.0, torch.Generator())
    reach = (adv - xt).abs().amax((0, 2))
    assert (reach <= eps.flatten() + 1e-6).all() and (reach > eps.flatten() * 0.9).all()


def test_budget_options_are_checked(host):
    with pytest.raises(UserError, match="not both"):
        host.create("defenses", "caslcnet", {"eps_mv": 0.1, "eps_paper": 0.1})
    with pytest.raises(ValidationError, match=r"\(0, 1\]"):
        cas_defenses.CASLCNetDefense(eps_paper=3.0)
    d = cas_defenses.CASLCNetDefense(eps_paper={"mitdb-beats": 0.1})
    with pytest.raises(UserError, match="no value for dataset 'toy'"):
        d.build(context(host))


def test_clean_mse_list_turns_it_on_only_for_the_named_datasets():
    d = cas_defenses.CASLCNetDefense(clean_mse=["cpsc2018"])
    assert d.uses_mse("cpsc2018") and not d.uses_mse("mitdb-beats")
    assert not cas_defenses.CASLCNetDefense().uses_mse("cpsc2018")


def test_caslcnet_certifies_nothing_and_linf_dist_still_does(host):
    clf = host.create("defenses", "caslcnet", {}).build(context(host))
    assert clf.info.certifies is False and not hasattr(clf, "certify")
    assert "no input-space certificate" in clf.info.notes
    built = host.create("models", "linf-dist-net", {"width": 8, "hidden": 16})
    ctx = toy_fit_context(n=16, time=TIME, build_net=lambda: built.build(2, TIME, 2))
    cert = host.create("defenses", "linf-dist", {}).build(ctx)
    cert.set_standardization(0.0, 0.5)
    cert.eval()
    x = torch.as_tensor(ctx.val.x)
    pred, radius = cert.certify(x)
    top2 = cert(x).topk(2, 1).values.detach()
    assert cert.info.certifies
    assert radius == pytest.approx(((top2[:, 0] - top2[:, 1]) / 2 * 0.5).numpy(), rel=1e-5)
