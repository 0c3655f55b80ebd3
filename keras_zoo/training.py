"""The training workflow on a class-per-folder image tree: train, evaluate, predict.

`train` writes into its `out` folder:

    best.weights.h5      the weights of the epoch with the best validation accuracy (that
                         accuracy and epoch as the HDF5 attributes keras_zoo.val_accuracy and
                         keras_zoo.epoch)
    class_indices.json   {"0": "daisy", "1": "dandelion", ...}
    run.json             the run configuration (model flags, data, split, schedule) and results
    .backup/             while the run is unfinished: the training state after each of the last
                         two finished epochs, for a rerun to resume from

and logs to `log_dir`: Keras' epoch scalars, the run configuration as text, and the inspection
callbacks (`keras_zoo.callbacks`: one validation image per class with its feature maps and
Grad-CAM, kernel histograms and update ratios, the validation confusion matrix with each
class's precision and recall). `evaluate` and
`predict` read the model flags and class names back from the files beside the weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

from keras_zoo import checks

AUGMENTATIONS = ("flip", "crop")
BEST_WEIGHTS = "best.weights.h5"
CLASS_INDICES = "class_indices.json"
RUN_CONFIG = "run.json"
BACKUP = ".backup"
SAMPLE_IMAGES = 10  # sample images shown in TensorBoard: one per class, up to this many


@dataclasses.dataclass
class TrainResult:
    """What `train` did: where it wrote, the best validation accuracy over all the run's
    epochs and its epoch (counted from 1; None without one), the per-epoch values of Keras'
    logs for every epoch (those before a resume included) and the seconds of this call."""

    out: str
    log_dir: str
    weights: str
    best_val_accuracy: float
    history: dict
    seconds: float
    best_epoch: int | None = None


def _model_kwargs(name: str, alpha: float | None, image_size: int, classes: int) -> dict:
    from keras_zoo.registry import model_info

    info = model_info(name)
    checks.check_image_size(image_size, "image_size")
    kwargs = {
        "input_shape": (image_size, image_size, 3),
        "classes": classes,
        "classifier_activation": None,
    }
    if alpha is not None:
        if "alpha" not in info.keywords:
            raise ValueError(f"alpha: {name} has no width multiplier; the MobileNets take one")
        kwargs["alpha"] = alpha
    return kwargs


def _check_start_weights(info, weights):
    """None, a weight set's spec ("imagenet", "source:tag") or the path of an existing weights
    file, checked without fetching anything; ValueError otherwise."""
    from keras_zoo.pretrained import check

    checked = check(info, weights)
    return None if checked is None else checked[0]


def _freeze_backbone(model, classifier: Sequence[str] = ()) -> int:
    """Freezes every layer up to the last stage output (batch norm then runs in inference
    mode), or, in a model without stage outputs (a Vision Transformer), every layer before
    the first of its `classifier` layers (`ModelInfo.classifier`); returns how many layers
    with weights stay trainable."""
    from keras_zoo.layers import StageOutput

    stages = [i for i, layer in enumerate(model.layers) if isinstance(layer, StageOutput)]
    heads = [i for i, layer in enumerate(model.layers) if layer.name in classifier]
    if stages:
        end = stages[-1] + 1
    elif heads:
        end = heads[0]
    else:  # a family bug, not a user error
        raise RuntimeError(f"{model.name}: no stage output and no classifier layer to freeze up to")
    for layer in model.layers[:end]:
        layer.trainable = False
    return sum(1 for layer in model.layers[end:] if layer.weights)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, as `keras_zoo.files.Terminated`) during `train`; its text says in
    which epoch, what the run kept and how to resume."""

    def __init__(
        self, out: str, epochs: int, epochs_done: int, best: _Best | None, terminated: bool = False
    ):
        super().__init__(out, epochs, epochs_done)
        self.out, self.epochs, self.epochs_done = out, epochs, epochs_done
        self.best, self.terminated = best, terminated

    def __str__(self) -> str:
        verb = "terminated" if self.terminated else "interrupted"
        done, epochs = self.epochs_done, self.epochs
        if done == 0:
            return (
                f"{verb} in epoch 1 of {epochs}, before any epoch finished: nothing to "
                "resume from; rerun the same command to start over"
            )
        where, then = (
            (f"in epoch {done + 1} of {epochs}", f"resume at epoch {done + 1}")
            if done < epochs
            else ("after the last epoch", "finish")
        )
        best = (
            ""
            if self.best is None
            else (
                f" and the best so far (validation accuracy {self.best.val_accuracy:.4f}, epoch "
                f"{self.best.epoch}) in {os.path.join(self.out, BEST_WEIGHTS)}"
            )
        )
        kept = "epoch 1" if done == 1 else f"epochs 1-{done}"
        return (
            f"{verb} {where}; kept {kept} in {os.path.join(self.out, BACKUP)}{best}; "
            f"rerun the same command to {then}"
        )


