"""Weights above construction: what `build(name, weights=...)` means, fetching published
checkpoints once, and loading them into a built architecture; `port` for keras_zoo's ids.
keras_zoo.port imports nothing from the zoo: the registry's answers (`identify`,
`model_for_checkpoint`) reach it from here as arguments.

`weights` is None, "imagenet" (the id's first weight set), a weight set's key
("torchvision:IMAGENET1K_V2", "timm:resnet50.a1_in1k", "megvii:ShuffleNetV1-1.0x-group3"),
a PyTorch checkpoint (.pth, .pt, .bin, .ckpt, .safetensors: its key layout is detected) or a
Keras weights file (.weights.h5, .h5).

Published checkpoints are downloaded once into Keras' cache folder ($KERAS_HOME, default
~/.keras) under keras_zoo/torch/ and checked against their published sha256 (or its prefix in
the file name). KERAS_ZOO_WEIGHTS_URL, when set, is a folder (a mirror, or a file:// folder)
holding the files under their cache names (`WeightSet.filename`), used in place of the
publishers' addresses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from keras_zoo import checks
from keras_zoo.builder import BUILD_MODEL_KEYWORDS
from keras_zoo.layers import PositionEmbedding
from keras_zoo.port import convert, loading
from keras_zoo.port.key_maps import convert_state_dict, detect_layout
from keras_zoo.port.mapping import weighted_layers
from keras_zoo.port.reader import read_checkpoint
from keras_zoo.port.tensors import adapt_input_conv, resample_position_embedding
from keras_zoo.registry import ModelInfo, list_models, model_info, weight_set_of
from keras_zoo.weight_sets import Preprocessing, WeightSet

URL_ENV = "KERAS_ZOO_WEIGHTS_URL"


def keras_home() -> str:
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cache_path(ws: WeightSet) -> str:
    """Where the checkpoint of `ws` is kept once fetched."""
    return os.path.join(keras_home(), "keras_zoo", "torch", ws.filename)


@dataclasses.dataclass(frozen=True)
class Weights:
    """What a `weights` argument resolved to: a Keras weights file, or a PyTorch checkpoint
    already read and converted to the model's names (`state`), and the weight set it came
    from, if any. `layout` is the checkpoint's key layout ("torchvision", "timm", "megvii"),
    "keras" for a Keras weights file, None for a checkpoint in no known layout."""

    spec: str
    path: str
    weight_set: WeightSet | None = None
    state: Mapping[str, np.ndarray] | None = None
    layout: str | None = "keras"

    @property
    def preprocessing(self) -> Preprocessing | None:
        return self.weight_set.preprocessing if self.weight_set else None


def check(info: ModelInfo, weights: Any) -> tuple[str, WeightSet | None] | None:
    """`weights` checked without fetching anything: None for None, else the spec as a string
    and the weight set it names (None for a weights file, which must exist)."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights must be None, 'imagenet', a weight set key such as "
            f"'torchvision:IMAGENET1K_V1' or a file path, got {weights!r}"
        )
    spec = os.fspath(weights)
    ws = weight_set_of(info, spec)
    if ws is None:
        checks.check_weights(spec)  # an existing file of a supported format
    return spec, ws


def resolve(
    info: ModelInfo, weights: Any, kwargs: dict[str, Any]
) -> tuple[Weights | None, dict[str, Any]]:
    """Finds (fetching if needed) and reads what `weights` names for model `info`; returns it
    and `kwargs` with the keywords the weights fix set. A keyword the weights were not trained
    with is refused before anything is fetched."""
    checked = check(info, weights)
    if checked is None:
        return None, kwargs
    spec, ws = checked
    if ws is not None:
        kwargs = _fix(spec, {**info.layout_config.get(ws.layout, {}), **ws.config}, kwargs)
    path = fetch(ws) if ws else spec
    if path.endswith(checks.KERAS_WEIGHT_SUFFIXES):
        return Weights(spec, path, ws), kwargs
    state = read_checkpoint(path)
    # keys in no known layout are matched by name as they are (the mismatch report then lists
    # what is missing and left over)
    layout = ws.layout if ws else detect_layout(state)
    if layout is not None:
        state = convert_state_dict(state, layout)
    if ws is None:
        kwargs = _fix(spec, info.layout_config.get(layout or "", {}), kwargs)
    return Weights(spec, path, ws, state, layout), kwargs


