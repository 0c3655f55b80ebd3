"""keras_zoo: the classic image-classification networks for Keras 3.

>>> import keras_zoo
>>> model = keras_zoo.build("resnet50", include_top=False, input_shape=(None, None, 3))
>>> "resnext50_32x4d" in keras_zoo.list_models("resnext*")
True
"""

__version__ = "0.1.0"

from keras_zoo import models as _models  # noqa: E402,F401  (registers every family)
from keras_zoo.fold import fold_batchnorm  # noqa: E402
from keras_zoo.layers import StageOutput, stage_outputs  # noqa: E402
from keras_zoo.profile import count_macs  # noqa: E402
from keras_zoo.registry import ModelInfo, build, list_models, model_info  # noqa: E402

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
    "fold_batchnorm",
    "list_models",
    "model_info",
    "stage_outputs",
]
