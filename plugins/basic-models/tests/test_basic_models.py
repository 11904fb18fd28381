"""cnn and resnet1d18 build logits of the right shape for any input length and lead count."""

from __future__ import annotations

import pytest
import torch
from ecgarena.host import Host

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
    from ecgarena.errors import UserError

    with pytest.raises(UserError, match="width"):
        HOST.create("models", "cnn", {"width": 0})
    small = HOST.create("models", "cnn", {"width": 8}).build(12, 1000, 5)
    assert sum(p.numel() for p in small.parameters()) < 10_000
