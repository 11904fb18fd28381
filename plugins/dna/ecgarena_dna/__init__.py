"""DNA — Decorrelative Network Architecture (Wiedeman & Wang, Patterns 2024; METHODS.md §8):
an ensemble whose members are trained one after another, each penalised for features that a
random linear map of an earlier member's stored features can predict, optionally on
complementary Fourier bands of the input.

Variants: `cor` (independent members, CE only), `dec` (CE + λ·L_dec), `fcor` / `fdec` (the same
with Fourier inputs). As the paper and its `train/train_dec.py`: member 0 is the base model (CE
only, the raw signal); in fcor/fdec filter 1 goes to member 1 and filter 2 to member 2 (member
i ≥ 1 on band mask (i − 1) mod 2); λ = 0.2 and projection r = 50. The paper's full scale is
Adam lr 1e-3, batch 80, 200 epochs with the best-validation checkpoint (recipes/dna.toml).
Members keep their best validation epoch by the core's score (AUROC or F1), not validation loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Literal

import ecgarena
import numpy as np
import torch
from ecgarena import (
    ClassifierInfo,
    FitContext,
    Options,
    UserError,
    eval_mode,
    fit_classifier,
    predict_logits,
    task_loss,
    to_tensor,
    validation_score,
)
from pydantic import Field

from .decorrelation import decorrelation_loss
from .ensemble import DNAEnsemble, Member, require_linear_head
from .ensemble_metrics import mutual_information
from .fourier import band_masks

__all__ = ["DNA", "DNAEnsemble", "Member", "mutual_information"]

Variant = Literal["cor", "dec", "fcor", "fdec"]
SUMMARY_KEYS = ("epochs_run", "best_epoch", "best_val_score", "seconds")


@torch.no_grad()
def member_features(member: Member, x: np.ndarray, device: torch.device) -> np.ndarray:
    """A trained member's features of every record, in eval mode (what later members see)."""
    out = []
    with eval_mode(member):
        for i in range(0, len(x), 256):
            _, feats = member.logits_and_features(to_tensor(x[i : i + 256], device).float())
            out.append(feats.float().cpu().numpy())
    return np.concatenate(out)


def member_probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    """Distributions over the last axis: softmax, or per label (p, 1 − p) for multilabel."""
    t = torch.from_numpy(logits)
    if task == "multilabel":
        p = torch.sigmoid(t)
        return torch.stack([p, 1 - p], -1).numpy()
    return t.softmax(-1).numpy()


def band_of(i: int, masks: tuple[np.ndarray | None, np.ndarray | None]) -> np.ndarray | None:
    """Member i's band mask: member 0 (the base model) sees the raw signal, member i ≥ 1
    filter (i − 1) mod 2 (filter 1 → member 1, filter 2 → member 2)."""
    return None if i == 0 else masks[(i - 1) % 2]


class DNA(Options):
    """K members trained in turn; decorrelated features and/or complementary Fourier inputs."""

    name: ClassVar[str] = "dna"
    kind: ClassVar[str] = "ensemble"

    members: int = Field(3, ge=2, le=32, description="ensemble size K")
    variant: Variant = Field("fdec", description="cor | dec | fcor | fdec (f: Fourier inputs)")
    projection_dim: int = Field(50, ge=1, le=4096, description="random projection size r")
    decorrelate_weight: float = Field(
        0.2, ge=0, le=100, description="λ of L_dec (dec and fdec; cor/fcor use CE only)"
    )
    bin_hz: float = Field(15.0, gt=0, le=1000, description="width of the alternating bands")

    @property
    def decorrelates(self) -> bool:
        """Whether later members add λ·L_dec to their loss (dec, fdec)."""
        return self.variant in ("dec", "fdec")

    def build(self, ctx: FitContext) -> DNAEnsemble:
        info = ctx.info
        fourier = self.variant.startswith("f")
        if fourier and self.bin_hz >= info.fs / 2:
            raise UserError(
                f"dna bin_hz {self.bin_hz:g} must be below the Nyquist frequency "
                f"{info.fs / 2:g} Hz of dataset {info.name!r}, or no band is left for filter2"
            )
        masks = band_masks(info.n_samples, info.fs, self.bin_hz) if fourier else (None, None)
        members = [Member(ctx.build_net(), band_of(i, masks)) for i in range(self.members)]
        if self.decorrelates:
            require_linear_head(members[0].net)
        weight = f", λ={self.decorrelate_weight:g}, k={self.projection_dim}"
        bands = (
            f", member 0 raw, members 1+ alternate {self.bin_hz:g} Hz Fourier bands"
            if fourier
            else ""
        )
        notes = (
            f"DNA {self.variant}: {self.members} members, mean of member probabilities"
            f"{weight if self.decorrelates else ''}{bands}"
        )
        return DNAEnsemble(
            members, info.task, ClassifierInfo(forward_passes=self.members, notes=notes)
        )

    def train(self, classifier: DNAEnsemble, ctx: FitContext) -> dict[str, Any]:
        task, lam, k = ctx.info.task, self.decorrelate_weight, self.projection_dim
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)

        def loss(
            member: Member,
            x: torch.Tensor,
            y: torch.Tensor,
            earlier: torch.Tensor,
            class_weight: torch.Tensor | None = None,  # as the first member's default loss
        ):
            logits, feats = member.logits_and_features(x)
            dec = decorrelation_loss(feats, earlier.unbind(1), k, generator=gen)
            return task_loss(logits, y, task, class_weight) + lam * dec

        stored: list[np.ndarray] = []
        summaries = []
        for i, member in enumerate(classifier.members):
            member_ctx = replace(ctx, seed=ctx.seed + i)  # its own batch order
            label = f"train {self.name} member {i + 1}/{self.members}"
            if stored:
                aux = np.stack(stored, axis=1)  # (records, earlier members, features)
                s = fit_classifier(member, member_ctx, loss=loss, aux=aux, description=label)
            else:
                s = fit_classifier(member, member_ctx, description=label)
            summaries.append({key: s[key] for key in SUMMARY_KEYS})
            if self.decorrelates and i < self.members - 1:
                stored.append(member_features(member, ctx.train.x, ctx.device))
        member_logits = np.stack(
            [predict_logits(m, ctx.val.x, ctx.device) for m in classifier.members]
        )
        mi = mutual_information(member_probabilities(member_logits, task))
        ensemble = predict_logits(classifier, ctx.val.x, ctx.device)
        classifier.eval()  # handed back in eval mode, wrapper included (the members already are)
        return {
            "variant": self.variant,
            "decorrelate_weight": lam if self.decorrelates else 0.0,
            "members": summaries,
            "epochs_run": sum(s["epochs_run"] for s in summaries),
            "best_val_score": validation_score(ensemble, ctx.val.y, task, ctx.info.classes),
            "val_mutual_information": float(mi.reshape(len(ctx.val), -1).sum(1).mean()),
            "seconds": sum(s["seconds"] for s in summaries),
        }


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    register(DNA)
