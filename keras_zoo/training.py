"""Training on a task's dataset: `train`, the fit loop.

`train` checks everything, builds and compiles the model for its task (`keras_zoo.tasks`: the
head, loss, metrics and data of, for example, image classification on a class-per-folder
tree), and fits it with Keras, writing into its `out` folder the best weights, the files that
name the outputs (a classifier's class_indices.json) and the run record run.json, and the
backups a stopped run resumes from (`keras_zoo.run_state`). It logs to `log_dir`: Keras' epoch
scalars, the run record as text, and the inspection callbacks (`keras_zoo.callbacks`: the
feature maps of the task's sample images and kernel histograms and update ratios, with what the
task draws: a classifier's Grad-CAM of one validation image per class and its validation
confusion matrix with each class's precision and recall).
`keras_zoo.inference` builds the trained model again from those files: `evaluate`, `predict`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_zoo import checks
from keras_zoo.recipes import fit
from keras_zoo.recipes.recipe import Recipe
from keras_zoo.recipes.recipe import recipe as recipe_named
from keras_zoo.run_state import (
    BACKUP,
    BEST_WEIGHTS,
    RUN_CONFIG,
    Backup,
    Checkpoints,
    SignalsBetweenBatches,
    TrainingInterrupted,
    claim_numbered,
    finished_run,
    holds_run,
    model_kwargs,
    resume_point,
    write_json,
)
from keras_zoo.tasks import Monitor, Task, task_named

SAMPLE_IMAGES = 10  # sample images shown in TensorBoard: for a classifier one per class
DEFAULT_VALIDATION_SPLIT = 0.2  # of each class, where the data does not come split


@dataclasses.dataclass
class TrainResult:
    """What `train` did: where it wrote (`files`: the names of the files beside the weights),
    the best value of the task's `monitor` (a classifier's validation accuracy) over all the
    run's epochs and its epoch (counted from 1; None without one), the per-epoch values of
    Keras' logs for every epoch (those before a resume included) and the seconds of this
    call."""

    out: str
    log_dir: str
    weights: str
    best: float
    monitor: Monitor
    history: dict
    seconds: float
    files: tuple[str, ...] = ()
    best_epoch: int | None = None


def train(
    name: str,
    data: str,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float | None = None,
    image_size: int | None = None,
    model_args: Mapping[str, Any] | None = None,
    weights: str | None = None,
    freeze_backbone: bool = False,
    log_dir: str | None = None,
    out: str | None = None,
    new_run: bool = False,
    strategy: str | None = None,
    validation_split: float | None = None,
    seed: int = 0,
    augment: Sequence[str] | None = None,
    loss: str | None = None,
    recipe: Any = "default",
    teacher: str | None = None,
    teacher_weights: str | None = None,
    temperature: float = 4.0,
    distill_weight: float = 0.5,
    inspect: bool = True,
    verbose: int | str = 1,
    callbacks: Sequence = (),
) -> TrainResult:
    """Trains model id `name` with Keras fit on `data`, read as the id's task reads a dataset
    (`keras_zoo.tasks`; image classification: a class-per-folder tree, or one that comes split
    into train/ and val/, validation/ or test/, `keras_zoo.data.scan_dataset`).

    model_args: the family's keywords (`keras_zoo.model_args`: {"alpha": 0.75} for a MobileNet),
    recorded in run.json, so that `keras_zoo.inference` builds the same model from the weights.
    weights: "imagenet", a weight set's key ("torchvision:IMAGENET1K_V2"), a PyTorch checkpoint
    or a Keras weights file to start from; its classifier is left out (a new head for this
    data's classes). Images are prepared as the built model's description says
    (`keras_zoo.describe(model).preprocessing`: the weight set's evaluation, the id's default
    for a file or None) at image_size, before the random changes of `augment` (None: all that
    the task allows; a classifier's random crops and flips); run.json records that description
    with the names of the outputs (a classifier's classes). freeze_backbone trains only the
    layers after the backbone (`keras_zoo.features.backbone_end`: after the last stage output;
    a Vision Transformer: its classifier, heads.head).
    loss: the name of one of the task's `losses` (landmarks: "l2", "wing" or "pfld"; None:
    its default).
    recipe: the hyperparameters (`keras_zoo.recipes.recipe`: a name of `RECIPES`, "default"
    being Adam on a cosine decay, or a `Recipe` with overrides): optimizer, learning rate
    schedule and warmup, weight decay (kept off norms and biases), label smoothing,
    mixup/cutmix, TrivialAugmentWide/RandAugment, random erasing, a moving average of the
    weights (evaluated each epoch as ema_val_*, saved as ema.weights.h5) and stochastic depth;
    the classification task takes them all, other tasks the optimizer and schedule. lr, given,
    replaces the recipe's rate (for this batch size); run.json records the recipe whole.
    teacher, teacher_weights: distil from model id `teacher` with those weights (a run's
    weights file, a weight set, a checkpoint) whose classes are the data's, at `temperature`,
    the soft term weighted `distill_weight` (`keras_zoo.recipes.distill`).
    image_size: a ViT's must be a multiple of its patch size. log_dir and out default to
    logs/<name>_<data folder name>. validation_split (default 0.2) of each class is held out
    with `seed` for validation, unless the data comes split (its validation folder is the
    validation data; a validation_split given anyway is named in a warning); run.json records
    which. Everything is checked before anything is written.

    An out that holds a finished run (its run.json has results) is refused with a ValueError
    that says how to go on; new_run=True trains into the first free numbered folder beside an
    out that holds a run, finished or not (OUT-2, OUT-3, ...; a log_dir given with it gets the
    same number), and starts afresh; the numbered folders are claimed once everything is
    checked, atomically, so that runs started at once get a number each (not with strategy
    "multi-worker": its workers give the same new out instead). With verbose, one line says
    where a new run went, which folders a split dataset's images come from, and from which
    epoch a run resumes.

    A run stopped after some epochs (Ctrl-C, SIGTERM, a crash, a lost machine) resumes after
    its last finished epoch when started again with the same out, from the backups in
    out/.backup (`keras_zoo.run_state.Checkpoints`), with the best monitored value of all
    its epochs; a backup that cannot be read (cut short, emptied, damaged) is named in a
    warning, and the run resumes from the one before it or starts over. Ctrl-C or SIGTERM
    during training raises `TrainingInterrupted`, which says what was kept.
    """
    from keras_zoo.data import verify_images
    from keras_zoo.description import describe
    from keras_zoo.distribute import is_chief, make_strategy, prepare_model
    from keras_zoo.files import Terminated
    from keras_zoo.model_args import check_model_args
    from keras_zoo.registry import model_info

    start = time.perf_counter()
    info = model_info(name)
    task = task_named(info.task)
    model_args = check_model_args(name, model_args)
    epochs, batch_size, augment = _check_schedule(
        epochs,
        batch_size,
        validation_split,
        task.augmentations if augment is None else augment,
        task.augmentations,
    )
    chosen = _recipe(recipe, lr, task)
    distilling = _check_distillation(task, teacher, teacher_weights, temperature, distill_weight)
    weights = _check_start_weights(info, weights)
    if loss is not None:
        if not task.losses:
            raise ValueError(f"loss: {name}'s task ({task.name}) has one loss; give none")
        checks.check_choice(loss, "loss", task.losses)
    image_size = (
        info.input_size[0]
        if image_size is None
        else checks.check_image_size(image_size, "image_size")
    )
    folder = task.read(data, verify=False)
    validation_split = _validation_split(folder, data, validation_split)
    kwargs = model_kwargs(name, model_args, image_size, task.head(folder.names))
    kwargs.update(fit.check_model_keywords(chosen, name, info.keywords))
    fit_keywords = task.fit_keywords(loss, folder)  # an auxiliary net the loss trains
    if new_run and strategy == "multi-worker":
        raise ValueError(
            "new_run: not with strategy 'multi-worker', whose workers would each pick a "
            "numbered folder of their own; give every worker the same new out instead"
        )
    given = out, log_dir
    asked, _ = _folders(name, data, out, log_dir)
    out, log_dir = _folders(name, data, out, log_dir, new_run)  # a finished run refused
    dist = make_strategy(strategy)  # before any TensorFlow op: collectives are set up here
    verify_images(folder.files)  # an unreadable image is named before the model is built
    with dist.scope():
        built = _model(name, {**kwargs, **fit_keywords}, weights, freeze_backbone, info.classifier)
        model, kept = task.fit_models(built, loss)  # what fit trains, what the run keeps
    description = dataclasses.replace(describe(kept), class_names=folder.names)
    if distilling:
        assert teacher is not None and teacher_weights is not None  # checked above
        with dist.scope():
            model = _distiller(
                model, description, folder.names, teacher, teacher_weights, distilling
            )
    images = _Images.read(
        task,
        folder,
        validation_split,
        augment,
        image_size=image_size,
        preprocessing=description.preprocessing,
        batch_size=batch_size,
        seed=seed,
        recipe=chosen if task.class_targets else None,
    )
    with dist.scope():
        excluded = _compile(model, task, chosen, batch_size, images.steps, epochs, loss)
    prepare_model(model, dist, images.train)
    if new_run:  # everything is checked: the new run's numbered folders claimed
        out, log_dir = _folders(name, data, *given, new_run, claim=True)
    if verbose and excluded:
        print(
            f"no weight decay on {len(excluded)} variables (norms' scales and offsets, biases, "
            "class tokens, position embeddings; run.json lists them)",
            flush=True,
        )
    resume, best_so_far = resume_point(out, task.monitor)
    if verbose:
        for line in _what_runs(data, folder, images, asked, out, resume, epochs):
            print(line, flush=True)

    # everything is checked: from here on the run writes
    config = {
        "model": name,
        "model_args": model_args,
        "image_size": image_size,
        "classes": None if folder.names is None else len(folder.names),
        "data": os.path.abspath(data),
        "split": None
        if folder.subsets is None
        else dict(zip(("training", "validation"), folder.subsets)),
        "validation_split": validation_split,
        "seed": seed,
        "train_images": int(len(images.train_idx)),
        "validation_images": int(len(images.val_idx)),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": chosen.learning_rate(batch_size),
        "recipe": chosen.to_dict(),
        "no_weight_decay": excluded,
        "teacher": None
        if not distilling
        else {"model": teacher, "weights": teacher_weights, **distilling},
        "loss": loss,
        "weights": weights,
        "freeze_backbone": freeze_backbone,
        "augment": list(augment),
        "strategy": strategy or "default",
        "log_dir": os.path.abspath(log_dir),
        "description": description.to_dict(),
    }
    files = _start_record(out, task, folder.names, config)
    signals = SignalsBetweenBatches()
    checkpoints = Checkpoints(
        os.path.join(out, BEST_WEIGHTS),
        os.path.join(out, BACKUP),
        resume,
        best_so_far,
        task.monitor,
        kept=kept,
    )
    logging = _inspection_callbacks(log_dir, config, images) if inspect and is_chief() else []
    average = fit.weight_average(
        chosen, validation=images.validation, kept=kept, out=out, steps_per_epoch=images.steps
    )
    first = [signals] + ([average] if average else [])  # the average's scores before a backup
    with signals:
        try:
            _fit(
                model, images, epochs, verbose, resume, [*first, checkpoints, *logging, *callbacks]
            )
        except KeyboardInterrupt as stop:
            raise TrainingInterrupted(
                out,
                epochs,
                checkpoints.epochs_done,
                checkpoints.best,
                terminated=isinstance(stop, Terminated),
            ) from stop
    return _finish(out, log_dir, config, checkpoints, files, start)


def _check_schedule(
    epochs: int,
    batch_size: int,
    validation_split: float | None,
    augment: Sequence[str],
    augmentations: tuple[str, ...],
) -> tuple[int, int, tuple[str, ...]]:
    """The epochs, batch size and augmentations (of the task's `augmentations`), checked."""
    epochs = checks.check_positive_int(epochs, "epochs")
    batch_size = checks.check_positive_int(batch_size, "batch_size")
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    augment = tuple(augment)
    for kind in augment:
        checks.check_choice(kind, "augment", augmentations)
    return epochs, batch_size, augment


def _recipe(given: Any, lr: float | None, task: Task) -> Recipe:
    """The run's recipe: `given` (a name or a Recipe) with `lr` replacing its rate, refused
    where it smooths, mixes or augments the targets of a task whose targets are not classes."""
    chosen = recipe_named(given)
    if lr is not None:
        lr = checks.check_positive_number(lr, "lr", "1e-3 to 1e-4")
        chosen = recipe_named(chosen, lr=lr, lr_batch_size=None)
    if not task.class_targets:
        for field in ("label_smoothing", "mixup_alpha", "cutmix_alpha", "random_erase"):
            if getattr(chosen, field):
                raise ValueError(f"{field}: the {task.name} task's targets are not classes")
        if chosen.auto_augment:
            raise ValueError(f"auto_augment: not for the {task.name} task's targets")
    return chosen


def _check_distillation(
    task: Task,
    teacher: str | None,
    teacher_weights: str | None,
    temperature: float,
    distill_weight: float,
) -> dict[str, float]:
    """The distillation's settings ({} without a teacher), checked before anything runs."""
    if teacher is None:
        if teacher_weights is not None:
            raise ValueError("teacher_weights: given without a teacher model id")
        return {}
    from keras_zoo.recipes.distill import check_distillation
    from keras_zoo.registry import model_info

    if not task.class_targets:
        raise ValueError(f"teacher: distillation is for classes, not the {task.name} task")
    model_info(teacher)  # an unknown id, named
    if teacher_weights is None:
        raise ValueError("teacher_weights: a teacher needs its trained weights")
    t, w = check_distillation(temperature, distill_weight)
    return {"temperature": t, "distill_weight": w}


def _distiller(model, description, names, teacher: str, weights: str, settings: dict):
    """`model` as the student of `teacher` (built with `weights` as a run's weights file, a
    weight set or a checkpoint, its classifier from them), the teacher's input made from the
    student's; ValueError where the teacher's classes are not the data's."""
    from keras_zoo.api import build
    from keras_zoo.description import describe
    from keras_zoo.inference import load_trained, trained_weights
    from keras_zoo.recipes.distill import Distiller, TeacherInput

    if trained_weights(teacher, weights):
        trained = load_trained(teacher, weights)
        net = trained.model
        if trained.class_names is not None and tuple(trained.class_names) != tuple(names):
            raise ValueError(
                f"teacher_weights {weights!r}: trained on other classes "
                f"({', '.join(trained.class_names[:5])}, ...) than the data's"
            )
    else:
        net = build(teacher, weights=weights, classifier_activation=None)
    size = tuple(net.input.shape[1:3])
    adapt = TeacherInput.between(description.preprocessing, describe(net).preprocessing, size)
    return Distiller(model, net, teacher_input=adapt, **settings)


def _folders(
    name: str,
    data: str,
    out: str | None,
    log_dir: str | None,
    new_run: bool | None = None,
    claim: bool = False,
) -> tuple[str, str]:
    """The run's output and log folders: by default both logs/<name>_<data folder name>.
    new_run None: as given. False: ValueError where out holds a finished run, saying how to go
    on. True: where out holds a run (`holds_run`), the first numbered folders beside out and an
    explicit log_dir that are both free (OUT-2, LOG_DIR-2; OUT-3, ...); with claim, those
    folders are made, atomically (`run_state.claim_numbered`: two runs started at once never
    get the same number)."""
    run_name = f"{name}_{os.path.basename(os.path.normpath(data))}"
    out = os.path.join("logs", run_name) if out is None else os.path.normpath(os.fspath(out))
    log_dir = None if log_dir is None else os.path.normpath(os.fspath(log_dir))
    if new_run is not None and (new_run and holds_run(out) or finished_run(out)):
        folders = [f for f in (out, log_dir) if f is not None]
        if new_run and claim:
            number = claim_numbered(folders)
        else:
            number = 2
            while any(os.path.lexists(f"{f}-{number}") for f in folders):
                number += 1
        numbered = f"{out}-{number}"
        if not new_run:
            raise ValueError(
                f"out {out!r} holds a finished run (its {RUN_CONFIG} has the results): to train "
                f"again give another --out, or --new-run to train into {numbered!r}"
            )
        out, log_dir = numbered, None if log_dir is None else f"{log_dir}-{number}"
    return out, out if log_dir is None else log_dir


def _validation_split(folder, data: str, validation_split: float | None) -> float | None:
    """The share of each class a run holds out: None where the data comes split (its own
    validation folder; a validation_split given is named in a warning), else validation_split,
    DEFAULT_VALIDATION_SPLIT where it is None."""
    if folder.subsets is None:
        return DEFAULT_VALIDATION_SPLIT if validation_split is None else validation_split
    if validation_split is not None:
        training, validation = folder.subsets
        warnings.warn(
            f"validation_split {validation_split} does not apply: data {data!r} comes split "
            f"into {training}/ and {validation}/, whose {validation}/ is the validation data",
            stacklevel=3,
        )
    return None


def _what_runs(
    data: str,
    folder,
    images: _Images,
    asked: str,
    out: str,
    resume: Backup | None,
    epochs: int,
) -> list[str]:
    """The lines that say where a new run goes (when not into the `asked` folder), where a
    split dataset's images come from, and from which epoch a run resumes."""
    lines = []
    if out != asked:
        lines.append(f"new run in {out}: {asked} holds a run")
    if folder.subsets is not None:
        training, validation = (os.path.join(data, name) for name in folder.subsets)
        lines.append(
            f"training on the {len(images.train_idx)} images of {training}, validating on the "
            f"{len(images.val_idx)} of {validation}"
        )
    if resume is not None:
        backup = os.path.join(out, BACKUP)
        lines.append(
            f"resuming the run in {out} at epoch {resume.epochs + 1} of {epochs}, from its "
            f"backup after epoch {resume.epochs} in {backup}"
            if resume.epochs < epochs
            else f"finishing the run in {out}, whose {resume.epochs} epochs are in {backup}"
        )
    return lines


def _check_start_weights(info, weights):
    """None, a weight set's spec ("imagenet", "source:tag") or the path of an existing weights
    file, checked without fetching anything; ValueError otherwise."""
    from keras_zoo.pretrained import check

    checked = check(info, weights)
    return None if checked is None else checked[0]


@dataclasses.dataclass
class _Images:
    """A run's images: the task's data, its split into training and validation indices, their
    datasets, and the keywords of the task's `dataset` that prepare them."""

    task: Task
    folder: Any  # keras_zoo.tasks.TaskData
    train_idx: np.ndarray
    val_idx: np.ndarray
    train: Any  # tf.data.Dataset of (images, labels) batches, shuffled and augmented
    validation: Any
    prepare: dict[str, Any]

    @classmethod
    def read(
        cls,
        task: Task,
        folder,
        validation_split: float | None,
        augment: tuple[str, ...],
        recipe: Recipe | None = None,
        **prepare,
    ) -> _Images:
        """The datasets of `folder`'s images (each already decoded once by `verify_images`),
        split as the data splits (a class-per-folder tree: per class, with `prepare["seed"]`;
        data that comes split: its own folders)."""
        train_idx, val_idx = folder.split(validation_split, prepare["seed"])
        files, targets = np.array(folder.files), folder.targets
        extra: dict[str, Any] = (
            {} if recipe is None else {"recipe": recipe, "classes": len(folder.names)}
        )
        train = task.dataset(
            files[train_idx], targets[train_idx], training=True, augment=augment, **prepare, **extra
        )
        validation = task.dataset(files[val_idx], targets[val_idx], **prepare)
        return cls(task, folder, train_idx, val_idx, train, validation, prepare)

    @property
    def steps(self) -> int:
        """Training batches per epoch."""
        return -(-len(self.train_idx) // self.prepare["batch_size"])

    def samples(self, count: int) -> np.ndarray:
        """Up to `count` validation images that the task draws (a classifier's: one per
        class), chosen with the run's seed, as one prepared batch."""
        chosen = self.task.samples(self.folder, self.val_idx, count, self.prepare["seed"])
        files, targets = np.array(self.folder.files)[chosen], self.folder.targets[chosen]
        batches = self.task.dataset(files, targets, **{**self.prepare, "batch_size": len(chosen)})
        return np.concatenate([x for x, _ in batches])


def _model(
    name: str,
    kwargs: dict[str, Any],
    weights: str | None,
    freeze_backbone: bool,
    classifier: Sequence[str],
) -> keras.Model:
    """The model to fit: built with the start weights, the backbone frozen if asked."""
    from keras_zoo.api import build

    model = build(name, weights=weights, **kwargs)
    if freeze_backbone:
        _freeze_backbone(model, classifier)
    return model


def _compile(
    model: keras.Model,
    task: Task,
    recipe: Recipe,
    batch_size: int,
    steps: int,
    epochs: int,
    loss: str | None,
) -> list[str]:
    """The recipe's optimizer and schedule over `epochs` of `steps` batches, with the task's
    loss (`loss` of its `losses`, None: its default; label smoothing and mixed targets for a
    classifier) and metrics; a Distiller brings its own loss. Returns the variables kept
    without weight decay."""
    from keras_zoo.recipes.distill import Distiller

    optimizer, excluded = fit.optimizer(
        recipe, model, batch_size=batch_size, steps_per_epoch=steps, epochs=epochs
    )
    if task.class_targets:  # such a task's loss and metrics take the recipe's targets
        classes: Any = task
        chosen = classes.loss(loss, label_smoothing=recipe.label_smoothing, soft=recipe.mixes)
        metrics = classes.metrics(soft=recipe.mixes)
    else:
        chosen, metrics = task.loss(loss) if loss else task.loss(), task.metrics()
    if isinstance(model, Distiller):
        model.label_smoothing = recipe.label_smoothing
        chosen = None
    model.compile(optimizer=optimizer, loss=chosen, metrics=metrics)
    return excluded


def _freeze_backbone(model, classifier: Sequence[str] = ()) -> int:
    """Freezes the backbone (`keras_zoo.features.backbone_end`: every layer up to the last
    stage output, or in a Vision Transformer every layer before the first of its `classifier`
    layers); batch norm then runs in inference mode. Returns how many layers with weights
    stay trainable."""
    from keras_zoo.features import backbone_end

    end = backbone_end(model, classifier)
    for layer in model.layers[:end]:
        layer.trainable = False
    return sum(1 for layer in model.layers[end:] if layer.weights)


def _start_record(
    out: str, task: Task, names: Sequence[str] | None, config: dict
) -> tuple[str, ...]:
    """The files that name the outputs (the task's `write_names`) and run.json (the record
    without results) in `out`; the names of the files beside the weights."""
    os.makedirs(out, exist_ok=True)
    written = task.write_names(out, names)
    write_json(os.path.join(out, RUN_CONFIG), config)
    return (*written, RUN_CONFIG)


def _inspection_callbacks(log_dir: str, config: dict, images: _Images) -> list:
    """The run record as text in `log_dir`, and the callbacks that log Keras' scalars and
    what the model sees: feature maps of the sample images, kernel statistics, and what the
    task draws (`Task.callbacks`: a classifier's Grad-CAM and validation confusion matrix)."""
    from keras_zoo import callbacks as inspection

    samples = images.samples(SAMPLE_IMAGES)
    inspection.log_text(
        log_dir,
        "run",  # a markdown code block
        "    " + json.dumps(config, indent=2).replace("\n", "\n    "),
    )
    from keras_zoo.data import looks_gray

    return [
        # Keras 3 writes no op graph, only one that the Graphs tab cannot read
        keras.callbacks.TensorBoard(log_dir, write_graph=False),
        inspection.FeatureMapLogger(log_dir, samples),
        inspection.KernelStatsLogger(log_dir, gray=looks_gray(images.folder.files)),
        *images.task.callbacks(log_dir, samples, images.validation, images.folder),
    ]


def _fit(
    model: keras.Model,
    images: _Images,
    epochs: int,
    verbose: int | str,
    resume: Backup | None,
    callbacks: list,
) -> None:
    """Keras fit on the training images, validated on the validation images, from the epoch
    after `resume`. `callbacks` begin with the `SignalsBetweenBatches` whose block this runs
    in (Ctrl-C and SIGTERM held until a batch ends) and the `Checkpoints`, so that an epoch is
    backed up before any other callback sees its end."""
    model.fit(
        images.train,
        validation_data=images.validation,
        epochs=epochs,
        verbose=verbose,
        initial_epoch=resume.epochs if resume else 0,
        callbacks=callbacks,
        shuffle=False,
    )  # images.train shuffles


def _finish(
    out: str,
    log_dir: str,
    config: dict,
    checkpoints: Checkpoints,
    files: tuple[str, ...],
    start: float,
) -> TrainResult:
    """The run's result, also written into run.json as its "results" (the best value under
    "best_<monitor key>": a classifier's "best_val_accuracy")."""
    found = checkpoints.best
    result = TrainResult(
        out=out,
        log_dir=log_dir,
        weights=os.path.join(out, BEST_WEIGHTS),
        best=found.value if found else float("nan"),
        monitor=checkpoints.monitor,
        best_epoch=found.epoch if found else None,
        history=checkpoints.history,
        seconds=time.perf_counter() - start,
        files=files,
    )
    config["results"] = {
        f"best_{result.monitor.key}": result.best,
        "best_epoch": result.best_epoch,
        "epochs_run_now": checkpoints.epochs_run,
        "history": result.history,
        "seconds": round(result.seconds, 1),
    }
    write_json(os.path.join(out, RUN_CONFIG), config)
    return result
