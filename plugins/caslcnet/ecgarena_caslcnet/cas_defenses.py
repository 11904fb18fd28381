"""The defenses on the `caslcnet` model: CAS adversarial training (Bai et al. ICLR 2021) and
CASLCNet (Chen, Si et al., Sensors 2024, Eqs. 8–9; METHODS.md §7 and its corrections).

CASLCNet's ε is in the paper's units: each lead scaled to [−1, 1] by its maximum. Our signals
are in mV, so `eps_paper` converts once, per lead, with the training data's maximum:
ε_mV[l] = ε_paper × max_{records, t} |x_train[l]| (the recipe states the values it gets).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from ecgarena import (
    Classifier,
    ClassifierInfo,
    FitContext,
    ThreatModel,
    UserError,
    fit_classifier,
    random_in_ball,
)
from pydantic import Field, model_validator

from .base import AdversarialTraining, require_net
from .cas import CASLCNet, cas_outputs
from .losses import mart_example, mart_loss, sign_ascent, task_ce

SCALE_CHUNK = 512  # records per chunk when scanning the training data for max |x|


def cas_loss(
    clf: Classifier, x: torch.Tensor, y: torch.Tensor, task: str, beta: float
) -> torch.Tensor:
    """CAS objective: task loss of the main head + β·mean over CAS blocks of the aux-head loss."""
    logits, aux = cas_outputs(clf, x, y)
    return task_ce(logits, y, task) + beta * torch.stack([task_ce(a, y, task) for a in aux]).mean()


def lead_max_mv(x: np.ndarray) -> np.ndarray:
    """Per-lead max |x| over all records and samples (mV): the paper's [−1, 1] scale."""
    out = np.zeros(x.shape[1])
    for i in range(0, len(x), SCALE_CHUNK):
        out = np.maximum(out, np.abs(np.asarray(x[i : i + SCALE_CHUNK])).max(axis=(0, 2)))
    return out