@dataclasses.dataclass(frozen=True)
class _Best:
    """The best validation accuracy of a run and its epoch, counted from 1."""

    val_accuracy: float
    epoch: int


@dataclasses.dataclass(frozen=True)
class _Backup:
    """A run's training state after `epochs` finished epochs: the weights file (model and
    optimizer) and the per-epoch logs of those epochs."""

    epochs: int
    weights: str
    history: dict


_BACKUP_RECORD = re.compile(r"epoch-(\d{4,})\.json")
_BACKUP_FILE = re.compile(r"epoch-\d{4,}\.(json|weights\.h5)")
KEPT_BACKUPS = 2  # the newest and the one before it, for when the newest cannot be read
MAX_BACKUP_RECORD = 16 << 20  # bytes: far more than the logs of 10,000 epochs


def _backup_paths(folder: str, epochs: int) -> tuple[str, str]:
    """The record and the weights file of the backup after `epochs` epochs."""
    stem = os.path.join(folder, f"epoch-{epochs:04d}")
    return f"{stem}.json", f"{stem}.weights.h5"


def _read_backup(folder: str, epochs: int) -> _Backup:
    """The backup after `epochs` epochs in `folder`; ValueError saying what is wrong with it
    where its record or weights are torn (cut short, emptied) or damaged."""
    from keras_zoo.port.convert import sha256_of

    record_path, weights = _backup_paths(folder, epochs)
    name, weights_name = os.path.basename(record_path), os.path.basename(weights)
    size = os.path.getsize(record_path)
    if size == 0:
        raise ValueError(f"{name} is empty")
    if size > MAX_BACKUP_RECORD:
        raise ValueError(
            f"{name} holds {size} bytes, more than a backup record's {MAX_BACKUP_RECORD}"
        )
    try:
        with open(record_path, encoding="utf-8") as f:
            record = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{name} is not valid JSON ({err})") from None
    if not (
        isinstance(record, dict)
        and record.get("epochs") == epochs
        and isinstance(record.get("bytes"), int)
        and isinstance(record.get("sha256"), str)
        and _is_history(record.get("history"))
    ):
        raise ValueError(f"{name} is not the record of the backup after epoch {epochs}")
    if not os.path.isfile(weights):
        raise ValueError(f"{weights_name} is missing")
    if os.path.getsize(weights) != record["bytes"]:
        raise ValueError(
            f"{weights_name} holds {os.path.getsize(weights)} of its {record['bytes']} bytes"
        )
    if sha256_of(weights) != record["sha256"]:
        raise ValueError(f"{weights_name} does not match the checksum in {name}")
    return _Backup(epochs, weights, record["history"])


def _is_history(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str)
        and isinstance(v, list)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        for k, v in value.items()
    )


