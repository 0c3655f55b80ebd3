"""Where a model's features are: a marker layer on each feature output, and the one reader.

A family marks each feature output in its graph with a `FeatureOutput`, an identity (the
traced graph has no op for it) that records the output's `reduction` (input pixels per output
step) and, for a transformer's tokens, the `grid` (rows, columns) of its patch tokens and the
`prefix_tokens` (a class token) before them. The record lives in the model itself, so it
survives renaming, nesting and save/load. A CNN marks its stage outputs (`StageOutput`, at
strides 4, 8, 16 and 32, named stage1 .. stage4: `apply_stages`); a Vision Transformer marks
each encoder block's output (the layer named after the block).

`feature_info(model)` reads the record, as timm's `feature_info` does: `build(...,
features_only=True)` returns these outputs (tokens as maps), and `--freeze-backbone`
(`backbone_end`), Grad-CAM's default layer, the feature-map tools' default layers and a
transformer's token grid (`token_grid`) all read it.

>>> import keras_zoo
>>> [(f.name, f.reduction, f.channels) for f in feature_info(keras_zoo.build("resnet18"))]
[('stage1', 4, 64), ('stage2', 8, 128), ('stage3', 16, 256), ('stage4', 32, 512)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import keras

from keras_zoo import walk


@keras.saving.register_keras_serializable(package="keras_zoo")
class FeatureOutput(keras.layers.Identity):
    """Marks a feature output in a model's graph: `reduction` input pixels per output step;
    for tokens (batch, prefix_tokens + rows * columns, d), the `grid` (rows, columns) of the
    patch tokens, row-major after the `prefix_tokens`. Computes nothing.

    >>> import numpy as np
    >>> marker = FeatureOutput(16, grid=(2, 2), prefix_tokens=1, name="block")
    >>> tuple(marker(np.zeros((1, 5, 8), "float32")).shape), marker.get_config()["grid"]
    ((1, 5, 8), (2, 2))
    """

    def __init__(
        self,
        reduction: int,
        grid: Sequence[int] | None = None,
        prefix_tokens: int = 0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.grid = None if grid is None else (int(grid[0]), int(grid[1]))
        self.prefix_tokens = int(prefix_tokens)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "reduction": self.reduction,
            "grid": self.grid,
            "prefix_tokens": self.prefix_tokens,
        }


@keras.saving.register_keras_serializable(package="keras_zoo")
class StageOutput(FeatureOutput):
    """A CNN's stage output: the last feature map at one `stride` (its reduction).

    `keras_zoo.stage_outputs(model)` lists them; `build(..., features_only=True)` returns
    them; the feature-map tools show them by default.
    """

    def __init__(self, stride: int, **kwargs: Any):
        super().__init__(reduction=stride, **kwargs)

    @property
    def stride(self) -> int:
        """The stage's stride, its reduction."""
        return self.reduction

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in ("reduction", "grid", "prefix_tokens"):
            del config[key]
        return {**config, "stride": self.stride}


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One feature output of a model, as `feature_info` reads it.

    Attributes:
        name: the marker layer's name (stage1 .. stage4; a ViT block's module path).
        reduction: input pixels per output step (a stage's stride, a patch's side).
        channels: the output's width (its last axis).
        grid: for tokens, the (rows, columns) of the patch tokens; None for a feature map.
        prefix_tokens: for tokens, how many come before the patch tokens (a class token).
        layer: the marker layer itself.
    """

    name: str
    reduction: int
    channels: int
    grid: tuple[int, int] | None
    prefix_tokens: int
    layer: FeatureOutput = dataclasses.field(repr=False, compare=False)

    @property
    def output(self) -> Any:
        """The marker's symbolic output in the graph that calls it."""
        return self.layer.output