def clean_mse(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Eq. 9's (1/n)·Σ_i ‖y_i − h_θ(x_i)‖²: y one-hot (multiclass) or multi-hot (multilabel),
    h the softmax (multiclass) or per-label sigmoid (multilabel) probabilities; the squared
    error is summed over classes and averaged over the n records (the Brier score)."""
    if task == "multilabel":
        return ((y.float() - logits.sigmoid()) ** 2).sum(1).mean()
    target = torch.nn.functional.one_hot(y.long(), logits.shape[1]).to(logits.dtype)
    return ((target - logits.softmax(1)) ** 2).sum(1).mean()


def caslcnet_loss(
    clean: tuple[torch.Tensor, list[torch.Tensor]],
    adv: tuple[torch.Tensor, list[torch.Tensor]],
    y: torch.Tensor,
    task: str,
    alpha: float,
    beta: float,
    mse: bool,
) -> torch.Tensor:
    """Eq. 8: L_MART(x, x', y) + (α/R)·Σ_r L_MART^CAS,r(x, x', y), MART (weight β) on the main
    head and on each of the R auxiliary heads; with `mse`, Eq. 9 adds the clean-input MSE."""
    (logits, aux), (logits_adv, aux_adv) = clean, adv
    heads = [mart_loss(a, b, y, task, beta) for a, b in zip(aux, aux_adv)]
    loss = mart_loss(logits, logits_adv, y, task, beta) + alpha * torch.stack(heads).mean()
    return loss + clean_mse(logits, y, task) if mse else loss


class CAS(AdversarialTraining):
    """CAS adversarial training (Bai et al. ICLR 2021): CE + β·CAS loss on PGD examples that
    maximise the same loss (uniform random start, eval mode); needs a model with CAS blocks."""

    name: ClassVar[str] = "cas"
    beta: float = Field(2.0, ge=0, le=100, description="weight of the CAS auxiliary loss")

    def build(self, ctx: FitContext) -> Classifier:
        net = ctx.build_net()
        require_net(net, CASLCNet, self.name, "caslcnet")
        return Classifier(net, info=ClassifierInfo(notes=self.notes()))

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        task, gen = ctx.info.task, self.generator(ctx)
        threat = ThreatModel(norm="linf", budget_mv=self.eps_mv)

        def loss(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            start = random_in_ball(tuple(x.shape), threat, gen, x.device)
            adv = sign_ascent(
                clf,
                x,
                lambda xa: cas_loss(clf, xa, y, task, self.beta),
                self.eps_mv,
                self.step,
                self.steps,
                start,
            )
            return cas_loss(clf, adv, y, task, self.beta)

        return fit_classifier(classifier, ctx, loss=loss, description=f"train {self.name}")


class CASLCNetDefense(CAS):
    """CASLCNet (Eq. 8): MART on the main ℓ∞-distance head and on every CAS auxiliary head,
    L_MART(x, x', y) + (α/R)·Σ_r L_MART^CAS,r, α = 2; MART's β (the paper's λ, not reported)
    is 6, our choice. With `clean_mse` on (the paper's CPSC2018 setting) Eq. 9 adds
    (1/n)Σ‖y_i − h_θ(x_i)‖² on the clean inputs (see `clean_mse`). The inner attack is the
    paper's PGD on the main head's CE: `steps` = 10 sign steps of ε/10, eval mode (CAS masks
    from ŷ), from MART's x + 0.001·N(0, 1) start (our choice of start).

    ε is `eps_mv` (mV, one value for every lead), or `eps_paper` in the paper's units, turned
    into mV per lead by the training data's per-lead max |x| (module docstring). Only the head
    is an ℓ∞-distance net: its margin/2 bound holds in feature space, not for the input, so the
    classifier certifies nothing (`ClassifierInfo.certifies` is False and there is no
    `certify`)."""

    name: ClassVar[str] = "caslcnet"
    step_fraction: ClassVar[float] = 0.1  # the paper: step ε/10 (range/10)
    step_mv: float | None = Field(
        None, gt=0, le=5, description="inner-attack step (mV); default ε/10 (per lead)"
    )
    beta: float = Field(2.0, ge=0, le=100, description="α of Eq. 8: weight of the CAS heads")
    mart_beta: float = Field(6.0, ge=0, le=100, description="MART's robust-term weight (λ)")
    eps_paper: float | dict[str, float] | None = Field(
        None,
        description="ε in the paper's units (each lead scaled to [−1, 1] by its maximum): "
        "ε_mV = ε_paper × per-lead max |x| of the training data; a table gives it per dataset "
        "name (e.g. {mitdb-beats = 0.1, cpsc2018 = 0.01}); overrides eps_mv",
    )
    clean_mse: bool | list[str] = Field(
        False,
        description="Eq. 9: add the clean-input MSE (one-hot y vs softmax); a list turns it on "
        "only on these dataset names (the paper: ['cpsc2018'])",
    )

    @model_validator(mode="after")
    def _one_budget(self) -> CASLCNetDefense:
        if self.eps_paper is not None and "eps_mv" in self.model_fields_set:
            raise ValueError("give eps_mv (mV) or eps_paper (the paper's units), not both")
        values = self.eps_paper.values() if isinstance(self.eps_paper, dict) else [self.eps_paper]
        if any(v is not None and not 0 < v <= 1 for v in values):
            raise ValueError(f"eps_paper must lie in (0, 1] (leads span [−1, 1]): {self.eps_paper}")
        return self

    def paper_eps(self, dataset: str) -> float | None:
        """ε in paper units for `dataset`, None when the budget is `eps_mv`."""
        if not isinstance(self.eps_paper, dict):
            return self.eps_paper
        if dataset not in self.eps_paper:
            raise UserError(
                f"defense {self.name!r}: eps_paper has no value for dataset {dataset!r} "
                f"(it has {sorted(self.eps_paper)})"
            )
        return self.eps_paper[dataset]

    def uses_mse(self, dataset: str) -> bool:
        """Whether Eq. 9's clean MSE term is on for `dataset`."""
        return self.clean_mse if isinstance(self.clean_mse, bool) else dataset in self.clean_mse

    def budget_mv(self, ctx: FitContext) -> tuple[np.ndarray, np.ndarray]:
        """(ε, step) per lead in mV: from `eps_paper` and the training data, else `eps_mv`."""
        paper = self.paper_eps(ctx.info.name)
        leads = ctx.train.x.shape[1]
        eps = paper * lead_max_mv(ctx.train.x) if paper is not None else np.full(leads, self.eps_mv)
        step = np.full(leads, self.step_mv) if self.step_mv is not None else eps * 0.1
        return eps, step

    def notes(self, ctx: FitContext | None = None) -> str:
        mse = ctx is not None and self.uses_mse(ctx.info.name)
        paper = None if ctx is None else self.paper_eps(ctx.info.name)
        if paper is None:
            budget = f"ε {self.eps_mv:g} mV"
        else:
            mv = ", ".join(f"{e:.4g}" for e in self.budget_mv(ctx)[0])
            budget = f"ε {paper:g} paper units = {mv} mV per lead (× max |x_train|)"
        step = "ε/10" if self.step_mv is None else f"{self.step_mv:g} mV"
        budget += f", {self.steps} steps of {step}"
        return (
            f"{self.name} training (MART on the main and CAS heads, α {self.beta:g}, "
            f"β {self.mart_beta:g}{', + Eq. 9 clean MSE' if mse else ''}), {budget}; "
            "ℓ∞-dist head only: no input-space certificate"
        )

    def build(self, ctx: FitContext) -> Classifier:
        net = ctx.build_net()
        require_net(net, CASLCNet, self.name, "caslcnet")
        return Classifier(net, info=ClassifierInfo(certifies=False, notes=self.notes(ctx)))

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        task, gen, mse = ctx.info.task, self.generator(ctx), self.uses_mse(ctx.info.name)
        eps_np, step_np = self.budget_mv(ctx)
        eps, step = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1) for v in (eps_np, step_np))

        def loss(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            std = float(clf.standardize.std)
            e, s = eps.to(x.device), step.to(x.device)
            adv = mart_example(clf, x, y, task, e, s, self.steps, std, gen)
            clean, attacked = cas_outputs(clf, x, y), cas_outputs(clf, adv, y)
            return caslcnet_loss(clean, attacked, y, task, self.beta, self.mart_beta, mse)

        summary = fit_classifier(classifier, ctx, loss=loss, description=f"train {self.name}")
        summary["eps_mv_per_lead"] = [float(v) for v in eps_np]
        summary["step_mv_per_lead"] = [float(v) for v in step_np]
        summary["clean_mse"] = mse
        return summary
