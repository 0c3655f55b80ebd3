"""Each format's converter: a Keras model (its batch norms folded) written to `target`.

Every converter takes (model, target, quantize, calib, tmp, layout): `quantize` one of the
format's quantizations or None, `calib` the calibration images (an NHWC float32 batch, or
None), `tmp` a folder for intermediate files (removed afterwards) and `layout` the input's axis
order, "nhwc" or "nchw". The converters import their converter packages when called.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_zoo.deploy.errors import ExportError

if TYPE_CHECKING:
    import keras


def to_litert(
    model: keras.Model,
    target: str,
    quantize: str | None,
    calib: np.ndarray | None,
    tmp: str,
    layout: str,
) -> None:
    """A LiteRT flatbuffer by Keras' own exporter: float16 weights, or int8 post-training
    quantization calibrated on `calib`."""
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


def to_saved_model(
    model: keras.Model,
    target: str,
    quantize: str | None,
    calib: np.ndarray | None,
    tmp: str,
    layout: str,
) -> None:
    """A TensorFlow SavedModel folder by Keras' own exporter."""
    model.export(target, format="tf_saved_model", verbose=False)


def to_onnx(
    model: keras.Model,
    target: str,
    quantize: str | None,
    calib: np.ndarray | None,
    tmp: str,
    layout: str,
) -> None:
    """An ONNX graph by tf2onnx, on the model as `keras_zoo.onnx_graph` prepares it and
    rewritten by it afterwards (NCHW throughout; with layout "nchw", from the input on);
    int8: ONNX Runtime's static quantization of that graph. ExportError naming the layers
    tf2onnx cannot convert."""
    from keras_zoo import onnx_graph

    path = target if quantize is None else os.path.join(tmp, "float.onnx")
    with _tf2onnx_errors() as errors:
        onnx_graph.for_tf2onnx(model, tuple(model.input_shape[1:])).export(
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


def to_openvino(
    model: keras.Model,
    target: str,
    quantize: str | None,
    calib: np.ndarray | None,
    tmp: str,
    layout: str,
) -> None:
    """OpenVINO IR converted from the model's ONNX export (`to_onnx`; int8 included, as
    OpenVINO runs ONNX Runtime's QDQ graph in int8): the IR OpenVINO converts from
    TensorFlow's NHWC graph keeps transposes around every channel shuffle, where the ONNX
    graph of keras_zoo.onnx_graph has none. float16: the weights compressed to half
    precision; bf16 is the runner's inference precision, the file is float32."""
    import openvino as ov

    onnx_path = os.path.join(tmp, "openvino_source.onnx")
    to_onnx(model, onnx_path, "int8" if quantize == "int8" else None, calib, tmp, layout)
    ov.save_model(ov.convert_model(onnx_path), target, compress_to_fp16=quantize == "float16")


@contextlib.contextmanager
def _tf2onnx_errors() -> Iterator[list[str]]:
    """The messages tf2onnx logs as errors during the block; its warnings (optimizer
    passes it skips) are not shown."""
    import logging

    messages: list[str] = []

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
