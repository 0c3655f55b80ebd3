"""The one place where PyTorch tensor layouts become Keras weight layouts, per layer type.

| PyTorch                           | Keras                                 | transform            |
|-----------------------------------|---------------------------------------|----------------------|
| Conv2d weight (O, I/g, kh, kw)    | Conv2D kernel (kh, kw, I/g, O)        | transpose(2,3,1,0)   |
| depthwise weight (C*m, 1, kh, kw) | DepthwiseConv2D kernel (kh, kw, C, m) | transpose + reshape  |
| Linear weight (out, in)           | Dense kernel (in, out)                | transpose            |
| BatchNorm2d weight, bias          | BatchNormalization gamma, beta        | as is                |
| BatchNorm2d running_mean, _var    | moving_mean, moving_variance          | as is                |
| LayerNorm weight, bias            | LayerNormalization gamma, beta        | as is                |
| MultiheadAttention in_proj_weight | MultiHeadAttention query, key, value  | split in 3, each     |
|   (3D, D), in_proj_bias (3D,)     |   kernels (D, H, D/H), biases (H, D/H)| transposed, reshaped |
| out_proj.weight (D, D), .bias     | attention_output kernel (H, D/H, D)   | transpose + reshape  |
| a bare parameter (class_token,    | ClassToken, PositionEmbedding weight  | as is                |
|   encoder.pos_embedding)          |                                       |                      |
| a bare parameter layer_scale      | LayerScale gamma (C,)                 | trailing 1s dropped  |
|   (C, 1, 1) (timm: gamma (C,))    |                                       |                      |

Names are relative to the layer's name (its module path): "out_proj.weight" is a submodule's
tensor, and `PARAMETER` ("") is a parameter named like the layer itself (torchvision's ViT
keeps `class_token` and `encoder.pos_embedding` as bare parameters, not modules).

Keras splits grouped-convolution channels into the same contiguous groups as PyTorch, so a
grouped kernel needs no more than the plain transpose.

A position embedding trained on another grid of patches is resampled to the model's grid
(`resample_position_embedding`, bicubic, as timm's resample_abs_pos_embed).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_zoo import checks

# PyTorch tensor names each Keras layer type consumes, in the order of layer.get_weights().
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")
IGNORED_KEYS = ("num_batches_tracked",)
PARAMETER = ""  # the tensor whose full name is the layer's name
# keras_zoo's layers holding one bare torch parameter, known by their class path: the porter
# imports nothing from the zoo (tests/test_weights.py)
PARAMETER_LAYERS = (
    "keras_zoo.layers.ClassToken",
    "keras_zoo.layers.PositionEmbedding",
    "keras_zoo.layers.LayerScale",
)
# of those, the layers whose weight is one value per channel, (C,), which torch may keep with
# trailing axes of 1 (torchvision's ConvNeXt layer_scale is (C, 1, 1))
CHANNEL_LAYERS = ("keras_zoo.layers.LayerScale",)
_ATTENTION_KEYS = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")


def torch_keys(layer: keras.layers.Layer) -> tuple[str, ...]:
    """The PyTorch parameter names (after the module path) that fill `layer`'s weights."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return _BN_KEYS
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
        return ("weight", "bias") if layer.use_bias else ("weight",)
    if isinstance(layer, keras.layers.LayerNormalization):
        return ("weight", "bias")
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return _ATTENTION_KEYS
    if _class_path(layer) in PARAMETER_LAYERS:
        return (PARAMETER,)
    raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) has no PyTorch layout")


