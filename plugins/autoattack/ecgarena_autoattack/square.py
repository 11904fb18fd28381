"""Square Attack (Andriushchenko et al., ECCV 2020), score-based and gradient-free, for 1-D
multi-lead signals in mV.

Everything runs under `torch.no_grad()`: only logits are read. The loss is the margin
(`ecgarena.margin`: z_y − max_{j≠y} z_j, multilabel the smallest signed logit); a
candidate is kept when it lowers a record's margin, and a record stops being queried once its
margin is negative (misclassified). Queries count forward evaluations per record, the
initialisation included, so a record costs at most `n_queries`.

The 1-D adaptation (our choice; the paper works on images (C, H, W)):

- The leads play the part of the image rows *and* the colour channels: a "vertical stripe"
  is one time sample across all leads.
- ℓ∞ initialisation: one random sign per time sample shared by all leads, shape (B, 1, T),
  scaled per lead by that lead's ε — δ sits on a corner of the per-lead box.
- ℓ∞ step: a "square" of side s becomes a time window of s = max(1, round(p·T)) samples
  (the same share p of the record as the paper's s² = p·H·W) at a random position (drawn per
  record), covering all leads, set to one random ±ε_l per lead (redrawn, a few times at most,
  when it would not change anything).
- ℓ2 (the paper's Algorithm 3 in 1-D): the pseudo-Gaussian square becomes a 1-D bump
  Σ_{r ≥ |i − c|} 1/(r + 1)² over a window of length n, and the "meta" perturbation a positive
  bump on the first half of the window and a negative one on the second half. The
  initialisation tiles the record with ⌊T/25⌋-sample windows (25 tiles: the paper's 5 × 5 grid,
  the same share of the record per tile), each a meta perturbation with a random sign per lead,
  rescaled onto the sphere. Each step takes two random windows of s = max(3, round(p·T))
  samples (odd), moves the mass of both into the first (its normalised old content plus a new
  signed meta perturbation, rescaled to √(ν + ‖δ_{W1∪W2}‖²) per lead, ν the budget left: per
  lead for per-lead budgets, divided evenly over the leads for a whole-record budget), zeroes
  the second and rescales δ onto the sphere.
- The p schedule is the paper's: p halves at iterations 10, 50, 200, 500, 1000, 2000, 4000,
  6000, 8000 of 10 000, rescaled to `n_queries`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ecgarena import ThreatModel, l2_norms, lead_budget, margin, project
from torch import nn

SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, it: int, n_iters: int) -> float:
    """The share of the record changed at iteration `it` (the paper's piecewise-constant p)."""
    scaled = int(it / max(n_iters, 1) * 10_000)
    return p_init / 2 ** sum(scaled > m for m in SCHEDULE)


@dataclass
class SquareResult:
    """Per record: δ, its final margin, whether it misclassifies, and the queries spent."""

    delta: torch.Tensor
    margin: torch.Tensor
    fooled: torch.Tensor
    queries: torch.Tensor


def _signs(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    draw = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return (draw * 2 - 1).to(like.dtype)


def _starts(n: int, t: int, s: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randint(0, t - s + 1, (n,), generator=generator, device=device)


def _window(starts: torch.Tensor, s: int, t: int) -> torch.Tensor:
    """A `(n, 1, T)` boolean mask of the windows [start, start + s)."""
    pos = torch.arange(t, device=starts.device).view(1, 1, t)
    first = starts.view(-1, 1, 1)
    return (pos >= first) & (pos < first + s)


def bump(n: int, like: torch.Tensor) -> torch.Tensor:
    """The 1-D pseudo-Gaussian: Σ_{r=|i−c|}^{n//2} 1/(r+1)² at sample i, c = n//2, unit ℓ2."""
    if n <= 0:
        return like.new_zeros(0)
    dist = (torch.arange(n, device=like.device) - n // 2).abs()
    weights = 1.0 / (torch.arange(n // 2 + 1, device=like.device, dtype=like.dtype) + 1) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[d] = Σ_{r ≥ d} weights[r]
    v = tail[dist]
    return v / v.norm().clamp_min(1e-12)


def meta_bump(n: int, like: torch.Tensor) -> torch.Tensor:
    """A positive bump on the first half of the window and a negative one on the second,
    unit ℓ2 (the paper's meta pseudo-Gaussian with its two sub-rectangles, in 1-D)."""
    v = torch.cat([bump(n // 2, like), -bump(n - n // 2, like)])
    return v / v.norm().clamp_min(1e-12)


def _onto_sphere(delta: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Rescale δ to norm ε exactly (per lead for per-lead budgets), then project for safety."""
    per_lead = isinstance(threat.budget_mv, list)
    eps = lead_budget(threat, delta.shape[1], delta)
    bound = eps if per_lead else eps[:, :1]
    scaled = delta * (bound / l2_norms(delta, per_lead).clamp_min(1e-12))
    return project(scaled, threat)


def _query(model, x, delta, y, task) -> torch.Tensor:
    return margin(model(x + delta), y, task)


def run_square(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    task: str,
    *,
    n_queries: int,
    p_init: float,
    generator: torch.Generator,
) -> SquareResult:
    """Square Attack on every record of `x` (ℓ∞ or ℓ2, per threat.norm); gradient-free."""
    with torch.no_grad():
        if not any(threat.lead_budgets(x.shape[1])):  # nothing to search: one query
            m = _query(model, x, torch.zeros_like(x), y, task)
            ones = torch.ones(len(x), dtype=torch.long, device=x.device)
            return SquareResult(torch.zeros_like(x), m, m < 0, ones)
        if threat.norm == "linf":
            return _square_linf(model, x, y, threat, task, n_queries, p_init, generator)
        return _square_l2(model, x, y, threat, task, n_queries, p_init, generator)


def _square_linf(model, x, y, threat, task, n_queries, p_init, generator) -> SquareResult:
    b, leads, t = x.shape
    eps = lead_budget(threat, leads, x)
    delta = _signs((b, 1, t), generator, x) * eps
    m = _query(model, x, delta, y, task)
    queries = torch.ones(b, dtype=torch.long, device=x.device)
    for it in range(1, n_queries):
        active = (m >= 0).nonzero().flatten()
        if active.numel() == 0:
            break
        n = active.numel()
        s = min(t, max(1, round(p_schedule(p_init, it, n_queries) * t)))
        window = _window(_starts(n, t, s, generator, x.device), s, t)
        cur = delta[active]
        values = _signs((n, leads, 1), generator, x) * eps
        for _ in range(8):  # redraw signs that would leave the window as it is
            same = ((cur - values).abs() * window).amax(dim=(1, 2)) <= 1e-12
            if not same.any():
                break
            values = torch.where(
                same.view(-1, 1, 1), _signs((n, leads, 1), generator, x) * eps, values
            )
        cand = torch.where(window, values, cur)
        m_new = _query(model, x[active], cand, y[active], task)
        queries[active] += 1
        better = m_new < m[active]
        delta[active[better]] = cand[better]
        m[active[better]] = m_new[better]
    return SquareResult(project(delta, threat), m, m < 0, queries)


def _square_l2(model, x, y, threat, task, n_queries, p_init, generator) -> SquareResult:
    b, leads, t = x.shape
    per_lead = isinstance(threat.budget_mv, list)
    eps = lead_budget(threat, leads, x)
    # initialisation: 25 tiles, each a signed meta bump per lead
    tile = max(t // 25, 1)
    tiles = t // tile
    offset = (t - tiles * tile) // 2
    pattern = meta_bump(tile, x)
    delta = torch.zeros_like(x)
    for j in range(tiles):
        a = offset + j * tile
        delta[:, :, a : a + tile] = pattern * _signs((b, leads, 1), generator, x)
    delta = _onto_sphere(delta, threat)
    m = _query(model, x, delta, y, task)
    queries = torch.ones(b, dtype=torch.long, device=x.device)
    for it in range(1, n_queries):
        active = (m >= 0).nonzero().flatten()
        if active.numel() == 0:
            break
        n = active.numel()
        s = max(3, round(p_schedule(p_init, it, n_queries) * t))
        s = min(s + (s % 2 == 0), t)
        first = _starts(n, t, s, generator, x.device)
        w1 = _window(first, s, t)
        w2 = _window(_starts(n, t, s, generator, x.device), s, t)
        cur = delta[active]
        idx = (first.view(-1, 1) + torch.arange(s, device=x.device)).unsqueeze(1)
        idx = idx.expand(n, leads, s)
        old = cur.gather(2, idx)
        old = old / old.norm(dim=2, keepdim=True).clamp_min(1e-10)
        union = (cur * (w1 | w2)).norm(dim=2, keepdim=True)
        if per_lead:
            left = (eps**2 - cur.norm(dim=2, keepdim=True) ** 2).clamp_min(0)
        else:
            left = (eps[:, :1] ** 2 - l2_norms(cur, False) ** 2).clamp_min(0) / leads
        new = meta_bump(s, x).view(1, 1, s) * _signs((n, leads, 1), generator, x) + old
        new = new / new.norm(dim=2, keepdim=True).clamp_min(1e-12) * (left + union**2).sqrt()
        cand = cur.masked_fill(w2, 0.0).scatter(2, idx, new)
        cand = _onto_sphere(cand, threat)
        m_new = _query(model, x[active], cand, y[active], task)
        queries[active] += 1
        better = m_new < m[active]
        delta[active[better]] = cand[better]
        m[active[better]] = m_new[better]
    return SquareResult(project(delta, threat), m, m < 0, queries)
