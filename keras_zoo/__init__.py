"""keras_zoo: the classic image-classification networks for Keras 3.

>>> import keras_zoo
>>> model = keras_zoo.build("resnet50", include_top=False, input_shape=(None, None, 3))
>>> "resnext50_32x4d" in keras_zoo.list_models("resnext*")
True

The registry (`list_models`, `model_info`, `list_weights`) loads without Keras, so without
TensorFlow: `keras-zoo --help`, `list` and `info` start at once. The rest (`build`, `export`,
the submodules) is imported on first use, or at once where Keras is loaded already
(`register_keras_objects`), or as soon as Keras is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from keras_zoo import models as _models  # noqa: F401  (registers every family)
from keras_zoo._version import __version__  # noqa: F401
from keras_zoo.registry import ModelInfo, list_models, list_weights, model_info
from keras_zoo.weight_sets import Preprocessing, WeightSet

if TYPE_CHECKING:
    from keras_zoo.api import build
    from keras_zoo.deploy import ExportedModel, export, load_exported
    from keras_zoo.description import ModelDescription, describe
    from keras_zoo.features import StageOutput, feature_info, stage_outputs
    from keras_zoo.fold import fold_batchnorm
    from keras_zoo.preprocess import decode_predictions, preprocessing
    from keras_zoo.profile import count_macs

# The names that need Keras, by the module that defines them.
_LAZY = {
    "build": "api",
    "ExportedModel": "deploy",
    "export": "deploy",
    "load_exported": "deploy",
    "ModelDescription": "description",
    "describe": "description",
    "StageOutput": "features",
    "feature_info": "features",
    "stage_outputs": "features",
    "fold_batchnorm": "fold",
    "decode_predictions": "preprocess",
    "preprocessing": "preprocess",
    "count_macs": "profile",
}


def __getattr__(name: str) -> Any:
    """The names of `_LAZY` and the submodules (keras_zoo.viz, keras_zoo.training, ...),
    imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name.startswith("__"):  # a protocol's name (__wrapped__, __path__ ...), not a module
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


# The modules whose Keras objects (layers, activations, the described model) are registered on
# import: keras.models.load_model reads a saved keras_zoo model only once they are.
_KERAS_OBJECTS = ("blocks", "description", "features", "layers")


def register_keras_objects() -> None:
    """Imports what needs Keras, which registers keras_zoo's layers, activations and described
    model with Keras for `keras.models.load_model`, and the names that need Keras. Nobody
    needs to call it: `import keras_zoo` registers the Keras objects where Keras is loaded
    already, or as soon as Keras is imported (`_RegisterAfterKeras`), and `build` imports the
    rest.

    >>> import keras_zoo
    >>> keras_zoo.register_keras_objects()
    """
    for module in _KERAS_OBJECTS:
        importlib.import_module(f"{__name__}.{module}")
    for name in _LAZY:
        __getattr__(name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Runs `register_keras_objects` as soon as Keras has been imported, so that
    `import keras_zoo` followed by `import keras` and `keras.models.load_model` reads a saved
    keras_zoo model, whichever is imported first, while the command line's help (which imports
    neither) starts at once."""

    finding = False

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "keras" or self.finding:
            return None
        self.finding = True  # the spec of Keras, found as without this finder
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self.finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def run_then_register(module: Any) -> None:
            run(module)
            if self in sys.meta_path:  # (a spec may be found and not loaded: kept till then)
                sys.meta_path.remove(self)
            for name in _KERAS_OBJECTS:  # (not the rest: Keras may come in mid-import of it)
                importlib.import_module(f"{__name__}.{name}")

        spec.loader.exec_module = run_then_register  # type: ignore[method-assign]
        return spec


if "keras" in sys.modules:  # nothing to save at start-up: all of it, as before Keras was lazy
    register_keras_objects()
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())


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
    "register_keras_objects",
    "stage_outputs",
]
