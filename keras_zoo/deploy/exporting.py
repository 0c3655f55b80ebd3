"""`export`: the checks of its arguments, all before any work; the conversion of the folded
model into a hidden folder beside the path; the check in the runtime (deploy/check.py); the
record; and the move into place, which happens only when the check passed."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from keras_zoo import checks
from keras_zoo.deploy.check import TOLERANCE, check_in_runtime
from keras_zoo.deploy.errors import ExportError, first_line
from keras_zoo.deploy.exported import load_exported
from keras_zoo.deploy.formats import (
    FORMATS,
    LAYOUT_CHOICES,
    RECORD_SUFFIX,
    Format,
    format_of,
    require,
)
from keras_zoo.deploy.images import Images
from keras_zoo.tasks import Task, task_of

if TYPE_CHECKING:
    import keras

    from keras_zoo.weight_sets import Preprocessing

MAX_CALIBRATION = 200  # images read from a calibration folder, at most


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export` wrote and what its check measured.

    max_error: max |runtime - keras| / max |keras| on random images; max_error_images: the same
    on real images (None without a folder); agreement: the fraction of images on which the
    export and the Keras model agree as the model's task judges (`Task.agree`: a classifier's
    top-1 class); score: {"metric": the task's score_name (a classifier's "accuracy"),
    "keras": a, "export": b, "images": n} on labelled data, or None.
    """

    path: str
    format: str
    quantize: str | None
    files: tuple[str, ...]
    record: str
    max_error: float
    max_error_images: float | None
    agreement: float
    score: dict | None
    seconds: float


def export(
    model: keras.Model,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    quantize: str | None = None,
    calibration: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
    metadata: dict | None = None,
    layout: str = "nhwc",
    tolerance: float = TOLERANCE,
    verbose: bool = True,
) -> ExportResult:
    """Writes `model` (a Functional or Sequential keras.Model with a fixed input size) to
    `path` in `format`, checked in its runtime (see keras_zoo.deploy's docstring).

    format: "litert", "onnx", "openvino" or "saved_model"; None takes it from path's suffix.
    quantize: None (float32), or what the format allows: "int8" (litert, onnx, openvino:
    post-training quantization calibrated on `calibration`), "float16" (litert, openvino: the
    weights in half precision), "bf16" (openvino: bfloat16 inference, recorded for the runtime).
    calibration: a folder of images (searched recursively); int8 needs it, and a float export
    given one is checked on its images too. data: labelled data, read as the model's task reads
    it (`keras_zoo.tasks`; a classifier's: a class-per-folder tree, the classes in the model's
    output order) to measure the task's score on (a classifier's accuracy).
    preprocessing: the `keras_zoo.Preprocessing` that prepares images for the model (default:
    the one `keras_zoo.describe(model)` names, else ImageNet's usual one).
    class_names and metadata (a JSON-able dict): recorded for `load_exported`. layout: the
    input's axis order, "nhwc" (Keras') or, for onnx and openvino, "nchw" (torch's): the
    graph then starts at the first convolution, with no transpose of the input.
    """
    import keras

    start = time.perf_counter()
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    path = os.path.abspath(os.fspath(path))
    fmt = _check_format(format, path)
    quantize = _check_quantize(fmt, quantize, calibration)
    layout = _check_layout(fmt, layout)
    tolerance = checks.check_positive_number(tolerance, "tolerance")
    require(fmt)
    input_shape = _input_shape(model)
    description = getattr(model, "description", None)
    pre, in_model = _preprocessing(model, preprocessing, description)
    if len(model.outputs) != 1:
        raise ValueError(
            f"model: export takes a model with one output; {model.name!r} has "
            f"{len(model.outputs)} (features_only models: export one stage)"
        )
    outputs = int(np.prod(model.outputs[0].shape[1:]))
    if class_names is None and description is not None and description.class_names:
        class_names = description.class_names
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if len(class_names) != outputs:
            raise ValueError(
                f"class_names: {len(class_names)} names for a model of {outputs} outputs"
            )
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as err:
        raise TypeError(f"metadata must be JSON-serialisable: {err}") from None
    calibration_files = _image_files(calibration, "calibration") if calibration else []
    task = task_of(description)
    folder = _labelled(task, data, class_names) if data is not None else None
    parent = os.path.dirname(path)
    made = _writable(parent, path)
    say = print if verbose else (lambda *a, **k: None)
    try:
        with tempfile.TemporaryDirectory(prefix=f".{os.path.basename(path)}.", dir=parent) as tmp:
            target = os.path.join(tmp, os.path.basename(path))
            folded = _fold(model)
            prepare = Images(pre, in_model, input_shape)
            folded(prepare.random(1), training=False)  # tf2onnx needs a model that was called
            calib = prepare.files(calibration_files[:MAX_CALIBRATION]) if calibration else None
            say(
                f"exporting {model.name} to {fmt}"
                + (f" ({quantize})" if quantize else "")
                + f": {os.path.basename(path)}"
            )
            _convert(folded, target, fmt, quantize, calib, tmp, layout)
            runtime = load_exported(target, format=fmt, precision=quantize, layout=layout)
            check = check_in_runtime(
                model, runtime, prepare, calib, task, folder, tolerance, quantize
            )
            record = {
                "keras_zoo": _version(),
                "format": fmt,
                "quantize": quantize,
                "precision": quantize or "f32",
                "model": model.name,
                "input_shape": list(input_shape),
                "layout": layout,
                "outputs": outputs,
                "output_activation": _output_activation(model),
                "preprocessing": dataclasses.asdict(pre),
                "normalized_in_model": in_model,
                "class_names": list(class_names) if class_names else None,
                "metadata": metadata or {},
                "description": _recorded(description, pre, class_names),
                "check": check,
            }
            with open(target + RECORD_SUFFIX, "w") as f:
                json.dump(record, f, indent=2)
            files = _move_into_place(tmp, target, path, FORMATS[fmt])
    except BaseException:
        for folder_made in reversed(made):
            shutil.rmtree(folder_made, ignore_errors=True)
        raise
    result = ExportResult(
        path,
        fmt,
        quantize,
        files,
        path + RECORD_SUFFIX,
        check["random"]["max_relative_error"],
        check["images"]["max_relative_error"] if check["images"] else None,
        check["agreement"],
        None
        if check[task.score_name] is None
        else {"metric": task.score_name, **check[task.score_name]},
        time.perf_counter() - start,
    )
    say(_summary(result, tolerance, task))
    return result


