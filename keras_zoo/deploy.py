"""Exports that run on the runtimes people deploy with, each checked in its runtime.

`export(model, path)` writes a Keras model as a LiteRT flatbuffer (.tflite), an ONNX graph
(.onnx), an OpenVINO IR (.xml beside its .bin) or a TensorFlow SavedModel (a folder):

1. every batch norm is folded into the convolution before it (`keras_zoo.fold_batchnorm`);
2. the file is written into a hidden folder beside `path`;
3. it is loaded in its runtime and run on random images (and on real ones when a folder is
   given) beside the Keras model: a float export must agree within `tolerance` (1e-4 relative,
   max |runtime - keras| / max |keras|); a quantized one reports its top-1 agreement with the
   float model and, given a labelled folder, both accuracies;
4. only then the file moves to `path`, with the check's record beside it (`path` + ".json"),
   which also holds the input size, the preprocessing and the class names, so that
   `load_exported(path)` runs it on images without the Keras model.

A failed check, a failed conversion or bad arguments leave nothing at `path`. The runtimes
come with the `export` extra: `pip install "keras_zoo[export]"`.

>>> import os, tempfile, keras_zoo
>>> model = keras_zoo.build("mobilenet_v3_small", input_shape=(64, 64, 3), classes=10)
>>> result = keras_zoo.export(model, os.path.join(tempfile.mkdtemp(), "m.tflite"), verbose=False)
>>> result.max_error < 1e-4, os.path.basename(result.record)
(True, 'm.tflite.json')
>>> runtime = keras_zoo.load_exported(result.path)
>>> runtime.input_shape, runtime(np.zeros((2, 64, 64, 3), "float32")).shape
((64, 64, 3), (2, 10))
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_zoo import checks
from keras_zoo.port.compare import relative_error

if TYPE_CHECKING:
    import keras

    from keras_zoo.weight_sets import Preprocessing

FORMATS = ("litert", "onnx", "openvino", "saved_model")
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx", "openvino": ".xml", "saved_model": ""}
QUANTIZATIONS = {
    "litert": ("int8", "float16"),
    "onnx": ("int8",),
    "openvino": ("int8", "float16", "bf16"),
    "saved_model": (),
}
# the modules each format needs, beyond TensorFlow and Keras
# the axis orders of the image input each format can be given ("nchw": torch's, for a pipeline
# that feeds it torch-style batches)
LAYOUT_CHOICES = ("nhwc", "nchw")
LAYOUTS = {
    "litert": ("nhwc",),
    "onnx": LAYOUT_CHOICES,
    "openvino": LAYOUT_CHOICES,
    "saved_model": ("nhwc",),
}
PACKAGES = {
    "litert": ("ai_edge_litert",),
    "onnx": ("tf2onnx", "onnx", "onnxruntime"),
    "openvino": ("openvino", "tf2onnx", "onnx"),
    "saved_model": (),
}
EXTRA = 'pip install "keras_zoo[export]"'
TOLERANCE = 1e-4
CHECK_IMAGES = 8  # random images of the parity check
MAX_CALIBRATION = 200  # images read from a calibration folder, at most
RECORD_SUFFIX = ".json"


class ExportError(RuntimeError):
    """An export that failed its conversion or its check; nothing was left at its path."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export` wrote and what its check measured.

    max_error: max |runtime - keras| / max |keras| on random images; max_error_images: the same
    on real images (None without a folder); agreement: the fraction of images whose top-1
    class the export and the Keras model agree on; accuracy: {"keras": a, "export": b,
    "images": n} on a labelled folder, or None.
    """

    path: str
    format: str
    quantize: str | None
    files: tuple[str, ...]
    record: str
    max_error: float
    max_error_images: float | None
    agreement: float
    accuracy: dict | None
    seconds: float


def format_of(path: str | os.PathLike) -> str | None:
    """The format a path's suffix names (".tflite" litert, ".onnx", ".xml" openvino, a folder
    with saved_model.pb saved_model), or None."""
    path = os.fspath(path)
    for fmt, suffix in SUFFIXES.items():
        if suffix and path.lower().endswith(suffix):
            return fmt
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "saved_model"
    return None


def require(fmt: str) -> None:
    """ImportError naming the extra when a module that format `fmt` needs is missing."""
    for module in PACKAGES[fmt]:
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"format {fmt!r} needs the Python package {module!r}: {EXTRA}")


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
    `path` in `format`, checked in its runtime (see the module's docstring).

    format: "litert", "onnx", "openvino" or "saved_model"; None takes it from path's suffix.
    quantize: None (float32), or what the format allows: "int8" (litert, onnx, openvino:
    post-training quantization calibrated on `calibration`), "float16" (litert, openvino: the
    weights in half precision), "bf16" (openvino: bfloat16 inference, recorded for the runtime).
    calibration: a folder of images (searched recursively); int8 needs it, and a float export
    given one is checked on its images too. data: a class-per-folder tree (the classes in the
    model's output order) to measure accuracy on. preprocessing: the `keras_zoo.Preprocessing`
    that prepares images for the model (default: the model id's, when `model.name` is one).
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
    pre, in_model = _preprocessing(model, preprocessing)
    if len(model.outputs) != 1:
        raise ValueError(
            f"model: export takes a model with one output; {model.name!r} has "
            f"{len(model.outputs)} (features_only models: export one stage)"
        )
    outputs = int(np.prod(model.outputs[0].shape[1:]))
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
    folder = _labelled(data, class_names) if data is not None else None
    parent = os.path.dirname(path)
    made = _writable(parent, path)
    say = print if verbose else (lambda *a, **k: None)
    try:
        with tempfile.TemporaryDirectory(prefix=f".{os.path.basename(path)}.", dir=parent) as tmp:
            target = os.path.join(tmp, os.path.basename(path))
            folded = _fold(model)
            prepare = _Images(pre, in_model, input_shape)
            folded(prepare.random(1), training=False)  # tf2onnx needs a model that was called
            calib = prepare.files(calibration_files[:MAX_CALIBRATION]) if calibration else None
            say(
                f"exporting {model.name} to {fmt}"
                + (f" ({quantize})" if quantize else "")
                + f": {os.path.basename(path)}"
            )
            _convert(folded, target, fmt, quantize, calib, tmp, layout)
            runtime = load_exported(target, format=fmt, precision=quantize, layout=layout)
            check = _check(model, runtime, prepare, calib, folder, tolerance, quantize)
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
                "check": check,
            }
            with open(target + RECORD_SUFFIX, "w") as f:
                json.dump(record, f, indent=2)
            files = _move_into_place(tmp, target, path)
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
        check["accuracy"],
        time.perf_counter() - start,
    )
    say(_summary(result, tolerance))
    return result


def _summary(result: ExportResult, tolerance: float) -> str:
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
        parts.append(f"top-1 agreement with the float model {result.agreement:.1%}")
    else:
        parts.append(f"within {tolerance:g}")
    if result.accuracy:
        acc = result.accuracy
        parts.append(
            f"accuracy {acc['export']:.4f} (Keras {acc['keras']:.4f}) on {acc['images']} images"
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
                f"{', '.join(s for s in SUFFIXES.values() if s)}; got path "
                f"{path!r}"
            )
        return fmt
    checks.check_choice(fmt, "format", FORMATS)
    suffix = SUFFIXES[fmt]
    if suffix and not path.lower().endswith(suffix):
        raise ValueError(f"path {path!r}: a {fmt} export is written as a {suffix} file")
    if not suffix and format_of(path) not in (None, "saved_model"):
        raise ValueError(
            f"path {path!r}: a saved_model export is a folder; give a path without a file suffix"
        )
    return fmt


def _check_quantize(fmt: str, quantize, calibration) -> str | None:
    if quantize is not None:
        allowed = QUANTIZATIONS[fmt]
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
    if layout not in LAYOUTS[fmt]:
        allowed = [f for f, layouts in LAYOUTS.items() if layout in layouts]
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


def _preprocessing(model, pre):
    """(Preprocessing, whether the model normalises its own input)."""
    from keras_zoo.layers import Normalize
    from keras_zoo.registry import list_models, model_info
    from keras_zoo.weight_sets import Preprocessing

    if pre is None:
        pre = (
            model_info(model.name).preprocessing
            if model.name in list_models()
            else (Preprocessing())
        )
    if not isinstance(pre, Preprocessing):
        raise TypeError(
            f"preprocessing must be a keras_zoo.Preprocessing, got {type(pre).__name__}"
        )
    return pre, any(isinstance(layer, Normalize) for layer in model.layers)


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


def _labelled(data, class_names):
    from keras_zoo.data import scan_folder

    folder = scan_folder(data, argument="data")
    if class_names is not None and tuple(folder.class_names) != tuple(class_names):
        raise ValueError(
            f"data {os.fspath(data)!r} has the classes {list(folder.class_names)} "
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
# conversion


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
            f"{model.name}: exported without folding its batch norms ({_first_line(err)})",
            stacklevel=3,
        )
        return model


def _convert(model, target: str, fmt: str, quantize, calib, tmp: str, layout: str) -> None:
    """Writes `model` to `target`; ExportError naming the format and the converter's words."""
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's use of np.object
            if fmt == "saved_model":
                model.export(target, format="tf_saved_model", verbose=False)
            elif fmt == "litert":
                _to_litert(model, target, quantize, calib)
            elif fmt == "onnx":
                _to_onnx(model, target, quantize, calib, tmp, layout)
            else:
                _to_openvino(model, target, quantize, calib, tmp, layout)
    except ExportError:
        raise
    except (ValueError, TypeError, RuntimeError, NotImplementedError, ImportError) as err:
        raise ExportError(f"{fmt} export of {model.name!r} failed: {_first_line(err)}") from err


