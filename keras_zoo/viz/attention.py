"""Attention maps of transformers: what the class token looks at, per head and over all blocks.

`attention_weights` gives the attention probabilities of a model's MultiHeadAttention layers
for a batch of images, (batch, heads, queries, keys) per layer, exactly as the layers compute
them (each layer called again on its own inputs with `return_attention_scores=True`, in
inference mode). `attention_rollout` multiplies them through the blocks (Abnar & Zuidema,
2020): per block the heads' mean plus the identity (the residual), rows renormalised, from the
first block to the last. `class_token_maps` reads the class token's row over the patch tokens
as maps on the image's patch grid (`keras_zoo.features.token_grid`), and `attention_maps` does
all of it for a model: the rollout map and, at chosen blocks, one map per head.

The pictures (`overlay_maps`, `head_grid`, and the titled Figures `rollout_figure` and
`head_figure`) colour each map, min-max scaled on its own, over the image in gray, a patch a
block.

>>> import numpy as np
>>> from keras_zoo.models.vit import vision_transformer
>>> model = vision_transformer(patch_size=16, num_layers=2, num_heads=2, hidden_dim=16,
...                            mlp_dim=32, input_shape=(48, 48, 3))
>>> maps = attention_maps(model, np.random.rand(2, 48, 48, 3))
>>> maps.rollout.shape, {k: v.shape for k, v in maps.heads.items()}
((2, 3, 3), {'encoder.layers.encoder_layer_0.self_attention': (2, 2, 3, 3), \
'encoder.layers.encoder_layer_1.self_attention': (2, 2, 3, 3)})
>>> overlay_maps(np.random.rand(2, 48, 48, 3), maps.rollout).shape  # enlarged to 144
(2, 144, 144, 3)
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from keras_zoo.features import TokenGrid, token_grid
from keras_zoo.viz import images as _images
from keras_zoo.viz.features import as_images
from keras_zoo.viz.graph import LayerRef, walk_layers
from keras_zoo.walk import call_of, graph_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MIN_HEAD_TILE = 96  # pixels: the smallest side a head's map is shown at


def attention_layers(model: keras.Model) -> list[LayerRef]:
    """The MultiHeadAttention layers of `model` (through nested models), in graph order;
    ValueError when it has none.

    >>> import keras_zoo
    >>> [ref.name for ref in attention_layers(keras_zoo.build("vit_b_32"))][:2]
    ['encoder.layers.encoder_layer_0.self_attention', \
'encoder.layers.encoder_layer_1.self_attention']
    """
    found = [
        ref for ref in walk_layers(model) if isinstance(ref.layer, keras.layers.MultiHeadAttention)
    ]
    if not found:
        raise ValueError(
            f"model: expected a model with MultiHeadAttention layers (a transformer); "
            f"{model.name!r} has none"
        )
    return found


def default_blocks(count: int) -> list[int]:
    """The blocks shown per head by default: the first, the middle and the last of `count`.

    >>> default_blocks(12), default_blocks(2), default_blocks(1)
    ([0, 6, 11], [0, 1], [0])
    """
    return sorted({0, count // 2, count - 1})


def resolve_blocks(
    model: keras.Model, blocks: Sequence[int | str] | None, *, argument: str = "blocks"
) -> list[LayerRef]:
    """The attention layers `blocks` names: indices into `attention_layers(model)` (negative
    ones from the end) or layer names; default `default_blocks`. Strings of digits ("0", "-1",
    as a command line gives them) are indices. ValueError naming `argument` and the valid
    choices for one that is not an attention layer."""
    refs = attention_layers(model)
    if blocks is None:
        return [refs[i] for i in default_blocks(len(refs))]
    if isinstance(blocks, (str, int)):
        blocks = [blocks]
    # indices as the command line gives them: "0", "-1"
    blocks = [int(b) if isinstance(b, str) and b.lstrip("-").isdigit() else b for b in blocks]
    names = [ref.name for ref in refs]
    by_name = {ref.name: ref for ref in refs}
    by_name.update({"/".join(layer.name for layer in ref.path): ref for ref in refs})
    found: list[LayerRef] = []
    for block in blocks:
        if isinstance(block, (int, np.integer)) and not isinstance(block, bool):
            if not -len(refs) <= block < len(refs):
                raise ValueError(
                    f"{argument}: expected attention block indices from {-len(refs)} to "
                    f"{len(refs) - 1} ({model.name!r} has {len(refs)} MultiHeadAttention "
                    f"layers), got {block}"
                )
            ref = refs[int(block)]
        elif isinstance(block, str) and block in by_name:
            ref = by_name[block]
        else:
            close = difflib.get_close_matches(str(block), names, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"{argument}: expected MultiHeadAttention layer names of {model.name!r} or "
                f"indices, got {block!r}.{hint} Attention layers: {', '.join(names)}"
            )
        if ref not in found:
            found.append(ref)
    return found


def _attention_probe(model: keras.Model, refs: Sequence[LayerRef]) -> Callable:
    """A function of the model's inputs returning the attention probabilities of the
    MultiHeadAttention layers `refs` (a list, in order): the inputs of each layer's call from one
    forward pass, then the layer called on them with return_attention_scores=True."""
    graph_of(model)
    tensors: list[Any] = []
    direct: list[tuple[int, Any, dict[int, int]]] = []  # (ref index, node, {id(tensor): slot})
    groups: dict[int, tuple[keras.Model, list[tuple[int, LayerRef]]]] = {}
    for i, ref in enumerate(refs):
        if len(ref.path) == 1:
            node = call_of(model, ref.layer)
            slots = {}
            for tensor in node.input_tensors:
                slots[id(tensor)] = len(tensors)
                tensors.append(tensor)
            direct.append((i, node, slots))
        else:
            groups.setdefault(id(ref.path[0]), (ref.path[0], []))[1].append((i, ref))
    nested = []
    for sub, members in groups.values():
        inputs = call_of(model, sub).input_tensors
        start = len(tensors)
        tensors.extend(inputs)
        inner = [LayerRef(ref.path[1:], ref.name) for _, ref in members]
        nested.append((start, len(inputs), _attention_probe(sub, inner), [i for i, _ in members]))
    inputs = model.inputs[0] if len(model.inputs) == 1 else list(model.inputs)
    head = keras.Model(inputs, tensors)

    def probe(x: Any) -> list:
        values = head(x, training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        result: list[Any] = [None] * len(refs)
        for i, node, slots in direct:
            given = {key: values[slot] for key, slot in slots.items()}
            args, kwargs = node.arguments.fill_in(given)
            result[i] = _scores(node.operation, args, kwargs)
        for start, n, sub_probe, indices in nested:
            sub_in = values[start : start + n]
            for i, value in zip(indices, sub_probe(sub_in[0] if n == 1 else list(sub_in))):
                result[i] = value
        return result

    return probe


def _scores(layer: keras.layers.MultiHeadAttention, args: Any, kwargs: dict) -> Any:
    """The attention probabilities of one call of `layer` on `args` and `kwargs`, the inputs of
    its call in the graph."""
    kwargs = {**kwargs, "return_attention_scores": True, "training": False}
    return layer(*args, **kwargs)[1]


def attention_weights(
    model: keras.Model, images: Any, layers: Sequence[int | str] | None = None
) -> dict[str, np.ndarray]:
    """The attention probabilities of MultiHeadAttention `layers` (names or indices, as
    `resolve_blocks` takes them; default every one, in graph order) for `images`, by layer
    name: (batch, heads, queries, keys) arrays whose rows sum to 1, in inference mode.

    >>> import numpy as np, keras_zoo
    >>> model = keras_zoo.build("vit_b_32", input_shape=(64, 64, 3))
    >>> weights = attention_weights(model, np.random.rand(1, 64, 64, 3), layers=[0])
    >>> {k: v.shape for k, v in weights.items()}  # 12 heads over the class token and 2x2 patches
    {'encoder.layers.encoder_layer_0.self_attention': (1, 12, 5, 5)}
    """
    batch = as_images(model, images)
    refs = attention_layers(model) if layers is None else resolve_blocks(model, layers)
    values = _attention_probe(model, refs)(batch)
    return {ref.name: keras.ops.convert_to_numpy(value) for ref, value in zip(refs, values)}


def attention_rollout(attentions: Sequence[np.ndarray]) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020) of the blocks' attention probabilities, each
    (batch, heads, tokens, tokens), from the first block to the last: per block
    A = mean over heads + I with rows renormalised, and R = A_last ... A_first. Returns R,
    (batch, tokens, tokens), whose rows sum to 1: how much of each output token comes from
    each input token along the residual and attention paths.

    >>> uniform = np.full((1, 2, 3, 3), 1 / 3)
    >>> attention_rollout([uniform]).round(3)[0]
    array([[0.667, 0.167, 0.167],
           [0.167, 0.667, 0.167],
           [0.167, 0.167, 0.667]])
    """
    if not len(attentions):
        raise ValueError("attentions: expected the attention of at least one block, got none")
    rollout = None
    for i, attention in enumerate(attentions):
        attention = np.asarray(attention, np.float64)
        if attention.ndim != 4 or attention.shape[-1] != attention.shape[-2]:
            raise ValueError(
                f"attentions[{i}]: expected self-attention (batch, heads, tokens, tokens), "
                f"got shape {attention.shape}"
            )
        fused = attention.mean(axis=1) + np.eye(attention.shape[-1])
        fused /= fused.sum(axis=-1, keepdims=True)
        if rollout is not None and rollout.shape != fused.shape:
            raise ValueError(
                f"attentions[{i}]: shape {attention.shape} does not follow the blocks before, "
                f"of {rollout.shape[-1]} tokens"
            )
        rollout = fused if rollout is None else fused @ rollout
    assert rollout is not None
    return rollout


