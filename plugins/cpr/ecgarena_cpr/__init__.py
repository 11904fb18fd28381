"""CPR — Causal Physiological Representation learning (Jia & Liao, arXiv 2512.24564), with the
loss forms and weights METHODS.md §9 proposes (the paper's exact forms were not found).

Training losses on standardised signals: classification on z_c; masked reconstruction (+ a
weighted background term) with the physiological mask M; orthogonality of batch-centred,
normalised z_c and z_s; latent-swap consistency (decode z_c with another record's z_s, ask E_c
to recover z_c and the head the label); single-step adversarial feature invariance (FGSM in mV,
‖E_c(x′) − E_c(x)‖²). Variants (the seed's ablation rows, as interpreted here):
`full`; `no-consistency` (no swap term); `naive` (no mask prior, no swap, no invariance);
`resnet-mask` (content pathway only: classifier + masked reconstruction from z_c).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import ecgarena
import numpy as np
import torch
import torch.nn.functional as F
from ecgarena.gradients import fgsm
from ecgarena.protocols import Classifier, ClassifierInfo, FitContext
from ecgarena.specs import ThreatModel
from ecgarena.training import fit_classifier, task_loss
from pydantic import BaseModel, ConfigDict, Field

from .masks import masks_for
from .model import CPRNet

Variant = Literal["full", "no-consistency", "naive", "resnet-mask"]


def orthogonality(z_c: torch.Tensor, z_s: torch.Tensor) -> torch.Tensor:
    """‖Ẑ_cᵀẐ_s / B‖²_F on batch-centred, ℓ2-normalised latents."""
    a = F.normalize(z_c - z_c.mean(0), dim=1)
    b = F.normalize(z_s - z_s.mean(0), dim=1)
    return ((a.T @ b) / len(a)).pow(2).sum()


def masked_reconstruction(
    x: torch.Tensor, x_hat: torch.Tensor, mask: torch.Tensor, background: float
) -> torch.Tensor:
    """Mean squared error inside M plus `background` × the mean squared error outside."""
    err = (x - x_hat) ** 2
    m = mask.expand_as(err)
    inside = (err * m).sum() / m.sum().clamp_min(1.0)
    outside = (err * (1 - m)).sum() / (1 - m).sum().clamp_min(1.0)
    return inside + background * outside


class CPRDefense(BaseModel):
    """Dual-pathway autoencoder with a physiological mask; deployed as E_c + head (1 pass)."""

    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str] = "cpr"
    kind: ClassVar[str] = "architecture"

    variant: Variant = "full"
    latent: int = Field(64, ge=4, le=1024, description="size of z_c and z_s")
    width: int = Field(16, ge=4, le=256, description="first-stage channels of each encoder")
    w_rec: float = Field(1.0, ge=0, description="masked reconstruction weight")
    w_background: float = Field(0.1, ge=0, description="weight of the error outside M")
    w_orth: float = Field(0.1, ge=0, description="orthogonality weight")
    w_swap: float = Field(0.5, ge=0, description="latent-swap consistency weight")
    w_inv: float = Field(0.5, ge=0, description="adversarial feature invariance weight")
    inv_eps_mv: float = Field(0.05, gt=0, le=5, description="FGSM budget of the invariance term")

    def build(self, ctx: FitContext) -> Classifier:
        info = ctx.info
        net = CPRNet(len(info.leads), info.n_samples, len(info.classes), self.latent, self.width)
        notes = f"CPR {self.variant}: E_c + head at inference (one forward pass)"
        return Classifier(net, info=ClassifierInfo(notes=notes))

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        info, task = ctx.info, ctx.info.task
        if self.variant == "naive":
            masks = np.ones((len(ctx.train), 1, info.n_samples), np.float32)
        else:
            masks = masks_for(ctx.train.x, info.leads, info.fs, ctx.cache_dir)
        threat = ThreatModel(norm="linf", budget_mv=self.inv_eps_mv)
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        style_path = self.variant != "resnet-mask"
        swap = self.variant == "full"
        invariance = self.variant in ("full", "no-consistency")

        def loss(
            clf: Classifier,
            x: torch.Tensor,
            y: torch.Tensor,
            mask: torch.Tensor,
            class_weight: torch.Tensor | None = None,  # the core's class balance (TrainSpec)
        ):
            net: CPRNet = clf.net
            xs = clf.standardize(x)
            z_c = net.content(xs)
            z_s = net.style(xs) if style_path else torch.zeros_like(z_c)
            total = task_loss(net.head(z_c), y, task, class_weight)
            x_hat = net.decoder(torch.cat([z_c, z_s], 1))
            total = total + self.w_rec * masked_reconstruction(xs, x_hat, mask, self.w_background)
            if style_path:
                total = total + self.w_orth * orthogonality(z_c, z_s)
            if swap and len(x) > 1:
                perm = torch.randperm(len(x), generator=gen, device=x.device)
                z_t = net.content(net.decoder(torch.cat([z_c, z_s[perm]], 1)))
                consistency = F.mse_loss(z_t, z_c.detach()) + task_loss(
                    net.head(z_t), y, task, class_weight
                )
                total = total + self.w_swap * consistency
            if invariance:
                delta = fgsm(clf, x, y, threat, task).detach()
                z_adv = net.content(clf.standardize(x + delta))
                total = total + self.w_inv * F.mse_loss(z_adv, z_c)
            return total

        summary = fit_classifier(
            classifier, ctx, loss=loss, aux=masks, description=f"train cpr ({self.variant})"
        )
        return {**summary, "mask_coverage": float(masks.mean())}


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    register(CPRDefense)