def _fix(spec: str, config: Mapping[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with `config` set; ValueError naming a keyword given another value."""
    out = dict(kwargs)
    for key, value in config.items():
        if key in out and out[key] != value:
            raise ValueError(
                f"weights={spec!r} fix {key}={value!r}; got {key}={out[key]!r} "
                f"(leave {key} out, or pass {key}={value!r})"
            )
        out[key] = value
    return out


def fetch(ws: WeightSet) -> str:
    """The cached checkpoint of `ws`, downloaded (and checked) on first use."""
    path = cache_path(ws)
    if os.path.isfile(path):
        return path
    if not ws.direct:
        raise ValueError(
            f"weights={ws.key!r}: {ws.source} publishes this checkpoint in a shared folder, "
            f"not at a file address: fetch the {ws.tag} checkpoint from {ws.url} and save it "
            f"as {path}"
        )
    base = os.environ.get(URL_ENV)
    url = base.rstrip("/") + "/" + ws.filename if base else ws.url
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        got = keras.utils.get_file(
            ws.filename,
            origin=url,
            cache_dir=keras_home(),
            cache_subdir=os.path.join("keras_zoo", "torch"),
        )
    except Exception as err:  # get_file raises a bare Exception for network failures
        raise ValueError(
            f"weights={ws.key!r}: could not download {url} ({err}). Without a network, fetch "
            f"that file elsewhere and save it as {path}"
        ) from None
    digest = convert.sha256_of(got)
    if ws.sha256 and not digest.startswith(ws.sha256):
        os.unlink(got)
        raise ValueError(
            f"{ws.filename} downloaded from {url} has sha256 {digest[:16]}..., not the "
            f"published {ws.sha256}; the file was deleted"
        )
    return got


def adapt_input_channels(model: keras.Model, state: Mapping[str, np.ndarray]) -> dict:
    """`state` with the first convolution's RGB weights adapted to the model's input channels
    as timm's adapt_input_conv does (summed for one channel, repeated and rescaled for more)."""
    state = dict(state)
    first = weighted_layers(model)[0]
    key = f"{first.name}.weight"
    channels = model.inputs[0].shape[-1]
    if (
        isinstance(first, keras.layers.Conv2D)
        and key in state
        and channels != 3
        and np.ndim(state[key]) == 4
        and state[key].shape[1] == 3
    ):
        state[key] = adapt_input_conv(state[key], channels)
    return state


def adapt_position_embeddings(model: keras.Model, state: Mapping[str, np.ndarray]) -> dict:
    """`state` with every position embedding trained on another grid of patches resampled to
    the model's grid (`resample_position_embedding`: bicubic, as timm's
    resample_abs_pos_embed), so that 224x224 weights load into a model built at 384x384."""
    state = dict(state)
    for layer in weighted_layers(model):
        if not isinstance(layer, PositionEmbedding) or layer.grid is None:
            continue
        value = state.get(layer.name)
        need = tuple(layer.pos_embedding.shape)
        if value is None or np.ndim(value) != 3 or np.shape(value)[2] != need[2]:
            continue  # the mapping reports what does not fit
        if np.shape(value)[1] != need[1]:
            state[layer.name] = resample_position_embedding(
                value, layer.grid, prefix_tokens=layer.prefix_tokens
            )
    return state


def identify(state_dict: Mapping[str, np.ndarray]) -> str | None:
    """The registered id whose architecture the state_dict fits, with the state_dict's own
    number of classes (a fine-tuned checkpoint is told by its backbone), if any: what a
    checkpoint that does not fit is said to look like."""
    return loading.identify(state_dict, (model_info(name) for name in list_models()))


def architecture(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The family's own keywords among build keywords (alpha, groups, bn_epsilon, ...)."""
    return {k: v for k, v in kwargs.items() if k not in BUILD_MODEL_KEYWORDS}


def load(model: keras.Model, info: ModelInfo, weights: Weights, kwargs: Mapping[str, Any]) -> None:
    """Loads resolved `weights` into `model`, built as `build(info.name, **kwargs)`. The
    classifier's tensors are left out without the top or with another number of classes;
    everything else must fit. The model is unchanged on error."""
    if weights.state is None:

        def full_model(classes: int) -> keras.Model:
            # the same architecture with a top of `classes`, for files of full models
            return info.builder(
                **architecture(kwargs),
                name=f"{model.name}_full",
                classes=classes,
                classifier_activation=None,
                input_shape=(None, None, model.inputs[0].shape[-1]),
            )

        loading.load_keras_file(model, weights.path, info.classifier, full_model)
        return
    loading.fit_checkpoint(
        model,
        adapt_position_embeddings(model, adapt_input_channels(model, weights.state)),
        source=os.path.basename(weights.path),
        optional_modules=info.classifier,
        identify=identify,
    )


def model_for_checkpoint(
    name: str, state: Mapping[str, np.ndarray], layout: str | None
) -> keras.Model:
    """`build(name)` without softmax, with as many classes as the checkpoint's classifier and
    the keywords its layout needs: what `port(name, ...)` ports into."""
    info = model_info(name)
    kwargs = dict(
        info.layout_config.get(layout or "", {}),
        name=name,
        input_shape=(None, None, 3),
        classifier_activation=None,
    )
    model = info.builder(**kwargs)
    top = model.get_layer(info.classifier[-1])
    rows = state.get(f"{top.name}.weight")
    if rows is not None and np.ndim(rows) == 2 and rows.shape[0] != top.units:
        model = info.builder(**kwargs, classes=int(rows.shape[0]))
    return model


def port(
    model: keras.Model | str,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    check: bool = False,
    reference: Callable[[str, int], Any] | None = None,
    layout: str | None = None,
    allow_unknown: bool = False,
) -> convert.PortResult:
    """Ports the PyTorch checkpoint `src` into a Keras weights file `dst` for `model`: a
    keras_zoo model id (built by `model_for_checkpoint` with the checkpoint's number of
    classes) or any Keras model whose weighted layers are named after the checkpoint's module
    paths. A checkpoint that does not fit names the registered id it looks like (`identify`).

    The rest is `keras_zoo.port.port`'s: the key layout detected unless `layout` is given, the
    numeric check against the PyTorch model (`check=True`, `reference(name, classes)`,
    torchvision's by default, a relative error above 2e-5 fails), `allow_unknown` for
    checkpoints that hold other objects beside their tensors, nothing written unless everything
    succeeded.

    Example (with a torchvision checkpoint in the working folder)::

        result = port("resnet50", "resnet50-0676ba61.pth", "resnet50.weights.h5")
        result.seconds, result.sha256
    """
    return convert.port(
        model,
        src,
        dst,
        check=check,
        reference=reference,
        layout=layout,
        allow_unknown=allow_unknown,
        model_for_checkpoint=model_for_checkpoint,
        identify=identify,
    )
