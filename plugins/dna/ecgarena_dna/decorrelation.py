"""DNA's decorrelation loss: how well a random projection of one member's features linearly
predicts another's (log SS_tot − log SS_res ≈ −log(1 − R²)), per pair of members (§8)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

ETA = 1e-5


def regression_term(
    regressor: torch.Tensor,
    target: torch.Tensor,
    projection_dim: int,
    generator: torch.Generator | None = None,
    eta: float = ETA,
) -> torch.Tensor:
    """log(SS_tot+η) − log(SS_res+η) of the OLS fit (pinv) of `target` on `regressor`·R plus an
    intercept, R ~ N(0, 1)/√D of shape D×k drawn fresh; 0 when rows < k+1 (under-determined)."""
    rows, dim = regressor.shape
    if rows < projection_dim + 1:
        return regressor.new_zeros(())
    a, b = regressor.double(), target.double()  # float64: pinv and SS_res near 0 stay accurate
    r = torch.randn(dim, projection_dim, generator=generator, device=a.device, dtype=a.dtype)
    design = torch.cat([a @ (r / math.sqrt(dim)), a.new_ones(rows, 1)], dim=1)
    fitted = design @ (torch.linalg.pinv(design) @ b)
    ss_res = (b - fitted).pow(2).sum()
    ss_tot = (b - b.mean(0)).pow(2).sum()
    return (torch.log(ss_tot + eta) - torch.log(ss_res + eta)).to(regressor.dtype)


def decorrelation_terms(
    current: torch.Tensor,
    earlier: Sequence[torch.Tensor],
    projection_dim: int,
    generator: torch.Generator | None = None,
    eta: float = ETA,
) -> torch.Tensor:
    """One term per earlier member. Each pair draws its own swap (p = 0.5: regress the current
    features on the stored ones instead) into local names, so every term keeps the current
    features: the reference's reassignment of X inside the loop lost that gradient."""
    if not earlier:
        return current.new_zeros(0)
    swaps = torch.rand(len(earlier), generator=generator, device=current.device) < 0.5
    terms = []
    for stored, swap in zip(earlier, swaps.tolist()):
        regressor, target = (stored, current) if swap else (current, stored)
        terms.append(regression_term(regressor, target, projection_dim, generator, eta))
    return torch.stack(terms)


def decorrelation_loss(
    current: torch.Tensor,
    earlier: Sequence[torch.Tensor],
    projection_dim: int,
    generator: torch.Generator | None = None,
    eta: float = ETA,
) -> torch.Tensor:
    """L_dec: the mean of `decorrelation_terms` over the earlier members (0 with none)."""
    terms = decorrelation_terms(current, earlier, projection_dim, generator, eta)
    return terms.mean() if len(terms) else current.new_zeros(())
