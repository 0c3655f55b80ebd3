"""Side-by-side benchmarks: keras_zoo models against keras.applications and PyTorch, and
keras_zoo's exports in their runtimes against torch's own.

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
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

if TYPE_CHECKING:
    import keras

# FUNCTION(name, num_classes, alpha) -> torch.nn.Module: the torch reference of an id
TorchFn = Callable[[str, int, float], Any]


@dataclasses.dataclass(frozen=True)
class Case:
    """One architecture: the keras_zoo id and keywords, and its peers' constructors."""

    label: str
    name: str
    kwargs: dict
    keras_app: str | None  # keras.applications constructor
    keras_kwargs: dict
    torch_alpha: float = 1.0
    # why keras.applications has no peer (printed in its place): None for a case that has one
    no_keras_app: str | None = None

    def __post_init__(self):
        if (self.keras_app is None) == (self.no_keras_app is None):
            raise ValueError(
                f"{self.label}: give keras_app or, without one, no_keras_app (why there is none)"
            )


CASES = (
    Case("mobilenet_v1", "mobilenet_v1", {}, "MobileNet", {}),
    Case("mobilenet_v2", "mobilenet_v2", {}, "MobileNetV2", {}),
    Case(
        "mobilenet_v2 a0.75", "mobilenet_v2", {"alpha": 0.75}, "MobileNetV2", {"alpha": 0.75}, 0.75
    ),
    Case(
        "mobilenet_v3_small",
        "mobilenet_v3_small",
        {},
        "MobileNetV3Small",
        {"include_preprocessing": False},
    ),
    Case(
        "mobilenet_v3_large",
        "mobilenet_v3_large",
        {},
        "MobileNetV3Large",
        {"include_preprocessing": False},
    ),
    Case(
        "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_0",
        {},
        None,
        {},
        no_keras_app="keras.applications has no ShuffleNet",
    ),
    Case(
        "shufflenet_v1_g3_x1_0",
        "shufflenet_v1_g3_x1_0",
        {},
        None,
        {},
        no_keras_app="keras.applications has no ShuffleNet",
    ),
    Case("resnet50", "resnet50", {}, "ResNet50", {}),
    Case(
        "resnext50_32x4d",
        "resnext50_32x4d",
        {},
        None,
        {},
        no_keras_app="keras.applications has no ResNeXt",
    ),
    Case(
        "vit_b_16",
        "vit_b_16",
        {},
        None,
        {},
        no_keras_app="keras.applications has no Vision Transformer",
    ),
)
TRAIN_CASES = ("mobilenet_v2", "resnet50")


def zoo_model(case: Case, size: int) -> keras.Model:
    """The keras_zoo model of `case` at size x size, with logits and random weights."""
    import keras_zoo

    return keras_zoo.build(
        case.name, input_shape=(size, size, 3), classifier_activation=None, **case.kwargs
    )


def keras_app_model(case: Case, size: int) -> keras.Model:
    """The keras.applications peer of `case` at size x size, with logits and random weights."""
    import keras

    if case.keras_app is None:
        raise ValueError(f"{case.label} has no keras.applications peer")
    return getattr(keras.applications, case.keras_app)(
        weights=None, input_shape=(size, size, 3), classifier_activation=None, **case.keras_kwargs
    )