def keras_weights_from_torch(layer: keras.layers.Layer, tensors: dict[str, np.ndarray]) -> list:
    """`layer`'s weights, in get_weights() order, from its module's PyTorch tensors."""
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return _attention_weights(layer, tensors)
    out = []
    for key in torch_keys(layer):
        t = np.asarray(tensors[key])
        if key == "weight" and isinstance(layer, keras.layers.DepthwiseConv2D):
            c_m, _, kh, kw = t.shape
            channels = layer.kernel.shape[2]
            # a tensor of another width keeps its own channels, and its shape is reported
            multiplier = c_m // channels if c_m % channels == 0 else 1
            # torch output channel c*m + j is input channel c's j-th filter
            t = t.reshape(-1, multiplier, kh, kw).transpose(2, 3, 0, 1)
        elif key == "weight" and isinstance(layer, keras.layers.Conv2D):
            t = t.transpose(2, 3, 1, 0)
        elif key == "weight" and isinstance(layer, keras.layers.Dense):
            t = t.T
        elif _class_path(layer) in CHANNEL_LAYERS and t.ndim > 1 and set(t.shape[1:]) == {1}:
            t = t.reshape(t.shape[0])
        out.append(np.ascontiguousarray(t))
    return out


def _class_path(layer: keras.layers.Layer) -> str:
    return f"{type(layer).__module__}.{type(layer).__qualname__}"


def shape_hint(layer: keras.layers.Layer, tensors: dict[str, np.ndarray]) -> str:
    """What to do about a checkpoint tensor of another shape than `layer` needs ("" if
    nothing specific): a position embedding trained on another grid of patches."""
    if _class_path(layer) != "keras_zoo.layers.PositionEmbedding":
        return ""
    have, need = np.shape(tensors[PARAMETER]), tuple(layer.pos_embedding.shape)
    if len(have) != 3 or have[2] != need[2]:
        return ""
    return (
        f"; the checkpoint's position embedding has {have[1]} tokens, the model {need[1]}: "
        "keras_zoo.build(..., weights=...) resamples it to the model's grid; with a "
        "state_dict of your own, pass it through keras_zoo.port.resample_position_embedding"
    )


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    # the bicubic convolution kernel of PIL and of torch's antialiased bicubic (a = -0.5)
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _resample_matrix(old: int, new: int) -> np.ndarray:
    """(new, old) weights of antialiased bicubic resampling along one axis, with half-pixel
    centres (align_corners=False), as torch's interpolate(mode="bicubic", antialias=True):
    the kernel is widened by the scale when shrinking, each row's weights sum to 1."""
    scale = old / new
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    matrix = np.zeros((new, old))
    for i in range(new):
        centre = scale * (i + 0.5)
        start = max(int(centre - support + 0.5), 0)
        stop = min(int(centre + support + 0.5), old)
        taps = np.arange(start, stop)
        w = _cubic((taps - centre + 0.5) / stretch)
        matrix[i, start:stop] = w / w.sum()
    return matrix


def resample_position_embedding(
    embedding: np.ndarray,
    grid: tuple[int, int],
    *,
    old_grid: tuple[int, int] | None = None,
    prefix_tokens: int = 1,
) -> np.ndarray:
    """A ViT position embedding (1, prefix_tokens + rows * columns, d) resampled to `grid`
    (rows, columns), as timm's resample_abs_pos_embed does: the prefix (class) tokens kept, the
    patch positions resized as a (rows, columns) image by bicubic interpolation with antialias
    (torch's interpolate(mode="bicubic", antialias=True), half-pixel centres). `old_grid`
    defaults to the square the checkpoint's patches make. Computed in float64; returns the
    embedding's dtype.

    >>> e = np.random.default_rng(0).normal(size=(1, 1 + 14 * 14, 8)).astype("float32")
    >>> r = resample_position_embedding(e, (24, 20))
    >>> r.shape, r.dtype, bool((r[:, 0] == e[:, 0]).all())
    ((1, 481, 8), dtype('float32'), True)
    """
    embedding = np.asarray(embedding)
    rows, columns = (checks.check_positive_int(g, "grid") for g in grid)
    if embedding.ndim != 3 or embedding.shape[0] != 1:
        raise ValueError(
            f"resample_position_embedding needs an embedding of shape (1, tokens, d), got "
            f"{embedding.shape}"
        )
    patches = embedding.shape[1] - prefix_tokens
    if old_grid is None:
        side = int(round(patches**0.5))
        old_grid = (side, side)
    if patches < 1 or old_grid[0] * old_grid[1] != patches:
        raise ValueError(
            f"resample_position_embedding: {embedding.shape[1]} tokens are not "
            f"{prefix_tokens} prefix tokens and a {old_grid[0]}x{old_grid[1]} grid of patches; "
            "pass old_grid=(rows, columns)"
        )
    if tuple(old_grid) == (rows, columns):
        return embedding.copy()
    d = embedding.shape[2]
    image = embedding[0, prefix_tokens:].astype(np.float64).reshape(*old_grid, d)
    image = np.einsum(
        "ia,jb,abd->ijd",
        _resample_matrix(old_grid[0], rows),
        _resample_matrix(old_grid[1], columns),
        image,
    )
    out = np.concatenate([embedding[0, :prefix_tokens], image.reshape(rows * columns, d)])
    return out[None].astype(embedding.dtype)


