"""ℓ∞-distance neurons and nets (Zhang et al. ICML 2021, `zbh2047/L_inf-dist-net`; METHODS.md §7).

A neuron is u(x) = ‖x − w‖_p (+ b) over a patch. At p = ∞ every layer is 1-Lipschitz in ℓ∞
(mean shift and bias are translations), so logits g = −u certify a radius of margin/2.
"""

from __future__ import annotations

import math

import torch
from torch import nn

IDENTITY_VALUE = 10.0  # v2 `identity_val`: w[i, i mod d_in] = −10 makes ‖x − w‖∞ ≈ x_i + 10
MOMENTUM = 0.1  # running mean of the mean shift, as BatchNorm
CHUNK = 1 << 23  # elements of the (rows, neurons, d_in) difference tensor built at once


class LpDistance(torch.autograd.Function):
    """‖x_r − w_o‖_p for rows x `(N, D)` and weights w `(O, D)`, finite p, overflow-free:
    each norm is computed as m·‖d/m‖_p with m = max|d| (|d|^p overflows float32 from p ≈ 30).
    The backward pass recomputes d in chunks: ∂‖d‖_p/∂d = sign(d)·(|d|/‖d‖_p)^(p−1)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, p: float) -> torch.Tensor:
        out = torch.cat([lp_norms(x[i : i + step].unsqueeze(1) - w, p) for i, step in chunks(x, w)])
        ctx.save_for_backward(x, w, out)
        ctx.p = p
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w, out = ctx.saved_tensors
        grad_x, grad_w = torch.empty_like(x), torch.zeros_like(w)
        for i, step in chunks(x, w):
            d = x[i : i + step].unsqueeze(1) - w
            n = out[i : i + step].unsqueeze(-1).clamp_min(torch.finfo(d.dtype).tiny)
            g = d.sign() * (d.abs() / n).pow(ctx.p - 1) * grad[i : i + step].unsqueeze(-1)
            grad_x[i : i + step] = g.sum(1)
            grad_w -= g.sum(0)
        return grad_x, grad_w, None


def chunks(x: torch.Tensor, w: torch.Tensor) -> list[tuple[int, int]]:
    """(start, length) row blocks whose difference tensors stay under CHUNK elements."""
    step = max(1, CHUNK // max(w.numel(), 1))
    return [(i, min(step, len(x) - i)) for i in range(0, len(x), step)]


def lp_norms(d: torch.Tensor, p: float) -> torch.Tensor:
    """ℓp norms over the last axis, scaled by their max so no power overflows."""
    a = d.abs()
    m = a.amax(-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
    return (m * (a / m).pow(p).sum(-1, keepdim=True).pow(1 / p)).squeeze(-1)


def distance(x: torch.Tensor, w: torch.Tensor, p: float) -> torch.Tensor:
    """ℓp distances `(N, O)` between rows and weights; torch.cdist (exact) at p = ∞."""
    return torch.cdist(x, w, p=p) if p == math.inf else LpDistance.apply(x, w, p)


class DistLayer(nn.Module):
    """ℓp-distance neurons over 1-D patches (`kernel` × `stride` unfold) or dense vectors.

    Input `(B, C, T)` gives `(B, out, ⌊(T − kernel)/stride⌋ + 1)`; input `(B, D)` gives
    `(B, out)` (dense: `kernel` = 1, D = `in_channels`). Mean shift subtracts the batch mean per
    output channel in training and a running mean (momentum 0.1) in eval, without variance
    scaling; `p` is set by the training schedule and must be ∞ for any guarantee. `gain` stores
    the weights divided by it, so an optimiser's steps move them `gain`× faster (distance
    weights live on the input's scale: the reference trains them at lr 0.02).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        mean_shift: bool = True,
        bias: bool = False,
        identity_init: bool = True,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.p, self.gain = kernel, stride, math.inf, gain
        d_in = in_channels * kernel
        w = torch.randn(out_channels, d_in)
        if identity_init and d_in <= out_channels:
            rows = torch.arange(out_channels)
            w[rows, rows % d_in] = -IDENTITY_VALUE
        self.raw_weight = nn.Parameter(w / gain)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.mean_shift = mean_shift
        if mean_shift:
            self.register_buffer("running_mean", torch.zeros(out_channels))

    @property
    def weight(self) -> torch.Tensor:
        return self.raw_weight * self.gain

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """‖patch − w‖_p for every patch and neuron: `(B, out, L)` or `(B, out)`."""
        w = self.weight
        if x.dim() == 2:
            return distance(x, w, self.p)
        patches = x.unfold(2, self.kernel, self.stride)  # (B, C, L, k)
        b, c, length, k = patches.shape
        flat = patches.permute(0, 2, 1, 3).reshape(b * length, c * k)
        return distance(flat, w, self.p).view(b, length, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.distances(x)
        if self.mean_shift:
            if self.training:
                dims = (0, 2) if u.dim() == 3 else (0,)
                mean = u.mean(dims)
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach(), MOMENTUM)
            else:
                mean = self.running_mean
            u = u - (mean.view(1, -1, 1) if u.dim() == 3 else mean)
        if self.bias is not None:
            u = u + (self.bias.view(1, -1, 1) if u.dim() == 3 else self.bias)
        return u