def keras_runner(model: keras.Model, jit_compile: bool = False) -> Callable:
    """model(x, training=False) as one compiled TensorFlow function (the same for every Keras
    contender), returning a numpy array."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    return lambda x: fn(x).numpy()


def nchw(run: Callable) -> Callable:
    """`run`, which takes NCHW batches, called with NHWC ones: the transposed copy is made at
    the first call with a batch and reused, so the timed calls (the same batch over and over)
    pay no transpose."""
    last: dict[str, np.ndarray] = {}

    def call(x):
        if last.get("x") is not x:
            last["x"], last["nchw"] = x, np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return run(last["nchw"])

    return call


def torch_runner(module: Any) -> Callable:
    """`module` eager under torch.inference_mode(), on NHWC batches (see `nchw`)."""
    import torch

    module.eval()

    def run(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return nchw(run)


TORCH_REFERENCE = "keras_zoo.torch_reference:torch_model"


def load_torch_reference(spec: str | None) -> TorchFn | None:
    """FUNCTION(name, num_classes, alpha) -> torch module, from "MODULE:FUNCTION" (default
    TORCH_REFERENCE: torchvision's, timm's and megvii's own models); None when torch or the
    module is not importable (the torch column is then left out)."""
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


def alternate(
    runners: dict[str, Callable], x: np.ndarray, rounds: int, seconds: float
) -> dict[str, list[float]]:
    """Images per second of each runner, round by round, the order rotating each round."""
    for run in runners.values():  # warm-up: tracing and first-call allocation
        run(x)
        run(x)
    names = list(runners)
    result: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
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
    return 2 * n**3 * calls / (time.perf_counter() - start) / 1e9


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(min, median, max) of `values`."""
    return min(values), statistics.median(values), max(values)


def fmt(triple: Sequence[float], digits: int = 2) -> str:
    """A (min, median, max) triple as "median (min..max)"."""
    lo, mid, hi = triple
    return f"{mid:.{digits}f} ({lo:.{digits}f}..{hi:.{digits}f})"


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
    for each peer measured, "V gflops"; the peers' own images/s under their names; and "no
    peer" ({peer: why}: a case without a keras.applications model, whose cells read "none"
    and whose reason is printed under its lines).
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
            runners["torch"] = torch_runner(torch_fn(case.name, 1000, case.torch_alpha))
        for batch in batch_sizes:
            x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
            ips = alternate(runners, x, rounds, seconds)
            row: dict[str, Any] = {"model": case.label, "batch": batch, "gmacs": macs / 1e9}
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
            rows.append(row)
        del runners, zoo
        gc.collect()
    return rows


