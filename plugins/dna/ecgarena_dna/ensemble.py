"""The DNA classifiers: a member (mV → standardise → band filter → net → logits, with its
features tapped) and the ensemble that averages the members' probabilities."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from ecgarena import Classifier, ClassifierInfo, UserError
from torch import nn

from .fourier import BandFilter


def no_linear_head(net: nn.Module) -> UserError:
    """The error for a net whose forward pass calls no nn.Linear (no features to decorrelate)."""
    return UserError(
        f"defense 'dna' (dec, fdec) takes each member's features at the input of its final "
        f"nn.Linear, and the model's net {type(net).__name__} has none; use a model with a "
        f"linear head (cnn, resnet1d18, conv-vit) or variant cor/fcor"
    )


def require_linear_head(net: nn.Module) -> None:
    """Refuse, before training, a net with no nn.Linear at all."""
    if not any(isinstance(m, nn.Linear) for m in net.modules()):
        raise no_linear_head(net)


class Member(Classifier):
    """One ensemble member. The band filter (frozen mask, or none) acts on the standardised
    signal, as the reference filters inside the model on normalised inputs."""

    def __init__(self, net: nn.Module, mask: np.ndarray | None = None) -> None:
        super().__init__(net)
        self.band = BandFilter(mask) if mask is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.band(self.standardize(self.preprocess(x))))

    def logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and features: the input of the last nn.Linear the net calls (the pooled
        vector of cnn, resnet1d18 and conv-vit), via forward pre-hooks held for this call."""
        taken: list[torch.Tensor] = []
        handles = [
            m.register_forward_pre_hook(lambda _, args: taken.append(args[0]))
            for m in self.net.modules()
            if isinstance(m, nn.Linear)
        ]
        try:
            logits = self(x)
        finally:
            for h in handles:
                h.remove()
        if not taken:
            raise no_linear_head(self.net)
        return logits, taken[-1].flatten(1)


def average_logits(member_logits: torch.Tensor, task: str) -> torch.Tensor:
    """Logits of the mean member probability from (K, batch, classes): log mean softmax
    (multiclass), or logit(mean sigmoid) computed in log space, finite without clamping."""
    log_k = math.log(member_logits.shape[0])
    if task == "multilabel":
        log_p = torch.logsumexp(F.logsigmoid(member_logits), 0) - log_k
        log_q = torch.logsumexp(F.logsigmoid(-member_logits), 0) - log_k
        return log_p - log_q
    return torch.logsumexp(member_logits.log_softmax(-1), 0) - log_k


class DNAEnsemble(Classifier):
    """K members whose probabilities are averaged. Each member standardises (and filters) its
    own input, so the ensemble's own `standardize` is not used; `members` is the ModuleList."""

    def __init__(self, members: list[Member], task: str, info: ClassifierInfo) -> None:
        super().__init__(nn.ModuleList(members), info=info)
        self.task = task

    @property
    def members(self) -> nn.ModuleList:
        """The members, each mapping the mV signal (B, L, T) to its own logits."""
        return self.net

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(K, batch, classes): every member's logits."""
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return average_logits(self.member_logits(x), self.task)

    def set_standardization(self, mean: float, std: float) -> None:
        """Set the constants of every member."""
        for m in self.members:
            m.set_standardization(mean, std)
