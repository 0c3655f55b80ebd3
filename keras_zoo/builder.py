"""The input, head and checks every family shares: a family supplies only its body and head.

A family's public function takes its own keywords and `**kwargs`, which it hands to
`build_model` (the keras.applications keywords, checked here) together with two functions of
tensors:

- `features(inputs) -> feature_map`: the body, which marks its feature outputs with
  `keras_zoo.features.FeatureOutput` layers: a CNN its stage outputs (`StageOutput`, strides
  4, 8, 16, 32; PFLD's stop at 16), a transformer each block's tokens on their grid;
- `head(pooled, classes) -> logits`: the classifier on the globally average-pooled features
  (or a dict of named outputs: PFLD's landmarks and, for training, head-pose angles).

`features_only=True` returns the marked outputs that `out_indices` picks (`feature_info`'s
order), tokens as the maps of their patch tokens (`TokensToMap`, named after the last part of
the block's name: `encoder_layer_N_map`).

A family whose body is not a feature map (a Vision Transformer's tokens; PFLD's multi-scale
fusion, already a vector) passes `pools`, its own pooling functions by the `pooling` name that
picks them, the first being what the top pools with; the CNNs' default is a global average
("avg", also the top's) and max ("max").

Without input_shape and input_tensor the input is `default_input_size` (height, width) with 3
channels: `keras_zoo.build` passes the input size of the weights' preprocessing, else the id's
(`ModelInfo.input_size`); a family function called on its own gets DEFAULT_SIZE.

Keras is imported by the functions that build, not with the module: the registry reads
`SHARED_KEYWORDS` without TensorFlow.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from keras_zoo import checks

if TYPE_CHECKING:
    import keras

    from keras_zoo.features import FeatureInfo

DEFAULT_SIZE = 224
MIN_SIZE = checks.MIN_IMAGE_SIZE
N_STAGES = 4


def _resolve_input(input_tensor, input_shape, default_input_size: tuple[int, int]):
    import keras

    checks.check_input_tensor(input_tensor)
    if input_tensor is None:
        shape = (*default_input_size, 3) if input_shape is None else input_shape
        return keras.Input(shape=_check_shape(shape))
    shape = _check_shape(tuple(input_tensor.shape[1:]), arg="input_tensor shape")
    if input_shape is not None and tuple(input_shape) != shape:
        raise ValueError(
            f"input_shape {tuple(input_shape)} disagrees with input_tensor's shape {shape}; "
            "pass one of them"
        )
    return input_tensor


def _check_shape(shape, arg="input_shape"):
    try:
        return checks.check_input_shape(shape, min_size=MIN_SIZE, arg=arg)
    except ValueError as err:
        looks_channels_first = (
            isinstance(shape, (tuple, list))
            and len(shape) == 3
            and shape[0] in (1, 3, 4)
            and isinstance(shape[-1], int)
            and shape[-1] > 4
        )
        if looks_channels_first:
            raise ValueError(
                f"{err}. It looks channels-first; keras_zoo models are channels-last: "
                f"use {(shape[1], shape[2], shape[0])}"
            ) from None
        raise


def build_model(
    features: Callable[[Any], Any],
    head: Callable[[Any, int], Any],
    *,
    name: str,
    include_top: bool = True,
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    features_only: bool = False,
    out_indices: Any = None,
    normalization: keras.layers.Layer | None = None,
    default_input_size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE),
    pools: Mapping[str, Callable[[Any], Any]] | None = None,
) -> keras.Model:
    """Checks the shared keywords and builds the Functional model: the architecture only
    (keras_zoo.build loads weights into it). `normalization`, when given, is applied to the
    input before the body (build's include_preprocessing); `default_input_size` is the
    (height, width) of an input given by neither input_shape nor input_tensor. `pools` are a
    family's own pooling functions (see the module's docstring)."""
    import keras

    from keras_zoo.features import feature_info

    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    checks.check_bool(include_top, "include_top")
    checks.check_bool(features_only, "features_only")
    own_pools = pools is not None
    pools = dict(_CNN_POOLS if pools is None else pools)
    top_pool = next(iter(pools))
    checks.check_choice(pooling, "pooling", (None, *pools))
    checks.check_positive_int(classes, "classes")
    checks.check_activation(classifier_activation)
    if out_indices is not None and not features_only:
        raise ValueError("out_indices applies only with features_only=True")
    if features_only:
        if pooling is not None:
            raise ValueError(
                "pooling does not apply with features_only=True (stage maps are returned)"
            )
    elif include_top and not own_pools and pooling == "max":
        raise ValueError(
            "pooling='max' applies only with include_top=False (the top average-pools)"
        )
    elif include_top and pooling not in (None, top_pool):
        raise ValueError(
            f"pooling={pooling!r} applies only with include_top=False "
            f"(the top pools with {top_pool!r})"
        )

    inputs = _resolve_input(input_tensor, input_shape, default_input_size)
    x = features(inputs if normalization is None else normalization(inputs))
    sources = keras.utils.get_source_inputs(inputs)
    model_inputs = sources[0] if len(sources) == 1 else sources

    if features_only:
        outputs = _feature_maps(feature_info(keras.Model(model_inputs, x)), out_indices, name)
    elif include_top:
        x = head(pools[top_pool](x), classes)
        if classifier_activation is not None:
            x = keras.layers.Activation(classifier_activation, name="predictions")(x)
        outputs = x
    elif pooling is not None:
        outputs = pools[pooling](x)
    else:
        outputs = x

    return keras.Model(model_inputs, outputs, name=name)


def _feature_maps(features: list[FeatureInfo], out_indices: Any, name: str) -> list[Any]:
    """The outputs of `features` that `out_indices` picks (default every one), tokens as the
    maps of their patch tokens; a CNN has its stages (four for most), a transformer a feature
    per block."""
    from keras_zoo.layers import TokensToMap

    tokens = any(feature.grid is not None for feature in features)
    # most CNNs have four stages, PFLD three (strides 4, 8, 16)
    if not tokens and not 1 <= len(features) <= N_STAGES:  # a family bug, not a user error
        raise RuntimeError(f"{name}: expected 1 to {N_STAGES} stage outputs, found {len(features)}")
    out_indices = checks.check_out_indices(
        tuple(range(len(features))) if out_indices is None else out_indices,
        len(features),
        kind="block" if tokens else "stage",
    )
    outputs = []
    for feature in (features[i] for i in out_indices):
        if feature.grid is None:
            outputs.append(feature.output)
        else:
            short = feature.name.rpartition(".")[2]  # encoder.layers.encoder_layer_N
            to_map = TokensToMap(feature.grid, feature.prefix_tokens, name=f"{short}_map")
            outputs.append(to_map(feature.output))
    return outputs


def _global_average(x: Any) -> Any:
    import keras

    return keras.layers.GlobalAveragePooling2D(name="avgpool")(x)


def _global_max(x: Any) -> Any:
    import keras

    return keras.layers.GlobalMaxPooling2D(name="global_maxpool")(x)


_CNN_POOLS: dict[str, Callable[[Any], Any]] = {"avg": _global_average, "max": _global_max}


# The keywords every family takes through build_model (a family passes them on as **kwargs).
# Every keyword build_model takes; normalization and default_input_size are build's own
# (include_preprocessing=True makes the first from the weights' statistics, the second comes
# from the weights' or the id's input size), pools a family's own, so users pass the others.
BUILD_MODEL_KEYWORDS = tuple(
    p.name for p in inspect.signature(build_model).parameters.values() if p.kind is p.KEYWORD_ONLY
)
INTERNAL_KEYWORDS = ("normalization", "default_input_size", "pools")
SHARED_KEYWORDS = tuple(k for k in BUILD_MODEL_KEYWORDS if k not in INTERNAL_KEYWORDS)