def _find_backup(folder: str) -> tuple[_Backup | None, list[str]]:
    """The newest readable backup in `folder` (None if there is none) and what is wrong with
    each newer one."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return None, []
    found = sorted(int(m.group(1)) for m in map(_BACKUP_RECORD.fullmatch, names) if m)
    problems: list[str] = []
    for epochs in reversed(found):
        try:
            return _read_backup(folder, epochs), problems
        except (ValueError, OSError) as err:
            problems.append(str(err))
    return None, problems


def _torn_backup_message(folder: str, problems: list[str], resume: _Backup | None) -> str:
    then = (
        f"resuming from the previous backup, after epoch {resume.epochs}"
        if resume
        else "no readable backup is left, so the run starts over from epoch 1"
    )
    return f"backup {folder}: {'; '.join(problems)}; {then}"


def _recorded_best(path: str) -> _Best | None:
    """The validation accuracy and epoch that `_Checkpoints` recorded in a best-weights file;
    None for a missing or unreadable file or one without them."""
    from keras_zoo.port.convert import provenance

    try:
        attrs = provenance(path)
    except OSError:
        return None
    value, epoch = attrs.get("val_accuracy"), attrs.get("epoch")
    if not isinstance(value, float) or not isinstance(epoch, int):
        return None
    return _Best(value, epoch)


def _scalar(value) -> float:
    # a multi-worker run's logs are vectors of one value (keras_zoo.distribute)
    return float(np.ravel(value)[0])


class _Checkpoints(keras.callbacks.Callback):
    """At the end of every epoch, best.weights.h5 where the validation accuracy is the run's
    best so far (that accuracy and the epoch recorded in it), then a backup of the training
    state (`_backup_paths`: the weights with the optimizer's, and a record of the epoch, the
    weights' size and sha256 and the per-epoch logs), the newest two kept. Each file is
    written under a temporary name and renamed into place, the record last, so a kill at any
    moment leaves the previous backups whole. `resume`, a backup `_find_backup` read, is
    loaded when training begins; the backups are removed when it ends."""

    def __init__(self, best_path: str, folder: str, resume: _Backup | None, best: _Best | None):
        super().__init__()
        self.best_path, self.folder, self.resume, self.best = best_path, folder, resume, best
        self.history = {k: list(v) for k, v in resume.history.items()} if resume else {}
        self.epochs_done = resume.epochs if resume else 0
        self.epochs_run = 0  # by this call
        self._kept = [resume.epochs] if resume else []

    def on_train_begin(self, logs=None):
        if self.resume is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # its state is in the backup too
            optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(self.resume.weights)
        except (ValueError, OSError) as err:
            raise ValueError(
                f"backup {self.resume.weights} of an unfinished run does not fit this model "
                f"({str(err).splitlines()[0]}): rerun with that run's flags to resume, or "
                f"delete {self.folder} to start over"
            ) from None

    def on_epoch_end(self, epoch, logs=None):
        from keras_zoo.port.convert import write_weights

        logs = {k: _scalar(v) for k, v in (logs or {}).items()}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        value = logs.get("val_accuracy", float("nan"))
        if value == value and (self.best is None or value > self.best.val_accuracy):
            write_weights(self.model, self.best_path, {"val_accuracy": value, "epoch": epoch + 1})
            self.best = _Best(value, epoch + 1)
        self._back_up(epoch + 1)

    def _back_up(self, epochs: int) -> None:
        from keras_zoo.port.convert import sha256_of, write_weights

        os.makedirs(self.folder, exist_ok=True)
        record, weights = _backup_paths(self.folder, epochs)
        write_weights(self.model, weights, {})
        _write_json(
            record,
            {
                "epochs": epochs,
                "bytes": os.path.getsize(weights),
                "sha256": sha256_of(weights),
                "history": self.history,
            },
        )
        self.epochs_done, self.epochs_run = epochs, self.epochs_run + 1
        self._kept = [*(e for e in self._kept if e != epochs), epochs][-KEPT_BACKUPS:]
        self._remove_other_backups()

    def _remove_other_backups(self) -> None:
        kept = {os.path.basename(p) for e in self._kept for p in _backup_paths(self.folder, e)}
        for name in os.listdir(self.folder):
            if _BACKUP_FILE.fullmatch(name) and name not in kept:
                os.unlink(os.path.join(self.folder, name))

    def on_train_end(self, logs=None):
        shutil.rmtree(self.folder, ignore_errors=True)


class _SignalsBetweenBatches(keras.callbacks.Callback):
    """While its block runs, Ctrl-C and SIGTERM (where Python code handles them: Ctrl-C's
    KeyboardInterrupt, `keras_zoo.files.terminate_as_interrupt`) are held and their handlers
    called from this callback between batches, at the start of an epoch and at the end of
    training, so that the exception they raise leaves fit from a callback: raised inside
    TensorFlow's own code (an input iterator being made) it can abort the process. Placed
    before the backup callback, so that an epoch's end, and a finished run's, are backed up
    first. A second signal while one is held is handled at once."""

    def __init__(self):
        super().__init__()
        self._handlers, self._held = {}, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # where handlers run
            for signum in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(signum)
                if callable(handler):
                    self._handlers[signum] = handler
                    signal.signal(signum, self._hold)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        if self._held is not None and exc[0] is None:  # after training: handled as it comes
            signal.raise_signal(self._held)

    def _hold(self, signum, frame):
        if self._held is None:
            self._held = signum
        else:  # a second one, in place of the first
            self._held = None
            self._handlers[signum](signum, frame)

    def _deliver(self, *args, **kwargs):
        if self._held is not None:
            signum, self._held = self._held, None
            self._handlers[signum](signum, None)

    on_epoch_begin = on_train_batch_end = on_test_batch_end = on_train_end = _deliver


def _write_json(path: str, value) -> None:
    from keras_zoo.files import atomic_file

    with atomic_file(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(value, f, indent=2)
            f.write("\n")


def train(
    name: str,
    data: str,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    image_size: int | None = None,
    alpha: float | None = None,
    weights: str | None = None,
    freeze_backbone: bool = False,
    log_dir: str | None = None,
    out: str | None = None,
    strategy: str | None = None,
    validation_split: float = 0.2,
    seed: int = 0,
    augment: Sequence[str] = AUGMENTATIONS,
    inspect: bool = True,
    verbose: int | str = 1,
    callbacks: Sequence = (),
) -> TrainResult:
    """Trains model id `name` on the class-per-folder tree `data` with Keras fit.

    weights: "imagenet", a weight set's key ("torchvision:IMAGENET1K_V2"), a PyTorch checkpoint
    or a Keras weights file to start from; its classifier is left out (a new head for this
    data's classes). Images are prepared as that weight set was evaluated
    (`keras_zoo.preprocessing(name, weights, image_size=image_size)`: the id's default for a
    file or None), before the random crops and flips of `augment`. freeze_backbone trains only
    the layers after the last stage output (a Vision Transformer: its classifier, heads.head).
    image_size: a ViT's must be a multiple of its patch size. log_dir and out default to
    logs/<name>_<data folder name>. Everything is checked before anything is written.

    A run stopped after some epochs (Ctrl-C, SIGTERM, a crash, a lost machine) resumes after
    its last finished epoch when started again with the same out, from the backups in
    out/.backup (`_Checkpoints`), with the best validation accuracy of all its epochs; a
    backup that cannot be read (cut short, emptied, damaged) is named in a warning, and the run
    resumes from the one before it or starts over. Ctrl-C or SIGTERM during training raises
    `TrainingInterrupted`, which says what was kept.
    """

    from keras_zoo import callbacks as inspection
    from keras_zoo.api import build
    from keras_zoo.data import make_dataset, scan_folder, verify_images
    from keras_zoo.distribute import is_chief, make_strategy, prepare_model
    from keras_zoo.registry import model_info

    start = time.perf_counter()
    info = model_info(name)
    epochs = checks.check_positive_int(epochs, "epochs")
    batch_size = checks.check_positive_int(batch_size, "batch_size")
    lr = checks.check_positive_number(lr, "lr", "1e-3 to 1e-4")
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    augment = tuple(augment)
    for kind in augment:
        checks.check_choice(kind, "augment", AUGMENTATIONS)
    weights = _check_start_weights(info, weights)
    image_size = (
        info.input_size[0]
        if image_size is None
        else checks.check_image_size(image_size, "image_size")
    )
    folder = scan_folder(data, verify=False)
    classes = len(folder.class_names)
    kwargs = _model_kwargs(name, alpha, image_size, classes)
    run_name = f"{name}_{os.path.basename(os.path.normpath(data))}"
    out = os.path.join("logs", run_name) if out is None else os.fspath(out)
    log_dir = out if log_dir is None else os.fspath(log_dir)
    dist = make_strategy(strategy)  # before any TensorFlow op: collectives are set up here
    verify_images(folder.files)
    train_idx, val_idx = folder.split(validation_split, seed)
    files, labels = np.array(folder.files), folder.labels
    common: dict[str, Any] = dict(
        image_size=image_size, info=info, batch_size=batch_size, seed=seed, weights=weights
    )
    train_ds = make_dataset(
        files[train_idx], labels[train_idx], training=True, augment=augment, **common
    )
    val_ds = make_dataset(files[val_idx], labels[val_idx], **common)
    with dist.scope():
        model = build(name, weights=weights, **kwargs)
        if freeze_backbone:
            _freeze_backbone(model, info.classifier)
        steps = epochs * -(-len(train_idx) // batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    prepare_model(model, dist, train_ds)
    best = os.path.join(out, BEST_WEIGHTS)
    backups = os.path.join(out, BACKUP)
    resume, problems = _find_backup(backups)
    if problems:
        warnings.warn(_torn_backup_message(backups, problems, resume), stacklevel=2)
    best_so_far = _recorded_best(best) if resume else None
    if resume and best_so_far is None:
        warnings.warn(
            f"{best} is missing or records no validation accuracy: the best of the "
            f"{resume.epochs} epoch(s) before this resume is not known",
            stacklevel=2,
        )

    # everything is checked: from here on the run writes
    os.makedirs(out, exist_ok=True)
    class_indices = {str(i): c for i, c in enumerate(folder.class_names)}
    config = {
        "model": name,
        "alpha": alpha,
        "image_size": image_size,
        "classes": classes,
        "data": os.path.abspath(data),
        "validation_split": validation_split,
        "seed": seed,
        "train_images": int(len(train_idx)),
        "validation_images": int(len(val_idx)),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "schedule": "cosine decay, Adam",
        "weights": weights,
        "freeze_backbone": freeze_backbone,
        "augment": list(augment),
        "strategy": strategy or "default",
        "log_dir": os.path.abspath(log_dir),
    }
    _write_json(os.path.join(out, CLASS_INDICES), class_indices)
    _write_json(os.path.join(out, RUN_CONFIG), config)
    checkpoints = _Checkpoints(best, backups, resume, best_so_far)
    signals = _SignalsBetweenBatches()
    cbs = [signals, checkpoints]
    if inspect and is_chief():
        chosen = folder.one_per_class(val_idx, SAMPLE_IMAGES, seed)
        samples = np.concatenate(
            [
                x
                for x, _ in make_dataset(
                    files[chosen], labels[chosen], **{**common, "batch_size": len(chosen)}
                )
            ]
        )
        inspection.log_text(
            log_dir,
            "run",  # a markdown code block
            "    " + json.dumps(config, indent=2).replace("\n", "\n    "),
        )
        cbs += [
            # Keras 3 writes no op graph, only one that the Graphs tab cannot read
            keras.callbacks.TensorBoard(log_dir, write_graph=False),
            inspection.FeatureMapLogger(log_dir, samples),
            inspection.GradCAMLogger(log_dir, samples),
            inspection.KernelStatsLogger(log_dir, gray=folder.looks_gray()),
            inspection.ConfusionMatrixLogger(log_dir, val_ds, folder.class_names),
        ]
    with signals:
        try:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=epochs,
                verbose=verbose,
                initial_epoch=resume.epochs if resume else 0,
                callbacks=[*cbs, *callbacks],
                shuffle=False,
            )  # train_ds shuffles
        except KeyboardInterrupt as stop:
            from keras_zoo.files import Terminated

            raise TrainingInterrupted(
                out,
                epochs,
                checkpoints.epochs_done,
                checkpoints.best,
                terminated=isinstance(stop, Terminated),
            ) from stop
    found = checkpoints.best
    result = TrainResult(
        out=out,
        log_dir=log_dir,
        weights=best,
        best_val_accuracy=found.val_accuracy if found else float("nan"),
        best_epoch=found.epoch if found else None,
        history=checkpoints.history,
        seconds=time.perf_counter() - start,
    )
    config["results"] = {
        "best_val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch,
        "epochs_run_now": checkpoints.epochs_run,
        "history": result.history,
        "seconds": round(result.seconds, 1),
    }
    _write_json(os.path.join(out, RUN_CONFIG), config)
    return result


# ---------------------------------------------------------------------------------------------
# the trained model back: evaluate and predict


@dataclasses.dataclass
class TrainedModel:
    """A model with the weights `train` wrote and what it knows from the files beside them."""

    model: keras.Model
    name: str
    class_names: tuple[str, ...]
    image_size: int
    config: dict

    @property
    def start_weights(self) -> str | None:
        """The weights the run started from (run.json): their preprocessing prepares images."""
        return self.config.get("weights")


def _read_json_object(path: str, what: str) -> dict:
    """The JSON object in the file at `path`; ValueError naming the file, as `what` it should
    hold, where it is not JSON or not an object."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path}: expected a JSON object of {what}, not valid JSON ({err})"
        ) from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of {what}")
    return raw


def read_class_indices(path: str) -> tuple[str, ...]:
    """Class names by index from class_indices.json ({"0": "daisy", ...}, or {"daisy": 0})."""
    raw = _read_json_object(path, "class indices")
    if not raw:
        raise ValueError(f"{path}: expected a JSON object of class indices")
    try:
        pairs = (
            [(int(k), str(v)) for k, v in raw.items()]
            if all(isinstance(v, str) for v in raw.values())
            else [(int(v), str(k)) for k, v in raw.items()]
        )
    except (ValueError, TypeError):
        raise ValueError(
            f"{path}: expected class indices 0, 1, ... with their class names, "
            f'such as {{"0": "daisy", "1": "tulips"}}'
        ) from None
    pairs.sort()
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"{path}: class indices must be 0..{len(pairs) - 1}")
    return tuple(name for _, name in pairs)


