"""The `scar` attack: one band-limited universal perturbation with per-lead amplitude budgets,
fitted on the training split (or val) and evaluated on the attacked records.

Every update is band-limited (15 Hz). The paper's element-wise projection (`clip`, default) can
put energy back above the band, so only the band-keeping projections (`clip-filter`,
`rescale`) declare `band_hz` to the core's audit (see `universal.py`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from ecgarena import (
    AttackContext,
    Attacked,
    Classifier,
    PrecordialProfile,
    Split,
    ThreatModel,
    flips,
    predict_logits,
    progress,
    to_tensor,
)
from pydantic import Field

from .universal import BandOptions, universal_grad


class SCARAttack(BandOptions, PrecordialProfile):
    """SCAR: universal, lead-budgeted perturbation by normalised SGD on band-limited (15 Hz)
    updates; the band is declared only under a band-keeping projection."""

    name: ClassVar[str] = "scar"
    default_eps_mv: ClassVar[float] = 0.2  # V2–V6; limb leads and V1 get 0.1 mV (the seed's)

    epochs: int = Field(10, ge=1, le=1000, description="passes over the fitting split")
    batch_size: int = Field(32, ge=1, le=4096)
    target_fooling_rate: float = Field(
        0.8, gt=0, le=1, description="stop once the held-out flip rate reaches it"
    )
    fit_split: Literal["train", "val"] = Field("train", description="split v is fitted on")
    seed: int | None = Field(None, ge=0, description="shuffling seed (default: the run's)")

    def threat_model(self, budget_mv: float | list[float]) -> ThreatModel:
        return ThreatModel(
            norm="linf",
            budget_mv=budget_mv,
            band_hz=self.band_hz,
            universal=True,
        )

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: AttackContext,
    ) -> Attacked:
        fit, held = ctx.fitting(self.fit_split, x, y)
        return self.fit(classifier, fit, held, threat, ctx)

    def fit(
        self,
        clf: Classifier,
        data: Split,
        held: Split | None,
        threat: ThreatModel,
        ctx: AttackContext,
    ) -> Attacked:
        """Normalised SGD over `data`; keeps the v with the best held-out flip rate, and
        reports how the fit went: epochs, held-out flip rate per epoch, the one kept."""
        info, device = ctx.info, ctx.device
        kernel = self.kernel(info.fs)
        rng = np.random.default_rng(ctx.seed(self.seed))
        v = torch.zeros((1, len(info.leads), data.x.shape[-1]), device=device)
        check = held if held is not None and len(held) else data
        clean = predict_logits(clf, check.x, device)
        best, best_rate, history = v, -1.0, []
        with progress() as bar:
            task = bar.add_task(f"fit {self.name}", total=self.epochs, info="")
            for _ in range(self.epochs):
                order = rng.permutation(len(data))
                for i in range(0, len(order), self.batch_size):
                    idx = np.sort(order[i : i + self.batch_size])
                    xb = to_tensor(data.x[idx], device).float()
                    yb = to_tensor(data.y[idx], device)
                    grad = universal_grad(clf, xb, yb, v, info.task)
                    v = self.update(v, grad, threat, info.fs, kernel)
                adv = predict_logits(clf, check.x, device, delta=v)
                rate = float(flips(clean, adv, info.task).mean())
                history.append(round(rate, 4))
                if rate >= best_rate:
                    best, best_rate = v, rate
                bar.update(task, advance=1, info=f"held-out flip rate {rate:.3f}")
                if rate >= self.target_fooling_rate:
                    break
        report = {
            "fit_split": self.fit_split if held is not None else "attacked records",
            "held_out_flip_rate": history,
            "kept_flip_rate": round(best_rate, 4),
            "epochs_run": len(history),
            "projection": self.projection,
            "band_hz_declared": self.band_hz,
        }
        return Attacked(best, report)
