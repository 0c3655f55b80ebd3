"""Vision Transformer (Dosovitskiy et al., 2020) as torchvision defines it, as a table of variants.

Each variant is a patch size, the number of encoder blocks, the heads, the token width and the
MLP's hidden width. The layer names are torchvision's module paths (conv_proj, class_token,
encoder.pos_embedding, encoder.layers.encoder_layer_N.ln_1 / self_attention / ln_2 / mlp.0 /
mlp.3, encoder.ln, heads.head), so torchvision checkpoints load by name.

The image is cut into patches by a strided convolution, a class token is put before the patch
tokens, a learned position embedding is added, and pre-norm encoder blocks
(`blocks.attention_block`, `blocks.mlp_block`) follow, then a LayerNorm. The top classifies the
class token. Without the top, `pooling="token"` returns the class token, `pooling="avg"` the
mean of the patch tokens, and `pooling=None` every token, (1 + patches, width).

The input's height and width are multiples of the patch size; the position embedding has one
entry per patch. Weights trained at another size load with their position embedding resampled
(bicubic, as timm's resample_abs_pos_embed: `keras_zoo.port.resample_position_embedding`).
Each encoder block's output is marked as a feature output (`keras_zoo.features.FeatureOutput`,
named after the block, with its patch size and token grid); `features_only=True` returns the
patch tokens of chosen blocks as maps.

>>> import keras_zoo
>>> keras_zoo.build("vit_b_32", include_top=False, pooling="token").output.shape
(None, 768)
>>> [m.shape for m in keras_zoo.build("vit_b_32", features_only=True, out_indices=(0, 11)).outputs]
[(None, 7, 7, 768), (None, 7, 7, 768)]
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from keras_zoo import checks
from keras_zoo.builder import DEFAULT_SIZE, build_model
from keras_zoo.registry import register_model
from keras_zoo.weight_sets import WeightSet, torchvision_weights

if TYPE_CHECKING:
    import keras


TITLE = "Vision Transformer (ViT)"  # the family as the command line's description names it


@dataclasses.dataclass(frozen=True)
class ViTVariant:
    """One ViT id: torchvision's patch_size, num_layers, num_heads, hidden_dim and mlp_dim, its
    published parameter count (at 224x224) and GMACs, and its weight sets (the default first)."""

    name: str
    patch_size: int
    num_layers: int
    num_heads: int
    hidden_dim: int
    mlp_dim: int
    params: int
    gmacs: float
    weights: tuple[WeightSet, ...] = ()


def _swag(filename: str, tag: str, top1: float, size: int) -> WeightSet:
    # torchvision's SWAG sets: resized straight to the crop size, bicubic
    return torchvision_weights(filename, tag, top1, resize=size, size=size, interpolation="bicubic")


# torchvision.models.ViT_*_Weights: num_params, _ops (GMACs, as for every torchvision id),
# acc@1, url and transforms. The SWAG E2E sets were fine-tuned at 384 (B) and 512 (L): their
# preprocessing builds the model at that size.
tv = torchvision_weights
VARIANTS: tuple[ViTVariant, ...] = (
    ViTVariant(
        "vit_b_16",
        16,
        12,
        12,
        768,
        3072,
        86_567_656,
        17.564,
        (
            tv("vit_b_16-c867db91.pth", "IMAGENET1K_V1", 81.072),
            _swag("vit_b_16_lc_swag-4e70ced5.pth", "IMAGENET1K_SWAG_LINEAR_V1", 81.886, 224),
            _swag("vit_b_16_swag-9ac1b537.pth", "IMAGENET1K_SWAG_E2E_V1", 85.304, 384),
        ),
    ),
    ViTVariant(
        "vit_b_32",
        32,
        12,
        12,
        768,
        3072,
        88_224_232,
        4.409,
        (tv("vit_b_32-d86f8d99.pth", "IMAGENET1K_V1", 75.912),),
    ),
    ViTVariant(
        "vit_l_16",
        16,
        24,
        16,
        1024,
        4096,
        304_326_632,
        61.555,
        (
            tv("vit_l_16-852ce7e3.pth", "IMAGENET1K_V1", 79.662, resize=242),
            _swag("vit_l_16_lc_swag-4d563306.pth", "IMAGENET1K_SWAG_LINEAR_V1", 85.146, 224),
            _swag("vit_l_16_swag-4f3808c9.pth", "IMAGENET1K_SWAG_E2E_V1", 88.064, 512),
        ),
    ),
    ViTVariant(
        "vit_l_32",
        32,
        24,
        16,
        1024,
        4096,
        306_535_400,
        15.378,
        (tv("vit_l_32-c7638314.pth", "IMAGENET1K_V1", 76.972),),
    ),
)


def vision_transformer(
    *,
    patch_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    mlp_dim: int,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    drop_path_rate: float = 0.0,
    name: str = "vit",
    **kwargs: Any,
) -> keras.Model:
    """torchvision's VisionTransformer: `num_layers` encoder blocks of `num_heads` heads over
    `hidden_dim`-wide tokens of `patch_size` x `patch_size` patches, with `mlp_dim`-wide MLPs;
    `dropout` and `attention_dropout` as torchvision's (0 in every published model). `kwargs`
    are build_model's shared keywords (include_top, input_shape, pooling, ...).

    `drop_path_rate` (in [0, 1), off by default) is stochastic depth as timm's ViT trains with
    it (torchvision's has none): block i of `num_layers` drops its attention and its MLP
    branch, each on its own draw, at drop_path_rate * i / (num_layers - 1)
    (`keras_zoo.layers.drop_path_rates`); inference is unchanged.

    With `features_only=True` the outputs are the patch tokens of the encoder blocks
    `out_indices` (0 .. num_layers - 1; by default the last three, as timm's), each as a
    (height / patch_size, width / patch_size, hidden_dim) map named `encoder_layer_N_map`.
    """
    for arg in ("patch_size", "num_layers", "num_heads", "hidden_dim", "mlp_dim"):
        checks.check_positive_int(locals()[arg], arg)
    dropout = checks.check_fraction(dropout, "dropout")
    attention_dropout = checks.check_fraction(attention_dropout, "attention_dropout")
    drop_path_rate = checks.check_fraction(drop_path_rate, "drop_path_rate")
    height, width = _check_size(_input_size(kwargs), patch_size, name, kwargs)
    grid = (height // patch_size, width // patch_size)
    if kwargs.get("features_only") is True and kwargs.get("out_indices") is None:
        kwargs["out_indices"] = tuple(range(max(num_layers - 3, 0), num_layers))
    from keras import layers

    from keras_zoo.blocks import attention_block, layer_norm, mlp_block
    from keras_zoo.features import FeatureOutput
    from keras_zoo.layers import ClassToken, PositionEmbedding, drop_path_rates

    rates = drop_path_rates(drop_path_rate, num_layers)

    def features(x):
        x = layers.Conv2D(hidden_dim, patch_size, strides=patch_size, name="conv_proj")(x)
        # row-major patches, as torchvision's reshape of (n, hidden_dim, n_h, n_w)
        x = layers.Reshape((grid[0] * grid[1], hidden_dim), name="patches")(x)
        x = ClassToken(name="class_token")(x)
        x = PositionEmbedding(grid=grid, prefix_tokens=1, name="encoder.pos_embedding")(x)
        if dropout:
            x = layers.Dropout(dropout, name="encoder.dropout")(x)
        for i in range(num_layers):
            block = f"encoder.layers.encoder_layer_{i}"
            x = attention_block(
                x,
                num_heads,
                name=block,
                attention_dropout=attention_dropout,
                drop_path_rate=rates[i],
            )
            x = mlp_block(
                x,
                mlp_dim,
                name=block,
                dropout=dropout,
                output_name=f"{block}.mlp_residual",
                drop_path_rate=rates[i],
            )
            # the block's output (torchvision's module output) is the marker, by the block's name
            x = FeatureOutput(patch_size, grid=grid, prefix_tokens=1, name=block)(x)
        return layer_norm(x, name="encoder.ln")

    def head(x, classes):
        return layers.Dense(classes, name="heads.head")(x)

    return build_model(features, head, name=name, pools=POOLS, **kwargs)


def _class_token(x):
    from keras import layers

    x = layers.Cropping1D((0, x.shape[1] - 1), name="token_pool.crop")(x)
    return layers.Flatten(name="token_pool")(x)


def _mean_patch_token(x):
    from keras import layers

    x = layers.Cropping1D((1, 0), name="avgpool.crop")(x)
    return layers.GlobalAveragePooling1D(name="avgpool")(x)


# the top classifies the class token, torchvision's x[:, 0]
POOLS = {"token": _class_token, "avg": _mean_patch_token}


def _input_size(kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(height, width) the model will be built at, from the keywords build_model takes."""
    if kwargs.get("input_tensor") is not None:
        shape = tuple(kwargs["input_tensor"].shape[1:])
    elif kwargs.get("input_shape") is not None:
        shape = tuple(kwargs["input_shape"])
    else:
        return tuple(kwargs.get("default_input_size", (DEFAULT_SIZE, DEFAULT_SIZE)))
    return (shape[0], shape[1]) if len(shape) == 3 else (None, None)


def _nearest(size: int, patch: int) -> list[int]:
    below = size // patch * patch
    return [s for s in (below, below + patch) if s > 0]


def _check_size(size: tuple[Any, Any], patch: int, name: str, kwargs: dict[str, Any]):
    """(height, width), or ValueError naming the patch size and the nearest allowed sizes."""
    arg = "input_tensor shape" if kwargs.get("input_tensor") is not None else "input_shape"
    given = kwargs.get("input_shape")
    shown = tuple(given) if arg == "input_shape" and given is not None else (*size, 3)
    if any(not isinstance(s, int) or isinstance(s, bool) for s in size):
        if len(shown) != 3:
            return size  # build_model names the malformed shape
        raise ValueError(
            f"{arg} {shown}: {name} needs a fixed height and width (its position embedding "
            f"has one entry per patch), multiples of its patch size {patch}, "
            f"e.g. {DEFAULT_SIZE}"
        )
    bad = [(what, s) for what, s in zip(("height", "width"), size) if s % patch or s < patch]
    if not bad:
        return size
    if size[0] == size[1]:
        nearest = " or ".join(map(str, _nearest(size[0], patch)))
    else:
        nearest = ", ".join(
            f"{what} {' or '.join(map(str, _nearest(s, patch)))}" for what, s in bad
        )
    raise ValueError(
        f"{arg} {shown}: {name} needs height and width that are multiples of its patch size "
        f"{patch}; nearest: {nearest}"
    )


for _variant in VARIANTS:
    register_model(
        _variant.name,
        "vit",
        vision_transformer,
        config=dict(
            patch_size=_variant.patch_size,
            num_layers=_variant.num_layers,
            num_heads=_variant.num_heads,
            hidden_dim=_variant.hidden_dim,
            mlp_dim=_variant.mlp_dim,
        ),
        params=_variant.params,
        gmacs=_variant.gmacs,
        classifier=("heads.head",),
        weights=_variant.weights,
    )