def bench_training(
    cases: Sequence[Case],
    *,
    size: int,
    batch: int,
    rounds: int,
    seconds: float,
    out: TextIO = sys.stdout,
) -> list[dict]:
    """Training steps/s (SGD, cross-entropy on logits) of keras_zoo against keras.applications
    (where the case has a keras.applications model)."""
    import keras

    print(
        f"\ntraining steps/s, batch {batch} at {size}x{size}, median (min..max) over "
        f"{rounds} rounds",
        file=out,
    )
    print(f"{'model':<20} {'keras_zoo':>20} {'keras.applications':>20} {'ratio':>18}", file=out)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    rows = []
    for case in cases:
        runners = {}
        for key, make in _contenders(case):
            model = make(case, size)
            model.compile(
                optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            runners[key] = (lambda m: lambda xb: m.train_on_batch(xb, y))(model)
        sps = alternate(runners, x, rounds, seconds)
        row = _peer_row(case, {k: [v / batch for v in vs] for k, vs in sps.items()})
        _print_peer_row(row, out)
        rows.append(row)
    return rows


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

    from keras_zoo.port import port

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
        "    run(np.zeros((batch, size, size, 3), 'float32'))\n"
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
        print(
            f"{case.label:<20} {row['keras_zoo']:10.0f} "
            + (f"{'none':>20}  ({case.no_keras_app})" if peer is None else f"{peer:20.0f}"),
            file=out,
            flush=True,
        )
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# runtimes: keras_zoo's exports against torch's, each in the runtime people deploy with


@dataclasses.dataclass(frozen=True)
class Contender:
    """One contender of the runtimes table: its name (the row's key), the side it counts for
    ("keras_zoo" or "torch"), what runs it, in which precision, and for a quantized one the
    float32 contender its speed is compared with."""

    name: str
    side: str
    runtime: str
    precision: str = "f32"
    baseline: str | None = None


CONTENDERS = (
    Contender("keras_zoo as built", "keras_zoo", "TensorFlow"),
    Contender("keras_zoo folded", "keras_zoo", "TensorFlow"),
    Contender("keras_zoo litert", "keras_zoo", "LiteRT, XNNPACK"),
    Contender("keras_zoo onnx", "keras_zoo", "ONNX Runtime"),
    Contender("keras_zoo openvino", "keras_zoo", "OpenVINO CPU"),
    Contender("keras_zoo litert int8", "keras_zoo", "LiteRT, XNNPACK", "int8", "keras_zoo litert"),
    Contender("keras_zoo onnx int8", "keras_zoo", "ONNX Runtime", "int8", "keras_zoo onnx"),
    Contender("keras_zoo openvino int8", "keras_zoo", "OpenVINO CPU", "int8", "keras_zoo openvino"),
    Contender("torch eager", "torch", "torch"),
    Contender("torch onnx", "torch", "ONNX Runtime"),
    Contender("torch openvino", "torch", "OpenVINO CPU"),
)
CONTENDER = {c.name: c for c in CONTENDERS}
EXPORT_FORMATS = ("litert", "onnx", "openvino")  # keras_zoo.export's, in their runtimes
# the contenders each side's best is chosen from (the highest median of the run)
BEST_OF = {
    "keras_zoo": ("keras_zoo folded", "keras_zoo litert", "keras_zoo onnx", "keras_zoo openvino"),
    "torch": ("torch eager", "torch onnx", "torch openvino"),
}
RUNTIME_CASES = (
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "shufflenet_v1_g3_x1_0",
    "resnet50",
    "resnext50_32x4d",
    "mobilenet_v3_large",
    "vit_b_16",
)
INT8_CASES = ("mobilenet_v2",)
CALIBRATION_IMAGES = 32
TORCH_ONNX_OPSET = 17
STATISTICS_BATCH = 8  # random images the batch norms' statistics are taken from


def runtime_models(
    case: Case, size: int, torch_fn: TorchFn | None = None
) -> tuple[keras.Model, Any]:
    """(Keras model, torch reference or None without `torch_fn`) of `case` for the runtimes
    table: random weights, each batch norm's statistics taken from one random batch (see
    `calibrate_batch_norms`), and on the torch side no parameter left at zero (see
    `fill_zero_parameters`)."""
    x = np.random.default_rng(4).uniform(-1, 1, (STATISTICS_BATCH, size, size, 3))
    x = x.astype(np.float32)
    model = calibrate_batch_norms(zoo_model(case, size), x)
    module = torch_fn(case.name, 1000, case.torch_alpha) if torch_fn else None
    if module is not None:
        fill_zero_parameters(module)
        calibrate_torch_batch_norms(module, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return model, module


def fill_zero_parameters(module: Any, std: float = 0.02, seed: int = 0) -> list[str]:
    """Gives every weight (a parameter of two or more axes) of torch `module` that is zero
    everywhere seeded normal values of standard deviation `std`, and returns their names.
    torchvision starts some at zero (a Vision Transformer's head and class token), which makes
    every image's output the same and an output check of the runtimes blind (`check_outputs`);
    zero biases and batch-norm shifts are left as they are."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    filled = []
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * std)
                filled.append(name)
    return filled


def calibrate_batch_norms(model: keras.Model, x: np.ndarray) -> keras.Model:
    """Sets the moving statistics of every batch norm of Keras `model` to those of batch `x`
    (one training-mode pass with momentum 0) and returns the model. Initial statistics (mean 0,
    variance 1) let a deep random network's outputs collapse to the same vector for every
    image, against which an output check proves nothing and int8 calibration sees no ranges;
    statistics of the data keep them apart."""
    import keras

    from keras_zoo import walk

    norms = [
        layer for layer in walk.layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    model(x, training=True)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return model


def calibrate_torch_batch_norms(module: Any, x: np.ndarray) -> Any:
    """`calibrate_batch_norms` for a torch module and an NCHW batch; returns it in eval mode."""
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 1.0  # torch's momentum weighs the new batch: 1 keeps only its statistics
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(x))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return module.eval()


def calibration_images(
    folder: str, size: int, count: int = CALIBRATION_IMAGES, seed: int = 0
) -> str:
    """Writes `count` smooth random RGB images (8x8 noise, bilinearly enlarged to size x size)
    as PNGs into `folder` and returns it: int8 calibration data for a speed benchmark, where
    the activations need ranges, not meaning."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small = small.resize((size, size), Image.Resampling.BILINEAR)
        small.save(os.path.join(folder, f"{i:03d}.png"))
    return folder


@dataclasses.dataclass
class Runtimes:
    """One architecture's contenders: `runners` by name (each takes the NHWC batch), `errors`
    (each one's max |output - reference| / max |reference| against its side's eager model on a
    random batch) and `left_out` (why a contender has no runner: its export failed)."""

    runners: dict[str, Callable]
    errors: dict[str, float] = dataclasses.field(default_factory=dict)
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)


def zoo_runtimes(model: keras.Model, folder: str, calibration: str | None = None) -> Runtimes:
    """keras_zoo's contenders for `model`: as built and folded (`keras_runner`), and its
    exports written into `folder` by `keras_zoo.export` (which checks each in its runtime) and
    loaded by `keras_zoo.load_exported`; with `calibration` (a folder of images) its int8
    exports too. An export that fails (a converter that cannot take some layer) is left out,
    with its error."""
    from keras_zoo.deploy import ExportError
    from keras_zoo.fold import fold_batchnorm

    result = Runtimes(
        {
            "keras_zoo as built": keras_runner(model),
            "keras_zoo folded": keras_runner(fold_batchnorm(model)),
        }
    )
    for quantize in (None, "int8") if calibration else (None,):
        for fmt in EXPORT_FORMATS:
            name = f"keras_zoo {fmt}" + (f" {quantize}" if quantize else "")
            try:
                result.runners[name] = _exported(model, folder, fmt, quantize, calibration)
            except ExportError as err:
                result.left_out[name] = str(err)
    return result


def _exported(model, folder: str, fmt: str, quantize: str | None, calibration: str | None):
    """`model` exported to `fmt` and loaded, as a runner of NHWC batches. The formats that
    can take NCHW input (ONNX, OpenVINO) are given it, as torch's exports are, and fed
    through `nchw`: neither side's timed calls then transpose their input."""
    from keras_zoo.deploy import LAYOUTS, SUFFIXES, export, load_exported

    layout = "nchw" if "nchw" in LAYOUTS[fmt] else "nhwc"
    path = os.path.join(folder, f"{model.name}-{quantize or 'f32'}{SUFFIXES[fmt]}")
    # random weights can make the export warn that its check is weak, and the converters warn
    # of their own deprecations; neither bears on speed, and the table checks the outputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export(
            model,
            path,
            fmt,
            quantize=quantize,
            calibration=calibration if quantize else None,
            layout=layout,
            verbose=False,
        )
    runtime = load_exported(path)
    return nchw(runtime) if layout == "nchw" else runtime


