"""How `keras_zoo.training.train` applies a `Recipe`: the optimizer and its schedule, the
batches' erasing and mixing, the moving average of the weights and the teacher of a
distillation. training.py asks this module; the pieces are the recipes package's.
"""

from __future__ import annotations

import os
from typing import Any

import keras

from keras_zoo.recipes.recipe import Recipe

EMA_WEIGHTS = "ema.weights.h5"


def optimizer(
    recipe: Recipe, model: keras.Model, *, batch_size: int, steps_per_epoch: int, epochs: int
) -> tuple[keras.optimizers.Optimizer, list[str]]:
    """The recipe's optimizer on its schedule for `epochs` of `steps_per_epoch` steps, and the
    variables kept without weight decay (none where the recipe has no decay). Adam is
    torch.optim.Adam's arithmetic (AdamW without decay)."""
    from keras_zoo.recipes import optim

    lr = recipe.learning_rate(batch_size)
    total = max(1, steps_per_epoch * epochs)
    warmup = min(total - 1, round(recipe.warmup_epochs * steps_per_epoch))  # a step after it
    if recipe.schedule == "cosine":
        schedule: Any = optim.warmup_cosine(lr, total, warmup, recipe.warmup_start, recipe.min_lr)
    else:  # "constant" is a step decay by 1
        step = recipe.step_epochs * steps_per_epoch if recipe.schedule == "step" else total
        gamma = recipe.step_gamma if recipe.schedule == "step" else 1.0
        schedule = optim.warmup_step(lr, max(1, step), gamma, warmup, recipe.warmup_start)
    decayed = recipe.weight_decay > 0
    excluded = optim.no_decay_variables(model) if decayed and not recipe.decay_norms else []
    multipliers = (
        optim.layer_decay_multipliers(model, recipe.layer_decay) if recipe.layer_decay else None
    )
    shared: dict[str, Any] = {"weight_decay": recipe.weight_decay, "no_decay": excluded}
    if recipe.optimizer in ("sgd", "sgd_nesterov"):
        chosen: keras.optimizers.Optimizer = optim.SGD(
            schedule,
            momentum=recipe.momentum,
            nesterov=recipe.optimizer == "sgd_nesterov",
            lr_multipliers=multipliers,
            **shared,
        )
    else:
        chosen = optim.AdamW(schedule, lr_multipliers=multipliers, **shared)
    return chosen, excluded


def check_model_keywords(recipe: Recipe, name: str, keywords: tuple[str, ...]) -> dict[str, Any]:
    """The family keywords the recipe sets (drop_path_rate), refused for a family without
    them."""
    if recipe.drop_path_rate is None:
        return {}
    if "drop_path_rate" not in keywords:
        raise ValueError(
            f"drop_path_rate: {name} has no stochastic depth (the ResNets, EfficientNets, "
            "ConvNeXts and ViTs have)"
        )
    return {"drop_path_rate": recipe.drop_path_rate}


def image_augment(recipe: Recipe) -> Any:
    """The per-image automatic augmentation (an (uint8 image, seed) -> uint8 image function)
    or None."""
    from keras_zoo.recipes import autoaugment

    if recipe.auto_augment == "ta_wide":
        return autoaugment.trivial_augment_wide
    if recipe.auto_augment == "ra":

        def rand_augment(image: Any, seed: Any) -> Any:
            return autoaugment.rand_augment(
                image, seed, num_ops=recipe.ra_ops, magnitude=recipe.ra_magnitude
            )

        return rand_augment
    return None


def batch_augment(recipe: Recipe, batches: Any, *, classes: int, seed: int) -> Any:
    """The training batches with random erasing and mixup/cutmix where the recipe has them
    (mixed batches' labels become class probabilities)."""
    from keras_zoo.recipes import mixing

    mix = (
        mixing.Mixup(
            mixup_alpha=recipe.mixup_alpha,
            cutmix_alpha=recipe.cutmix_alpha,
            prob=recipe.mix_prob,
            switch_prob=recipe.switch_prob,
            label_smoothing=0.0,  # the loss smooths
            num_classes=classes,
        )
        if recipe.mixes
        else None
    )
    erase = mixing.RandomErasing(probability=recipe.random_erase) if recipe.random_erase else None
    if mix is None and erase is None:
        return batches
    return mixing.augment_batches(batches, mixup=mix, erasing=erase, seed=seed)


class WeightAverageLogger(keras.callbacks.Callback):
    """The recipe's moving average of the weights (`keras_zoo.recipes.ema.WeightAverage`),
    evaluated on the validation data at the end of each epoch (logged as ema_val_<metric>)
    and saved as `path` (the kept model's weights, averaged) when training ends."""

    def __init__(self, average: Any, validation: Any, kept: keras.Model, path: str) -> None:
        super().__init__()
        self.average = average
        self.validation = validation
        self.kept = kept
        self.path = path

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        self.average.set_model(model)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.average.on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.average.updates == 0 or logs is None:
            return
        with self.average.swapped():
            scores = self.model.evaluate(self.validation, verbose=0, return_dict=True)
        logs.update({f"ema_val_{k}": float(v) for k, v in scores.items()})

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.average.updates == 0:
            return
        from keras_zoo.files import atomic_file

        with self.average.swapped(), atomic_file(self.path) as tmp:
            self.kept.save_weights(tmp)


def weight_average(
    recipe: Recipe, *, validation: Any, kept: keras.Model, out: str, steps_per_epoch: int
) -> WeightAverageLogger | None:
    """The callback of the recipe's moving average (None without one): its updates copy the
    weights during the learning rate's warmup, as torchvision's script does."""
    if recipe.ema_decay is None:
        return None
    from keras_zoo.recipes.ema import WeightAverage

    average = WeightAverage(
        recipe.ema_decay,
        every=recipe.ema_every,
        warmup_steps=round(recipe.warmup_epochs * steps_per_epoch),
    )
    return WeightAverageLogger(average, validation, kept, os.path.join(out, EMA_WEIGHTS))
