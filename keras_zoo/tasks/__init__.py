"""Tasks: what a model's outputs mean, and everything the workflow needs to know of it.

A task is one module of this package holding a `Task` subclass, registered when imported (every
module here is imported, in name order, as `keras_zoo.models` imports the families). A model
names its task in its description (`keras_zoo.describe(model).task`, from the id's
`ModelInfo.task`); training, inference, export and their commands ask `task_of` for the task and
call it, so they hold no knowledge of any one task:

    read            a dataset folder or annotation file -> `TaskData` (image files, targets)
    head            the build keywords of the head for the data's targets
    loss, metrics   what fit minimises (one of `losses`) and reports; `monitor` picks the best
                    epoch; `fit_keywords` and `fit_models` where fit trains more outputs than
                    the run keeps (an auxiliary net)
    dataset         (image, target) batches, prepared and augmented as the task allows
    samples         the validation images the TensorBoard callbacks draw; `callbacks` draw
                    what the task shows of them
    write_names     the files that name the outputs in a run folder; `read_names` reads them
    prediction_options  the options of predict, checked before any image is read
    regions, crops  where the task's model sees part of an image (a face's square), the
                    part of each image, and the images cut to it; None where it sees the whole
    decode          predict's result per image, and `prediction_text` prints one; `draw`
                    draws one on its image where the task `draws`
    evaluate        the measures of outputs against targets (`Evaluation`)
    agree, score    what an export's check compares: per-image agreement of two runtimes'
                    outputs, and the task's score on labelled data

`keras_zoo.tasks.classification` is image classification, one class label per image;
`keras_zoo.tasks.landmarks` facial landmarks, K points per face.
"""

from __future__ import annotations

import abc
import importlib
import os
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from keras_zoo.run_state import Monitor
from keras_zoo.weight_sets import Preprocessing

__all__ = [
    "Monitor",
    "Task",
    "TaskData",
    "Evaluation",
    "register",
    "task_named",
    "task_of",
    "tasks",
]

_TASKS: dict[str, Task] = {}