def torch_runtimes(module: Any, folder: str, size: int) -> dict[str, Callable]:
    """torch's contenders for `module`: eager (`torch_runner`), and torch's own ONNX export
    (the TorchScript exporter, opset 17, any batch size) written into `folder` and run in ONNX
    Runtime and in OpenVINO by `keras_zoo.load_exported`, the loader of keras_zoo's exports, so
    that both sides' sessions are set up alike. Every runner takes the NHWC batch (see `nchw`)."""
    import torch

    from keras_zoo.deploy import load_exported

    module.eval()
    path = os.path.join(folder, "torch.onnx")
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, 3, size, size),),
            path,
            opset_version=TORCH_ONNX_OPSET,
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
        )
    return {
        "torch eager": torch_runner(module),
        "torch onnx": nchw(load_exported(path, format="onnx")),
        "torch openvino": nchw(load_exported(path, format="openvino")),
    }


def check_outputs(runners: dict[str, Callable], reference: str, x: np.ndarray) -> dict[str, float]:
    """max |output - reference| / max |reference| of each runner on `x`, against
    runners[reference]; RuntimeError when a float32 contender is off by more than 1e-4 (the
    int8 ones are recorded, not judged), or when the reference's outputs are the same for
    every image of `x`, which would make the check void."""
    from keras_zoo.deploy import TOLERANCE, outputs_vary, relative_error

    want = runners[reference](x)
    if not outputs_vary(want, 1e-3):
        raise RuntimeError(
            f"{reference} gives the same outputs for every image, so they "
            "cannot check the other runtimes (see calibrate_batch_norms)"
        )
    errors = {name: relative_error(run(x), want) for name, run in runners.items()}
    wrong = {
        name: error
        for name, error in errors.items()
        if CONTENDER[name].precision == "f32" and not error <= TOLERANCE
    }
    if wrong:
        raise RuntimeError(
            f"outputs disagree with {reference}'s beyond {TOLERANCE:g}: "
            + ", ".join(f"{n} {e:.2e}" for n, e in wrong.items())
        )
    return errors


