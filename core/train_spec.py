"""`TrainSpec`: how the core trains a classifier (optimiser, schedule, class balance, early
stopping), part of every run's spec and of the key of its cached weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class TrainSpec(BaseModel):
    """How a classifier is trained: Adam, a learning-rate schedule, a class-balanced loss and
    early stopping on the validation metric (macro AUROC for multilabel, macro F1 for
    multiclass), keeping the weights of the best validation epoch.

    The defaults train to early stopping: at most `epochs` (100) epochs, stopping once
    `patience` epochs bring no validation gain (by default relative to the data size: 10 epochs
    on a few hundred training records, down to 3 on a few thousand, see `patience_for`); the
    learning rate is halved once more than `lr_patience` (patience // 3) epochs bring no gain
    (`schedule="plateau"`, floor `min_lr`); the task loss is class-balanced (multilabel: BCE
    `pos_weight` = negatives/positives of each class in the training labels; multiclass:
    cross-entropy weights ∝ 1/class frequency; both clipped to [1/max_class_weight,
    max_class_weight]). Plain training as in most papers — a fixed number of epochs at a
    constant rate on the unweighted loss — is `epochs=N, patience=N, schedule="none",
    class_balance=false` (the former defaults: epochs=8, patience=3, schedule="none",
    class_balance=false).
    """

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(
        100, ge=1, le=1000, description="epoch cap; early stopping (patience) usually ends sooner"
    )
    batch_size: int = Field(64, ge=1, le=4096)
    lr: float = Field(1e-3, gt=0, le=1, description="initial Adam learning rate")
    weight_decay: float = Field(0.0, ge=0)
    patience: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="epochs without validation gain before stopping; None: relative to the "
        "data size, ⌈60 optimizer steps / batches per epoch⌉ clipped to [3, 10]",
    )
    min_delta: float = Field(
        0.0, ge=0, le=1, description="validation gain below which an epoch counts as no gain"
    )
    schedule: Literal["plateau", "cosine", "none"] = Field(
        "plateau",
        description="plateau: lr × lr_factor once more than lr_patience epochs bring no "
        "validation gain; "
        "cosine: cosine decay from lr to min_lr over `epochs`; none: constant lr",
    )
    lr_factor: float = Field(0.5, gt=0, lt=1, description="plateau: factor of each lr reduction")
    lr_patience: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="plateau: epochs without validation gain before reducing; "
        "None: patience // 3 (3 at the default patience 10)",
    )
    min_lr: float = Field(1e-5, ge=0, description="floor of the plateau and cosine schedules")
    class_balance: bool = Field(
        True, description="weight the task loss by class (BCE pos_weight / CE class weights)"
    )
    max_class_weight: float = Field(
        10.0, ge=1, le=1e4, description="class weights are clipped to [1/this, this]"
    )

    @field_validator("lr_patience")
    @classmethod
    def _lr_patience_below_patience(cls, value: int | None, info: ValidationInfo) -> int | None:
        patience, schedule = info.data.get("patience"), info.data.get("schedule")
        if value is not None and schedule == "plateau" and patience and value >= patience:
            raise ValueError(
                f"lr_patience {value} must be smaller than patience {patience}: otherwise "
                f"training stops before the plateau schedule ever lowers the learning rate "
                f"(use schedule='none' for a constant rate)"
            )
        return value

    def patience_for(self, n_train: int) -> int:
        """The early-stopping patience for `n_train` training records: `patience`, or (None)
        enough epochs for about 60 optimizer steps without gain, at least 3 and at most 10 —
        10 on a few hundred records (the PTB-XL subset: 6 batches an epoch), 3 from about 1,300
        records on (an epoch of the 1,600-record synthetic training split is 25 steps)."""
        if self.patience is not None:
            return self.patience
        batches = max(1, -(-n_train // self.batch_size))
        return min(10, max(3, -(-60 // batches)))

    def plateau_patience(self, patience: int) -> int:
        """The plateau schedule's patience: `lr_patience`, or patience // 3 when unset."""
        return patience // 3 if self.lr_patience is None else self.lr_patience

    @field_validator("min_lr")
    @classmethod
    def _min_lr_below_lr(cls, value: float, info: ValidationInfo) -> float:
        lr = info.data.get("lr")
        if lr is not None and value > lr:
            raise ValueError(f"min_lr {value:g} must not exceed lr {lr:g}")
        return value
