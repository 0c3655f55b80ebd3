"""Finding layers in a Keras model (through nested models) and computing their outputs.

Every inspection tool names layers the same way: a layer's own name when it is unique in the
model with its nested models flattened, else the path of names from the outermost nested model
("backbone/conv1"). The model's own name is never part of it, so names compare across runs.

Where a model's features are is its feature outputs' record (`keras_zoo.features`): the
default feature layers are its feature outputs, and Grad-CAM's default layer is found from
them. A transformer's token layers (outputs of shape (batch, prefix tokens + rows * columns,
d), on the grid its feature outputs record: `keras_zoo.features.token_grid`) are seen as the
(rows, columns, d) maps of their patch tokens where a map is needed (`token_layers`,
`tokens_to_map`, `feature_map_grid`), so that Grad-CAM and the feature-map tools look at a
Vision Transformer as at a CNN.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_zoo.features import FeatureOutput, TokenGrid, feature_info, token_grid
from keras_zoo.walk import call_of, graph_of, is_graph_model, producer, walk


@dataclasses.dataclass(frozen=True, eq=False)
class LayerRef:
    """A layer of a model, possibly inside nested models.

    Attributes:
        path: the nested models from the outermost one down, then the layer itself (a
            top-level layer's path is just the layer).
        name: the name the inspection tools use for it (see the module docstring).
    """

    path: tuple
    name: str

    @property
    def layer(self) -> keras.layers.Layer:
        return self.path[-1]

    def output(self, model: keras.Model) -> Any:
        """The layer's symbolic output in the graph of the model that contains it."""
        parent = self.path[-2] if len(self.path) > 1 else model
        outputs = call_of(parent, self.layer).output_tensors
        if len(outputs) != 1:
            raise ValueError(
                f"layer {self.name!r} has {len(outputs)} outputs; pick a layer with one output"
            )
        return outputs[0]


def _inputs(model):
    """The model's inputs in the structure it is called with (one tensor, not a list of one)."""
    return _single(model.inputs)


def _single(tensors):
    return tensors[0] if len(tensors) == 1 else list(tensors)


def walk_layers(model: keras.Model, *, include_models: bool = False) -> list[LayerRef]:
    """Every layer of `model` in graph order, nested Functional and Sequential models opened in
    place (and listed themselves, before their layers, with include_models=True).

    >>> import keras_zoo
    >>> [ref.name for ref in walk_layers(keras_zoo.build("resnet18"))][:4]
    ['conv1.pad', 'conv1', 'bn1', 'relu']
    """
    graph_of(model)
    paths = walk(model, subclassed="leaf", models=True)
    counts = Counter(path[-1].name for path in paths)
    return [
        LayerRef(
            path,
            path[-1].name if counts[path[-1].name] == 1 else "/".join(layer.name for layer in path),
        )
        for path in paths
        if include_models or not is_graph_model(path[-1])
    ]


def find_layers(
    model: keras.Model, names: Sequence[str], *, argument: str = "layers"
) -> list[LayerRef]:
    """The layers called `names` (names as `walk_layers` gives them, or full paths
    "outer/inner"); ValueError listing the valid names for one that is not there."""
    if isinstance(names, str):
        names = [names]
    refs = walk_layers(model, include_models=True)
    by_name = {ref.name: ref for ref in refs}
    by_name.update({"/".join(layer.name for layer in ref.path): ref for ref in refs})
    found = []
    for name in names:
        if name not in by_name:
            valid = [ref.name for ref in refs]
            close = difflib.get_close_matches(str(name), valid, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"{argument}: {model.name!r} has no layer {name!r}.{hint} "
                f"Valid layer names: {', '.join(valid)}"
            )
        found.append(by_name[name])
    return found


def spatial_layers(
    model: keras.Model, input_shape: Sequence[int] | None = None
) -> list[tuple[LayerRef, tuple]]:
    """(layer, output shape) for each layer with one 4-D output (batch, height, width,
    channels), in graph order; shapes for a batch of `input_shape` images when given."""
    refs = [(ref, tuple(t.shape)) for ref, t in _single_outputs(model) if len(t.shape) == 4]
    if input_shape is not None and refs:
        probe = make_probe(model, [ref for ref, _ in refs])
        symbolic = probe(keras.KerasTensor((1, *input_shape)))
        refs = [(ref, tuple(t.shape)) for (ref, _), t in zip(refs, symbolic)]
    return refs


def default_feature_layers(
    model: keras.Model, input_shape: Sequence[int] | None = None
) -> list[LayerRef]:
    """The feature outputs of a keras_zoo model (`keras_zoo.features.feature_info`: a CNN's
    stage outputs, a Vision Transformer's blocks); for any other model, the last layer at each
    spatial resolution (by order of first appearance)."""
    features = _feature_refs(model)
    if features:
        return features
    spatial = spatial_layers(model, input_shape)
    last: dict[tuple, int] = {}
    for i, (_ref, shape) in enumerate(spatial):
        if shape[1] is None or shape[2] is None:
            raise ValueError(
                f"{model.name!r} has no fixed input size, so its resolutions are unknown: "
                "give the input shape (or sample images), or name the layers"
            )
        last[shape[1:3]] = i
    return [spatial[i][0] for i in sorted(last.values())]


def _feature_refs(model: keras.Model) -> list[LayerRef]:
    """The feature outputs of `model` as layers, in `feature_info`'s order."""
    by_layer = {id(ref.layer): ref for ref in walk_layers(model)}
    # walk_layers does not open subclassed models, whose markers it cannot name
    features = [id(feature.layer) for feature in feature_info(model)]
    return [by_layer[key] for key in features if key in by_layer]


def feature_map_grid(ref: LayerRef) -> TokenGrid | None:
    """The grid on which `ref`'s output is seen as a map: a feature output of tokens' (the
    feature-map tools show its patch tokens, `tokens_to_map`); None for any other layer."""
    layer = ref.layer
    if not isinstance(layer, FeatureOutput) or layer.grid is None:
        return None
    return TokenGrid(*layer.grid, layer.prefix_tokens, layer.reduction)


def as_feature_map(value: Any, ref: LayerRef) -> Any:
    """`ref`'s output `value` as the feature-map tools show it: a feature output's tokens as the
    map of its patch tokens (`feature_map_grid`), any other output as it is."""
    grid = feature_map_grid(ref)
    return value if grid is None else tokens_to_map(value, grid)


MIN_MAP = 4  # pixels: maps smaller than this a side are left out by default


def large_enough(shape: Sequence, min_size: int = MIN_MAP) -> bool:
    """Whether a (batch, height, width, channels) shape is at least min_size x min_size (an
    unknown side counts as large enough)."""
    return all(side is None or side >= min_size for side in shape[1:3])


def token_layers(model: keras.Model) -> list[tuple[LayerRef, tuple]]:
    """(layer, map shape (batch, rows, columns, d)) for each layer of a transformer whose one
    output is its tokens, (batch, prefix tokens + rows * columns, d) for the grid that
    `keras_zoo.features.token_grid` gives, in graph order; [] for a model without a token grid.

    >>> import keras_zoo
    >>> model = keras_zoo.build("vit_b_32", input_shape=(64, 64, 3))
    >>> [(ref.name, shape) for ref, shape in token_layers(model)][-2:]
    [('encoder.layers.encoder_layer_11', (None, 2, 2, 768)), ('encoder.ln', (None, 2, 2, 768))]
    """
    grid = token_grid(model)
    if grid is None:
        return []
    return [
        (ref, (t.shape[0], grid.rows, grid.columns, t.shape[-1]))
        for ref, t in _single_outputs(model)
        if _is_tokens(t.shape, grid)
    ]


def _single_outputs(model: keras.Model) -> list[tuple[LayerRef, Any]]:
    """(layer, its output tensor) for each layer of `model` with one output, in graph order."""
    found = []
    for ref in walk_layers(model):
        try:
            found.append((ref, ref.output(model)))
        except ValueError:
            continue
    return found


def _is_tokens(shape: Sequence, grid: TokenGrid) -> bool:
    return len(shape) == 3 and shape[1] == grid.prefix_tokens + grid.rows * grid.columns


def token_map_grid(model: keras.Model, ref: LayerRef) -> TokenGrid | None:
    """The token grid of `model` when `ref` outputs its tokens (see `token_layers`), else None."""
    grid = token_grid(model)
    if grid is None:
        return None
    try:
        tensor = ref.output(model)
    except ValueError:
        return None
    return grid if _is_tokens(tensor.shape, grid) else None


def tokens_to_map(tokens: Any, grid: TokenGrid) -> Any:
    """(batch, prefix + rows * columns, d) tokens -> the (batch, rows, columns, d) map of the
    patch tokens (row-major, the prefix tokens dropped), as `keras_zoo.layers.TokensToMap`."""
    patches = tokens[:, grid.prefix_tokens :]
    return keras.ops.reshape(patches, (-1, grid.rows, grid.columns, patches.shape[-1]))


# layers whose output token mixes the others: after a model's last one, each token goes its own
# way (LayerNorm, MLP, residual), so a top that reads the class token sees no patch token there
_TOKEN_MIXERS = tuple(
    getattr(keras.layers, name)
    for name in ("MultiHeadAttention", "GroupQueryAttention")
    if hasattr(keras.layers, name)
)


def _last_mixer_input(model: keras.Model, tokens: list[tuple[LayerRef, tuple]]) -> LayerRef | None:
    """The token layer feeding the model's last attention layer, if any."""
    by_layer = {id(ref.layer): ref for ref, _ in tokens}
    found = None
    for ref in walk_layers(model):
        if not isinstance(ref.layer, _TOKEN_MIXERS):
            continue
        parent = ref.path[-2] if len(ref.path) > 1 else model
        try:
            inputs = call_of(parent, ref.layer).input_tensors
        except ValueError:
            continue
        fed = [by_layer.get(id(producer(parent, tensor))) for tensor in inputs]
        fed = [r for r in fed if r is not None]
        if fed:
            found = fed[0]
    return found


def default_cam_layer(
    model: keras.Model, input_shape: Sequence[int] | None = None, min_size: int = MIN_MAP
) -> LayerRef:
    """Where Grad-CAM looks by default: the last layer with a 4-D output of at least
    `min_size` x `min_size` (for `input_shape` images when given), as a coarser map's heatmap
    says no more than which quarter; of a keras_zoo model, the last such feature output (a
    stage). The last 4-D layer (feature output) when none is that large.

    Of a transformer (a model whose feature outputs are tokens on a grid), the token layer on
    that grid feeding its last attention layer (a ViT's last encoder block's ln_1, the input of
    its last feature output's attention), whatever the grid's size: after it the patch tokens
    reach the class token no more, so that the gradient of a class score at a later layer's
    patch tokens is zero (pytorch-grad-cam's choice for ViTs as well).
    """
    tokens = token_layers(model)
    if tokens:
        mixed = _last_mixer_input(model, tokens)
        if mixed is not None:
            return mixed
    spatial = spatial_layers(model, input_shape)
    if not spatial:
        raise ValueError(
            f"{model.name!r} has no layer with a 4-D (batch, height, width, channels) output"
        )
    features = {id(ref.layer) for ref in _feature_refs(model)}
    stages = [(ref, shape) for ref, shape in spatial if id(ref.layer) in features]
    candidates = stages or spatial
    large = [ref for ref, shape in candidates if large_enough(shape, min_size)]
    return large[-1] if large else candidates[-1][0]


def make_probe(model: keras.Model, refs: Sequence[LayerRef]) -> Callable:
    """A function of the model's inputs returning the outputs of `refs` (a list, in order).

    Layers inside nested models are reached through the nested model's input in the outer
    graph, so any depth of nesting works. Inference mode (training=False).
    """
    graph_of(model)
    outputs: list[Any] = []
    slots: list[tuple[int, int]] = []
    groups: dict[int, tuple[keras.Model, list[tuple[int, LayerRef]]]] = {}
    for i, ref in enumerate(refs):
        if len(ref.path) == 1:
            slots.append((i, len(outputs)))
            outputs.append(ref.output(model))
        else:
            groups.setdefault(id(ref.path[0]), (ref.path[0], []))[1].append((i, ref))
    nested = []
    for sub, members in groups.values():
        inputs = call_of(model, sub).input_tensors
        start = len(outputs)
        outputs.extend(inputs)
        inner = [LayerRef(ref.path[1:], ref.name) for _, ref in members]
        nested.append((start, len(inputs), make_probe(sub, inner), [i for i, _ in members]))
    head = keras.Model(_inputs(model), outputs)

    def probe(x):
        values = head(x, training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        result = [None] * len(refs)
        for i, j in slots:
            result[i] = values[j]
        for start, n, sub_probe, indices in nested:
            sub_in = values[start : start + n]
            for i, value in zip(indices, sub_probe(sub_in[0] if n == 1 else list(sub_in))):
                result[i] = value
        return result

    return probe


def split_at(model: keras.Model, ref: LayerRef) -> Callable:
    """A function of the model's inputs returning (the output of `ref`, the model's output)
    from one forward pass, so that gradients of the output reach the layer's output."""
    if len(model.outputs) != 1:
        raise ValueError(f"{model.name!r} has {len(model.outputs)} outputs; Grad-CAM needs one")
    layer = ref.path[0]
    if len(ref.path) == 1:
        both = keras.Model(_inputs(model), [ref.output(model), model.outputs[0]])
        return lambda x: tuple(both(x, training=False))
    node = call_of(model, layer)
    if len(node.output_tensors) != 1:
        raise ValueError(
            f"nested model {layer.name!r} has {len(node.output_tensors)} outputs; "
            "Grad-CAM needs one"
        )
    before = keras.Model(_inputs(model), _single(node.input_tensors))
    # The rest of the outer graph, from the nested model's output (and the inputs, for
    # branches that go around it).
    after = keras.Model([*model.inputs, node.output_tensors[0]], model.outputs[0])
    inner = split_at(layer, LayerRef(ref.path[1:], ref.name))

    def run(x):
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        sub_in = before(x, training=False)
        tap, sub_out = inner(sub_in)
        return tap, after([*xs, sub_out], training=False)

    return run
