"""What each piece of a training recipe does on real data that ships in a package: an ablation
on scikit-learn's handwritten digits (`keras_zoo.datasets.write_digits`), and distillation of a
small student from a trained teacher against the same student trained alone.

Every run is `keras_zoo.training.train` as `keras-zoo train` calls it, from random weights
seeded with the run's seed (`keras.utils.set_random_seed`; in the ablation the seed also picks
the validation images, `VALIDATION_SPLIT` of each class, while distillation keeps seed 0's,
the images its one teacher did not train on), and is scored by the validation accuracy after
its last epoch (the moving average's, `ema_val_accuracy`, for a recipe with an EMA): the best
epoch of a noisy curve would flatter every row alike. `scripts/bench_recipes.py` prints the
tables that docs/BENCHMARKS.md shows.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, TextIO

# The share of each class held out for validation: the models train on the other 20% (about
# 360 images), a small dataset, where regularisation and augmentation have work to do (on 80%
# every row reaches 98-99%), and are scored on about 1,440 images.
VALIDATION_SPLIT = 0.8

# The rows of the ablation: a label and the recipe's overrides ("default" plus one piece each,
# then the package's fine-tuning recipe whole). The digits are not mirror images of each
# other, so every row trains with random crops only (train's augment=("crop",)).
ABLATION: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("default (Adam, cosine)", "default", {}),
    ("+ label smoothing 0.1", "default", {"label_smoothing": 0.1}),
    ("+ mixup 0.2", "default", {"mixup_alpha": 0.2}),
    ("+ cutmix 1.0", "default", {"cutmix_alpha": 1.0}),
    ("+ TrivialAugmentWide", "default", {"auto_augment": "ta_wide"}),
    ("+ RandAugment (2, 9)", "default", {"auto_augment": "ra"}),
    ("+ random erasing 0.25", "default", {"random_erase": 0.25}),
    # a horizon of about 10 of the run's 90 steps: at 0.99 the average still holds 0.99^90 =
    # 40% of the random initial weights at the end (validation accuracy 0.10 to 0.36)
    ("+ EMA 0.9 every step", "default", {"ema_decay": 0.9, "ema_every": 1}),
    ("+ drop path 0.1", "default", {"drop_path_rate": 0.1}),
    ("AdamW, decay 0.05 off norms", "default", {"optimizer": "adamw", "weight_decay": 0.05}),
    (
        "SGD Nesterov 0.1, warmup 2",
        "default",
        {
            "optimizer": "sgd_nesterov",
            "lr": 0.1,
            "weight_decay": 1e-4,
            "warmup_epochs": 2.0,
        },
    ),
    ("finetune recipe", "finetune", {}),
)


@dataclasses.dataclass
class Outcome:
    """The validation accuracies of one row over its seeds, the seconds of its runs and the
    weights files they kept."""

    label: str
    accuracies: list[float]
    seconds: list[float]
    weights: list[str] = dataclasses.field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def spread(self) -> float:
        """The sample standard deviation over the seeds (0 for one)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0


def final_accuracy(history: dict) -> float:
    """The last epoch's validation accuracy: the weight average's where the run kept one."""
    key = "ema_val_accuracy" if "ema_val_accuracy" in history else "val_accuracy"
    return float(history[key][-1])