def load_trained(
    name: str, weights: str, *, alpha: float | None = None, image_size: int | None = None
) -> TrainedModel:
    """Builds `name` with the flags of the run that wrote `weights` (run.json beside them;
    alpha and image_size given here take precedence) and loads the weights, whose classifier
    must match class_indices.json beside them."""
    from keras_zoo.api import build
    from keras_zoo.port.loading import keras_file_classes
    from keras_zoo.registry import model_info

    info = model_info(name)
    weights = os.fspath(weights)
    if not os.path.isfile(weights):
        raise ValueError(f"weights {weights!r}: no such file")
    if not weights.endswith(checks.KERAS_WEIGHT_SUFFIXES):
        raise ValueError(
            f"weights {weights!r}: expected the Keras weights file train wrote "
            f"({', '.join(checks.KERAS_WEIGHT_SUFFIXES)})"
        )
    folder = os.path.dirname(os.path.abspath(weights))
    config = {}
    if os.path.isfile(os.path.join(folder, RUN_CONFIG)):
        config = _read_json_object(os.path.join(folder, RUN_CONFIG), "the run's configuration")
        if config.get("model") not in (None, name):
            raise ValueError(f"weights {weights!r} were trained as {config['model']}, not {name}")
    indices = os.path.join(folder, CLASS_INDICES)
    if not os.path.isfile(indices):
        raise ValueError(f"weights {weights!r}: no {CLASS_INDICES} beside them to name the classes")
    class_names = read_class_indices(indices)
    try:
        file_classes = keras_file_classes(weights, "")
    except OSError as err:
        raise ValueError(f"weights {weights!r} is not a readable weights file: {err}") from None
    if file_classes != len(class_names):
        raise ValueError(
            f"weights {weights!r} hold a classifier of {file_classes} classes but "
            f"{indices} lists {len(class_names)}"
        )
    alpha = config.get("alpha") if alpha is None else alpha
    if image_size is None:
        image_size = config.get("image_size") or info.input_size[0]
    kwargs = _model_kwargs(name, alpha, image_size, len(class_names))
    model = build(name, weights=weights, **kwargs)
    return TrainedModel(model, name, class_names, image_size, config)


