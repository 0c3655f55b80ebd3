"""What a training run keeps in its `out` folder, and how it stops and resumes.

    best.weights.h5      the weights of the epoch with the best value of the task's `Monitor`
                         (a classifier's validation accuracy; that value and the epoch as the
                         HDF5 attributes keras_zoo.<monitor key> and keras_zoo.epoch)
    class_indices.json   a classifier's {"0": "daisy", "1": "dandelion", ...} (the files that
                         name the outputs are the task's: `keras_zoo.tasks`)
    run.json             the run record: the model (id, family keywords, input size, classes),
                         the data, the split, the schedule, and the results
    .backup/             while the run is unfinished: the training state after each of the last
                         two finished epochs, for a rerun to resume from

`Checkpoints` writes the best weights and the backups, `find_backup` reads them back,
`SignalsBetweenBatches` lets Ctrl-C and SIGTERM stop fit between batches, and
`TrainingInterrupted` says what was kept; a folder whose run.json has the results holds a
finished run (`finished_run`), which `train` does not write over; `claim_numbered` claims the
numbered folders (OUT-2, ...) of a new run beside one. `model_kwargs` and
`recorded_model_args` are how a run's model is built, by `keras_zoo.training.train` and again by
`keras_zoo.inference`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_zoo import checks

BEST_WEIGHTS = "best.weights.h5"
RUN_CONFIG = "run.json"
BACKUP = ".backup"


@dataclasses.dataclass(frozen=True)
class Monitor:
    """The Keras log value that picks a run's best epoch: `key` ("val_accuracy"), whether
    higher is better (`mode` "max") or lower ("min"), and its name in words.

    >>> accuracy = Monitor("val_accuracy", "max", "validation accuracy")
    >>> accuracy.better(0.5, None), accuracy.better(0.5, 0.6), accuracy.better(float("nan"), None)
    (True, False, False)
    """

    key: str
    mode: str
    words: str

    def better(self, value: float, best: float | None) -> bool:
        """Whether `value` (not NaN) beats `best` (None: nothing yet)."""
        if value != value:
            return False
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best


def model_kwargs(
    name: str, model_args: Mapping[str, Any] | None, image_size: int, head: Mapping[str, Any]
) -> dict[str, Any]:
    """The `keras_zoo.build` keywords of a run's model: the task's `head` keywords (a
    classifier's: logits of its classes) at `image_size`, with the family keywords
    `model_args` (`keras_zoo.model_args`)."""
    from keras_zoo.model_args import check_model_args

    checks.check_image_size(image_size, "image_size")
    return {
        "input_shape": (image_size, image_size, 3),
        **head,
        **check_model_args(name, model_args),
    }


def recorded_model_args(config: Mapping[str, Any]) -> dict[str, Any]:
    """The family keywords in a run record: its "model_args", or the "alpha" that records of
    earlier releases kept instead."""
    if "model_args" in config:
        recorded = config["model_args"]
        return dict(recorded) if isinstance(recorded, Mapping) else recorded
    return {} if config.get("alpha") is None else {"alpha": config["alpha"]}


def read_json_object(path: str, what: str) -> dict:
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


def holds_run(out: str) -> bool:
    """Whether the folder `out` holds a training run, finished or not: a run.json or backups."""
    return any(os.path.lexists(os.path.join(out, name)) for name in (RUN_CONFIG, BACKUP))


def finished_run(out: str) -> bool:
    """Whether the folder `out` holds a finished training run: its run.json has the results,
    which `train` writes last, once the backups are removed (ValueError naming a run.json that
    is not a JSON object)."""
    path = os.path.join(out, RUN_CONFIG)
    return os.path.isfile(path) and "results" in read_json_object(path, "a run's record")


def claim_numbered(folders: Sequence[str], start: int = 2) -> int:
    """The first number n from `start` for which every folder "F-n" of `folders` is free (does
    not exist), those folders made, which claims them: each is made by os.mkdir, which fails
    where the folder exists, so that runs started at once, in threads, processes or on machines
    that share the file system, never claim the same number. Where a later folder of a number
    exists, those made of it are removed again and the next number is tried.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as root:
    ...     [claim_numbered([os.path.join(root, "out")]) for _ in range(2)]
    [2, 3]
    """
    folders = list(dict.fromkeys(os.fspath(f) for f in folders))  # a folder given twice: once
    number = start
    while True:
        made: list[str] = []
        try:
            for folder in folders:
                path = f"{folder}-{number}"
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                os.mkdir(path)
                made.append(path)
            return number
        except FileExistsError:
            for path in reversed(made):
                os.rmdir(path)
            number += 1


def write_json(path: str, value: Any) -> None:
    """`value` as indented JSON in the file at `path`, written whole or not at all."""
    from keras_zoo.files import atomic_file

    with atomic_file(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(value, f, indent=2)
            f.write("\n")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, as `keras_zoo.files.Terminated`) during `train`; its text says in
    which epoch, what the run kept and how to resume."""

    def __init__(
        self, out: str, epochs: int, epochs_done: int, best: Best | None, terminated: bool = False
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
                f" and the best so far ({self.best.monitor.words} {self.best.value:.4f}, epoch "
                f"{self.best.epoch}) in {os.path.join(self.out, BEST_WEIGHTS)}"
            )
        )
        kept = "epoch 1" if done == 1 else f"epochs 1-{done}"
        return (
            f"{verb} {where}; kept {kept} in {os.path.join(self.out, BACKUP)}{best}; "
            f"rerun the same command to {then}"
        )


