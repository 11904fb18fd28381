"""cnn and resnet1d18 build logits of the right shape for any input length and lead count."""

from __future__ import annotations

import ecgarena
import pytest
import torch
from ecgarena import Host

HOST = Host(builtins=False)


@pytest.mark.parametrize("name", ["cnn", "resnet1d18"])
@pytest.mark.parametrize(
    "leads, samples, classes", [(12, 1000, 5), (1, 252, 5), (12, 5000, 9), (2, 40, 3)]
)
def test_models_output_logits(name, leads, samples, classes):
    torch.manual_seed(0)
    net = HOST.create("models", name).build(leads, samples, classes)
    x = torch.randn(3, leads, samples, requires_grad=True)
    out = net(x)
    assert out.shape == (3, classes) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_resnet1d18_is_resnet18_sized():
    net = HOST.create("models", "resnet1d18").build(12, 1000, 5)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] > 1]
    assert len(convs) == 1 + 16  # stem + 8 basic blocks × 2 convolutions
    n_params = sum(p.numel() for p in net.parameters())
    assert 5e6 < n_params < 12e6


def test_model_options_validated():
    from ecgarena import UserError

    with pytest.raises(UserError, match="width"):
        HOST.create("models", "cnn", {"width": 0})
    small = HOST.create("models", "cnn", {"width": 8}).build(12, 1000, 5)
    assert sum(p.numel() for p in small.parameters()) < 10_000


@pytest.mark.parametrize(
    "leads, samples, classes", [(12, 1000, 5), (12, 5000, 5), (1, 64, 3), (1, 187, 5)]
)
def test_conv_vit_output_shape(leads, samples, classes):
    torch.manual_seed(0)
    net = HOST.create("models", "conv-vit").build(leads, samples, classes)
    out = net(torch.randn(2, leads, samples))
    assert out.shape == (2, classes) and torch.isfinite(out).all()


def test_conv_vit_input_gradients_in_eval_mode():
    torch.manual_seed(0)
    net = HOST.create("models", "conv-vit").build(12, 1000, 5).eval()
    x = torch.randn(4, 12, 1000, requires_grad=True)
    torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_conv_vit_options_validated():
    from ecgarena import UserError

    with pytest.raises(UserError, match="dim 60 must be divisible by heads 8"):
        HOST.create("models", "conv-vit", {"dim": 60, "heads": 8})
    with pytest.raises(UserError, match="patch"):
        HOST.create("models", "conv-vit", {"patch": 0})
    with pytest.raises(UserError, match="unknown option"):
        HOST.create("models", "conv-vit", {"width": 64})


def test_conv_vit_too_short_input_is_a_clear_error():
    model = HOST.create("models", "conv-vit", {"patch": 8})
    model.build(1, 15, 2)  # the shortest length with one patch
    with pytest.raises(ecgarena.UserError, match="n_samples 14 .*patch 8"):
        model.build(1, 14, 2)


def test_conv_vit_deterministic_for_a_seed():
    x = torch.randn(3, 12, 1000)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        net = HOST.create("models", "conv-vit").build(12, 1000, 5).eval()
        with torch.no_grad():
            outs.append(net(x))
    assert torch.equal(outs[0], outs[1])
    # the no-grad fast path and the autograd path agree to float rounding
    assert torch.allclose(outs[0], net(x).detach(), atol=1e-5)


def test_conv_vit_learns_a_separable_toy_problem():
    torch.manual_seed(0)
    n, samples = 64, 128
    y = torch.arange(n) % 2
    t = torch.linspace(0, 1, samples)
    freq = torch.where(y == 0, 3.0, 12.0)[:, None]
    x = torch.sin(2 * torch.pi * freq * t)[:, None, :] + 0.1 * torch.randn(n, 1, samples)
    net = HOST.create("models", "conv-vit", {"dim": 32, "dropout": 0.0}).build(1, samples, 2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