RUNTIMES = ("keras", "litert", "onnx", "openvino")


@dataclasses.dataclass
class _Inference:
    """How predict and evaluate run a trained model: `run` maps a prepared batch to outputs
    (probabilities when `probabilities`, logits otherwise); `batches(files)` prepares images."""

    run: Callable[[Any], Any]
    batches: Callable[[Sequence[str]], Iterator[np.ndarray]]
    class_names: tuple[str, ...]
    config: dict
    probabilities: bool
    keep: object = None  # what must outlive the runs (a temporary export's folder)


def _inference(name: str, weights: str, runtime: str, alpha, image_size) -> _Inference:
    """The trained model behind `weights` (the Keras weights train wrote, or an export of them,
    which runs in its own runtime) in `runtime`: "keras", or an export format, into which the
    Keras model is exported (and checked) first."""
    import tempfile

    from keras_zoo.data import make_dataset, read_image
    from keras_zoo.deploy import SUFFIXES, export, format_of, load_exported
    from keras_zoo.registry import model_info

    checks.check_choice(runtime, "runtime", RUNTIMES)
    fmt = format_of(weights)
    if fmt is not None:
        if runtime not in ("keras", fmt):
            raise ValueError(
                f"runtime {runtime!r}: weights {weights!r} is a {fmt} export, "
                f"which runs in {fmt}; drop --runtime"
            )
        exported = load_exported(weights)
        meta = exported.record.get("metadata", {})
        if meta.get("model") not in (None, name):
            raise ValueError(f"weights {weights!r} are an export of {meta['model']}, not {name}")
        if exported.class_names is None:
            raise ValueError(
                f"weights {weights!r}: its export record names no classes "
                "(export the weights train wrote)"
            )

        def exported_batches(files):
            for i in range(0, len(files), 32):
                yield exported.prepare([read_image(f) for f in files[i : i + 32]])

        return _Inference(
            exported,
            exported_batches,
            exported.class_names,
            meta.get("run", {}),
            exported.record.get("output_activation") == "softmax",
        )
    trained = load_trained(name, weights, alpha=alpha, image_size=image_size)

    def batches(files):
        ds = make_dataset(
            list(files),
            np.zeros(len(files), np.int32),
            image_size=trained.image_size,
            info=model_info(name),
            batch_size=32,
            weights=trained.start_weights,
        )
        for x, _ in ds:
            yield x.numpy()

    run, keep = trained.model.predict_on_batch, None
    if runtime != "keras":
        keep = tempfile.TemporaryDirectory(prefix="keras_zoo-")
        path = os.path.join(keep.name, f"{name}{SUFFIXES[runtime]}")
        export(trained.model, path, runtime, class_names=trained.class_names, verbose=False)
        run = load_exported(path)
    return _Inference(run, batches, trained.class_names, trained.config, False, keep)


