"""Side-by-side benchmarks: keras_zoo models against keras.applications and PyTorch.

Every figure is measured in one process with the contenders alternating round by round (the
order rotating), so that drift of the machine (turbo, other load) hits all of them alike;
ratios are keras_zoo / peer per round, summarised as min, median and max. `keras-zoo bench` and
`python scripts/bench.py` print the tables; docs/BENCHMARKS.md explains them.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    """One architecture: the keras_zoo id and keywords, and its peers' constructors."""

    label: str
    name: str
    kwargs: dict
    keras_app: str | None  # keras.applications constructor
    keras_kwargs: dict
    torch_alpha: float = 1.0


CASES = (
    Case("mobilenet_v1", "mobilenet_v1", {}, "MobileNet", {}),
    Case("mobilenet_v2", "mobilenet_v2", {}, "MobileNetV2", {}),
    Case("mobilenet_v2 a0.75", "mobilenet_v2", {"alpha": 0.75}, "MobileNetV2", {"alpha": 0.75},
         0.75),
    Case("mobilenet_v3_small", "mobilenet_v3_small", {}, "MobileNetV3Small",
         {"include_preprocessing": False}),
    Case("mobilenet_v3_large", "mobilenet_v3_large", {}, "MobileNetV3Large",
         {"include_preprocessing": False}),
    Case("resnet50", "resnet50", {}, "ResNet50", {}),
)
TRAIN_CASES = ("mobilenet_v2", "resnet50")


def zoo_model(case: Case, size: int):
    import keras_zoo

    return keras_zoo.build(case.name, input_shape=(size, size, 3), classifier_activation=None,
                           **case.kwargs)


def keras_app_model(case: Case, size: int):
    import keras

    return getattr(keras.applications, case.keras_app)(
        weights=None, input_shape=(size, size, 3), classifier_activation=None,
        **case.keras_kwargs)


def keras_runner(model, jit_compile: bool = False) -> Callable:
    """model(x, training=False) as one compiled TensorFlow function (the same for every Keras
    contender), returning a numpy array."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    return lambda x: fn(x).numpy()


def torch_runner(module) -> Callable:
    import torch

    module.eval()

    def run(x):
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()

    return run


def load_torch_reference(spec: str | None):
    """FUNCTION(name, num_classes, alpha) -> torch module, from "MODULE:FUNCTION"; None when
    torch or the module is not importable (the torch column is then left out)."""
    if not spec:
        return None
    module_name, _, attr = spec.partition(":")
    try:
        importlib.import_module("torch")
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None


def images_per_second(run: Callable, x: np.ndarray, seconds: float) -> float:
    """Calls run(x) for about `seconds` (at least twice) and returns images per second."""
    calls, start = 0, time.perf_counter()
    while True:
        run(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 2:
            return calls * len(x) / elapsed


def alternate(runners: dict[str, Callable], x: np.ndarray, rounds: int, seconds: float
              ) -> dict[str, list[float]]:
    """Images per second of each runner, round by round, the order rotating each round."""
    for run in runners.values():  # warm-up: tracing and first-call allocation
        run(x)
        run(x)
    names = list(runners)
    result = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            result[n].append(images_per_second(runners[n], x, seconds))
    return result


def gemm_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """float32 matrix-multiply throughput of this machine, GFLOP/s (2 n^3 per product)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    mm = tf.function(lambda: tf.matmul(a, b))
    mm().numpy()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 2:
        mm().numpy()
        calls += 1
    return 2 * n ** 3 * calls / (time.perf_counter() - start) / 1e9


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt(triple, digits=2) -> str:
    lo, mid, hi = triple
    return f"{mid:.{digits}f} ({lo:.{digits}f}..{hi:.{digits}f})"


VARIANTS = ("keras_zoo", "folded")  # the model as built; keras_zoo.fold_batchnorm's export