def _summary(result: ExportResult, tolerance: float, task: Task) -> str:
    parts = [
        f"wrote {result.path}",
        f"max relative error {result.max_error:.1e} on random "
        "images"
        + (
            f", {result.max_error_images:.1e} on real images"
            if result.max_error_images is not None
            else ""
        ),
    ]
    if result.quantize:
        parts.append(f"{task.agreement_name} with the float model {result.agreement:.1%}")
    else:
        parts.append(f"within {tolerance:g}")
    if result.score:
        score = result.score
        parts.append(
            f"{score['metric']} {score['export']:.4f} (Keras {score['keras']:.4f}) on "
            f"{score['images']} images"
        )
    return "; ".join(parts) + f"; record: {os.path.basename(result.record)}"


# ---------------------------------------------------------------------------------------------
# argument checks: all before any work


def _check_format(fmt, path: str) -> str:
    if fmt is None:
        fmt = format_of(path)
        if fmt is None:
            raise ValueError(
                f"format: give one of {', '.join(FORMATS)}, or a path ending in "
                f"{', '.join(row.suffix for row in FORMATS.values() if row.suffix)}; got path "
                f"{path!r}"
            )
        return fmt
    checks.check_choice(fmt, "format", tuple(FORMATS))
    suffix = FORMATS[fmt].suffix
    if suffix and not path.lower().endswith(suffix):
        raise ValueError(f"path {path!r}: a {fmt} export is written as a {suffix} file")
    if not suffix and format_of(path) not in (None, fmt):
        raise ValueError(
            f"path {path!r}: a {fmt} export is a folder; give a path without a file suffix"
        )
    return fmt


def _check_quantize(fmt: str, quantize, calibration) -> str | None:
    if quantize is not None:
        allowed = FORMATS[fmt].quantizations
        if not allowed:
            raise ValueError(f"quantize: format {fmt!r} has no quantized variant; give None")
        checks.check_choice(quantize, f"quantize (format {fmt!r})", allowed)
    if quantize == "int8" and calibration is None:
        raise ValueError(
            "calibration: quantize='int8' is calibrated on images; give a folder "
            "of images representative of the inputs"
        )
    return quantize


def _check_layout(fmt: str, layout) -> str:
    layout = checks.check_choice(layout, "layout", LAYOUT_CHOICES)
    if layout not in FORMATS[fmt].layouts:
        allowed = [row.name for row in FORMATS.values() if layout in row.layouts]
        raise ValueError(
            f"layout {layout!r}: format {fmt!r} takes NHWC input only; "
            f"{layout} input: {', '.join(allowed)}"
        )
    return layout


def _input_shape(model) -> tuple[int, int, int]:
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else ()
    if len(shape) != 3 or not all(isinstance(s, int) for s in shape):
        raise ValueError(
            f"model: export takes one (height, width, channels) input of fixed "
            f"size; {model.name!r} takes {model.input_shape} (build it with "
            "input_shape=(224, 224, 3), for example)"
        )
    return shape


def _preprocessing(model, pre, description):
    """(Preprocessing, whether the model normalises its own input): `pre`, else the one the
    model's description carries (`keras_zoo.describe`), else ImageNet's usual one."""
    from keras_zoo.layers import Normalize
    from keras_zoo.weight_sets import Preprocessing

    if pre is None:
        pre = description.preprocessing if description is not None else Preprocessing()
    if not isinstance(pre, Preprocessing):
        raise TypeError(
            f"preprocessing must be a keras_zoo.Preprocessing, got {type(pre).__name__}"
        )
    return pre, any(isinstance(layer, Normalize) for layer in model.layers)


