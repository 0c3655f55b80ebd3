"""The runtimes table: keras_zoo's exports against torch's, each in the runtime people deploy
with (LiteRT, ONNX Runtime, OpenVINO), every contender's outputs checked before it is timed."""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from keras_zoo.bench.calibration import calibration_images, runtime_models
from keras_zoo.bench.cases import Case, TorchFn, case_size, size_note
from keras_zoo.bench.machine import every_core, runtime_versions
from keras_zoo.bench.runners import keras_runner, nchw, torch_runner
from keras_zoo.bench.timing import alternate, fmt, summary

if TYPE_CHECKING:
    import keras


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
TORCH_ONNX_OPSET = 17


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
        for format_name in EXPORT_FORMATS:
            name = f"keras_zoo {format_name}" + (f" {quantize}" if quantize else "")
            try:
                result.runners[name] = _exported(model, folder, format_name, quantize, calibration)
            except ExportError as err:
                result.left_out[name] = str(err)
    return result


def _exported(model, folder: str, fmt: str, quantize: str | None, calibration: str | None):
    """`model` exported to `fmt` and loaded, as a runner of NHWC batches. The formats that
    can take NCHW input (ONNX, OpenVINO) are given it, as torch's exports are, and fed
    through `nchw`: neither side's timed calls then transpose their input."""
    from keras_zoo.deploy import FORMATS, export, load_exported

    layout = "nchw" if "nchw" in FORMATS[fmt].layouts else "nhwc"
    path = os.path.join(folder, f"{model.name}-{quantize or 'f32'}{FORMATS[fmt].suffix}")
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
        row["size"] = size
        print_runtimes_row(row, out)
        rows.append(row)
    return rows


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
    contender, "NAME ratio" (int8 / the float32 export of the same format), and "size", the
    input size (a case with a fixed one, PFLD's 112, runs at it, and a line says so). Without
    `torch_fn` the torch side and its ratios are left out.
    """
    threads = every_core(torch_fn is not None)
    print(
        f"\nruntimes, {size}x{size}, images/s median (min..max) over {rounds} rounds, "
        f"every runtime on {threads} threads",
        file=out,
    )
    print(
        f"{runtime_versions()}; ratios per round, median (min..max); int8 lines: int8 / "
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
        for i, case in enumerate(cases):
            folder = os.path.join(tmp, str(i))
            os.makedirs(folder)
            own = case_size(case, size)
            calibration = None
            if case.label in int8_cases:  # images of each input size, written once
                calibration = os.path.join(tmp, f"calibration-{own}")
                if not os.path.isdir(calibration):
                    calibration_images(calibration, own)
            model, module = runtime_models(case, own, torch_fn)
            runtimes = case_runtimes(model, module, folder, own, calibration)
            rows += measure_runtimes(
                case.label,
                runtimes,
                size=own,
                batch_sizes=batch_sizes,
                rounds=rounds,
                seconds=seconds,
                out=out,
            )
            if size_note(case, size):
                print(f"{'':<26} {size_note(case, size)}", file=out, flush=True)
            del runtimes, model, module
            gc.collect()
            shutil.rmtree(folder, ignore_errors=True)
    return rows
