"""The tables of keras_zoo against its peers: inference (as built and folded, against
keras.applications and torch), training steps, build time, porting time and peak memory."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import numpy as np

from keras_zoo.bench.cases import (
    Case,
    TorchFn,
    case_size,
    keras_app_model,
    size_note,
    torch_module,
    zoo_model,
)
from keras_zoo.bench.runners import keras_runner, torch_runner, torch_trainer
from keras_zoo.bench.timing import alternate, fmt, summary

VARIANTS = ("keras_zoo", "folded")  # the model as built; keras_zoo.fold_batchnorm's export


def bench_inference(
    cases: Sequence[Case],
    *,
    size: int,
    batch_sizes: Sequence[int],
    rounds: int,
    seconds: float,
    torch_fn: TorchFn | None = None,
    jit_compile: bool = False,
    peak: float | None = None,
    out: TextIO = sys.stdout,
) -> list[dict]:
    """Inference images/s of each case, as built and folded, against its peers; prints a table
    (two lines per case and batch) and returns its rows.

    A row has, for each variant V of VARIANTS: V (images/s min, median, max), "V ratio PEER"
    for each peer measured, "V gflops"; the peers' own images/s under their names; "no peer"
    ({peer: why}: a case without a keras.applications model, whose cells read "none" and
    whose reason is printed under its lines); and "size", the input size it ran at (a case
    with a fixed size, PFLD's 112, runs at that one, and a line under its rows says so).
    """
    from keras_zoo.fold import fold_batchnorm
    from keras_zoo.profile import count_macs

    peers = ["keras.applications"] + (["torch"] if torch_fn is not None else [])
    rows = []
    print(
        f"\ninference, {size}x{size}, images/s median (min..max) over {rounds} rounds; "
        f"ratio = keras_zoo / peer per round; folded = keras_zoo.fold_batchnorm(model)",
        file=out,
    )
    header = f"{'model':<20} {'batch':>5} {'variant':<9} {'keras_zoo':>22}"
    for peer in peers:
        header += f" {peer:>22} {'ratio':>18}"
    print(header + f" {'GFLOP/s':>8}" + (f" {'of peak':>7}" if peak else ""), file=out)
    rng = np.random.default_rng(0)
    for case in cases:
        zoo = zoo_model(case, size)
        macs = count_macs(zoo)
        runners = {
            "keras_zoo": keras_runner(zoo, jit_compile),
            "folded": keras_runner(fold_batchnorm(zoo), jit_compile),
        }
        if case.keras_app:
            runners["keras.applications"] = keras_runner(keras_app_model(case, size), jit_compile)
        if torch_fn is not None:
            runners["torch"] = torch_runner(torch_module(case, torch_fn))
        own = case_size(case, size)
        for batch in batch_sizes:
            x = rng.uniform(-1, 1, (batch, own, own, 3)).astype(np.float32)
            ips = alternate(runners, x, rounds, seconds)
            row: dict[str, Any] = {"model": case.label, "batch": batch, "gmacs": macs / 1e9}
            row["size"] = own
            row.update({peer: summary(ips[peer]) for peer in peers if peer in ips})
            row["no peer"] = {} if case.keras_app else {"keras.applications": case.no_keras_app}
            for variant in VARIANTS:
                row[variant] = summary(ips[variant])
                first = variant == VARIANTS[0]
                line = (
                    f"{case.label if first else '':<20} {batch if first else '':>5} "
                    f"{variant:<9} {fmt(row[variant], 1):>22}"
                )
                for peer in peers:
                    if peer not in ips:
                        line += f" {'none' if first else '':>22} {'-':>18}"
                        continue
                    ratio = summary([a / b for a, b in zip(ips[variant], ips[peer])])
                    row[f"{variant} ratio {peer}"] = ratio
                    line += f" {fmt(row[peer], 1) if first else '':>22} {fmt(ratio):>18}"
                gflops = row[f"{variant} gflops"] = 2 * macs * row[variant][1] / 1e9
                line += f" {gflops:8.1f}" + (f" {gflops / peak:7.0%}" if peak else "")
                print(line, file=out, flush=True)
            for peer, why in row["no peer"].items():
                print(f"{'':<26} {peer}: none ({why})", file=out, flush=True)
            if size_note(case, size):
                print(f"{'':<26} {size_note(case, size)}", file=out, flush=True)
            rows.append(row)
        del runners, zoo
        gc.collect()
    return rows


TRAIN_LR, TRAIN_MOMENTUM, TRAIN_WEIGHT_DECAY = 0.01, 0.9, 1e-4


def bench_training(
    cases: Sequence[Case],
    *,
    size: int,
    batch: int,
    rounds: int,
    seconds: float,
    torch_fn: TorchFn | None = None,
    out: TextIO = sys.stdout,
) -> list[dict]:
    """Training images/s of keras_zoo, as Keras' fit steps it (`train_on_batch`: the same
    compiled step) with and without XLA, against keras.applications (where the case has a
    peer) and against a torch training loop on torch's module (with `torch_fn`): SGD with
    momentum and weight decay kept off norms and biases (keras_zoo.recipes.optim.SGD; torch's
    SGD on the same two groups), cross-entropy on logits, the same batch each step. Returns
    the rows: each contender's images/s and the ratios "keras_zoo ratio PEER" and
    "keras_zoo xla ratio torch" (min, median, max)."""
    print(
        f"\ntraining images/s, batch {batch} at {size}x{size}, median (min..max) over "
        f"{rounds} rounds; SGD with momentum {TRAIN_MOMENTUM}, weight decay "
        f"{TRAIN_WEIGHT_DECAY:g} off norms and biases; ratio = keras_zoo / peer per round",
        file=out,
    )
    ratios = [("keras_zoo", "keras.applications")]
    if torch_fn is not None:
        ratios += [("keras_zoo", "torch"), ("keras_zoo xla", "torch")]
    header = f"{'model':<20}"
    for name in ("keras_zoo", "keras_zoo xla", "keras.applications", "torch"):
        header += f" {name:>20}" if name != "torch" or torch_fn is not None else ""
    for a, b in ratios:
        header += f" {a.replace('keras_zoo', 'zoo') + ' / ' + b.replace('keras.', ''):>22}"
    print(header, file=out)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    rows = []
    for case in cases:
        runners = {
            "keras_zoo": _keras_trainer(zoo_model(case, size), y, jit_compile=False),
            "keras_zoo xla": _keras_trainer(zoo_model(case, size), y, jit_compile=True),
        }
        if case.keras_app:
            runners["keras.applications"] = _keras_trainer(
                keras_app_model(case, size), y, jit_compile=False
            )
        if torch_fn is not None:
            runners["torch"] = torch_trainer(
                torch_module(case, torch_fn),
                y,
                lr=TRAIN_LR,
                momentum=TRAIN_MOMENTUM,
                decay=TRAIN_WEIGHT_DECAY,
            )
        ips = alternate(runners, x, rounds, seconds)
        row: dict[str, Any] = {"model": case.label, **{k: summary(v) for k, v in ips.items()}}
        row["no peer"] = {} if case.keras_app else {"keras.applications": case.no_keras_app}
        line = f"{case.label:<20}"
        for name in ("keras_zoo", "keras_zoo xla", "keras.applications", "torch"):
            if name == "torch" and torch_fn is None:
                continue
            line += f" {fmt(row[name], 1) if name in row else 'none':>20}"
        for a, b in ratios:
            if b in ips:
                row[f"{a} ratio {b}"] = summary([p / q for p, q in zip(ips[a], ips[b])])
            line += f" {fmt(row[f'{a} ratio {b}']) if b in ips else '-':>22}"
        why = row["no peer"].get("keras.applications")
        print(line + (f"  ({why})" if why else ""), file=out, flush=True)
        rows.append(row)
        del runners
        gc.collect()
    return rows


def _keras_trainer(model: Any, y: np.ndarray, *, jit_compile: bool) -> Callable:
    """train_on_batch(x, y) of `model`, compiled as bench_training says."""
    import keras

    from keras_zoo.recipes import optim

    model.compile(
        optimizer=optim.SGD(
            TRAIN_LR,
            momentum=TRAIN_MOMENTUM,
            nesterov=False,
            weight_decay=TRAIN_WEIGHT_DECAY,
            no_decay=optim.no_decay_variables(model),
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return lambda x: model.train_on_batch(x, y)


def _contenders(case: Case) -> list[tuple[str, Callable]]:
    """(name, constructor) of keras_zoo and, where the case has one, keras.applications."""
    return [("keras_zoo", zoo_model)] + (
        [("keras.applications", keras_app_model)] if case.keras_app else []
    )


def _peer_row(case: Case, values: dict[str, list[float]]) -> dict:
    """{"model", "keras_zoo", and with a keras.applications peer "keras.applications" and
    "ratio" (keras_zoo / peer per round)}, each figure (min, median, max)."""
    row: dict[str, Any] = {"model": case.label, **{k: summary(v) for k, v in values.items()}}
    row["no peer"] = {} if case.keras_app else {"keras.applications": case.no_keras_app}
    if "keras.applications" in values:
        row["ratio"] = summary(
            [a / b for a, b in zip(values["keras_zoo"], values["keras.applications"])]
        )
    return row


def _print_peer_row(row: dict, out) -> None:
    cells = [fmt(row[k]) if k in row else "-" for k in ("keras.applications", "ratio")]
    why = row.get("no peer", {}).get("keras.applications")
    print(
        f"{row['model']:<20} {fmt(row['keras_zoo']):>20} {'none' if why else cells[0]:>20} "
        f"{cells[1]:>18}" + (f"  ({why})" if why else ""),
        file=out,
        flush=True,
    )


def bench_build(
    cases: Sequence[Case], *, size: int, rounds: int, out: TextIO = sys.stdout
) -> list[dict]:
    """Seconds to build each model (keras_zoo.build against the keras.applications call, where
    the case has one)."""
    print(f"\nbuild seconds, median (min..max) over {rounds} rounds", file=out)
    print(f"{'model':<20} {'keras_zoo':>20} {'keras.applications':>20} {'ratio':>18}", file=out)
    rows = []
    for case in cases:
        makers = dict(_contenders(case))
        times: dict[str, list[float]] = {key: [] for key in makers}
        for r in range(rounds):
            order = list(times) if r % 2 == 0 else list(times)[::-1]
            for key in order:
                start = time.perf_counter()
                makers[key](case, size)
                times[key].append(time.perf_counter() - start)
                gc.collect()
        row = _peer_row(case, times)
        _print_peer_row(row, out)
        rows.append(row)
    return rows


def port_seconds(
    torch_fn: TorchFn, name: str = "resnet50", rounds: int = 3
) -> tuple[list[float], float]:
    """Seconds of each of `rounds` ports (read, build, map, save) of a torchvision-layout
    checkpoint of `name` made with `torch_fn`, and the checkpoint's size in MiB."""
    import tempfile

    import torch

    from keras_zoo.pretrained import port

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, f"{name}.pth")
        torch.save(torch_fn(name, 1000, 1.0).state_dict(), src)
        times = [
            port(name, src, os.path.join(tmp, f"{name}-{i}.weights.h5")).seconds
            for i in range(rounds)
        ]
        return times, os.path.getsize(src) / 2**20