def _logits(inference: _Inference, x) -> np.ndarray:
    out = np.asarray(inference.run(x))
    # log-probabilities differ from the logits by a constant per image: the same softmax
    return np.log(np.maximum(out, 1e-30)) if inference.probabilities else out


def predict(
    name: str,
    weights: str,
    images: Sequence[str],
    *,
    top_k: int = 5,
    temperature: float = 1.0,
    alpha: float | None = None,
    image_size: int | None = None,
    runtime: str = "keras",
) -> list[list[tuple[str, float]]]:
    """For each image file, the top_k (class name, probability) pairs, with probabilities
    softmax(logits / temperature) (`keras_zoo.layers.TemperatureSoftmax`). Images are prepared
    as in the training run's validation (`keras_zoo.data.make_dataset`). `weights` is the
    Keras weights file train wrote or an export of it (`keras_zoo.export`); runtime "litert",
    "onnx" or "openvino" runs the Keras weights exported to that runtime."""
    from keras_zoo.data import verify_images
    from keras_zoo.layers import TemperatureSoftmax

    top_k = checks.check_positive_int(top_k, "top_k")
    softmax = TemperatureSoftmax(temperature)
    if not images:
        raise ValueError("images: give at least one image file")
    images = [os.fspath(path) for path in images]
    for path in images:
        if not os.path.isfile(path):
            raise ValueError(f"image {path!r}: no such file")
    # before the model is built or exported, so that a damaged file costs nothing
    verify_images(images, [f"image {path!r}" for path in images])
    inference = _inference(name, weights, runtime, alpha, image_size)
    logits = np.concatenate([_logits(inference, x) for x in inference.batches(list(images))])
    probs = np.asarray(softmax(logits))
    k = min(top_k, len(inference.class_names))
    return [[(inference.class_names[i], float(p[i])) for i in np.argsort(-p)[:k]] for p in probs]