def feature_info(model: keras.Model) -> list[FeatureInfo]:
    """The feature outputs of `model` (searched through nested models) by increasing
    reduction, in graph order where it is the same (a transformer's blocks).

    >>> import keras_zoo
    >>> info = feature_info(keras_zoo.build("vit_b_32", input_shape=(224, 160, 3)))
    >>> len(info), info[-1]
    (12, FeatureInfo(name='encoder.layers.encoder_layer_11', reduction=32, channels=768, \
grid=(7, 5), prefix_tokens=1))
    """
    found = [layer for layer in walk.layers(model) if isinstance(layer, FeatureOutput)]
    return [
        FeatureInfo(
            layer.name,
            layer.reduction,
            int(layer.output.shape[-1]),
            layer.grid,
            layer.prefix_tokens,
            layer,
        )
        for layer in sorted(found, key=lambda layer: layer.reduction)
    ]


def stage_output(x: Any, stride: int) -> Any:
    """Marks `x` as the stage output at `stride` (4, 8, 16, 32 -> stage1 .. stage4)."""
    return StageOutput(stride=stride, name=f"stage{stride.bit_length() - 2}")(x)


def apply_stages(
    x: Any, steps: Iterable[tuple[int, Callable[[Any], Any]]], *, stride: int = 1
) -> Any:
    """Applies `steps`, a sequence of (stride, function of a tensor), to `x` (already at
    `stride`), marking the last tensor at each stride from 4 on as a stage output: before every
    step that downsamples, and at the end.
    """
    total = stride
    for step_stride, step in steps:
        if step_stride > 1 and total >= 4:
            x = stage_output(x, total)
        x = step(x)
        total *= step_stride
    return stage_output(x, total)


def stage_outputs(model: keras.Model) -> list[StageOutput]:
    """The StageOutput layers of `model` (searched through nested models), by increasing stride.

    >>> import keras_zoo
    >>> [(s.name, s.stride) for s in keras_zoo.stage_outputs(keras_zoo.build("resnet18"))]
    [('stage1', 4), ('stage2', 8), ('stage3', 16), ('stage4', 32)]
    """
    return [f.layer for f in feature_info(model) if isinstance(f.layer, StageOutput)]


class TokenGrid(NamedTuple):
    """How a transformer's tokens lie on the image: `prefix_tokens` (a class token) first,
    then `rows` x `columns` patches in row-major order, each `patch` pixels square."""

    rows: int
    columns: int
    prefix_tokens: int
    patch: int


def token_grid(model: keras.Model) -> TokenGrid | None:
    """The token layout of a transformer `model` (searched through nested models), from its
    first feature output of tokens; None for a model without one (a CNN).

    >>> import keras_zoo
    >>> token_grid(keras_zoo.build("vit_b_32", input_shape=(224, 160, 3)))
    TokenGrid(rows=7, columns=5, prefix_tokens=1, patch=32)
    """
    for feature in feature_info(model):
        if feature.grid is not None:
            return TokenGrid(*feature.grid, feature.prefix_tokens, feature.reduction)
    return None


def backbone_end(model: keras.Model, classifier: Sequence[str] = ()) -> int:
    """How many of `model.layers` (its top level) make its backbone, what `--freeze-backbone`
    freezes: through the last feature output when that is a feature map (a CNN's last stage;
    pooling and the head follow), else, when the features are tokens (a transformer, whose
    final norm after its last block belongs to the backbone) or none are marked at the top
    level, every layer before the first of its `classifier` layers (`ModelInfo.classifier`).
    RuntimeError (a family bug, not a user error) for a model with neither.

    >>> import keras_zoo
    >>> model = keras_zoo.build("resnet18")
    >>> model.layers[backbone_end(model, ("fc",)) - 1].name
    'stage4'
    """
    features = [i for i, layer in enumerate(model.layers) if isinstance(layer, FeatureOutput)]
    heads = [i for i, layer in enumerate(model.layers) if layer.name in classifier]
    if features and model.layers[features[-1]].grid is None:
        return features[-1] + 1
    if heads:
        return heads[0]
    raise RuntimeError(f"{model.name}: no stage output and no classifier layer to freeze up to")