class TaskData(Protocol):
    """A task's dataset: image `files` with one target each (`targets[i]`), the `names` of the
    model's outputs it implies (class names; None where the outputs are not named), its `root`
    folder or file, and, where it comes split into training and validation data, the names of
    the two (`subsets`: a classifier's ("train", "val") folders; None where `split` draws the
    validation files)."""

    root: str
    files: tuple[str, ...]
    subsets: tuple[str, str] | None

    @property
    def targets(self) -> np.ndarray:
        """One target per file."""
        ...

    @property
    def names(self) -> tuple[str, ...] | None:
        """The names of the model's outputs this data implies."""
        ...

    def split(self, validation_split: float | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and validation files: the given ones where the data comes
        split (`subsets`), else drawn with `seed`, `validation_split` of them held out."""
        ...


class Evaluation(Protocol):
    """The measures of a model on some data: `score` (the task's `score_name`) on `images`
    images, the lines that detail it, and the figures that show it."""

    images: int

    @property
    def score(self) -> float:
        """The task's headline measure."""
        ...

    def lines(self) -> list[str]:
        """The details below the headline, one printed line each."""
        ...

    def figures(self, title: str) -> dict[str, Any]:
        """Matplotlib figures by file stem ("confusion_matrix")."""
        ...


class Task(abc.ABC):
    """What a model's outputs mean (see the package's docstring for each method's place in
    the workflow). `name` is the description's task; `score_name` what `score` and
    `Evaluation.score` measure; `agreement_name` what `agree` compares, in words;
    `augmentations` the random changes `dataset` may make; `draws` whether `draw` draws
    predict's results on their images; `losses` the names `loss` takes, the first its default
    (none where the task has one loss);
    `named_outputs` whether the data names the model's outputs (a classifier's classes), so
    that a trained model without the names cannot be read; `names_files` the files
    `write_names` writes into a run folder, by which weights beside them are known as a run's
    (a classifier's class_indices.json); `class_targets` whether the targets are class
    indices, which a training recipe may smooth and mix (`keras_zoo.recipes`): such a task's
    `loss` takes `label_smoothing` and `soft`, its `metrics` `soft`, and its `dataset`
    `recipe`."""

    name: ClassVar[str]
    named_outputs: ClassVar[bool]
    names_files: ClassVar[tuple[str, ...]] = ()
    agreement_name: ClassVar[str]
    monitor: ClassVar[Monitor]
    score_name: ClassVar[str]
    augmentations: ClassVar[tuple[str, ...]]
    draws: ClassVar[bool] = False
    losses: ClassVar[tuple[str, ...]] = ()
    class_targets: ClassVar[bool] = False

    @abc.abstractmethod
    def read(self, root: str | os.PathLike, *, argument: str = "data", verify: bool = True) -> Any:
        """The `TaskData` at `root`; ValueError naming `argument` and what was expected."""

    @abc.abstractmethod
    def head(self, names: Sequence[str] | None) -> dict[str, Any]:
        """The `keras_zoo.build` keywords of a head for outputs named `names`."""

    @abc.abstractmethod
    def loss(self, name: str | None = None) -> Any:
        """The Keras loss of the model's raw outputs against the targets: the one of
        `losses` named (None: the default)."""

    @abc.abstractmethod
    def metrics(self) -> list:
        """The Keras metrics that fit reports (`monitor.key` among them, as val_<metric>)."""

    def fit_keywords(self, loss: str | None, data: Any) -> dict[str, Any]:
        """The build keywords that the model fit trains with `loss` needs beyond `head`'s
        (landmarks' PFLD loss: the auxiliary net), checked against the `data`; ValueError
        naming the loss where the data cannot serve it. None by default."""
        return {}

    def fit_models(self, model: Any, loss: str | None) -> tuple[Any, Any]:
        """(the model fit trains, the model the run keeps and describes) of the `model` built
        with `fit_keywords`: the same model twice by default; two views of the same layers
        where fit trains outputs the kept model leaves out."""
        return model, model

    @abc.abstractmethod
    def dataset(
        self,
        files: Sequence[str] | np.ndarray,
        targets: np.ndarray,
        *,
        image_size: int,
        preprocessing: Preprocessing,
        batch_size: int,
        training: bool = False,
        augment: tuple[str, ...] = (),
        seed: int = 0,
    ) -> Any:
        """A tf.data pipeline of (prepared images, targets) batches."""

    @abc.abstractmethod
    def samples(self, data: Any, indices: np.ndarray, count: int, seed: int) -> np.ndarray:
        """Up to `count` of `indices` that the TensorBoard callbacks draw, chosen with `seed`."""

    @abc.abstractmethod
    def callbacks(self, log_dir: str, samples: np.ndarray, validation: Any, data: Any) -> list:
        """The inspection callbacks of this task for prepared `samples` and the `validation`
        dataset (beside the feature maps and kernel statistics that every task logs)."""

    @abc.abstractmethod
    def write_names(self, out: str, names: Sequence[str] | None) -> tuple[str, ...]:
        """Writes the files that name the outputs into the run folder `out`; their names."""

    @abc.abstractmethod
    def read_names(self, folder: str, weights: str) -> tuple[str, ...] | None:
        """The output names that `write_names` wrote beside `weights` in `folder`, checked
        against the weights; ValueError naming the file otherwise."""

    def with_defaults(self, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict:
        """predict's `options` over their `defaults`; TypeError naming the first option that
        is not one of them, with the options there are."""
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            owner = f"{self.name}'" if self.name.endswith("s") else f"{self.name}'s"
            raise TypeError(
                f"{unknown[0]}: not an option of {owner} predict; the options are "
                + ", ".join(defaults)
            )
        return {**defaults, **options}

    @abc.abstractmethod
    def prediction_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """predict's `options` checked, with the defaults of those not given; TypeError for
        an option the task does not take, ValueError for a bad value, both naming it."""

    def regions(
        self,
        files: Sequence[str],
        *,
        targets: np.ndarray | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> np.ndarray | None:
        """The part of each image file the model sees, (x0, y0, size) squares in its pixels,
        from the data's `targets` (evaluate) or predict's `options`; None (the default) where
        the model sees whole images, prepared as `keras_zoo.data.make_dataset` prepares them."""
        return None

    def crops(self, images: Sequence[np.ndarray], regions: np.ndarray, size: int) -> np.ndarray:
        """The `regions` of decoded `images` as (N, size, size, 3) pixels (0..255), for a
        task whose `regions` are not None."""
        raise NotImplementedError(f"task {self.name!r} sees whole images")

    @abc.abstractmethod
    def decode(
        self,
        outputs: np.ndarray,
        names: Sequence[str] | None,
        activation: str | None,
        options: Mapping[str, Any],
        regions: np.ndarray | None = None,
    ) -> list:
        """predict's result for each row of the raw `outputs` (after the model's last
        `activation`, None for none), with the command's `options`, of the images' `regions`
        (None where the model saw whole images)."""

    def draw(self, image: np.ndarray, result: Any) -> np.ndarray | None:
        """`image` (RGB uint8) with its `decode` result drawn, where the task `draws`."""
        return None

    @abc.abstractmethod
    def prediction_text(self, result: Any) -> str:
        """One image's `decode` result as printed."""

    @abc.abstractmethod
    def evaluate(
        self, outputs: np.ndarray, targets: np.ndarray, names: Sequence[str] | None
    ) -> Evaluation:
        """The measures of the raw `outputs` against `targets`."""

    @abc.abstractmethod
    def agree(self, reference: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Per image, whether `outputs` of a runtime say what the `reference` outputs say."""

    @abc.abstractmethod
    def score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The task's score (`score_name`) of raw outputs against targets."""


def register(task: Task) -> Task:
    """Adds `task` under its name; ValueError if the name is taken."""
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def task_named(name: str, argument: str = "task") -> Task:
    """The registered task `name`; ValueError naming `argument` and listing the tasks."""
    if name not in _TASKS:
        raise ValueError(f"{argument}: unknown task {name!r}; the tasks are {', '.join(_TASKS)}")
    return _TASKS[name]


def task_of(model: Any) -> Task:
    """The task of a built model, of its `keras_zoo.ModelDescription` or of an exported model
    (its description's task); image classification for a model that carries no description."""
    from keras_zoo.description import ModelDescription

    description = model if isinstance(model, ModelDescription) else None
    if description is None:
        description = getattr(model, "description", None)
    return task_named(description.task if description is not None else "classification")


def tasks() -> tuple[str, ...]:
    """The registered tasks' names."""
    return tuple(_TASKS)


def _import_tasks() -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_tasks()
