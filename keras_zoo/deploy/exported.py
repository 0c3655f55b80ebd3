"""An export loaded in its runtime with the record written beside it: `load_exported(path)`
returns an `ExportedModel` that prepares images as the record says and runs them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np

from keras_zoo import checks
from keras_zoo.deploy.errors import first_line
from keras_zoo.deploy.formats import FORMATS, LAYOUT_CHOICES, RECORD_SUFFIX, format_of, require
from keras_zoo.deploy.images import Images
from keras_zoo.description import ModelDescription, read_preprocessing


class ExportedModel:
    """An exported model loaded in its runtime: call it on a float32 batch prepared as the
    record says (`prepare` turns RGB pixels in [0, 255] into such a batch), NHWC or, for an
    export with layout="nchw", NCHW.

    Attributes: path, format, precision ("f32", "int8", "float16" or "bf16"), input_shape
    (height, width, channels), layout ("nhwc" or "nchw"),
    preprocessing (a `keras_zoo.Preprocessing`), class_names (or None), description (the
    exported model's `keras_zoo.ModelDescription`, or None; `keras_zoo.describe` reads it) and
    record (the export's check, as written beside the file; {} for a file exported elsewhere).
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
        self.preprocessing: Preprocessing | None = (
            read_preprocessing(pre, f"{path}{RECORD_SUFFIX}") if pre else None
        )
        names = record.get("class_names") if record else None
        self.class_names = tuple(names) if names else None
        described = record.get("description") if record else None
        self.description: ModelDescription | None = (
            ModelDescription.from_dict(described, f"{path}{RECORD_SUFFIX}") if described else None
        )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(images, dtype=np.float32))

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) RGB in [0, 255], any size -> the batch this model takes (resized,
        cropped, normalised as the record says, in its layout)."""
        if self.preprocessing is None or self.input_shape is None:  # (both come with a record)
            raise ValueError(
                f"{self.path}: no export record beside it to say how images are prepared"
            )
        images = Images(
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
        kinds = [row.suffix or f"a {row.title} folder" for row in FORMATS.values()]
        raise ValueError(
            f"path {path!r}: not an export (expected {', '.join(kinds[:-1])} or {kinds[-1]})"
        )
    checks.check_choice(fmt, "format", tuple(FORMATS))
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
        run = FORMATS[fmt].run(path, threads, precision)
    except Exception as err:  # each runtime has its own exception types for a bad file
        raise ValueError(f"path {path!r}: {fmt} cannot load it: {first_line(err)}") from None
    return ExportedModel(path, fmt, run, record, precision, layout)
