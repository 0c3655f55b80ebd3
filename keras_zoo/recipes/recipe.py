"""Training recipes: named sets of hyperparameters (`RECIPES`), each value overridable, checked
in one place and written to run.json whole.

"default" is what `keras-zoo train` did before recipes: Adam on a cosine decay, random crops
and flips. "finetune" is a fine-tuning recipe for pretrained weights on a small dataset: AdamW
with decoupled weight decay kept off norms and biases, a linear warmup, label smoothing,
TrivialAugmentWide and random erasing. "torchvision-v2" is torchvision's IMAGENET1K_V2 recipe as
its authors publish it (the "How to train state-of-the-art models" post and
references/classification/README.md: ResNet-50 at 80.858% top-1): SGD with momentum 0.9, its
learning rate 0.5 for 1024 images a step (8 GPUs x 128) scaled to the batch in use, weight
decay 2e-5 off the norms, 5 warmup epochs from 1% of the rate, cosine decay, label smoothing
0.1, mixup 0.2, cutmix 1.0, TrivialAugmentWide, random erasing 0.1 and an EMA of the weights
(decay 0.99998 every 32 steps). Its 600 epochs, 176-pixel training crops, repeated augmentation
and 232-pixel evaluation resize are not part of the recipe: epochs and sizes are train's own
arguments.

>>> r = recipe("finetune", label_smoothing=0.2)
>>> r.optimizer, r.label_smoothing
('adamw', 0.2)
>>> recipe("torchvision-v2").learning_rate(batch_size=256)
0.125
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from keras_zoo import checks

OPTIMIZERS = ("adam", "adamw", "sgd", "sgd_nesterov")
SCHEDULES = ("cosine", "step", "constant")
AUTO_AUGMENTS = ("ta_wide", "ra")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The hyperparameters of a training run.

    optimizer: "adam", "adamw" (decoupled weight decay), "sgd" or "sgd_nesterov" (PyTorch's
        coupled weight decay, momentum `momentum`). lr: the learning rate for `lr_batch_size`
        images a step (None: for the batch in use), scaled linearly to the batch in use.
    weight_decay: kept off batch/layer-norm parameters, biases, class tokens and position
        embeddings unless `decay_norms`.
    schedule: "cosine" (to `min_lr`), "step" (times `step_gamma` every `step_epochs`) or
        "constant", after `warmup_epochs` of a linear rise from `warmup_start` times the rate.
    layer_decay: a ViT's layer-wise learning-rate decay (None: off).
    label_smoothing, mixup_alpha, cutmix_alpha (0: off), mix_prob, switch_prob: timm's Mixup.
    auto_augment: None, "ta_wide" (TrivialAugmentWide) or "ra" (RandAugment, `ra_magnitude`,
        `ra_ops`). random_erase: the probability of torchvision's RandomErasing.
    ema_decay: a moving average of the weights (None: off), updated every `ema_every` steps.
    drop_path_rate: stochastic depth of the families that have it (None: the model's own).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    lr_batch_size: int | None = None
    weight_decay: float = 0.0
    momentum: float = 0.9
    decay_norms: bool = False
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    warmup_start: float = 0.01
    min_lr: float = 0.0
    step_epochs: int = 30
    step_gamma: float = 0.1
    layer_decay: float | None = None
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    switch_prob: float = 0.5
    auto_augment: str | None = None
    ra_magnitude: int = 9
    ra_ops: int = 2
    random_erase: float = 0.0
    ema_decay: float | None = None
    ema_every: int = 32
    drop_path_rate: float | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        checks.check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        checks.check_choice(self.schedule, "schedule", SCHEDULES)
        if self.auto_augment is not None:
            checks.check_choice(self.auto_augment, "auto_augment", AUTO_AUGMENTS)
        checks.check_number_in(self.lr, "lr", 0.0, math.inf, low_open=True)
        if self.lr_batch_size is not None:
            checks.check_int_at_least(self.lr_batch_size, "lr_batch_size", 1)
        for field in ("weight_decay", "min_lr", "warmup_epochs"):
            checks.check_number_in(getattr(self, field), field, 0.0, math.inf)
        for field in ("momentum", "label_smoothing", "random_erase"):
            checks.check_number_in(getattr(self, field), field, 0.0, 1.0, high_open=True)
        for field in ("mix_prob", "switch_prob", "step_gamma"):
            checks.check_number_in(getattr(self, field), field, 0.0, 1.0)
        checks.check_number_in(self.warmup_start, "warmup_start", 0.0, 1.0, low_open=True)
        for field in ("mixup_alpha", "cutmix_alpha"):
            checks.check_number_in(getattr(self, field), field, 0.0, math.inf)
        for field in ("step_epochs", "ra_ops", "ema_every"):
            checks.check_int_at_least(getattr(self, field), field, 1)
        checks.check_int_at_least(self.ra_magnitude, "ra_magnitude", 0)
        if self.layer_decay is not None:
            checks.check_number_in(self.layer_decay, "layer_decay", 0.0, 1.0, low_open=True)
        if self.ema_decay is not None:
            checks.check_number_in(self.ema_decay, "ema_decay", 0.0, 1.0, high_open=True)
        if self.drop_path_rate is not None:
            checks.check_number_in(self.drop_path_rate, "drop_path_rate", 0.0, 1.0, high_open=True)
        if self.optimizer == "adam" and self.weight_decay:
            raise ValueError(
                "weight_decay: Adam's would be coupled to its gradient scaling; use "
                "optimizer 'adamw' for decoupled weight decay"
            )

    @property
    def mixes(self) -> bool:
        """Whether batches are mixed (mixup or cutmix), so targets are soft."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def soft_targets(self) -> bool:
        """Whether the loss takes class probabilities (mixing or label smoothing)."""
        return self.mixes or self.label_smoothing > 0

    def learning_rate(self, batch_size: int) -> float:
        """The peak learning rate for `batch_size` images a step (all replicas together)."""
        if self.lr_batch_size is None:
            return self.lr
        return self.lr * batch_size / self.lr_batch_size

    def to_dict(self) -> dict[str, Any]:
        """Every value, for run.json."""
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    "default": Recipe(name="default"),
    "finetune": Recipe(
        name="finetune",
        optimizer="adamw",
        lr=5e-4,
        weight_decay=0.05,
        warmup_epochs=1.0,
        label_smoothing=0.1,
        auto_augment="ta_wide",
        random_erase=0.1,
    ),
    "torchvision-v2": Recipe(
        name="torchvision-v2",
        optimizer="sgd",
        lr=0.5,
        lr_batch_size=1024,
        weight_decay=2e-5,
        warmup_epochs=5.0,
        warmup_start=0.01,
        label_smoothing=0.1,
        mixup_alpha=0.2,
        cutmix_alpha=1.0,
        auto_augment="ta_wide",
        random_erase=0.1,
        ema_decay=0.99998,
        ema_every=32,
    ),
}


def recipe(name: str | Recipe = "default", **overrides: Any) -> Recipe:
    """The recipe `name` (a key of RECIPES, or a Recipe) with `overrides` (Recipe's fields, as
    given: ema_decay=None turns a recipe's EMA off); ValueError naming an unknown recipe or
    field, or a value out of its range."""
    if isinstance(name, Recipe):
        base = name
    elif name in RECIPES:
        base = RECIPES[name]
    else:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {name!r}")
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{unknown[0]}: not a recipe setting; the settings: {', '.join(sorted(fields))}"
        )
    return dataclasses.replace(base, **overrides) if overrides else base