def case_runtimes(
    model: keras.Model, module: Any, folder: str, size: int, calibration: str | None = None
) -> Runtimes:
    """Every contender for one architecture: keras_zoo's for `model`, torch's for `module` (its
    torch reference; None leaves them out), each checked against its side's eager model
    (keras_zoo as built, torch eager) on a random batch. See `zoo_runtimes`, `torch_runtimes`
    and `check_outputs`."""
    x = np.random.default_rng(2).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    result = zoo_runtimes(model, folder, calibration)
    result.errors = check_outputs(result.runners, "keras_zoo as built", x)
    if module is not None:
        theirs = torch_runtimes(module, folder, size)
        result.errors.update(check_outputs(theirs, "torch eager", x))
        result.runners.update(theirs)
    return result


def runtimes_row(label: str, batch: int, ips: dict[str, list[float]], runtimes: Runtimes) -> dict:
    """A row of the runtimes table from each contender's images/s per round (see
    `bench_runtimes`)."""
    row: dict[str, Any] = {
        "model": label,
        "batch": batch,
        **{n: summary(v) for n, v in ips.items()},
        "precision": {n: CONTENDER[n].precision for n in ips},
        "max error": dict(runtimes.errors),
        "left out": dict(runtimes.left_out),
    }

    def ratio(a, b):
        return summary([p / q for p, q in zip(ips[a], ips[b])])

    for side, names in BEST_OF.items():
        present = [n for n in names if n in ips]
        if present:
            row[f"best {side}"] = max(present, key=lambda n: row[n][1])
    if "best keras_zoo" in row and "best torch" in row:
        row["best ratio"] = ratio(row["best keras_zoo"], row["best torch"])
        row["as built ratio"] = ratio("keras_zoo as built", "torch eager")
    for name in ips:
        if CONTENDER[name].baseline in ips:
            row[f"{name} ratio"] = ratio(name, CONTENDER[name].baseline)
    return row


RUNTIMES_COLUMNS = "{:<20} {:>5} {:<24} {:<16} {:<9} {:>22} {:>18}"


def print_runtimes_row(row: dict, out: TextIO = sys.stdout) -> None:
    """The lines of one row: each contender's, then the row's ratios."""
    first = True
    for contender in CONTENDERS:
        if contender.name not in row:
            continue
        ratio = row.get(f"{contender.name} ratio")
        print(
            RUNTIMES_COLUMNS.format(
                row["model"] if first else "",
                row["batch"] if first else "",
                contender.name,
                contender.runtime,
                contender.precision,
                fmt(row[contender.name], 1),
                fmt(ratio) if ratio else "",
            ).rstrip(),
            file=out,
        )
        first = False
    for name, why in row["left out"].items():
        print(f"{'':<26} {name:<24} left out: {why}", file=out)
    if "best ratio" in row:
        for text, key in (
            (
                f"{row['best keras_zoo']} / {row['best torch']} (the best of each side)",
                "best ratio",
            ),
            ("keras_zoo as built / torch eager", "as built ratio"),
        ):
            print(f"{'':<26} {'ratio: ' + text:<74} {fmt(row[key]):>18}", file=out)
    out.flush()


def measure_runtimes(
    label: str,
    runtimes: Runtimes,
    *,
    size: int,
    batch_sizes: Sequence[int],
    rounds: int,
    seconds: float,
    out: TextIO = sys.stdout,
) -> list[dict]:
    """The rows of one architecture: every contender alternating (`alternate`) at each batch
    size, on the same random NHWC batch."""
    rng = np.random.default_rng(3)
    rows = []
    for batch in batch_sizes:
        x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
        ips = alternate(runtimes.runners, x, rounds, seconds)
        row = runtimes_row(label, batch, ips, runtimes)
        print_runtimes_row(row, out)
        rows.append(row)
    return rows


def _every_core(torch_used: bool) -> int:
    """Every core for every runtime: TensorFlow, LiteRT, ONNX Runtime and OpenVINO take them
    by default or from `load_exported`; torch is told."""
    threads = os.cpu_count() or 1
    if torch_used:
        import torch

        torch.set_num_threads(threads)
    return threads