def _recorded(description, pre, class_names) -> dict | None:
    """The model's description as the export records it: with the preprocessing and class
    names the export was made with."""
    import dataclasses as dc

    if description is None:
        return None
    return dc.replace(
        description, preprocessing=pre, class_names=class_names or description.class_names
    ).to_dict()


def _image_files(folder, argument: str) -> list[str]:
    from keras_zoo.data import IMAGE_SUFFIXES, verify_images

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"{argument} {folder!r}: no such folder")
    files: list[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(
            os.path.join(root, n)
            for n in sorted(names)
            if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")
        )
    if not files:
        raise ValueError(f"{argument} {folder!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
    # an even spread over the folder (class folders alike), in a fixed order
    chosen = [
        files[i]
        for i in np.linspace(0, len(files) - 1, min(len(files), MAX_CALIBRATION)).astype(int)
    ]
    chosen = list(dict.fromkeys(chosen))
    verify_images(chosen)
    return chosen


def _labelled(task: Task, data, class_names):
    """The labelled data `data`, read as `task` reads a dataset, whose output names must be the
    model's `class_names` (where both name them)."""
    folder = task.read(data, argument="data")
    if (
        class_names is not None
        and folder.names is not None
        and tuple(folder.names) != tuple(class_names)
    ):
        raise ValueError(
            f"data {os.fspath(data)!r} has the classes {list(folder.names)} "
            f"but the model's are {list(class_names)}"
        )
    return folder


def _writable(parent: str, path: str) -> list[str]:
    """Creates the missing folders above `path` (returned, outermost first, so that a failure
    can remove them); ValueError when `path` cannot be written."""
    made, folder = [], parent
    while not os.path.isdir(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    made.reverse()
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"path {path!r}: folder {folder!r} is not writable")
    if os.path.isdir(path) and format_of(path) != "saved_model":
        raise ValueError(f"path {path!r} is a folder; give a file path")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise ValueError(f"path {path!r}: cannot create its folder: {err}") from None
    return made


def _output_activation(model) -> str | None:
    """The name of the activation the model's last layer applies ("softmax": the outputs are
    probabilities), or None."""
    import keras

    activation = getattr(model.layers[-1], "activation", None)
    name = keras.activations.serialize(activation) if activation is not None else None
    name = name.get("config", name) if isinstance(name, dict) else name
    return None if name in (None, "linear") else str(name)


def _version() -> str:
    from keras_zoo._version import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
# conversion and the move into place


def _fold(model):
    """The model with its batch norms folded; as it is when it has none, or when it cannot be
    cloned (subclassed parts, Lambda layers), with a warning."""
    import keras

    from keras_zoo import walk
    from keras_zoo.fold import fold_batchnorm

    if not any(isinstance(layer, keras.layers.BatchNormalization) for layer in walk.layers(model)):
        return model
    try:
        return fold_batchnorm(model)
    except (TypeError, ValueError) as err:
        warnings.warn(
            f"{model.name}: exported without folding its batch norms ({first_line(err)})",
            stacklevel=3,
        )
        return model


def _convert(model, target: str, fmt: str, quantize, calib, tmp: str, layout: str) -> None:
    """Writes `model` to `target`; ExportError naming the format and the converter's words.
    The converters' own lines are not shown: what they print, and their native log lines
    (`keras_zoo.console.native_stderr_filtered`: LiteRT's converter's, which run after the
    command line has imported TensorFlow)."""
    import io

    from keras_zoo.console import native_stderr_filtered

    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            native_stderr_filtered(),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's use of np.object
            FORMATS[fmt].convert(model, target, quantize, calib, tmp, layout)
    except ExportError:
        raise
    except (ValueError, TypeError, RuntimeError, NotImplementedError, ImportError) as err:
        raise ExportError(f"{fmt} export of {model.name!r} failed: {first_line(err)}") from err


def _move_into_place(tmp: str, target: str, path: str, row: Format) -> tuple[str, ...]:
    """Moves the export's files from `tmp` to beside `path` (its companions, such as the
    weights of a graph, before it; the record last), each with one rename; returns the paths
    written."""
    name = os.path.basename(target)
    stem = name[: len(name) - len(row.suffix)]
    names = [stem + suffix for suffix in row.companions] + [name, name + RECORD_SUFFIX]
    written = []
    for moved in names:
        src, dst = os.path.join(tmp, moved), os.path.join(os.path.dirname(path), moved)
        if os.path.isdir(src) and os.path.isdir(dst):  # a SavedModel folder replaced
            old = os.path.join(tmp, "previous")
            os.rename(dst, old)
        os.replace(src, dst)
        written.append(dst)
    return tuple(written)