def _first_line(err: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip() or type(err).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines = [
            f"{lines[1].strip()} ({lines[0].removeprefix('Exception encountered when ')}".rstrip(
                "."
            )
            + ")"
        ] + lines[2:]
    return lines[0][:500] + (f" ({len(lines) - 1} more lines)" if len(lines) > 1 else "")


def _to_litert(model, target: str, quantize, calib) -> None:
    import tensorflow as tf

    options: dict[str, Any] = {}
    if quantize == "float16":
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    elif quantize == "int8":

        def representative():
            for image in calib:
                yield [image[None]]

        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative,
        }
    model.export(target, format="litert", verbose=False, **options)


def _to_onnx(model, target: str, quantize, calib, tmp: str, layout: str) -> None:
    from keras_zoo import onnx_graph

    path = target if quantize is None else os.path.join(tmp, "float.onnx")
    with _tf2onnx_errors() as errors:
        onnx_graph.for_tf2onnx(model, _input_shape(model)).export(
            path, format="onnx", verbose=False
        )
    unsupported = [m for m in errors if "is not supported" in m]
    if unsupported:
        layers = list(dict.fromkeys(_layer_of(m, model) for m in unsupported))
        kinds = sorted(
            {
                type(model.get_layer(n)).__name__
                for n in layers
                if n in {layer.name for layer in model.layers}
            }
        )
        shown = ", ".join(layers[:4]) + (f" and {len(layers) - 4} more" if len(layers) > 4 else "")
        raise ExportError(
            f"onnx export of {model.name!r} failed: tf2onnx cannot convert "
            f"{len(layers)} layer(s) ({', '.join(kinds) or 'unknown kind'}): "
            f"{shown}"
        )
    onnx_graph.rewrite(path)
    if layout == "nchw":
        onnx_graph.nchw_input(path)
        calib = None if calib is None else calib.transpose(0, 3, 1, 2)
    if quantize is not None:
        _quantize_onnx(path, target, calib, tmp)