def bench_inference(cases: Sequence[Case], *, size: int, batch_sizes: Sequence[int],
                    rounds: int, seconds: float, torch_fn=None, jit_compile: bool = False,
                    peak: float | None = None, out=sys.stdout) -> list[dict]:
    """Inference images/s of each case, as built and folded, against its peers; prints a table
    (two lines per case and batch) and returns its rows.

    A row has, for each variant V of VARIANTS: V (images/s min, median, max), "V ratio PEER"
    for each peer measured, "V gflops"; and the peers' own images/s under their names.
    """
    from keras_zoo.fold import fold_batchnorm
    from keras_zoo.profile import count_macs

    peers = ["keras.applications"] + (["torch"] if torch_fn is not None else [])
    rows = []
    print(f"\ninference, {size}x{size}, images/s median (min..max) over {rounds} rounds; "
          f"ratio = keras_zoo / peer per round; folded = keras_zoo.fold_batchnorm(model)",
          file=out)
    header = f"{'model':<20} {'batch':>5} {'variant':<9} {'keras_zoo':>22}"
    for peer in peers:
        header += f" {peer:>22} {'ratio':>18}"
    print(header + f" {'GFLOP/s':>8}" + (f" {'of peak':>7}" if peak else ""), file=out)
    rng = np.random.default_rng(0)
    for case in cases:
        zoo = zoo_model(case, size)
        macs = count_macs(zoo)
        runners = {"keras_zoo": keras_runner(zoo, jit_compile),
                   "folded": keras_runner(fold_batchnorm(zoo), jit_compile)}
        if case.keras_app:
            runners["keras.applications"] = keras_runner(keras_app_model(case, size),
                                                         jit_compile)
        if torch_fn is not None:
            runners["torch"] = torch_runner(torch_fn(case.name, 1000, case.torch_alpha))
        for batch in batch_sizes:
            x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
            ips = alternate(runners, x, rounds, seconds)
            row = {"model": case.label, "batch": batch, "gmacs": macs / 1e9}
            row.update({peer: summary(ips[peer]) for peer in peers if peer in ips})
            for variant in VARIANTS:
                row[variant] = summary(ips[variant])
                first = variant == VARIANTS[0]
                line = (f"{case.label if first else '':<20} {batch if first else '':>5} "
                        f"{variant:<9} {fmt(row[variant], 1):>22}")
                for peer in peers:
                    if peer not in ips:
                        line += f" {'-':>22} {'-':>18}"
                        continue
                    ratio = summary([a / b for a, b in zip(ips[variant], ips[peer])])
                    row[f"{variant} ratio {peer}"] = ratio
                    line += f" {fmt(row[peer], 1) if first else '':>22} {fmt(ratio):>18}"
                gflops = row[f"{variant} gflops"] = 2 * macs * row[variant][1] / 1e9
                line += f" {gflops:8.1f}" + (f" {gflops / peak:7.0%}" if peak else "")
                print(line, file=out, flush=True)
            rows.append(row)
        del runners, zoo
        gc.collect()
    return rows


def bench_training(cases: Sequence[Case], *, size: int, batch: int, rounds: int,
                   seconds: float, out=sys.stdout) -> list[dict]:
    """Training steps/s (SGD, cross-entropy on logits) of keras_zoo against keras.applications."""
    import keras

    print(f"\ntraining steps/s, batch {batch} at {size}x{size}, median (min..max) over "
          f"{rounds} rounds", file=out)
    print(f"{'model':<20} {'keras_zoo':>20} {'keras.applications':>20} {'ratio':>18}", file=out)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    rows = []
    for case in cases:
        runners = {}
        for key, make in (("keras_zoo", zoo_model), ("keras.applications", keras_app_model)):
            model = make(case, size)
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            runners[key] = (lambda m: lambda xb: m.train_on_batch(xb, y))(model)
        sps = alternate(runners, x, rounds, seconds)
        steps = {k: [v / batch for v in vs] for k, vs in sps.items()}
        row = {"model": case.label, **{k: summary(v) for k, v in steps.items()},
               "ratio": summary([a / b for a, b in zip(steps["keras_zoo"],
                                                       steps["keras.applications"])])}
        print(f"{case.label:<20} {fmt(row['keras_zoo']):>20} "
              f"{fmt(row['keras.applications']):>20} {fmt(row['ratio']):>18}",
              file=out, flush=True)
        rows.append(row)
    return rows


def bench_build(cases: Sequence[Case], *, size: int, rounds: int, out=sys.stdout) -> list[dict]:
    """Seconds to build each model (keras_zoo.build against the keras.applications call)."""
    print(f"\nbuild seconds, median (min..max) over {rounds} rounds", file=out)
    print(f"{'model':<20} {'keras_zoo':>20} {'keras.applications':>20} {'ratio':>18}", file=out)
    rows = []
    for case in cases:
        times = {"keras_zoo": [], "keras.applications": []}
        for r in range(rounds):
            order = list(times) if r % 2 == 0 else list(times)[::-1]
            for key in order:
                make = zoo_model if key == "keras_zoo" else keras_app_model
                start = time.perf_counter()
                make(case, size)
                times[key].append(time.perf_counter() - start)
                gc.collect()
        row = {"model": case.label, **{k: summary(v) for k, v in times.items()},
               "ratio": summary([a / b for a, b in zip(times["keras_zoo"],
                                                       times["keras.applications"])])}
        print(f"{case.label:<20} {fmt(row['keras_zoo']):>20} "
              f"{fmt(row['keras.applications']):>20} {fmt(row['ratio']):>18}", file=out,
              flush=True)
        rows.append(row)
    return rows