def bench_port(
    torch_fn: TorchFn, name: str = "resnet50", rounds: int = 3, out: TextIO = sys.stdout
) -> tuple[float, float, float]:
    """Prints and returns min, median, max of `port_seconds`."""
    times, _ = port_seconds(torch_fn, name, rounds)
    print(f"\nporting {name}: seconds {fmt(summary(times))} over {rounds} rounds", file=out)
    return summary(times)


def peak_memory(
    cases: Sequence[Case], *, size: int, batch: int, out: TextIO = sys.stdout
) -> list[dict]:
    """Peak resident memory (MiB) of a fresh process that imports TensorFlow, builds one model
    and runs one batch, for each contender (keras.applications where the case has a model
    there); and of a process that only imports."""
    import subprocess

    code = (
        "import os, resource, sys, numpy as np\n"
        "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
        "from keras_zoo import bench\n"
        "case = [c for c in bench.CASES if c.label == sys.argv[1]][0]\n"
        "size, batch, who = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]\n"
        "if who != 'imports only':\n"
        "    make = bench.zoo_model if who == 'keras_zoo' else bench.keras_app_model\n"
        "    run = bench.keras_runner(make(case, size))\n"
        "    own = bench.case_size(case, size)\n"
        "    run(np.zeros((batch, own, own, 3), 'float32'))\n"
        "try:  # VmHWM starts afresh at exec; ru_maxrss keeps the forking parent's peak\n"
        "    with open('/proc/self/status') as f:\n"
        "        kib = [int(l.split()[1]) for l in f if l.startswith('VmHWM:')][0]\n"
        "except OSError:\n"
        "    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(kib / 1024)\n"
    )
    print(
        f"\npeak memory, MiB (a fresh process: imports, build, one batch of {batch} at "
        f"{size}x{size})",
        file=out,
    )
    rows = []

    def measure(label, who):
        result = subprocess.run(
            [sys.executable, "-c", code, label, str(size), str(batch), who],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
        return float(result.stdout.strip().splitlines()[-1])

    base = measure(cases[0].label, "imports only")
    print(f"{'imports only':<20} {base:10.0f}", file=out)
    print(f"{'model':<20} {'keras_zoo':>10} {'keras.applications':>20}", file=out)
    for case in cases:
        row = {
            "model": case.label,
            **{who: measure(case.label, who) for who, _ in _contenders(case)},
        }
        peer = row.get("keras.applications")
        note = size_note(case, size)
        print(
            f"{case.label:<20} {row['keras_zoo']:10.0f} "
            + (f"{'none':>20}  ({case.no_keras_app})" if peer is None else f"{peer:20.0f}")
            + (f"; {note}" if note else ""),
            file=out,
            flush=True,
        )
        rows.append(row)
    return rows