def run_row(
    label: str,
    model: str,
    data: str,
    *,
    seeds: Sequence[int],
    epochs: int,
    batch_size: int,
    image_size: int,
    work: str,
    recipe: Any = "default",
    teacher: str | None = None,
    teacher_weights: str | None = None,
    temperature: float = 4.0,
    distill_weight: float = 0.5,
    split_seed: int | None = None,
    validation_split: float = VALIDATION_SPLIT,
    progress: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """`model` trained on `data` once per seed (each run in its own folder under `work`), the
    validation images chosen with `split_seed` (None: the run's seed)."""
    import keras

    from keras_zoo.training import train

    outcome = Outcome(label, [], [])
    for seed in seeds:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        folder = os.path.join(work, f"{model}-{len(os.listdir(work))}")
        result = train(
            model,
            data,
            epochs=epochs,
            batch_size=batch_size,
            image_size=image_size,
            out=folder,
            log_dir=os.path.join(folder, "logs"),
            seed=seed if split_seed is None else split_seed,
            validation_split=validation_split,
            augment=("crop",),
            recipe=recipe,
            teacher=teacher,
            teacher_weights=teacher_weights,
            temperature=temperature,
            distill_weight=distill_weight,
            inspect=False,
            verbose=0,
        )
        outcome.accuracies.append(final_accuracy(result.history))
        outcome.seconds.append(result.seconds)
        outcome.weights.append(result.weights)
        progress(f"  {label}, seed {seed}: {outcome.accuracies[-1]:.4f} ({result.seconds:.0f} s)")
    return outcome


def ablation(
    data: str,
    *,
    model: str = "resnet18",
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 15,
    batch_size: int = 64,
    image_size: int = 32,
    validation_split: float = VALIDATION_SPLIT,
    rows: Sequence[tuple[str, str, dict[str, Any]]] = ABLATION,
    work: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[Outcome]:
    """Each row of `rows` (label, recipe name, overrides) trained on `data` for every seed."""
    from keras_zoo.recipes.recipe import recipe

    with tempfile.TemporaryDirectory() as tmp:
        return [
            run_row(
                label,
                model,
                data,
                seeds=seeds,
                epochs=epochs,
                batch_size=batch_size,
                image_size=image_size,
                work=work or tmp,
                recipe=recipe(name, **overrides),
                validation_split=validation_split,
                progress=progress,
            )
            for label, name, overrides in rows
        ]


def distillation(
    data: str,
    *,
    teacher: str = "resnet50",
    student: str = "mobilenet_v3_small",
    seeds: Sequence[int] = (0, 1, 2),
    teacher_epochs: int = 15,
    epochs: int = 15,
    batch_size: int = 64,
    image_size: int = 32,
    temperature: float = 4.0,
    distill_weight: float = 0.5,
    validation_split: float = VALIDATION_SPLIT,
    work: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[Outcome]:
    """The teacher trained once (seed 0), then the student trained alone and distilled from it
    at `temperature`, once per seed, all on seed 0's validation images."""
    with tempfile.TemporaryDirectory() as tmp:
        common: dict[str, Any] = dict(
            batch_size=batch_size,
            image_size=image_size,
            work=work or tmp,
            split_seed=0,
            validation_split=validation_split,
            progress=progress,
        )
        taught = run_row(teacher, teacher, data, seeds=[0], epochs=teacher_epochs, **common)
        alone = run_row(student, student, data, seeds=seeds, epochs=epochs, **common)
        distilled = run_row(
            f"{student} from {teacher}, T={temperature:g}",
            student,
            data,
            seeds=seeds,
            epochs=epochs,
            teacher=teacher,
            teacher_weights=taught.weights[0],
            temperature=temperature,
            distill_weight=distill_weight,
            **common,
        )
        return [taught, alone, distilled]


def report(outcomes: Sequence[Outcome], *, baseline: int = 0, out: TextIO = sys.stdout) -> None:
    """A Markdown table: each row's mean and standard deviation over the seeds, its difference
    from the row `baseline` in points, every seed's accuracy and the mean seconds of a run."""
    base = outcomes[baseline].mean
    print("| recipe | val accuracy, mean ± sd | vs first row | per seed | s/run |", file=out)
    print("|---|---:|---:|---|---:|", file=out)
    for o in outcomes:
        seeds = " ".join(f"{a:.3f}" for a in o.accuracies)
        print(
            f"| {o.label} | {o.mean:.4f} ± {o.spread:.4f} | {100 * (o.mean - base):+.2f} | "
            f"{seeds} | {statistics.fmean(o.seconds):.0f} |",
            file=out,
            flush=True,
        )
