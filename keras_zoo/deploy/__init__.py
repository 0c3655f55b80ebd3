"""Exports that run on the runtimes people deploy with, each checked in its runtime.

`export(model, path)` writes a Keras model as a LiteRT flatbuffer (.tflite), an ONNX graph
(.onnx), an OpenVINO IR (.xml beside its .bin) or a TensorFlow SavedModel (a folder):

1. every batch norm is folded into the convolution before it (`keras_zoo.fold_batchnorm`);
2. the file is written into a hidden folder beside `path`;
3. it is loaded in its runtime and run on random images (and on real ones when a folder is
   given) beside the Keras model: a float export must agree within `tolerance` (1e-4 relative,
   max |runtime - keras| / max |keras|); a quantized one reports how often it agrees with the
   float model (`keras_zoo.tasks`: a classifier's top-1 class) and, given labelled data, both
   models' scores (a classifier's accuracy);
4. only then the file moves to `path`, with the check's record beside it (`path` + ".json"),
   which also holds the input size, the preprocessing and the class names, so that
   `load_exported(path)` runs it on images without the Keras model.

A failed check, a failed conversion or bad arguments leave nothing at `path`. The runtimes
come with the `export` extra: `pip install -e ".[export]"` in the keras_zoo clone.

Where things are: `formats.py` holds one `Format` row per format (suffix, quantizations,
layouts, packages, converter, runner); `converters.py` writes each format and `runners.py`
opens it in its runtime; `exporting.py` is `export` (the argument checks, the conversion, the
record, the atomic move); `check.py` the check in the runtime; `exported.py` is
`load_exported`; `images.py` the images both prepare.

>>> import os, tempfile, keras_zoo
>>> import numpy as np
>>> model = keras_zoo.build("mobilenet_v3_small", input_shape=(64, 64, 3), classes=10)
>>> result = keras_zoo.export(model, os.path.join(tempfile.mkdtemp(), "m.tflite"), verbose=False)
>>> result.max_error < 1e-4, os.path.basename(result.record)
(True, 'm.tflite.json')
>>> runtime = keras_zoo.load_exported(result.path)
>>> runtime.input_shape, runtime(np.zeros((2, 64, 64, 3), "float32")).shape
((64, 64, 3), (2, 10))
"""

from __future__ import annotations

from keras_zoo.deploy.check import TOLERANCE, outputs_vary, relative_error
from keras_zoo.deploy.errors import ExportError
from keras_zoo.deploy.exported import ExportedModel, load_exported
from keras_zoo.deploy.exporting import ExportResult, export
from keras_zoo.deploy.formats import FORMATS, Format, format_of, require

__all__ = [
    "FORMATS",
    "TOLERANCE",
    "ExportError",
    "ExportResult",
    "ExportedModel",
    "Format",
    "export",
    "format_of",
    "load_exported",
    "outputs_vary",
    "relative_error",
    "require",
]
