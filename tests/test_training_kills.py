"""Training that survives kills: a stopped run resumes after its last finished epoch with the
best validation accuracy of all its epochs, Ctrl-C and SIGTERM print one line saying what was
kept, and a torn or damaged backup is detected, with the run resuming from the one before it
or starting over."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

from keras_zoo.port.convert import provenance
from keras_zoo.run_state import SignalsBetweenBatches, find_backup
from keras_zoo.training import train
from tests.conftest import h5_arrays, make_tree

MODEL = "mobilenet_v1"
CLASSES = ("blue", "green", "red")
COMMON = dict(epochs=3, batch_size=8, image_size=32, inspect=False, verbose=0)


class _Interrupt(keras.callbacks.Callback):
    """Ctrl-C at the end of epoch `at`, after the run's own callbacks backed it up."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


class _Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen, self.val_accuracy = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.val_accuracy.append(float(logs["val_accuracy"]))


class _Predicts(keras.callbacks.Callback):
    """Before the validation of each epoch in `by_epoch`, sets the classifier to predict that
    epoch's class for every image: the validation accuracy is that class's share."""

    def __init__(self, by_epoch):
        super().__init__()
        self.by_epoch, self.epoch = by_epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_test_begin(self, logs=None):
        if self.epoch in self.by_epoch:
            head = self.model.layers[-1]
            kernel, bias = head.get_weights()
            head.set_weights(
                [
                    np.zeros_like(kernel),
                    np.eye(len(bias), dtype=bias.dtype)[CLASSES.index(self.by_epoch[self.epoch])],
                ]
            )


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Uneven classes, so that predicting one class scores its share: 2 of the 4 validation
    images are blue, 1 green, 1 red."""
    root = tmp_path_factory.mktemp("data") / "uneven"
    make_tree(root, per_class=10, classes={"blue": 2})
    make_tree(root, per_class=5, seed=1, classes={"green": 1, "red": 0})
    return root


@pytest.fixture(scope="module")
def stopped(tree, tmp_path_factory):
    """A 3-epoch run stopped by Ctrl-C after 2 epochs, which scored 0.25 (all red) and 0.5
    (all blue)."""
    out = tmp_path_factory.mktemp("stopped") / "out"
    epochs = _Epochs()
    with pytest.raises(KeyboardInterrupt) as stop:
        train(
            MODEL,
            str(tree),
            out=str(out),
            callbacks=[epochs, _Predicts({0: "red", 1: "blue"}), _Interrupt(at=1)],
            **COMMON,
        )
    assert epochs.seen == [0, 1] and epochs.val_accuracy == [0.25, 0.5]
    assert str(stop.value) == (
        f"interrupted in epoch 3 of 3; kept epochs 1-2 in {out / '.backup'} and the best so "
        f"far (validation accuracy 0.5000, epoch 2) in {out / 'best.weights.h5'}; rerun the "
        "same command to resume at epoch 3"
    )
    assert sorted(os.listdir(out / ".backup")) == [
        "epoch-0001.json",
        "epoch-0001.weights.h5",
        "epoch-0002.json",
        "epoch-0002.weights.h5",
    ]
    return out


@pytest.fixture
def copy(stopped, tmp_path):
    return shutil.copytree(stopped, tmp_path / "out")


def test_a_resumed_run_reports_the_best_of_all_its_epochs(tree, copy):
    """The resumed epoch is worse (0.25) than the second before the stop (0.5): the best
    printed and recorded is 0.5, of epoch 2, which best.weights.h5 holds."""
    best_then = h5_arrays(copy / ".backup" / "epoch-0002.weights.h5")  # the state after epoch 2
    epochs = _Epochs()
    result = train(
        MODEL, str(tree), out=str(copy), callbacks=[epochs, _Predicts({2: "green"})], **COMMON
    )
    assert epochs.seen == [2] and epochs.val_accuracy == [0.25]  # 0 and 1 are not run again
    assert (result.best, result.best_epoch) == (0.5, 2)
    assert result.monitor.key == "val_accuracy"
    assert result.history["val_accuracy"] == [0.25, 0.5, 0.25]
    assert len(result.history["loss"]) == 3
    results = json.loads((copy / "run.json").read_text())["results"]
    assert (results["best_val_accuracy"], results["best_epoch"]) == (0.5, 2)
    assert results["epochs_run_now"] == 1 and results["history"] == result.history
    weights = copy / "best.weights.h5"
    assert provenance(weights) == {"val_accuracy": 0.5, "epoch": 2}
    held = h5_arrays(weights)
    assert held.keys() == best_then.keys() and len(held) > 50
    for key in held:
        np.testing.assert_array_equal(held[key], best_then[key], err_msg=key)
    assert not (copy / ".backup").exists()  # removed once the run completes


def _damage(folder, case):
    """Damages the newest backup (after epoch 2) as a kill or a disk might."""
    record, weights = folder / "epoch-0002.json", folder / "epoch-0002.weights.h5"
    if case == "weights cut short":
        size = weights.stat().st_size
        weights.write_bytes(weights.read_bytes()[: size // 2])
        return f"epoch-0002.weights.h5 holds {size // 2} of its {size} bytes"
    if case == "record emptied":
        record.write_text("")
        return "epoch-0002.json is empty"
    if case == "record cut short":
        record.write_text(record.read_text()[:40])
        return "epoch-0002.json is not valid JSON ("
    if case == "record of another epoch":
        shutil.copy(folder / "epoch-0001.json", record)
        return "epoch-0002.json is not the record of the backup after epoch 2"
    if case == "weights changed":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
        return "epoch-0002.weights.h5 does not match the checksum in epoch-0002.json"
    assert case == "weights missing"
    weights.unlink()
    return "epoch-0002.weights.h5 is missing"


@pytest.mark.parametrize(
    "case",
    [
        "weights cut short",
        "record emptied",
        "record cut short",
        "record of another epoch",
        "weights changed",
        "weights missing",
    ],
)
def test_a_damaged_backup_is_detected_and_the_one_before_it_chosen(copy, case):
    expected = _damage(copy / ".backup", case)
    backup, problems = find_backup(str(copy / ".backup"))
    assert backup.epochs == 1 and backup.weights == str(copy / ".backup" / "epoch-0001.weights.h5")
    assert backup.history["val_accuracy"] == [0.25]
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_what_a_kill_while_backing_up_leaves_is_not_taken_for_a_backup(copy):
    """A kill during a write leaves a temporary file (keras_zoo.files.atomic_file); one
    between the weights and the record they belong to leaves weights without a record."""
    folder = copy / ".backup"
    half = (folder / "epoch-0002.weights.h5").read_bytes()[:1000]
    (folder / ".keras_zoo-999999-0.epoch-0003.weights.h5").write_bytes(half)
    (folder / ".keras_zoo-999999-1.epoch-0003.json").write_text('{"epochs": 3, "by')
    (folder / "epoch-0004.weights.h5").write_bytes(half)
    backup, problems = find_backup(str(folder))
    assert (backup.epochs, problems) == (2, [])


def test_a_rerun_resumes_from_the_backup_before_a_torn_one(tree, copy):
    expected = _damage(copy / ".backup", "weights cut short")
    epochs = _Epochs()
    with pytest.warns(UserWarning) as warned:
        result = train(MODEL, str(tree), out=str(copy), callbacks=[epochs], **COMMON)
    messages = [str(w.message) for w in warned if "backup" in str(w.message)]
    assert messages == [
        f"backup {copy / '.backup'}: {expected}; resuming from the previous backup, after epoch 1"
    ]
    assert epochs.seen == [1, 2]  # epoch 2 again, from the state after epoch 1
    assert result.history["val_accuracy"][0] == 0.25 and len(result.history["loss"]) == 3
    assert not (copy / ".backup").exists()


def test_a_rerun_starts_over_where_no_backup_is_readable(tree, copy):
    for record in ("epoch-0001.json", "epoch-0002.json"):
        (copy / ".backup" / record).write_text("")
    epochs = _Epochs()
    with pytest.warns(UserWarning) as warned:
        result = train(MODEL, str(tree), out=str(copy), callbacks=[epochs], **COMMON)
    messages = [str(w.message) for w in warned if "backup" in str(w.message)]
    assert messages == [
        f"backup {copy / '.backup'}: epoch-0002.json is empty; "
        "epoch-0001.json is empty; no readable backup is left, so the run "
        "starts over from epoch 1"
    ]
    assert epochs.seen == [0, 1, 2] and len(result.history["loss"]) == 3
    assert not (copy / ".backup").exists()


def test_ctrl_c_during_fit_is_raised_between_batches_and_a_second_one_at_once():
    """Raised from a callback, not wherever the main thread is inside TensorFlow."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        held = SignalsBetweenBatches()
        with held:
            signal.raise_signal(signal.SIGINT)  # held: nothing is raised here
            with pytest.raises(KeyboardInterrupt):
                held.on_train_batch_end(0)
            held.on_train_batch_end(1)  # handled once
            signal.raise_signal(signal.SIGINT)
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            held.on_epoch_begin(2)  # the second took the first one's place
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):  # one held when the block ends is raised there
            with held:
                signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)