def class_token_maps(attention: np.ndarray, grid: TokenGrid, *, token: int = 0) -> np.ndarray:
    """The row of query `token` (the class token) over the patch tokens, on the patch grid:
    (batch, heads, queries, keys) attention -> (batch, heads, rows, columns); a rollout
    (batch, queries, keys) -> (batch, rows, columns)."""
    attention = np.asarray(attention)
    tokens = grid.prefix_tokens + grid.rows * grid.columns
    if attention.ndim not in (3, 4) or attention.shape[-1] != tokens:
        raise ValueError(
            f"attention: expected (batch, [heads,] queries, {tokens}) for {grid}, "
            f"got shape {attention.shape}"
        )
    row = attention[..., token, grid.prefix_tokens :]
    return row.reshape(*row.shape[:-1], grid.rows, grid.columns)


@dataclasses.dataclass(frozen=True)
class AttentionMaps:
    """A model's attention for a batch of images, on the patch grid.

    Attributes:
        rollout: the class token's rolled-out attention to each patch over every block,
            (batch, rows, columns).
        heads: for each chosen block (its MultiHeadAttention layer's name), the class token's
            attention to each patch per head, (batch, heads, rows, columns).
        grid: how the tokens lie on the image.
    """

    rollout: np.ndarray
    heads: dict[str, np.ndarray]
    grid: TokenGrid