@contextlib.contextmanager
def _tf2onnx_errors():
    """The messages tf2onnx logs as errors during the block; its warnings (optimizer
    passes it skips) are not shown."""
    import logging

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("tf2onnx")
    handler = Collect(logging.ERROR)
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


def _layer_of(message: str, model) -> str:
    """The name of the model's layer a tf2onnx message about a TensorFlow op names, or the
    op's name."""
    op = message.split("[", 1)[-1].split(":", 1)[0]
    names = {layer.name for layer in model.layers}
    parts = [p.removesuffix("_1") for p in op.split("/")]
    return next((p for p in parts if p in names), op)


def _quantize_onnx(float_path: str, target: str, calib, tmp: str) -> None:
    """ONNX Runtime's static int8 quantization (QDQ, weights per channel), calibrated on
    `calib` one image at a time."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = ort.InferenceSession(float_path, providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.images = iter(calib)

        def get_next(self):
            image = next(self.images, None)
            return None if image is None else {name: image[None]}

    prepared = os.path.join(tmp, "prepared.onnx")
    quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
    quantize_static(
        prepared,
        target,
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


def _to_openvino(model, target: str, quantize, calib, tmp: str, layout: str) -> None:
    """OpenVINO IR converted from the model's ONNX export (`_to_onnx`; int8 included, as
    OpenVINO runs ONNX Runtime's QDQ graph in int8): the IR OpenVINO converts from
    TensorFlow's NHWC graph keeps transposes around every channel shuffle, where the ONNX
    graph of keras_zoo.onnx_graph has none."""
    import openvino as ov

    onnx_path = os.path.join(tmp, "openvino_source.onnx")
    _to_onnx(model, onnx_path, "int8" if quantize == "int8" else None, calib, tmp, layout)
    ov.save_model(ov.convert_model(onnx_path), target, compress_to_fp16=quantize == "float16")


def _move_into_place(tmp: str, target: str, path: str) -> tuple[str, ...]:
    """Moves the export's files from `tmp` to beside `path` (the record last), each with one
    rename; returns the paths written."""
    names = [os.path.basename(target)]
    if target.endswith(".xml"):
        names.insert(0, os.path.basename(target)[:-4] + ".bin")  # the weights before the graph
    names.append(os.path.basename(target) + RECORD_SUFFIX)
    written = []
    for name in names:
        src, dst = os.path.join(tmp, name), os.path.join(os.path.dirname(path), name)
        if os.path.isdir(src) and os.path.isdir(dst):  # a SavedModel folder replaced
            old = os.path.join(tmp, "previous")
            os.rename(dst, old)
        os.replace(src, dst)
        written.append(dst)
    return tuple(written)


# ---------------------------------------------------------------------------------------------
# images and the check


class _Images:
    """Images prepared for the model: random pixels, or files resized, cropped and (unless the
    model normalises its own input) normalised as `pre` says."""

    def __init__(self, pre, in_model: bool, input_shape):
        from keras_zoo.preprocess import normalize_layer, resize_layer

        self.size = input_shape[0]
        self.resize = resize_layer(pre, self.size)
        self.normalize = None if in_model else normalize_layer(pre)
        self.input_shape = input_shape

    def pixels(self, pixels: np.ndarray) -> np.ndarray:
        x = np.asarray(pixels, np.float32)
        return x if self.normalize is None else np.asarray(self.normalize(x), np.float32)

    def random(self, n: int, seed: int = 0) -> np.ndarray:
        """n random pictures: smooth colour fields (a 5x5 grid of random colours, resized)
        with fine noise. Unlike pixel noise, whose images all look alike to a network that
        averages over space, they differ from one another as photographs do."""
        import keras

        rng = np.random.default_rng(seed)
        height, width, channels = self.input_shape
        coarse = rng.uniform(0, 255, (n, 5, 5, channels)).astype(np.float32)
        smooth = np.asarray(keras.ops.image.resize(coarse, (height, width)), np.float32)
        noise = rng.normal(0, 16, (n, height, width, channels)).astype(np.float32)
        return self.pixels(np.clip(smooth + noise, 0, 255))

    def files(self, files: Sequence[str]) -> np.ndarray:
        from keras_zoo.data import read_image

        if self.input_shape[-1] != 3:
            raise ValueError(
                f"images: the model takes {self.input_shape[-1]}-channel inputs; "
                "image folders give RGB"
            )
        resized = [np.asarray(self.resize(read_image(f)), np.float32) for f in files]
        return self.pixels(np.stack(resized))


def outputs_vary(outputs: np.ndarray, fraction: float) -> bool:
    """Whether a batch's outputs differ from image to image by more than `fraction` of their
    largest magnitude somewhere: an output check on outputs that do not is blind."""
    flat = np.asarray(outputs).reshape(len(outputs), -1)
    return bool(np.ptp(flat, axis=0).max() > fraction * np.abs(flat).max())


def _transposed(run: Callable, x: np.ndarray) -> np.ndarray:
    return run(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _batches(run: Callable, x: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([np.asarray(run(x[i : i + batch])) for i in range(0, len(x), batch)])


def _check(model, runtime, prepare: _Images, calib, folder, tolerance: float, quantize) -> dict:
    def keras_out(x):
        return np.asarray(model(x, training=False))

    if runtime.layout == "nchw":  # the check's batches are NHWC, as the Keras model's
        runtime = functools.partial(_transposed, runtime)

    x = prepare.random(CHECK_IMAGES)
    want, got = _batches(keras_out, x), _batches(runtime, x)
    random = {"images": len(x), "max_relative_error": relative_error(got, want)}
    images = None
    agree = [want.reshape(len(x), -1).argmax(-1) == got.reshape(len(x), -1).argmax(-1)]
    if calib is not None:
        want_i, got_i = _batches(keras_out, calib), _batches(runtime, calib)
        images = {"images": len(calib), "max_relative_error": relative_error(got_i, want_i)}
        agree = [
            want_i.reshape(len(calib), -1).argmax(-1) == got_i.reshape(len(calib), -1).argmax(-1)
        ]
    accuracy = None
    if folder is not None:
        labels = folder.labels
        k_batches: list[np.ndarray] = []
        e_batches: list[np.ndarray] = []
        for i in range(0, len(folder.files), 32):
            batch = prepare.files(folder.files[i : i + 32])
            k_batches.append(keras_out(batch).argmax(-1))
            e_batches.append(np.asarray(runtime(batch)).argmax(-1))
        k_pred, e_pred = np.concatenate(k_batches), np.concatenate(e_batches)
        accuracy = {
            "keras": float(np.mean(k_pred == labels)),
            "export": float(np.mean(e_pred == labels)),
            "images": int(len(labels)),
        }
        agree.append(k_pred == e_pred)
    check = {
        "tolerance": None if quantize else tolerance,
        "random": random,
        "images": images,
        "agreement": float(np.mean(np.concatenate(agree))),
        "accuracy": accuracy,
    }
    if not outputs_vary(want, 1e-6):
        warnings.warn(
            f"{model.name}: the outputs are the same for every random image, so the "
            "check cannot tell a faithful export from a wrong one (untrained "
            "weights?)",
            stacklevel=3,
        )
    errors = [random["max_relative_error"]] + ([images["max_relative_error"]] if images else [])
    if quantize is None and not max(errors) <= tolerance:
        raise ExportError(
            f"the export disagrees with the Keras model: max relative error "
            f"{max(errors):.2e} > tolerance {tolerance:g}; nothing was written"
        )
    if quantize is not None and not all(np.isfinite(errors)):
        raise ExportError("the quantized export gives non-finite outputs; nothing was written")
    return check


# ---------------------------------------------------------------------------------------------
# the runtimes


class ExportedModel:
    """An exported model loaded in its runtime: call it on a float32 batch prepared as the
    record says (`prepare` turns RGB pixels in [0, 255] into such a batch), NHWC or, for an
    export with layout="nchw", NCHW.

    Attributes: path, format, precision ("f32", "int8", "float16" or "bf16"), input_shape
    (height, width, channels), layout ("nhwc" or "nchw"),
    preprocessing (a `keras_zoo.Preprocessing`), class_names (or None) and record (the
    export's check, as written beside the file; {} for a file exported elsewhere).
    """

    def __init__(
        self, path: str, fmt: str, run: Callable, record: dict, precision: str, layout: str = "nhwc"
    ):
        from keras_zoo.weight_sets import Preprocessing

        self.path, self.format, self._run, self.record = path, fmt, run, record
        self.precision = precision
        self.input_shape = tuple(record["input_shape"]) if record else None
        self.layout = layout
        pre = record.get("preprocessing") if record else None
        self.preprocessing: Preprocessing | None = None
        if pre:
            fields: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in pre.items()
            }
            self.preprocessing = Preprocessing(**fields)
        names = record.get("class_names") if record else None
        self.class_names = tuple(names) if names else None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(images, dtype=np.float32))

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) RGB in [0, 255], any size -> the batch this model takes (resized,
        cropped, normalised as the record says, in its layout)."""
        if self.preprocessing is None:
            raise ValueError(
                f"{self.path}: no export record beside it to say how images are prepared"
            )
        images = _Images(
            self.preprocessing, self.record.get("normalized_in_model", False), self.input_shape
        )
        resized = np.stack([np.asarray(images.resize(p), np.float32) for p in pixels])
        batch = images.pixels(resized)
        return batch if self.layout == "nhwc" else np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def __repr__(self) -> str:
        layout = ", nchw" if self.layout == "nchw" else ""
        return f"ExportedModel({self.path!r}, format={self.format!r}, {self.precision}{layout})"


def load_exported(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    precision: str | None = None,
    layout: str | None = None,
    threads: int | None = None,
) -> ExportedModel:
    """The export at `path` loaded in its runtime (LiteRT's interpreter with XNNPACK, ONNX
    Runtime, OpenVINO on the CPU, TensorFlow for a SavedModel), callable on batches in the
    export's layout (NHWC unless exported with layout="nchw").

    format: taken from the suffix when None. precision: OpenVINO's inference precision ("f32",
    "bf16"; default: the record's, f32 otherwise). layout: the axis order of the input, "nhwc" or
    "nchw" (default: the record's, nhwc otherwise). threads: the runtime's threads (default:
    every core).
    """
    path = os.path.abspath(os.fspath(path))
    fmt = format or format_of(path)
    if fmt is None:
        raise ValueError(
            f"path {path!r}: not an export (expected .tflite, .onnx, .xml or a SavedModel folder)"
        )
    checks.check_choice(fmt, "format", FORMATS)
    if not os.path.exists(path):
        raise ValueError(f"path {path!r}: no such file")
    require(fmt)
    record = {}
    if os.path.isfile(path + RECORD_SUFFIX):
        with open(path + RECORD_SUFFIX) as f:
            record = json.load(f)
    precision = precision or record.get("precision", "f32")
    layout = checks.check_choice(layout or record.get("layout", "nhwc"), "layout", LAYOUT_CHOICES)
    threads = threads or os.cpu_count() or 1
    try:
        run = _RUNNERS[fmt](path, threads, precision)
    except Exception as err:  # each runtime has its own exception types for a bad file
        raise ValueError(f"path {path!r}: {fmt} cannot load it: {_first_line(err)}") from None
    return ExportedModel(path, fmt, run, record, precision, layout)


def _litert(path: str, threads: int, precision: str) -> Callable:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]["index"]
    state = {"shape": None}

    def run(x):
        if state["shape"] != x.shape:
            interpreter.resize_tensor_input(inp["index"], x.shape)
            interpreter.allocate_tensors()
            state["shape"] = x.shape
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out).copy()

    return run


def _onnx(path: str, threads: int, precision: str) -> Callable:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _openvino(path: str, threads: int, precision: str) -> Callable:
    import openvino as ov

    hint = {"f32": "f32", "bf16": "bf16"}.get(precision, "f32")
    compiled = ov.Core().compile_model(
        path,
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": hint,
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        },
    )
    request = compiled.create_infer_request()

    def run(x):
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()

    return run


def _saved_model(path: str, threads: int, precision: str) -> Callable:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return lambda x: loaded.serve(x).numpy()


_RUNNERS = {"litert": _litert, "onnx": _onnx, "openvino": _openvino, "saved_model": _saved_model}