# TensorFlow's own C++ log lines, which it writes to stderr before reading its log level
_TF_LOG = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are "
    r"written to STDERR|[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] .*"
)


def _train_until(command, out, epoch_line, signum, log):
    """Runs the train command until it prints `epoch_line`'s epoch start, then sends it
    `signum`; its exit status, the first epoch it started, its stderr lines other than
    TensorFlow's own and the lines it printed before the first epoch."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    with open(log, "w") as err:
        # Ctrl-C's default action, even where this test runs with SIGINT ignored
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        watchdog = threading.Timer(300, proc.kill)
        watchdog.start()
        first, before = None, []
        try:
            for line in proc.stdout:
                if first is None and not line.startswith("Epoch "):
                    before.append(line.rstrip("\n"))
                if line.startswith("Epoch "):
                    first = first or line.strip()
                    if epoch_line(line.strip()):
                        proc.send_signal(signum)
                        break
            proc.communicate(timeout=120)
        finally:
            watchdog.cancel()
            proc.kill()
    lines = open(log).read().splitlines()
    return (
        proc.returncode,
        first,
        [line for line in lines if not _TF_LOG.fullmatch(line)],
        before,
    )


def test_ctrl_c_and_sigterm_print_one_line_and_the_same_command_resumes(tree, tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "keras_zoo",
        "train",
        MODEL,
        "--data",
        str(tree),
        "--epochs",
        "50",
        "--batch-size",
        "8",
        "--image-size",
        "32",
        "--out",
        str(out),
        "--no-inspect",
        "--verbose",
        "2",
    ]

    def said(verb):
        return (
            rf"keras-zoo train: {verb} in epoch (\d+) of 50; kept epochs 1-(\d+) in "
            rf"{re.escape(str(out / '.backup'))} and the best so far \(validation "
            rf"accuracy [01]\.\d{{4}}, epoch \d+\) in "
            rf"{re.escape(str(out / 'best.weights.h5'))}; rerun the same command to "
            r"resume at epoch (\d+)"
        )

    code, _, err, before = _train_until(
        command, out, lambda line: line == "Epoch 3/50", signal.SIGINT, tmp_path / "first.log"
    )
    assert code == 130 and len(err) == 1, err
    assert before == []  # a new run says nothing before its first epoch
    stop = re.fullmatch(said("interrupted"), err[0])
    assert stop, err
    at = int(stop.group(1))
    assert at >= 3 and stop.group(2) == str(at - 1) and stop.group(3) == str(at)
    # the same command again goes on at that epoch, says so, and SIGTERM stops it in the same way
    code, first, err, before = _train_until(
        command, out, lambda line: line != f"Epoch {at}/50", signal.SIGTERM, tmp_path / "second.log"
    )
    assert first == f"Epoch {at}/50"
    assert before == [
        f"resuming the run in {out} at epoch {at} of 50, from its backup after epoch {at - 1} "
        f"in {out / '.backup'}"
    ]
    assert code == -signal.SIGTERM and len(err) == 1, err
    stop = re.fullmatch(said("terminated"), err[0])
    assert stop and int(stop.group(1)) > at, err
    done = int(stop.group(2))
    assert sorted(os.listdir(out / ".backup")) == [  # the newest two backups
        f"epoch-{e:04d}.{kind}" for e in (done - 1, done) for kind in ("json", "weights.h5")
    ]
