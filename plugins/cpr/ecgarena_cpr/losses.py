"""CPR's loss terms (Jia & Liao, §3.1; METHODS.md §9 "Corrections").

The paper's forms, on the standardised signal x with the physiological mask M:

- Eq. 1, reconstruction: ‖(x − D(z_c, z_s))⊙M‖² + α‖(x − D(0, z_s))⊙(1−M)‖² — the background
  (outside M) is decoded from z_s alone, with z_c set to 0, so z_s is forced to carry it;
- regularisation: ‖z_cᵀ z_s‖²_F;
- latent-swap consistency: ‖E_c(D(z_c, z̃_s)) − z_c‖², z̃_s from another record of the batch, with
  no label term on the swapped signal;
- adversarial invariance: ‖E_c(x) − E_c(x_adv)‖², x_adv from one gradient step.

Our choices (the paper does not give them): each squared norm is a mean over the elements it
covers (inside M, outside M, latent entries), so the weights do not scale with T or the batch;
the regulariser uses batch-centred, ℓ2-normalised latents divided by the batch size; the swap
target z_c is detached (a stop-gradient, so the term trains E_c and D to keep content, not z_c to
move towards its swapped re-encoding); the label term on the swapped signal exists only as the
opt-in `label_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ecgarena import task_loss
from torch import nn


def orthogonality(z_c: torch.Tensor, z_s: torch.Tensor) -> torch.Tensor:
    """‖Ẑ_cᵀẐ_s / B‖²_F on batch-centred, ℓ2-normalised latents (the paper's ‖z_cᵀ z_s‖²_F with
    our normalisation)."""
    a = F.normalize(z_c - z_c.mean(0), dim=1)
    b = F.normalize(z_s - z_s.mean(0), dim=1)
    return ((a.T @ b) / len(a)).pow(2).sum()


def masked_reconstruction(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    x_background: torch.Tensor | None,
    mask: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """Eq. 1 given both decodings: the mean squared error of `x_hat` = D(z_c, z_s) inside M plus
    `alpha` × that of `x_background` = D(0, z_s) outside M (no background term when None)."""
    m = mask.expand_as(x)
    inside = (((x - x_hat) ** 2) * m).sum() / m.sum().clamp_min(1.0)
    if x_background is None or alpha == 0:
        return inside
    outside = (((x - x_background) ** 2) * (1 - m)).sum() / (1 - m).sum().clamp_min(1.0)
    return inside + alpha * outside


def reconstruction(
    decoder: nn.Module,
    x: torch.Tensor,
    z_c: torch.Tensor,
    z_s: torch.Tensor,
    mask: torch.Tensor,
    alpha: float,
    background: bool = True,
) -> torch.Tensor:
    """Eq. 1: decode [z_c, z_s] for the term inside M and, in a separate decoder call (so that
    no batch statistic carries z_c into it), [0, z_s] for the background term outside M.
    `background=False` drops the background term (a variant without a style pathway)."""
    x_hat = decoder(torch.cat([z_c, z_s], 1))
    x_bg = decoder(torch.cat([torch.zeros_like(z_c), z_s], 1)) if background else None
    return masked_reconstruction(x, x_hat, x_bg, mask, alpha)


def swap_consistency(
    net: nn.Module,
    z_c: torch.Tensor,
    z_s: torch.Tensor,
    perm: torch.Tensor,
    y: torch.Tensor,
    task: str,
    class_weight: torch.Tensor | None = None,
    label_loss: bool = False,
) -> torch.Tensor:
    """‖E_c(D(z_c, z_s[perm])) − z_c‖² (mean over entries, z_c detached). With `label_loss` (our
    addition, not the paper's) the head's task loss on the swapped signal against `y` is added;
    without it `y` is not read."""
    z_t = net.content(net.decoder(torch.cat([z_c, z_s[perm]], 1)))
    out = F.mse_loss(z_t, z_c.detach())
    if label_loss:
        out = out + task_loss(net.head(z_t), y, task, class_weight)
    return out


def feature_invariance(z_c: torch.Tensor, z_adv: torch.Tensor) -> torch.Tensor:
    """‖E_c(x) − E_c(x_adv)‖² as a mean over latent entries."""
    return F.mse_loss(z_adv, z_c)