def token_grid_of(model: keras.Model) -> TokenGrid:
    """`keras_zoo.features.token_grid(model)`, the grid of its feature outputs of tokens;
    ValueError for a model without one."""
    grid = token_grid(model)
    if grid is None:
        raise ValueError(
            f"model: expected a transformer whose tokens lie on the image's patch grid (feature "
            f"outputs of tokens on a grid); the tokens of {model.name!r} do not"
        )
    return grid


def attention_maps(
    model: keras.Model, images: Any, blocks: Sequence[int | str] | None = None
) -> AttentionMaps:
    """The rollout map over every MultiHeadAttention layer and the per-head maps at `blocks`
    (indices or layer names; default the first, middle and last) of a Vision Transformer for
    `images`, from one forward pass. See `AttentionMaps`."""
    grid = token_grid_of(model)
    refs = attention_layers(model)
    chosen = resolve_blocks(model, blocks)
    batch = as_images(model, images)
    values = [keras.ops.convert_to_numpy(v) for v in _attention_probe(model, refs)(batch)]
    by_name = dict(zip((ref.name for ref in refs), values))
    return AttentionMaps(
        rollout=class_token_maps(attention_rollout(values), grid),
        heads={ref.name: class_token_maps(by_name[ref.name], grid) for ref in chosen},
        grid=grid,
    )