def cpu_description() -> str:
    """The processor's model name and widest vector instructions (from /proc/cpuinfo where
    there is one), and whether TensorFlow differentiates grouped convolutions itself (oneDNN)
    or through XLA: the figures of one machine do not carry over to another."""
    from keras_zoo.layers import grouped_conv_support

    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = [
        label
        for flag, label in (
            ("avx512f", "AVX-512"),
            ("avx512_bf16", "AVX512-BF16"),
            ("amx_tile", "AMX"),
            ("avx2", "AVX2"),
        )
        if flag in flags
    ]
    if "AVX-512" in isa:
        isa.remove("AVX2")
    grouped = {
        "tensorflow": "TensorFlow's kernels (oneDNN)",
        "forward": "TensorFlow's kernels, XLA's gradients",
        None: "Keras' XLA path",
    }[grouped_conv_support("float32")]
    return f"{name}, {', '.join(isa) or 'no AVX'}; grouped convolutions: {grouped}"


def _runtime_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("ai-edge-litert", "onnxruntime", "openvino", "tf2onnx"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def bench_runtimes(
    cases: Sequence[Case],
    *,
    size: int,
    batch_sizes: Sequence[int],
    rounds: int,
    seconds: float,
    torch_fn: TorchFn | None = None,
    int8_cases: Sequence[str] = (),
    out: TextIO = sys.stdout,
) -> list[dict]:
    """Images/s of keras_zoo as built, folded and exported (LiteRT, ONNX Runtime, OpenVINO)
    against torch eager and torch's own ONNX export in ONNX Runtime and OpenVINO, all
    alternating in one run on every core; for the cases labelled in `int8_cases`, keras_zoo's
    int8 exports beside the float ones. Prints a table (a line per contender, then the ratios)
    and returns its rows.

    A row has "model", "batch", each contender's images/s (min, median, max) under its name
    (CONTENDERS), "precision" and "max error" ({name: ...}: against keras_zoo as built or
    torch eager on a random batch), "left out" ({name: why}: a failed export), and ratios per
    round as (min, median, max): "best ratio" (the best keras_zoo export / the best torch-side
    runtime, named by "best keras_zoo" and "best torch": the highest median of each side's
    BEST_OF), "as built ratio" (keras_zoo as built / torch eager) and, for each int8
    contender, "NAME ratio" (int8 / the float32 export of the same format). Without
    `torch_fn` the torch side and its ratios are left out.
    """
    threads = _every_core(torch_fn is not None)
    print(
        f"\nruntimes, {size}x{size}, images/s median (min..max) over {rounds} rounds, "
        f"every runtime on {threads} threads",
        file=out,
    )
    print(
        f"{_runtime_versions()}; ratios per round, median (min..max); int8 lines: int8 / "
        "float32 export of the same format",
        file=out,
    )
    print(
        RUNTIMES_COLUMNS.format(
            "model", "batch", "contender", "runtime", "precision", "images/s", "ratio"
        ),
        file=out,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="keras_zoo-bench-") as tmp:
        calibration = (
            calibration_images(os.path.join(tmp, "calibration"), size) if int8_cases else None
        )
        for i, case in enumerate(cases):
            folder = os.path.join(tmp, str(i))
            os.makedirs(folder)
            model, module = runtime_models(case, size, torch_fn)
            runtimes = case_runtimes(
                model, module, folder, size, calibration if case.label in int8_cases else None
            )
            rows += measure_runtimes(
                case.label,
                runtimes,
                size=size,
                batch_sizes=batch_sizes,
                rounds=rounds,
                seconds=seconds,
                out=out,
            )
            del runtimes, model, module
            gc.collect()
            shutil.rmtree(folder, ignore_errors=True)
    return rows


TABLES = ("inference", "runtimes", "training", "build", "port", "memory")


def choose_cases(labels: Sequence[str], option: str = "cases") -> list[Case]:
    """The cases labelled in `labels`, in CASES' order; ValueError naming `option` when a label
    is none of theirs."""
    known = [c.label for c in CASES]
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(f"{option}: none of {unknown} is one of {known}")
    return [c for c in CASES if c.label in labels]


def _int8_labels(int8_cases: Sequence[str] | None, runtime_cases: Sequence[Case]) -> list[str]:
    """The runtimes table's cases that get int8 exports: INT8_CASES among them by default, or
    `int8_cases`, each of which must be one of them."""
    labels = [c.label for c in runtime_cases]
    if int8_cases is None:
        return [label for label in labels if label in INT8_CASES]
    choose_cases(int8_cases, "int8_cases")
    missing = [label for label in int8_cases if label not in labels]
    if missing:
        raise ValueError(f"int8_cases: {missing} not among the runtimes table's cases {labels}")
    return list(int8_cases)


def _runtimes_unavailable() -> str | None:
    """Why the runtimes table cannot run here (a missing package), or None."""
    from keras_zoo.deploy import require

    try:
        for fmt in EXPORT_FORMATS:
            require(fmt)
    except ImportError as err:
        return str(err)
    return None


def run_all(
    *,
    size: int = 224,
    batch_sizes: Sequence[int] = (1, 16),
    rounds: int = 5,
    seconds: float = 2.0,
    train_batch: int = 16,
    cases: Sequence[str] | None = None,
    torch_reference: str | None = TORCH_REFERENCE,
    jit_compile: bool = False,
    memory: bool = True,
    tables: Sequence[str] | None = None,
    runtimes_cases: Sequence[str] | None = None,
    int8_cases: Sequence[str] | None = None,
    out: TextIO = sys.stdout,
) -> dict:
    """Every benchmark of the module (or those named in `tables`, some of TABLES; memory=False
    leaves the memory one out), in one process; returns the rows of every table run.

    The runtimes table covers `runtimes_cases` (default: `cases` when given, else
    RUNTIME_CASES), with int8 exports for `int8_cases` (default: those of INT8_CASES it covers;
    () for none).
    """
    import tensorflow as tf

    chosen = choose_cases(cases if cases is not None else [c.label for c in CASES])
    if not chosen:
        raise ValueError(f"cases: none given; some of {[c.label for c in CASES]}")
    tables = [t for t in (TABLES if tables is None else tables) if memory or t != "memory"]
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"tables: none of {unknown} is one of {list(TABLES)}")
    runtime_cases = choose_cases(
        runtimes_cases
        if runtimes_cases is not None
        else cases
        if cases is not None
        else RUNTIME_CASES,
        "runtimes_cases",
    )
    int8_labels = _int8_labels(int8_cases, runtime_cases)
    torch_fn = load_torch_reference(torch_reference)
    import keras

    from keras_zoo.torch_reference import INSTALL

    torch_column = (
        "yes"
        if torch_fn
        else f"no (torch or the reference is not importable; for torch: {INSTALL})"
    )
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs, XLA {'on' if jit_compile else 'off'}; torch column: "
        f"{torch_column}",
        file=out,
    )
    print(f"CPU: {cpu_description()}", file=out)
    if torch_fn is not None:
        import torch

        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=out)
    peak = gemm_gflops()
    print(f"float32 GEMM peak (1024x1024 matmul): {peak:.1f} GFLOP/s", file=out)
    results: dict[str, Any] = {"gemm_gflops": peak}
    if "inference" in tables:
        results["inference"] = bench_inference(
            chosen,
            size=size,
            batch_sizes=batch_sizes,
            rounds=rounds,
            seconds=seconds,
            torch_fn=torch_fn,
            jit_compile=jit_compile,
            peak=peak,
            out=out,
        )
    if "runtimes" in tables and runtime_cases:
        why_not = _runtimes_unavailable()
        if why_not:
            print(f"\nruntimes: left out, {why_not}", file=out)
        else:
            results["runtimes"] = bench_runtimes(
                runtime_cases,
                size=size,
                batch_sizes=batch_sizes,
                rounds=rounds,
                seconds=seconds,
                torch_fn=torch_fn,
                int8_cases=int8_labels,
                out=out,
            )
    train_cases = [c for c in chosen if c.label in TRAIN_CASES]
    if "training" in tables and train_cases:
        results["training"] = bench_training(
            train_cases, size=size, batch=train_batch, rounds=rounds, seconds=seconds, out=out
        )
    if "build" in tables:
        results["build"] = bench_build(chosen, size=size, rounds=rounds, out=out)
    if "port" in tables and torch_fn is not None:  # the checkpoint is made with torch
        results["port"] = bench_port(torch_fn, rounds=rounds, out=out)
    if "memory" in tables:
        results["memory"] = peak_memory(chosen, size=size, batch=max(batch_sizes), out=out)
    return results
