"""Ensemble metrics and the defense end to end (METHODS.md §8): P(≥k of K), mutual
information, probability averaging, and every variant trained on a toy FitContext."""

from __future__ import annotations

import math

import ecgarena_dna
import numpy as np
import pytest
import torch
from ecgarena import Host, UserError, eval_mode
from ecgarena.testing import toy_fit_context
from ecgarena_dna import DNAEnsemble, mutual_information
from ecgarena_dna.ensemble import average_logits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.torch import load_file, save_file
from torch import nn

HOST = Host()
VARIANTS = ["cor", "dec", "fcor", "fdec"]


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (3, 4, 5), elements=st.floats(0.01, 1.0)))
def test_mutual_information_is_nonnegative_and_zero_on_agreement(raw):
    probs = raw / raw.sum(-1, keepdims=True)
    assert (mutual_information(probs) >= -1e-12).all()
    same = np.broadcast_to(probs[:1], probs.shape)
    np.testing.assert_allclose(mutual_information(same), 0.0, atol=1e-12)


def test_mutual_information_of_two_confident_members_that_disagree_is_log_2():
    probs = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert mutual_information(probs)[0] == pytest.approx(math.log(2))


def test_average_logits_are_those_of_the_mean_probability():
    z = torch.randn(3, 5, 4, dtype=torch.float64)
    expected = z.softmax(-1).mean(0).log()
    torch.testing.assert_close(average_logits(z, "multiclass"), expected)
    p = torch.sigmoid(z).mean(0)
    torch.testing.assert_close(average_logits(z, "multilabel"), torch.log(p / (1 - p)))
    extreme = torch.tensor([[[200.0, -200.0]], [[150.0, -300.0]]])
    assert torch.isfinite(average_logits(extreme, "multilabel")).all()
    assert torch.isfinite(average_logits(extreme, "multiclass")).all()


def hidden_net() -> nn.Module:
    """A tiny MLP whose features (the head's input) depend on its weights."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 2))


def trained(variant: str, **options) -> tuple[DNAEnsemble, dict]:
    defense = HOST.create("defenses", "dna", {"variant": variant, "projection_dim": 4, **options})
    ctx = toy_fit_context(n=48, build_net=hidden_net, epochs=2)
    clf = defense.build(ctx)
    return clf, defense.train(clf, ctx)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_an_averaging_ensemble_of_distinct_members(variant):
    clf, summary = trained(variant)
    assert summary["variant"] == variant and len(summary["members"]) == 3
    assert summary["val_mutual_information"] >= 0
    info = clf.info
    assert info.deterministic and info.differentiable and info.forward_passes == 3
    assert info.notes.startswith(f"DNA {variant}:")
    members = clf.members
    assert isinstance(members, nn.ModuleList) and len(members) == 3
    weights = [m.net[1].weight for m in members]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    x = torch.randn(6, 2, 32, requires_grad=True)
    with eval_mode(clf):
        out = clf(x)
        member_logits = torch.stack([m(x) for m in members])
    torch.testing.assert_close(out, member_logits.softmax(-1).mean(0).log())
    (grad,) = torch.autograd.grad(out[:, 0].sum(), x)
    assert grad.abs().sum() > 0
    if variant.startswith("f"):  # the paper: member 0 raw, filter 1 → member 1, 2 → member 2
        assert isinstance(members[0].band, nn.Identity)
        f1, f2 = members[1].band.mask, members[2].band.mask
        assert f1[0] == 1 and torch.equal(f1 + f2, torch.ones(32))  # DC is in filter 1's band
    else:
        assert all(isinstance(m.band, nn.Identity) for m in members)
    state = {k: v.clone() for k, v in clf.state_dict().items()}
    again = HOST.create("defenses", "dna", {"variant": variant}).build(
        toy_fit_context(build_net=hidden_net)
    )
    again.load_state_dict(state)
    with eval_mode(again):
        torch.testing.assert_close(again(x), out)


def test_later_members_see_earlier_features_of_the_same_records(monkeypatch):
    defense = HOST.create("defenses", "dna", {"variant": "dec", "projection_dim": 4})
    ctx = toy_fit_context(n=48, build_net=hidden_net, epochs=2)
    clf = defense.build(ctx)
    real_fit, seen = ecgarena_dna.fit_classifier, []

    def fit(member, member_ctx, loss=None, aux=None, description=""):
        def checked(m, x, y, earlier):
            seen.append(earlier.shape[1])
            for j, done in enumerate(clf.members[: earlier.shape[1]]):
                with eval_mode(done), torch.no_grad():
                    _, expected = done.logits_and_features(x)
                torch.testing.assert_close(earlier[:, j], expected)
            return loss(m, x, y, earlier)

        if loss is None:
            return real_fit(member, member_ctx, description=description)
        return real_fit(member, member_ctx, loss=checked, aux=aux, description=description)

    monkeypatch.setattr(ecgarena_dna, "fit_classifier", fit)
    summary = defense.train(clf, ctx)
    assert summary["decorrelate_weight"] == 0.2
    assert set(seen) == {1, 2}  # member 2 sees member 1's features, member 3 sees both


def test_cor_trains_with_cross_entropy_only(monkeypatch):
    monkeypatch.setattr(ecgarena_dna, "decorrelation_loss", lambda *a, **k: pytest.fail("called"))
    _, summary = trained("fcor")
    assert summary["decorrelate_weight"] == 0.0


class Convolutional(nn.Module):
    """A net with no nn.Linear: nothing to take features from."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(-1)


def test_dec_refuses_a_net_without_a_linear_head_and_cor_accepts_it():
    ctx = toy_fit_context(build_net=Convolutional)
    with pytest.raises(UserError, match="Convolutional has none"):
        HOST.create("defenses", "dna", {"variant": "fdec"}).build(ctx)
    assert HOST.create("defenses", "dna", {"variant": "cor"}).build(ctx)


def test_bands_wider_than_nyquist_are_refused():
    ctx = toy_fit_context()  # 100 Hz
    with pytest.raises(UserError, match="bin_hz 50 must be below the Nyquist"):
        HOST.create("defenses", "dna", {"variant": "fcor", "bin_hz": 50}).build(ctx)


def test_weights_round_trip_through_safetensors(tmp_path):
    clf = HOST.create("defenses", "dna", {"variant": "fdec"}).build(toy_fit_context())
    save_file({k: v.contiguous() for k, v in clf.state_dict().items()}, tmp_path / "w.safetensors")
    assert set(load_file(tmp_path / "w.safetensors")) == set(clf.state_dict())


def test_paper_defaults_lambda_and_projection():
    defense = HOST.create("defenses", "dna", {})
    assert defense.decorrelate_weight == 0.2 and defense.projection_dim == 50
    assert defense.variant == "fdec" and defense.members == 3