def _attention_weights(
    layer: keras.layers.MultiHeadAttention, tensors: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """torch's packed nn.MultiheadAttention tensors as Keras' query, key, value and output
    kernels and biases. Output channel h * (D / H) + j of torch's projections is head h's j-th
    channel; Keras' kernels keep the heads as their own axis."""
    heads = layer.num_heads
    in_w = np.asarray(tensors["in_proj_weight"])  # (3 D, D): q, k, v, each (out, in)
    in_b = np.asarray(tensors["in_proj_bias"])
    out_w = np.asarray(tensors["out_proj.weight"])  # (D, D) (out, in)
    out_b = np.asarray(tensors["out_proj.bias"])
    if in_w.ndim != 2 or in_w.shape[0] % 3 or in_b.shape != (in_w.shape[0],):
        raise ValueError(
            f"{layer.name}: in_proj_weight must be (3 D, D) with in_proj_bias (3 D,); got "
            f"{in_w.shape} and {in_b.shape}"
        )
    values = []
    for w, b in zip(np.split(in_w, 3), np.split(in_b, 3)):
        values += [w.T.reshape(w.shape[1], heads, -1), b.reshape(heads, -1)]
    values += [out_w.T.reshape(heads, -1, out_w.shape[0]), out_b]
    return [np.ascontiguousarray(v) for v in values]


def adapt_input_conv(weight: np.ndarray, in_channels: int) -> np.ndarray:
    """An RGB first convolution's PyTorch weight (O, 3, kh, kw) for `in_channels` inputs, as
    timm's `adapt_input_conv` makes it: 1 channel sums the RGB filters; other counts repeat
    them (R, G, B, R, ...) up to `in_channels` and scale by 3 / in_channels, which keeps the
    filters' sum over the inputs when in_channels is a multiple of 3 (2 channels: R and G
    times 3/2); 3 is unchanged.

    Returns a new array of the weight's float dtype (float16 is computed in float32, as timm
    does). Transform to Keras' layout afterwards, like any convolution weight.

    >>> w = np.ones((8, 3, 3, 3))
    >>> adapt_input_conv(w, 1).shape, adapt_input_conv(w, 5)[0, :, 0, 0].tolist()
    ((8, 1, 3, 3), [0.6, 0.6, 0.6, 0.6, 0.6])
    """
    in_channels = checks.check_positive_int(in_channels, "in_channels")
    weight = np.asarray(weight)
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(
            f"adapt_input_conv needs a PyTorch first-conv weight (O, 3, kh, kw), "
            f"got shape {weight.shape}"
        )
    if not np.issubdtype(weight.dtype, np.floating):
        raise ValueError(f"adapt_input_conv needs a float weight, got {weight.dtype}")
    if in_channels == 3:
        return weight.copy()
    w = weight.astype(np.promote_types(weight.dtype, np.float32))
    if in_channels == 1:
        w = w.sum(axis=1, keepdims=True)
    else:
        w = np.tile(w, (1, -(-in_channels // 3), 1, 1))[:, :in_channels] * (3 / in_channels)
    return w.astype(weight.dtype)
