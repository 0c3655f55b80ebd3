"""keras_zoo: the classic image-classification networks for Keras 3.

>>> import keras_zoo
>>> model = keras_zoo.build("resnet50", include_top=False, input_shape=(None, None, 3))
>>> "resnext50_32x4d" in keras_zoo.list_models("resnext*")
True
"""

from keras_zoo import models as _models  # noqa: F401  (registers every family)
from keras_zoo._version import __version__  # noqa: F401
from keras_zoo.api import build
from keras_zoo.deploy import ExportedModel, export, load_exported
from keras_zoo.description import ModelDescription, describe
from keras_zoo.features import StageOutput, feature_info, stage_outputs
from keras_zoo.fold import fold_batchnorm
from keras_zoo.preprocess import decode_predictions, preprocessing
from keras_zoo.profile import count_macs
from keras_zoo.registry import ModelInfo, list_models, list_weights, model_info
from keras_zoo.weight_sets import Preprocessing, WeightSet

_SUBMODULES = ("callbacks", "data", "viz")


def __getattr__(name):
    """keras_zoo.viz, keras_zoo.callbacks and keras_zoo.data, imported on first use."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"keras_zoo.{name}")
    raise AttributeError(f"module 'keras_zoo' has no attribute {name!r}")


__all__ = [
    "ModelInfo",
    "StageOutput",
    "build",
    "count_macs",
    "decode_predictions",
    "describe",
    "ModelDescription",
    "ExportedModel",
    "export",
    "load_exported",
    "Preprocessing",
    "WeightSet",
    "feature_info",
    "fold_batchnorm",
    "list_models",
    "list_weights",
    "model_info",
    "preprocessing",
    "stage_outputs",
]