def port_seconds(torch_fn, name: str = "resnet50", rounds: int = 3
                 ) -> tuple[list[float], float]:
    """Seconds of each of `rounds` ports (read, build, map, save) of a torchvision-layout
    checkpoint of `name` made with `torch_fn`, and the checkpoint's size in MiB."""
    import tempfile

    import torch

    from keras_zoo.port import port

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, f"{name}.pth")
        torch.save(torch_fn(name, 1000, 1.0).state_dict(), src)
        times = [port(name, src, os.path.join(tmp, f"{name}-{i}.weights.h5")).seconds
                 for i in range(rounds)]
        return times, os.path.getsize(src) / 2**20


def bench_port(torch_fn, name: str = "resnet50", rounds: int = 3, out=sys.stdout):
    """Prints and returns min, median, max of `port_seconds`."""
    times, _ = port_seconds(torch_fn, name, rounds)
    print(f"\nporting {name}: seconds {fmt(summary(times))} over {rounds} rounds", file=out)
    return summary(times)


def peak_memory(cases: Sequence[Case], *, size: int, batch: int, out=sys.stdout) -> list[dict]:
    """Peak resident memory (MiB) of a fresh process that imports TensorFlow, builds one model
    and runs one batch, for each contender; and of a process that only imports."""
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
        "    run(np.zeros((batch, size, size, 3), 'float32'))\n"
        "try:  # VmHWM starts afresh at exec; ru_maxrss keeps the forking parent's peak\n"
        "    with open('/proc/self/status') as f:\n"
        "        kib = [int(l.split()[1]) for l in f if l.startswith('VmHWM:')][0]\n"
        "except OSError:\n"
        "    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(kib / 1024)\n"
    )
    print(f"\npeak memory, MiB (a fresh process: imports, build, one batch of {batch} at "
          f"{size}x{size})", file=out)
    rows = []

    def measure(label, who):
        result = subprocess.run([sys.executable, "-c", code, label, str(size), str(batch), who],
                                capture_output=True, text=True, timeout=600)
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
        return float(result.stdout.strip().splitlines()[-1])

    base = measure(cases[0].label, "imports only")
    print(f"{'imports only':<20} {base:10.0f}", file=out)
    print(f"{'model':<20} {'keras_zoo':>10} {'keras.applications':>20}", file=out)
    for case in cases:
        row = {"model": case.label, "keras_zoo": measure(case.label, "keras_zoo"),
               "keras.applications": measure(case.label, "keras.applications")}
        print(f"{case.label:<20} {row['keras_zoo']:10.0f} {row['keras.applications']:20.0f}",
              file=out, flush=True)
        rows.append(row)
    return rows


def run_all(*, size: int = 224, batch_sizes: Sequence[int] = (1, 16), rounds: int = 5,
            seconds: float = 2.0, train_batch: int = 16, cases: Sequence[str] | None = None,
            torch_reference: str | None = "tests.torch_models:torch_model",
            jit_compile: bool = False, memory: bool = True, out=sys.stdout) -> dict:
    """Every benchmark of the module, in one process; returns the rows of every table."""
    import tensorflow as tf

    chosen = [c for c in CASES if cases is None or c.label in cases]
    if not chosen:
        raise ValueError(f"cases: none of {list(cases)} is one of "
                         f"{[c.label for c in CASES]}")
    torch_fn = load_torch_reference(torch_reference)
    import keras

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, XLA {'on' if jit_compile else 'off'}; torch column: "
          f"{'yes' if torch_fn else 'no (torch or the reference is not importable)'}",
          file=out)
    if torch_fn is not None:
        import torch

        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=out)
    peak = gemm_gflops()
    print(f"float32 GEMM peak (1024x1024 matmul): {peak:.1f} GFLOP/s", file=out)
    results = {"gemm_gflops": peak}
    results["inference"] = bench_inference(chosen, size=size, batch_sizes=batch_sizes,
                                           rounds=rounds, seconds=seconds, torch_fn=torch_fn,
                                           jit_compile=jit_compile, peak=peak, out=out)
    train_cases = [c for c in chosen if c.label in TRAIN_CASES]
    if train_cases:
        results["training"] = bench_training(train_cases, size=size, batch=train_batch,
                                             rounds=rounds, seconds=seconds, out=out)
    results["build"] = bench_build(chosen, size=size, rounds=rounds, out=out)
    if torch_fn is not None:  # the checkpoint is made with the torch reference
        results["port"] = bench_port(torch_fn, rounds=rounds, out=out)
    if memory:
        results["memory"] = peak_memory(chosen, size=size, batch=max(batch_sizes), out=out)
    return results