def _resize_nearest(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(..., rows, columns) maps resized to (..., height, width), each cell a block."""
    rows, columns = maps.shape[-2:]
    r = np.arange(height) * rows // height
    c = np.arange(width) * columns // width
    return maps[..., r[:, None], c[None, :]]


def overlay_maps(
    images: np.ndarray, maps: np.ndarray, *, min_side: int = 8 * _images.MIN_TILE
) -> np.ndarray:
    """Maps (N, rows, columns), each min-max scaled on its own, coloured (jet: blue low, red
    high) over the images in gray (N, H, W, C; scaled for display), a patch a block, and
    enlarged (nearest neighbour) to at least `min_side` pixels a side: uint8 (N, H', W', 3)."""
    images = np.asarray(images, np.float32)
    maps = np.asarray(maps)
    if images.ndim != 4 or maps.ndim != 3 or len(images) != len(maps):
        raise ValueError(
            f"maps: expected (N, rows, columns) for {len(images)} images, got shape {maps.shape}"
        )
    scaled = _images.minmax(maps, axis=(1, 2))
    heat = _resize_nearest(scaled, *images.shape[1:3])
    # the image in gray under the colours, so that every colour is the map's
    gray = images[..., :3].mean(axis=-1, keepdims=True)
    return _images.enlarge(_images.overlay_heatmaps(gray, heat), min_side=min_side)


def head_grid(
    image: np.ndarray, maps: np.ndarray, *, min_tile: int = MIN_HEAD_TILE, pad: int = 2
) -> np.ndarray:
    """One image's per-head maps (heads, rows, columns), each min-max scaled on its own and
    coloured over the image, tiled row by row (head 0 top left) with `pad` white pixels between
    them, each at least `min_tile` pixels a side: uint8 (height, width, 3)."""
    image = np.asarray(image, np.float32)
    maps = np.asarray(maps)
    if image.ndim != 3 or maps.ndim != 3:
        raise ValueError(
            f"maps: expected one image (H, W, C) and (heads, rows, columns), got shapes "
            f"{image.shape} and {maps.shape}"
        )
    tiles = overlay_maps(np.repeat(image[None], len(maps), axis=0), maps, min_side=min_tile)
    return np.round(255 * _images.tile(tiles / 255.0, pad=pad)).astype(np.uint8)


def rollout_figure(image: np.ndarray, rollout: np.ndarray, title: str = "") -> Figure:
    """One image and its rollout map (rows, columns) over it, side by side, as a Figure."""
    from matplotlib.figure import Figure

    image = np.asarray(image, np.float32)
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.imshow(_images.display_images(image[None], min_side=1)[0])
    left.set_title("image", fontsize=9)
    right.imshow(overlay_maps(image[None], np.asarray(rollout)[None], min_side=1)[0])
    right.set_title("attention rollout", fontsize=9)
    for ax in (left, right):
        ax.set_axis_off()
    figure.suptitle(title or "class token's attention rollout over every block")
    return figure


def head_figure(image: np.ndarray, maps: np.ndarray, title: str, *, cols: int = 4) -> Figure:
    """One image's per-head maps (heads, rows, columns) over it, a panel a head titled with
    its number, `cols` a row, as a Figure."""
    from matplotlib.figure import Figure

    image = np.asarray(image, np.float32)
    maps = np.asarray(maps)
    heads = len(maps)
    cols = min(cols, heads)
    rows = -(-heads // cols)
    tiles = overlay_maps(np.repeat(image[None], heads, axis=0), maps, min_side=1)
    figure = Figure(figsize=(2.2 * cols, 2.2 * rows + 0.5), layout="constrained")
    for i in range(heads):
        ax = figure.add_subplot(rows, cols, i + 1)
        ax.imshow(tiles[i])
        ax.set_title(f"head {i}", fontsize=8)
        ax.set_axis_off()
    figure.suptitle(f"{title}: the class token's attention, per head")
    return figure