def conv_lengths(n_samples: int, min_length: int = 16) -> list[tuple[int, int]]:
    """(kernel, stride) of the conv layers: a 2/2 stem, then 4/4 while the length is ≥ 16."""
    layers, length = [(2, 2)], (n_samples - 2) // 2 + 1
    while length >= min_length:
        layers.append((4, 4))
        length = (length - 4) // 4 + 1
    return layers


class LinfDistNet(nn.Module):
    """A pure ℓ∞-distance net for ECG: conv-distance layers that downsample by their stride
    (no pooling), then two dense distance layers; logits are negated distances.

    For 12 leads × 1000 samples and width 32: (12, 1000) → stem k2/s2 (32, 499) → k4/s4
    (32, 124) → (32, 31) → (32, 7) → flatten 224 → dense 256 → dense n_classes (bias, no mean
    shift). Identity init applies wherever d_in ≤ d_out (stem: 24 ≤ 32; dense 224 ≤ 256).
    """

    def __init__(
        self, n_leads: int, n_samples: int, n_classes: int, width: int = 32, hidden: int = 256
    ) -> None:
        super().__init__()
        if n_samples < 2:
            raise ValueError(f"records of {n_samples} samples are too short (need ≥ 2)")
        convs, c, length = [], n_leads, n_samples
        for kernel, stride in conv_lengths(n_samples):
            convs.append(DistLayer(c, width, kernel, stride))
            c, length = width, (length - kernel) // stride + 1
        self.convs = nn.Sequential(*convs)
        self.hidden = DistLayer(width * length, hidden)
        self.out = DistLayer(hidden, n_classes, mean_shift=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.out(self.hidden(self.convs(x).flatten(1)))


def set_p(net: nn.Module, p: float) -> None:
    """Set the norm of every distance layer in `net` (the ℓp relaxation schedule)."""
    for m in net.modules():
        if isinstance(m, DistLayer):
            m.p = p


def uses_linf(net: nn.Module) -> bool:
    """Whether every distance layer computes ℓ∞ distances (the certifiable setting)."""
    return all(m.p == math.inf for m in net.modules() if isinstance(m, DistLayer))


def p_schedule(r: float, p_start: float = 8.0, p_end: float = 1000.0) -> float:
    """p = p_start·(p_end/p_start)^r for r in [0, 1); ∞ once r ≥ 1 (v2: p_end ≥ 100)."""
    if r >= 1:
        return math.inf
    return p_start * math.exp(math.log(p_end / p_start) * max(r, 0.0))


def worst_margins(logits: torch.Tensor, y: torch.Tensor, eps: float, task: str) -> torch.Tensor:
    """How far each output can cross its decision boundary within ℓ∞ radius ε (model units).

    Multiclass: m_j = g_j − g_y + 2ε for j ≠ y, 0 at y. Multilabel (each label decided by the
    sign of its 1-Lipschitz logit): m_c = ε − s_c·g_c with s_c = ±1 the true label's sign.
    """
    if task == "multilabel":
        return eps - (2 * y.float() - 1) * logits
    at_y = logits.gather(1, y.long().view(-1, 1))
    m = logits - at_y + 2 * eps
    return m.scatter(1, y.long().view(-1, 1), 0.0)


def hinge_loss(
    logits: torch.Tensor, y: torch.Tensor, eps: float, task: str, mix: float = 0.75
) -> torch.Tensor:
    """v1 hinge: mix·mean_b max(max_j m_j, 0) + (1 − mix)·mean(relu(m))."""
    m = worst_margins(logits, y, eps, task)
    return mix * m.amax(1).clamp_min(0).mean() + (1 - mix) * m.clamp_min(0).mean()


def certified_radius(logits: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, ℓ∞ radius in model units) of a 1-Lipschitz net's logits.

    Multiclass: argmax and (top − runner-up)/2. Multilabel: labels with g > 0 and min_c |g_c|.
    """
    if task == "multilabel":
        return (logits > 0).long(), logits.abs().amin(1)
    top2 = logits.topk(2, dim=1).values
    return logits.argmax(1), ((top2[:, 0] - top2[:, 1]) / 2).clamp_min(0)
