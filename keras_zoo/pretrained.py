"""Weights above construction: what `build(name, weights=...)` means, fetching published
checkpoints once, and loading them into a built architecture; `port` for keras_zoo's ids.
keras_zoo.port imports nothing from the zoo: the registry's answers (`identify`,
`model_for_checkpoint`) reach it from here as arguments.

`weights` is None, "imagenet" (the id's first weight set), a weight set's key
("torchvision:IMAGENET1K_V2", "timm:resnet50.a1_in1k", "megvii:ShuffleNetV1-1.0x-group3"),
a PyTorch checkpoint (.pth, .pth.tar, .pt, .bin, .ckpt, .safetensors: its key layout is
detected) or a Keras weights file (.weights.h5, .h5).

Published checkpoints are downloaded once into Keras' cache folder ($KERAS_HOME, default
~/.keras) under keras_zoo/torch/ and checked against their published sha256 (or its prefix in
the file name; a git blob id for a checkpoint published in a git repository) before their
first use, files saved there by hand included (a record beside a
checked file spares hashing it again). KERAS_ZOO_WEIGHTS_URL, when set, is a folder (a mirror,
or a file:// folder) holding the files under their cache names (`WeightSet.filename`), used in
place of the publishers' addresses.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from keras_zoo import checks, compat
from keras_zoo.builder import BUILD_MODEL_KEYWORDS
from keras_zoo.files import atomic_file
from keras_zoo.layers import PositionEmbedding
from keras_zoo.port import convert, loading
from keras_zoo.port.key_maps import convert_state_dict, detect_layout
from keras_zoo.port.mapping import Plan, plan_state_dict, weighted_layers
from keras_zoo.port.reader import read_checkpoint
from keras_zoo.port.tensors import adapt_input_conv, resample_position_embedding
from keras_zoo.registry import ModelInfo, list_models, model_info, weight_set_of
from keras_zoo.weight_sets import Preprocessing, WeightSet

URL_ENV = "KERAS_ZOO_WEIGHTS_URL"
# beside a cached checkpoint: the size, time and hash it had when its hash was checked
VERIFIED_SUFFIX = ".sha256"


def keras_home() -> str:
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cache_path(ws: WeightSet) -> str:
    """Where the checkpoint of `ws` is kept once fetched."""
    return os.path.join(keras_home(), "keras_zoo", "torch", ws.filename)


@dataclasses.dataclass(frozen=True)
class Weights:
    """What a `weights` argument resolved to: a Keras weights file, or a PyTorch checkpoint
    already read and converted to the model's names (`state`), and the weight set it came
    from, if any. `layout` is the checkpoint's key layout ("torchvision", "timm", "megvii",
    "pfld_pytorch"), "keras" for a Keras weights file, None for a checkpoint in no known
    layout. `classes`: the outputs of the weights' classifier, None where they hold none."""

    spec: str
    path: str
    weight_set: WeightSet | None = None
    state: Mapping[str, np.ndarray] | None = None
    layout: str | None = "keras"
    classes: int | None = None

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
        try:
            classes = loading.keras_file_classes(path, info.classifier[-1])
        except OSError as err:
            raise ValueError(
                f"weights={path!r} is not a readable HDF5 weights file: {err}"
            ) from None
        resolved = Weights(spec, path, ws, classes=classes)
        return resolved, _classes_of(resolved, kwargs)
    state = read_checkpoint(path)
    # keys in no known layout are matched by name as they are (the mismatch report then lists
    # what is missing and left over)
    layout = ws.layout if ws else detect_layout(state)
    if layout is not None:
        state = convert_state_dict(state, layout)
    if ws is None:
        kwargs = _fix(spec, info.layout_config.get(layout or "", {}), kwargs)
    rows = state.get(f"{info.classifier[-1]}.weight")
    classes = int(rows.shape[0]) if rows is not None and rows.ndim == 2 else None
    resolved = Weights(spec, path, ws, state, layout, classes)
    return resolved, _classes_of(resolved, kwargs)