@dataclasses.dataclass(frozen=True)
class Best:
    """The best `monitor` value of a run and its epoch, counted from 1."""

    value: float
    epoch: int
    monitor: Monitor


@dataclasses.dataclass(frozen=True)
class Backup:
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


def _read_backup(folder: str, epochs: int) -> Backup:
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
    return Backup(epochs, weights, record["history"])


def _is_history(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str)
        and isinstance(v, list)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        for k, v in value.items()
    )


def find_backup(folder: str) -> tuple[Backup | None, list[str]]:
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


def _torn_backup_message(folder: str, problems: list[str], resume: Backup | None) -> str:
    then = (
        f"resuming from the previous backup, after epoch {resume.epochs}"
        if resume
        else "no readable backup is left, so the run starts over from epoch 1"
    )
    return f"backup {folder}: {'; '.join(problems)}; {then}"


def _recorded_best(path: str, monitor: Monitor) -> Best | None:
    """The `monitor` value and epoch that `Checkpoints` recorded in a best-weights file;
    None for a missing or unreadable file or one without them."""
    from keras_zoo.port.convert import provenance

    try:
        attrs = provenance(path)
    except OSError:
        return None
    value, epoch = attrs.get(monitor.key), attrs.get("epoch")
    if not isinstance(value, float) or not isinstance(epoch, int):
        return None
    return Best(value, epoch, monitor)


def resume_point(out: str, monitor: Monitor) -> tuple[Backup | None, Best | None]:
    """Where a run into `out` resumes: the newest readable backup in out/.backup (None: at
    epoch 1) and the best `monitor` value of the epochs before it, which
    out/best.weights.h5 records. A warning, pointing at the caller's caller (`train`'s),
    names each backup that cannot be read and a best-weights file that records nothing."""
    best = os.path.join(out, BEST_WEIGHTS)
    backups = os.path.join(out, BACKUP)
    resume, problems = find_backup(backups)
    if problems:
        warnings.warn(_torn_backup_message(backups, problems, resume), stacklevel=3)
    best_so_far = _recorded_best(best, monitor) if resume else None
    if resume and best_so_far is None:
        warnings.warn(
            f"{best} is missing or records no {monitor.words}: the best of the "
            f"{resume.epochs} epoch(s) before this resume is not known",
            stacklevel=3,
        )
    return resume, best_so_far


def _scalar(value) -> float:
    # a multi-worker run's logs are vectors of one value (keras_zoo.distribute)
    return float(np.ravel(value)[0])


class Checkpoints(keras.callbacks.Callback):
    """At the end of every epoch, best.weights.h5 where the `monitor` value (a classifier's
    validation accuracy) is the run's best so far (that value, under the monitor's key, and
    the epoch recorded in it), then a backup of the training
    state (`_backup_paths`: the weights with the optimizer's, and a record of the epoch, the
    weights' size and sha256 and the per-epoch logs), the newest two kept. Each file is
    written under a temporary name and renamed into place, the record last, so a kill at any
    moment leaves the previous backups whole. `resume`, a backup `find_backup` read, is
    loaded when training begins; the backups are removed when it ends. `kept`: the model whose
    weights best.weights.h5 holds, where the run keeps part of the model fit trains (the same
    layers without an auxiliary net; the backups hold all of them)."""

    def __init__(
        self,
        best_path: str,
        folder: str,
        resume: Backup | None,
        best: Best | None,
        monitor: Monitor,
        kept: keras.Model | None = None,
    ):
        super().__init__()
        self.best_path, self.folder, self.resume, self.best = best_path, folder, resume, best
        self.kept = kept
        self.monitor = monitor
        self.history = {k: list(v) for k, v in resume.history.items()} if resume else {}
        self.epochs_done = resume.epochs if resume else 0
        self.epochs_run = 0  # by this call
        self._kept = [resume.epochs] if resume else []

    def on_train_begin(self, logs: dict | None = None) -> None:
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

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from keras_zoo.port.convert import write_weights

        logs = {k: _scalar(v) for k, v in (logs or {}).items()}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        value = logs.get(self.monitor.key, float("nan"))
        if self.monitor.better(value, None if self.best is None else self.best.value):
            record = {self.monitor.key: value, "epoch": epoch + 1}
            write_weights(self.kept or self.model, self.best_path, record)
            self.best = Best(value, epoch + 1, self.monitor)
        self._back_up(epoch + 1)

    def _back_up(self, epochs: int) -> None:
        from keras_zoo.port.convert import sha256_of, write_weights

        os.makedirs(self.folder, exist_ok=True)
        record, weights = _backup_paths(self.folder, epochs)
        write_weights(self.model, weights, {})
        write_json(
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

    def on_train_end(self, logs: dict | None = None) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class SignalsBetweenBatches(keras.callbacks.Callback):
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