@dataclasses.dataclass
class Evaluation:
    accuracy: float
    class_names: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    matrix: np.ndarray
    images: int


def evaluate(
    name: str,
    weights: str,
    data: str,
    *,
    subset: str = "all",
    alpha: float | None = None,
    image_size: int | None = None,
    runtime: str = "keras",
) -> Evaluation:
    """Accuracy, per-class precision and recall and the confusion matrix on `data` (all of
    it, or the training or validation subset of the run's split), with images prepared as in
    the run's validation (the preprocessing of the weights it started from, centre crops).
    `weights` and `runtime` as for `predict`."""
    from keras_zoo.data import scan_folder
    from keras_zoo.viz.confusion import confusion_matrix, precision_recall

    checks.check_choice(subset, "subset", ("all", "training", "validation"))
    folder = scan_folder(data)
    inference = _inference(name, weights, runtime, alpha, image_size)
    if folder.class_names != inference.class_names:
        raise ValueError(
            f"data {data!r} has the classes {list(folder.class_names)} but the "
            f"weights' {CLASS_INDICES} lists {list(inference.class_names)}"
        )
    indices = np.arange(len(folder.files))
    if subset != "all":
        if "validation_split" not in inference.config:
            raise ValueError(
                f"subset {subset!r} needs the {RUN_CONFIG} of the training run beside the weights"
            )
        train_idx, val_idx = folder.split(
            inference.config["validation_split"], inference.config["seed"]
        )
        indices = val_idx if subset == "validation" else train_idx
    files, labels = np.array(folder.files)[indices], folder.labels[indices]
    predicted = np.concatenate(
        [_logits(inference, x).argmax(-1) for x in inference.batches(list(files))]
    )
    matrix = confusion_matrix(labels, predicted, len(folder.class_names))
    precision, recall = precision_recall(matrix)
    return Evaluation(
        float(np.mean(predicted == labels)),
        folder.class_names,
        precision,
        recall,
        matrix,
        len(labels),
    )
