"""The export formats, one `Format` row each: what the file is called, what it can be asked
for, what it needs, and the functions that write it (deploy/converters.py) and run it
(deploy/runners.py). Adding a format is one row here, its converter and its runner; the
checks of `export`'s arguments, the check in the runtime and the atomic move read the rows.

>>> FORMATS["onnx"].suffix, FORMATS["onnx"].quantizations, FORMATS["onnx"].layouts
('.onnx', ('int8',), ('nhwc', 'nchw'))
>>> format_of("model.tflite"), format_of("model.xml"), format_of("model.bin")
('litert', 'openvino', None)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from keras_zoo.deploy import converters, runners

if TYPE_CHECKING:
    import keras

# (model, target, quantize, calib, tmp, layout): see deploy/converters.py
Converter = Callable[
    ["keras.Model", str, "str | None", "np.ndarray | None", str, str],
    None,
]
# (path, threads, precision) -> the function that runs a batch: see deploy/runners.py
Runner = Callable[[str, int, str], runners.Run]

# the axis orders of the image input a format can be given ("nchw": torch's, for a pipeline
# that feeds it torch-style batches)
LAYOUT_CHOICES = ("nhwc", "nchw")
EXTRA = 'pip install -e ".[export]" in the keras_zoo clone'
RECORD_SUFFIX = ".json"  # the export's record: its path + this


@dataclasses.dataclass(frozen=True)
class Format:
    """One export format.

    name: what `export(..., format=...)` takes. title: the file's name in its runtime's words
    ("SavedModel"), for messages. suffix: the file's (".tflite"), "" for a folder.
    quantizations: what `quantize` may be besides None. layouts: the input axis orders it can
    be given, from LAYOUT_CHOICES. packages: the Python modules it needs beyond TensorFlow and
    Keras. convert: writes a Keras model as such a file. run: opens the file in its runtime.
    companions: the suffixes of files written beside it with the same stem (OpenVINO's .bin
    weights beside the .xml graph), moved into place before it. marker: for a folder, the file
    inside that says it is one.
    """

    name: str
    title: str
    suffix: str
    quantizations: tuple[str, ...]
    layouts: tuple[str, ...]
    packages: tuple[str, ...]
    convert: Converter
    run: Runner
    companions: tuple[str, ...] = ()
    marker: str | None = None


_ROWS = (
    Format(
        "litert",
        "LiteRT",
        ".tflite",
        quantizations=("int8", "float16"),
        layouts=("nhwc",),
        packages=("ai_edge_litert",),
        convert=converters.to_litert,
        run=runners.open_litert,
    ),
    Format(
        "onnx",
        "ONNX",
        ".onnx",
        quantizations=("int8",),
        layouts=LAYOUT_CHOICES,
        packages=("tf2onnx", "onnx", "onnxruntime"),
        convert=converters.to_onnx,
        run=runners.open_onnx,
    ),
    Format(
        "openvino",
        "OpenVINO",
        ".xml",
        quantizations=("int8", "float16", "bf16"),
        layouts=LAYOUT_CHOICES,
        packages=("openvino", "tf2onnx", "onnx"),  # converted from the ONNX export
        convert=converters.to_openvino,
        run=runners.open_openvino,
        companions=(".bin",),
    ),
    Format(
        "saved_model",
        "SavedModel",
        "",
        quantizations=(),
        layouts=("nhwc",),
        packages=(),
        convert=converters.to_saved_model,
        run=runners.open_saved_model,
        marker="saved_model.pb",
    ),
)
# name -> row, in the order of the rows (the order error messages list them in)
FORMATS: Mapping[str, Format] = types.MappingProxyType({row.name: row for row in _ROWS})


def format_of(path: str | os.PathLike) -> str | None:
    """The format a path's suffix names (".tflite" litert, ".onnx", ".xml" openvino, a folder
    with saved_model.pb saved_model), or None."""
    path = os.fspath(path)
    for row in FORMATS.values():
        if row.suffix and path.lower().endswith(row.suffix):
            return row.name
    for row in FORMATS.values():
        if row.marker and os.path.isfile(os.path.join(path, row.marker)):
            return row.name
    return None


def require(fmt: str) -> None:
    """ImportError naming the extra when a module that format `fmt` needs is missing."""
    for module in FORMATS[fmt].packages:
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"format {fmt!r} needs the Python package {module!r}: {EXTRA}")