def _classes_of(weights: Weights, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with as many classes as the weights' classifier has where none were given and
    the model has a top: the classifier loads, where the builder's default of 1000 would leave
    a fine-tuned checkpoint's out."""
    if (
        weights.classes is None
        or "classes" in kwargs
        or not kwargs.get("include_top", True)
        or kwargs.get("features_only", False)
    ):
        return kwargs
    return {**kwargs, "classes": weights.classes}


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
    """The cached checkpoint of `ws`, downloaded on first use; checked against its published
    hash (sha256 or git blob id) before its first use, whether downloaded or saved into the
    cache by hand (`verify_cached`)."""
    path = cache_path(ws)
    if os.path.isfile(path):
        return verify_cached(ws, path)
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
    return verify_cached(ws, got, downloaded_from=url)


def verify_cached(ws: WeightSet, path: str, *, downloaded_from: str | None = None) -> str:
    """`path`, the cached checkpoint of `ws`, once its hash is the published one: its sha256
    (or the prefix of it that torchvision's and timm's file names carry), or for a checkpoint
    published in a git repository its git blob id; ValueError naming the file and both hashes
    otherwise. A file just downloaded (`downloaded_from`) that fails is deleted; one saved by
    hand is left for its owner to replace.

    A file that passed is remembered in a small record beside it (`<file>.sha256`: its size,
    modification time and hash), so that it is not hashed again at every build; a file
    changed since (another size or time) is hashed again. Weight sets without a published hash
    (timm's Hugging Face files, megvii's) have nothing to check against."""
    published_hash = ws.published_hash
    if published_hash is None:
        return path
    kind, want = published_hash
    field = kind.replace(" ", "_")  # the record's key: "sha256" or "git_blob"
    marker = path + VERIFIED_SUFFIX
    stat = os.stat(path)
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        with open(marker) as f:
            record = json.load(f)
        if (
            isinstance(record, dict)
            and {k: record.get(k) for k in stamp} == stamp
            and str(record.get(field, "")).startswith(want)
        ):
            return path
    except (OSError, ValueError):
        pass  # no record, or one that cannot be read: hash the file
    digest = convert.sha256_of(path) if field == "sha256" else convert.git_blob_of(path)
    if not digest.startswith(want):
        published = (
            f"the published {kind} of {ws.key} is {want}"
            if len(want) == len(digest)
            else f"the published {kind} of {ws.key} starts with {want}"
        )
        if downloaded_from is not None:
            os.unlink(path)
            raise ValueError(
                f"{path} downloaded from {downloaded_from} has {kind} {digest}, but {published}; "
                "the file was deleted"
            )
        raise ValueError(
            f"weights={ws.key!r}: {path} has {kind} {digest}, but {published}: it is not "
            f"that checkpoint. Delete it, or replace it with the file from {ws.url}"
        )
    try:
        with atomic_file(marker) as tmp, open(tmp, "w") as f:
            json.dump({**stamp, field: digest}, f)
    except OSError:
        pass  # a read-only cache: the file is hashed again next time
    return path


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


def optional_modules(
    model: keras.Model, info: ModelInfo, state: Mapping[str, np.ndarray]
) -> tuple[str, ...]:
    """The modules of `state` that may be left out of `model`: its classifier's, and every
    module of an optional part (`ModelInfo.parts`) that the model was built without."""
    names = [layer.name for layer in weighted_layers(model)]
    absent = tuple(
        f"{part}." for part in info.parts if not any(n.startswith(f"{part}.") for n in names)
    )
    unused = {key.rpartition(".")[0] for key in state if absent and key.startswith(absent)}
    return (*info.classifier, *sorted(unused))


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
    everything else must fit. The model is unchanged on error, which names the family keyword
    whose value would make the weights fit, where one does (`keyword_hint`)."""
    try:
        _load(model, info, weights, kwargs, identify)
    except loading.WeightsMismatch as err:
        hint = keyword_hint(model, info, weights, kwargs)
        if hint is None:
            raise
        first, _, rest = str(err).partition("\n")
        raise loading.WeightsMismatch("\n".join(filter(None, (first, hint, rest)))) from None


# The values a family keyword is tried at when weights do not fit (`keyword_hint`): a float
# keyword whose default is 1.0 is a multiplier (the MobileNets' alpha, ShuffleNet's scale), an
# integer one a count (groups, depth_multiplier); the id's weight sets add their own values.
HINT_MULTIPLIERS = (1.0, 0.75, 0.5, 0.35, 0.25, 1.25, 1.3, 1.4, 1.5, 2.0)
HINT_COUNTS = (1, 2, 3, 4, 8)


def keyword_hint(
    model: keras.Model, info: ModelInfo, weights: Weights, kwargs: Mapping[str, Any]
) -> str | None:
    """What explains weights that do not fit `model` (built as `build(info.name, **kwargs)`)
    when a family keyword does: the line "the weights are for alpha=1.0, not alpha=0.75: ..."
    when the id built with another value of one keyword takes them; else, for a family whose
    shapes depend on keywords, the line that names them; None for a family without such
    keywords, or for weights of another architecture (other names, or another number of
    tensors), which no keyword explains.

    Each value tried builds the id once (`_hint_values`); a candidate is checked by its shapes
    first and loaded only when they match."""
    from keras_zoo.model_args import family_keywords

    fits = _fit_test(model, info, weights)
    if fits is None:
        return None
    shaping = []
    for key, default in family_keywords(info.name).items():
        current = kwargs.get(key, default)
        for value in _hint_values(info, key, default):
            if value == current:
                continue
            trial = {**kwargs, key: value}
            try:
                candidate = info.builder(**trial)
            except (ValueError, TypeError):
                continue  # a value this id does not take
            if [w.shape for w in candidate.weights] == [w.shape for w in model.weights]:
                break  # the keyword changes no shape: no other value of it explains anything
            if key not in shaping:
                shaping.append(key)
            if not fits(candidate, trial):
                continue
            return (
                f"The weights are for {key}={value!r}, not {key}={current!r}: build "
                f"{info.name} with {key}={value!r} (on the command line --model-arg "
                f"{key}={value!r})."
            )
    if not shaping:
        return None
    built = ", ".join(f"{k}={kwargs.get(k, family_keywords(info.name)[k])!r}" for k in shaping)
    return (
        f"{info.name}'s shapes depend on {', '.join(shaping)} (built with {built}); no other "
        "value tried makes these weights fit."
    )


def _fit_test(
    model: keras.Model, info: ModelInfo, weights: Weights
) -> Callable[[keras.Model, dict[str, Any]], bool] | None:
    """`fits(candidate, kwargs)`: whether `weights` load into the candidate model built with
    `kwargs`; None when they cannot be the same architecture as `model` at other settings (a
    checkpoint whose names are not the model's, a Keras file with another number of
    variables)."""
    if weights.state is not None:

        def adapted(m: keras.Model) -> dict:
            return adapt_position_embeddings(m, adapt_input_channels(m, weights.state or {}))

        def plan(m: keras.Model) -> Plan:
            optional = optional_modules(m, info, weights.state or {})
            return plan_state_dict(m, adapted(m), optional_modules=optional)

        first = plan(model)
        if first.missing or first.unexpected or not first.mismatched:
            return None
        return lambda candidate, _: plan(candidate).fits
    try:
        in_file = Counter(compat.weights_file_shapes(weights.path))
    except OSError:
        return None

    def body(m: keras.Model) -> Counter:
        # the shapes of the variables outside the classifier, which the file need not match
        layers = [layer for layer in weighted_layers(m) if layer.name not in info.classifier]
        return Counter(tuple(w.shape) for layer in layers for w in layer.weights)

    # the file holds the model's variables, and at most a classifier's more (kernel and bias)
    extra = sum(in_file.values()) - sum(body(model).values())
    if not 0 <= extra <= 2 * len(info.classifier):
        return None

    def fits(candidate: keras.Model, kwargs: dict[str, Any]) -> bool:
        if body(candidate) - in_file:  # shapes the file does not have
            return False
        try:
            _load(candidate, info, weights, kwargs, None)
        except ValueError:
            return False
        return True

    return fits


def _hint_values(info: ModelInfo, key: str, default: Any) -> list[Any]:
    """The values `keyword_hint` tries for `key`: its default, the values the id's weight sets
    and layouts fix, then the usual multipliers or counts."""
    values = [default]
    for config in (*(ws.config for ws in info.weights), *info.layout_config.values()):
        if key in config:
            values.append(config[key])
    if isinstance(default, float) and default == 1.0:
        values.extend(HINT_MULTIPLIERS)
    elif isinstance(default, int) and not isinstance(default, bool):
        values.extend(HINT_COUNTS)
    return list(dict.fromkeys(values))


def _load(
    model: keras.Model,
    info: ModelInfo,
    weights: Weights,
    kwargs: Mapping[str, Any],
    identify: Callable[[Mapping[str, np.ndarray]], str | None] | None,
) -> None:
    """`load` without the keyword hint; `identify` names the id a checkpoint that does not fit
    looks like."""
    if weights.state is None:

        def full_model(classes: int) -> keras.Model:
            # the same architecture with a top of `classes`, for files of full models
            family = {k: v for k, v in architecture(kwargs).items() if k not in info.head_keywords}
            return info.builder(
                **family,
                name=f"{model.name}_full",
                classes=classes,
                classifier_activation=None,
                input_shape=tuple(model.inputs[0].shape[1:]),
            )

        loading.load_keras_file(model, weights.path, info.classifier, full_model)
        return
    loading.fit_checkpoint(
        model,
        adapt_position_embeddings(model, adapt_input_channels(model, weights.state)),
        source=os.path.basename(weights.path),
        optional_modules=optional_modules(model, info, weights.state),
        identify=identify,
    )


def model_for_checkpoint(
    name: str, state: Mapping[str, np.ndarray], layout: str | None
) -> keras.Model:
    """`build(name)` without softmax, with as many classes as the checkpoint's classifier, the
    keywords its layout needs and every optional part (`ModelInfo.parts`) it holds, at the id's
    input size: what `port(name, ...)` ports into."""
    info = model_info(name)
    kwargs = dict(
        info.layout_config.get(layout or "", {}),
        name=name,
        input_shape=info.input_size,
        classifier_activation=None,
    )
    for part, keywords in info.parts.items():
        if any(key.startswith(f"{part}.") for key in state):
            kwargs.update(keywords)
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
    numeric check against the PyTorch model (`check=True`, `reference(name, classes)`, by
    default the id's own reference, `keras_zoo.torch_reference.torch_model`: torchvision's,
    timm's or megvii's; a relative error above 2e-5 fails), `allow_unknown` for checkpoints
    that hold other objects beside their tensors, nothing written unless everything succeeded.

    Example (with a torchvision checkpoint in the working folder)::

        result = port("resnet50", "resnet50-0676ba61.pth", "resnet50.weights.h5")
        result.seconds, result.sha256
    """
    from keras_zoo.torch_reference import torch_model

    return convert.port(
        model,
        src,
        dst,
        check=check,
        reference=reference or torch_model,
        layout=layout,
        allow_unknown=allow_unknown,
        model_for_checkpoint=model_for_checkpoint,
        identify=identify,
    )
