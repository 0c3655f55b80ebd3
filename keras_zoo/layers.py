"""Keras layers of keras_zoo's own, registered for serialization under the package "keras_zoo".

The feature markers (`FeatureOutput`, `StageOutput`) and their readers (`stage_outputs`,
`token_grid`) live in `keras_zoo.features`; these names are theirs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

from keras_zoo.features import (  # noqa: F401  (public names of keras_zoo.layers too)
    FeatureOutput,
    StageOutput,
    TokenGrid,
    apply_stages,
    stage_output,
    stage_outputs,
    token_grid,
)

if TYPE_CHECKING:
    import numpy as np


@keras.saving.register_keras_serializable(package="keras_zoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization with PyTorch's running variance and, where `fused`, TensorFlow's
    fused kernel in inference.

    Training normalises with the batch's (biased) variance as both frameworks do, and moves
    `moving_variance` towards the unbiased one (times n / (n - 1), n the values per channel,
    over all replicas when synchronized), as torch.nn.BatchNorm2d moves running_var, where
    Keras' own layer moves it towards the biased one: a model trained here keeps torch's
    statistics, step for step (tests/test_recipes_optim.py). Masks and renorm are Keras' own
    code.

    fused: where Keras normalises with the moving statistics (inference, or a frozen layer in
    training) a 4-D channels-last float input goes through FusedBatchNormV3, which
    TensorFlow's graph optimiser merges into a plain Conv2D before it; everything else
    (other ranks, float64, other backends) is Keras' arithmetic. The two paths agree to
    float32 rounding (tests/test_layers.py). Standing alone (after a depthwise convolution)
    the fused kernel is slower than Keras' multiply-add, so keras_zoo.blocks.batch_norm sets
    fused only after a Conv2D that TensorFlow computes as one op (plain, or keras_zoo's
    Conv2D). The weights and their names are Keras'.
    """

    def __init__(self, *args: Any, fused: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fused = fused

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fused": self.fused}

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if training and self.trainable:
            if mask is not None or self.renorm:
                return super().call(inputs, training=training, mask=mask)
            return self._train(inputs)
        if not self.fused or not self._fusable(inputs):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        def weight(variable, default):  # gamma and beta are None without scale / center
            if variable is None:
                return tf.fill([inputs.shape[-1]], default)
            return tf.cast(variable, tf.float32)

        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            tf.cast(inputs, tf.float32),
            weight(self.gamma, 1.0),
            weight(self.beta, 0.0),
            mean=weight(self.moving_mean, 0.0),
            variance=weight(self.moving_variance, 1.0),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=False,
        )
        return tf.cast(outputs, self.compute_dtype)

    def _train(self, inputs: Any) -> Any:
        """A training step's normalisation and its update of the moving statistics."""
        ops = keras.ops
        # as Keras' layer: statistics in float32 at least (float16 overflows)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        channel = self.axis % len(x.shape)
        axes = [i for i in range(len(x.shape)) if i != channel]
        mean, variance = ops.moments(x, axes, synchronized=self.synchronized)
        shape = ops.shape(x)
        count = ops.cast(math.prod(shape[i] for i in axes), x.dtype)
        if self.synchronized:
            count = _sum_over_replicas(count)
        unbiased = variance * count / ops.maximum(count - 1, 1)
        keep = self.momentum
        self.moving_mean.assign(ops.cast(self.moving_mean, x.dtype) * keep + mean * (1.0 - keep))
        self.moving_variance.assign(
            ops.cast(self.moving_variance, x.dtype) * keep + unbiased * (1.0 - keep)
        )
        outputs = ops.batch_normalization(
            x,
            mean,
            variance,
            axis=self.axis,
            offset=None if self.beta is None else ops.cast(self.beta, x.dtype),
            scale=None if self.gamma is None else ops.cast(self.gamma, x.dtype),
            epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs) -> bool:
        """A 4-D channels-last input of float16, bfloat16 or float32, on TensorFlow."""
        return (
            keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in ("float16", "bfloat16", "float32")
        )


def _sum_over_replicas(value: Any) -> Any:
    """`value` summed over the replicas of a tf.distribute strategy in a replica context (what
    a synchronized batch norm's statistics are computed over); itself elsewhere."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


@keras.saving.register_keras_serializable(package="keras_zoo")
class Conv2D(keras.layers.Conv2D):
    """Keras' Conv2D, whose grouped convolutions TensorFlow computes with its own kernel.

    Keras 3 on TensorFlow runs every grouped convolution as an XLA-compiled function of its
    own, called from the model's graph, because TensorFlow's CPU kernels do not differentiate
    grouped convolutions. They do compute them, and oneDNN's (TensorFlow's default on x86 CPUs
    with AVX-512; float32 and bfloat16) also differentiate them. This layer gives the grouped
    convolution to TensorFlow as one Conv2D op on the whole tensor; where TensorFlow cannot
    differentiate it, the gradient alone is computed by XLA, as Keras computes it
    (`grouped_conv_support`). On the CPU that makes ResNeXt-50 and ShuffleNet V1 faster in
    inference and in training, lets TensorFlow merge the batch norm after it, and lets
    tf2onnx export the model (it cannot convert Keras' nested function);
    scripts/bench_grouped_conv.py measures it. The kernel (kh, kw, in / groups, out), its
    variable names and the result are Keras' Conv2D's: saved weights, the .pth porter and
    fold_batchnorm see a Conv2D (tests/test_layers.py).

    >>> import numpy as np
    >>> conv = Conv2D(6, 3, groups=3)
    >>> tuple(conv(np.zeros((1, 5, 5, 6), "float32")).shape), tuple(conv.kernel.shape)
    ((1, 3, 3, 6), (3, 3, 2, 6))
    """

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        support = None
        if (
            self.groups > 1
            and keras.backend.backend() == "tensorflow"
            and self.data_format == "channels_last"
        ):
            support = grouped_conv_support(keras.backend.standardize_dtype(inputs.dtype))
        if support is None:
            return super().convolution_op(inputs, kernel)
        if support == "tensorflow":
            return self.tensorflow_convolution(inputs, kernel)
        import tensorflow as tf

        return _conv_with_xla_gradient(
            inputs,
            tf.convert_to_tensor(kernel),
            strides=self.strides,
            padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )

    def tensorflow_convolution(self, inputs: Any, kernel: Any) -> Any:
        """The convolution as one TensorFlow Conv2D op (what inference and export need)."""
        import tensorflow as tf

        return tf.nn.convolution(
            inputs, kernel, self.strides, self.padding.upper(), dilations=self.dilation_rate
        )


@functools.cache
def grouped_conv_support(dtype: str) -> str | None:
    """How TensorFlow handles a grouped convolution in `dtype` on the CPU, asked once per
    dtype: "tensorflow" where its kernels compute and differentiate it (oneDNN's, in float32
    and bfloat16), "forward" where they compute it but refuse the gradients (TensorFlow's own
    kernels, and oneDNN's in other dtypes), None where they refuse it."""
    import tensorflow as tf

    with tf.init_scope(), tf.device("CPU"):  # eager, also while a model is being traced
        x = tf.ones((1, 1, 1, 2), dtype)  # one pixel of 2 channels, 2 groups of 1 channel
        kernel = tf.ones((1, 1, 1, 2), dtype)
        args = {"strides": [1, 1, 1, 1], "padding": "VALID"}
        try:
            tf.raw_ops.Conv2D(input=x, filter=kernel, **args)
        except tf.errors.OpError:
            return None
        try:
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=x.shape, filter=kernel, out_backprop=x, **args
            )
            tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=kernel.shape, out_backprop=x, **args
            )
        except tf.errors.OpError:
            return "forward"
    return "tensorflow"


def _conv_with_xla_gradient(inputs, kernel, *, strides, padding, dilations):
    """TensorFlow's grouped convolution, whose gradient an XLA-compiled function computes."""
    import tensorflow as tf

    @tf.custom_gradient
    def conv(x, k):
        def gradient(dy):
            return _xla_conv_gradient()(x, k, dy, tuple(strides), padding, tuple(dilations))

        y = tf.nn.convolution(x, k, strides, padding, dilations=dilations)
        # Snapshot (which forwards its input's buffer) keeps TensorFlow's graph optimiser
        # from fusing the convolution with a bias, batch norm or activation after it: its
        # fused CPU kernel refuses grouped convolutions at run time
        return tf.raw_ops.Snapshot(input=y), gradient

    return conv(inputs, kernel)


@functools.cache
def _xla_conv_gradient():
    """The gradients (input, kernel) of a convolution, as one XLA-compiled function (XLA
    differentiates grouped convolutions on every device)."""
    import tensorflow as tf

    @tf.function(jit_compile=True, reduce_retracing=True)
    def gradient(x, k, dy, strides, padding, dilations):
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            y = tf.nn.convolution(x, k, strides, padding, dilations=dilations)
        return tape.gradient(y, [x, k], output_gradients=dy)

    return gradient


@keras.saving.register_keras_serializable(package="keras_zoo")
class ChannelShuffle(keras.layers.Layer):
    """ShuffleNet's channel shuffle: channels split into `groups` groups, interleaved.

    Output channel i * groups + j is input channel j * (C / groups) + i (PyTorch's view to
    (groups, C / groups), transpose, flatten). It is computed as a 3-D reshape/transpose over
    (N * H * W, groups, C / groups), never a 5-D transpose (which TFLite conversion rejects).
    """

    def __init__(self, groups: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def build(self, input_shape: Any) -> None:
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(
                f"{self.name}: channels ({channels}) must be divisible by groups ({self.groups})"
            )

    def permutation(self, channels: int) -> np.ndarray:
        """The input channel of each output channel, as an int64 array.

        >>> ChannelShuffle(2).permutation(6).tolist()
        [0, 3, 1, 4, 2, 5]
        """
        import numpy as np

        return np.arange(channels).reshape(self.groups, channels // self.groups).T.reshape(-1)

    def call(self, x: Any) -> Any:
        shape = keras.ops.shape(x)
        channels = x.shape[-1]
        y = keras.ops.reshape(x, (-1, self.groups, channels // self.groups))
        y = keras.ops.transpose(y, (0, 2, 1))
        return keras.ops.reshape(y, shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="keras_zoo")
class ChannelSplit(keras.layers.Layer):
    """The two halves of the channels (PyTorch's x.chunk(2, dim=1)), as two outputs."""

    def call(self, x: Any) -> list[Any]:
        half = x.shape[-1] // 2
        return [x[..., :half], x[..., half:]]

    def compute_output_shape(self, input_shape: Any) -> list[Any]:
        half = (*input_shape[:-1], input_shape[-1] // 2)
        return [half, half]


@keras.saving.register_keras_serializable(package="keras_zoo")
class TemperatureSoftmax(keras.layers.Layer):
    """softmax(logits / temperature): temperature > 1 smooths the distribution towards
    uniform, < 1 sharpens it towards the arg-max; 1 is the plain softmax.

    >>> import numpy as np
    >>> probs = TemperatureSoftmax(2.0)(np.array([[2.0, 0.0]]))
    >>> [round(float(p), 4) for p in probs[0]]  # softmax([1, 0])
    [0.7311, 0.2689]
    """

    def __init__(self, temperature: float = 1.0, **kwargs: Any):
        from keras_zoo.checks import check_positive_number

        super().__init__(**kwargs)
        self.temperature = float(check_positive_number(temperature, "temperature"))

    def call(self, logits: Any) -> Any:
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="keras_zoo")
class Normalize(keras.layers.Layer):
    """RGB values in [0, 255] to what a weight set takes: (x / 255 - mean) / std per channel,
    then the channels reversed for weights trained on BGR images. What
    `build(..., include_preprocessing=True)` puts after the input, so that an exported model
    takes raw images (keras.applications' MobileNetV3 convention).

    >>> import numpy as np
    >>> layer = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    >>> np.asarray(layer(np.array([[0.0, 127.5, 255.0]]))).tolist()
    [[-2.0, 0.0, 2.0]]
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        channel_order: str = "RGB",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.channel_order = channel_order

    def build(self, input_shape: Any) -> None:
        if input_shape[-1] != len(self.mean):
            raise ValueError(
                f"include_preprocessing normalises {len(self.mean)}-channel RGB images; the "
                f"input has {input_shape[-1]} channels"
            )

    def call(self, inputs: Any) -> Any:
        scale = keras.ops.convert_to_tensor([1 / (255 * s) for s in self.std], self.compute_dtype)
        shift = keras.ops.convert_to_tensor(
            [m / s for m, s in zip(self.mean, self.std)], self.compute_dtype
        )
        x = keras.ops.cast(inputs, self.compute_dtype) * scale - shift
        return keras.ops.flip(x, axis=-1) if self.channel_order == "BGR" else x

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mean": self.mean,
            "std": self.std,
            "channel_order": self.channel_order,
        }


@keras.saving.register_keras_serializable(package="keras_zoo")
class ResizeAndCrop(keras.layers.Layer):
    """Images resized as torchvision's and timm's evaluation transforms resize them (PIL's
    antialiased resampling): the shorter side to `size`, the longer one to
    floor(size * longer / shorter), so the aspect ratio is kept; then, with `crop` (an int or
    (height, width)), the centre cut out as torchvision's CenterCrop cuts it (offsets
    (resized - crop) / 2 rounded half to even).

    `interpolation` is "bilinear", "bicubic" or "nearest". With `eight_bit` (the default) the
    arithmetic is PIL's on 8-bit images: the width resampled first, then the height, each
    result rounded to integers in [0, 255]; this makes the output equal to torchvision's on
    the same uint8 image to within one level (tests/test_preprocessing.py). eight_bit=False
    resamples once in float, unclipped (torchvision's float tensors).

    Takes RGB values in [0, 255] of any dtype: a batch (N, H, W, C) of images of one size, or
    one image (H, W, C); returns float32 values in [0, 255]. `resize` is the step before the
    crop, for training pipelines that crop at random. TensorFlow ops (sizes are dynamic).

    >>> import numpy as np
    >>> layer = ResizeAndCrop(8, crop=6)
    >>> tuple(layer(np.zeros((2, 10, 20, 3), "uint8")).shape)
    (2, 6, 6, 3)
    >>> tuple(layer.resize(np.zeros((10, 20, 3))).shape)  # one image, not cropped
    (8, 16, 3)
    """

    def __init__(
        self,
        size: int,
        crop: int | Sequence[int] | None = None,
        interpolation: str = "bilinear",
        eight_bit: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if interpolation not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(
                f"interpolation must be 'bilinear', 'bicubic' or 'nearest', got {interpolation!r}"
            )
        self.size = int(size)
        crop = (crop, crop) if isinstance(crop, int) else crop
        self.crop = None if crop is None else tuple(int(c) for c in crop)
        if (
            self.size < 1
            or self.crop is not None
            and not 0 < min(self.crop) <= max(self.crop) <= self.size
        ):
            raise ValueError(
                f"size must be positive and crop at most size (the shorter side "
                f"after resizing), got size={size!r}, crop={crop!r}"
            )
        self.interpolation = interpolation
        self.eight_bit = bool(eight_bit)

    def resize(self, images: Any) -> Any:
        """`images` with the shorter side resized to `size` (no crop), as float32."""
        import tensorflow as tf

        x = tf.convert_to_tensor(images)
        single = x.shape.rank == 3
        x = tf.cast(x[None] if single else x, tf.float32)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        # torchvision: int(size * long / short); integer arithmetic floors it exactly
        longer = self.size * tf.maximum(height, width) // tf.minimum(height, width)
        wide = height < width
        new_height = tf.where(wide, self.size, longer)
        new_width = tf.where(wide, longer, self.size)
        if self.eight_bit:  # PIL: a horizontal pass, then a vertical one, each to 8 bits
            x = self._resample(x, height, new_width)
        x = self._resample(x, new_height, new_width)
        return x[0] if single else x

    def _resample(self, x, height, width):
        import tensorflow as tf

        x = tf.image.resize(x, tf.stack([height, width]), method=self.interpolation, antialias=True)
        return tf.clip_by_value(tf.round(x), 0.0, 255.0) if self.eight_bit else x

    def call(self, images: Any) -> Any:
        import tensorflow as tf

        x = self.resize(images)
        if self.crop is not None:
            single = x.shape.rank == 3
            x = x[None] if single else x
            shape = tf.shape(x)
            # torchvision: int(round((resized - crop) / 2.0)), Python's round half to even
            top, left = (
                tf.cast(tf.round(tf.cast(shape[axis] - c, tf.float32) / 2), tf.int32)
                for axis, c in ((1, self.crop[0]), (2, self.crop[1]))
            )
            x = tf.slice(x, tf.stack([0, top, left, 0]), [-1, *self.crop, -1])
            x = x[0] if single else x
        x = tf.ensure_shape(x, self.compute_output_shape(tuple(images.shape)))
        return tf.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        spatial = self.crop if self.crop is not None else (None, None)
        return (*input_shape[:-3], *spatial, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size": self.size,
            "crop": self.crop,
            "interpolation": self.interpolation,
            "eight_bit": self.eight_bit,
        }


@keras.saving.register_keras_serializable(package="keras_zoo")
class ClassToken(keras.layers.Layer):
    """A learned token put before a sequence of tokens: (batch, n, d) -> (batch, 1 + n, d).

    Its one weight, `class_token` of shape (1, 1, d), is torchvision's ViT `class_token`.

    >>> import numpy as np
    >>> tuple(ClassToken()(np.zeros((2, 4, 8), "float32")).shape)
    (2, 5, 8)
    """

    def build(self, input_shape: Any) -> None:
        self.class_token = self.add_weight(
            shape=(1, 1, int(input_shape[-1])), initializer="zeros", name="class_token"
        )

    def call(self, x: Any) -> Any:
        ops = keras.ops
        token = ops.broadcast_to(
            ops.cast(self.class_token, x.dtype), (ops.shape(x)[0], 1, ops.shape(x)[-1])
        )
        return ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])


@keras.saving.register_keras_serializable(package="keras_zoo")
class PositionEmbedding(keras.layers.Layer):
    """A learned embedding added to every position of a fixed-length sequence of tokens.

    Its one weight, `pos_embedding` of shape (1, length, d), is torchvision's ViT
    `encoder.pos_embedding`. `grid` (rows, columns), when given, says that the positions after
    the first `prefix_tokens` (a class token) are patches of that grid in row-major order, which
    is what lets an embedding trained on another grid be resampled to this one
    (`keras_zoo.port.resample_position_embedding`). Where the tokens lie on the image is the
    feature outputs' record (`keras_zoo.features.token_grid`).

    >>> import numpy as np
    >>> tuple(PositionEmbedding(grid=(2, 2), prefix_tokens=1)(np.zeros((2, 5, 8), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(
        self, grid: tuple[int, int] | None = None, prefix_tokens: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.grid = None if grid is None else (int(grid[0]), int(grid[1]))
        self.prefix_tokens = int(prefix_tokens)

    def build(self, input_shape: Any) -> None:
        if input_shape[1] is None:
            raise ValueError(
                f"{self.name}: a position embedding needs a fixed sequence length; "
                f"got input shape {tuple(input_shape)}"
            )
        if self.grid is not None and self.prefix_tokens + math.prod(self.grid) != input_shape[1]:
            raise ValueError(
                f"{self.name}: {self.prefix_tokens} prefix tokens and a {self.grid} grid make "
                f"{self.prefix_tokens + math.prod(self.grid)} tokens, the input has "
                f"{input_shape[1]}"
            )
        self.pos_embedding = self.add_weight(
            shape=(1, int(input_shape[1]), int(input_shape[2])),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="pos_embedding",
        )

    def call(self, x: Any) -> Any:
        return x + keras.ops.cast(self.pos_embedding, x.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "grid": self.grid, "prefix_tokens": self.prefix_tokens}


@keras.saving.register_keras_serializable(package="keras_zoo")
class TokensToMap(keras.layers.Layer):
    """(batch, prefix_tokens + rows * columns, d) tokens -> the (batch, rows, columns, d) map of
    the patch tokens, the prefix tokens dropped: a transformer block's output as a feature map.

    >>> import numpy as np
    >>> tuple(TokensToMap((2, 3), 1)(np.zeros((4, 7, 8), "float32")).shape)
    (4, 2, 3, 8)
    """

    def __init__(self, grid: tuple[int, int], prefix_tokens: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.grid = (int(grid[0]), int(grid[1]))
        self.prefix_tokens = int(prefix_tokens)

    def call(self, x: Any) -> Any:
        patches = x[:, self.prefix_tokens :]
        return keras.ops.reshape(patches, (-1, *self.grid, patches.shape[-1]))

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (input_shape[0], *self.grid, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "grid": self.grid, "prefix_tokens": self.prefix_tokens}


@keras.saving.register_keras_serializable(package="keras_zoo")
class DropPath(keras.layers.Layer):
    """Stochastic depth (Huang et al., 2016) as timm's DropPath computes it, for the residual
    branch of a block, before the addition: in training, each example's branch is kept with
    probability 1 - rate and then scaled by 1 / (1 - rate), or zeroed whole (one Bernoulli
    draw per example, broadcast over its other axes), so that its expected value is
    unchanged; at inference, and at rate 0, the identity. A block dropped this way passes on
    its shortcut alone, which trains a deep network as an ensemble of shallower ones.

    `keep_mask` draws the per-example keep mask (0 or 1); the scaling and broadcasting are
    `call`'s. The layer has no weights (its random state is a Keras SeedGenerator's).

    >>> import numpy as np
    >>> layer = DropPath(0.25)
    >>> np.asarray(layer(np.ones((2, 3), "float32"), training=False)).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        from keras_zoo.checks import check_fraction

        super().__init__(**kwargs)
        self.rate = check_fraction(rate, "rate")
        self.seed = seed
        # as Keras' Dropout: a generator only where something is drawn
        self.seed_generator = keras.random.SeedGenerator(seed) if self.rate else None

    def keep_mask(self, batch_size: Any) -> Any:
        """A (batch_size,) float32 tensor of 1s (kept, probability 1 - rate) and 0s."""
        draws = keras.random.uniform((batch_size,), seed=self.seed_generator, dtype="float32")
        return keras.ops.cast(draws < 1.0 - self.rate, "float32")

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training or not self.rate:
            return x
        keep = 1.0 - self.rate
        # timm's order: the mask divided by the keep probability, then the product
        scale = keras.ops.cast(self.keep_mask(keras.ops.shape(x)[0]), x.dtype) / keep
        return x * keras.ops.reshape(scale, (-1,) + (1,) * (len(x.shape) - 1))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def drop_path_rates(drop_path_rate: float, blocks: int) -> list[float]:
    """timm's stochastic depth schedule: the rate of each of `blocks` residual blocks, rising
    linearly from 0 (the first block) to `drop_path_rate` (the last), block i's
    drop_path_rate * i / (blocks - 1) (timm's resnet computes it so; its ViT takes
    torch.linspace(0, drop_path_rate, blocks), the same values rounded to float32).

    >>> drop_path_rates(0.1, 3)
    [0.0, 0.05, 0.1]
    """
    if blocks < 2:
        return [0.0] * blocks
    return [drop_path_rate * i / (blocks - 1) for i in range(blocks)]


@keras.saving.register_keras_serializable(package="keras_zoo")
class LayerScale(keras.layers.Layer):
    """A learned scale per channel (the last axis) of a residual branch, before the addition
    (Touvron et al., 2021; ConvNeXt's layer scale): x * gamma.

    Its one weight, `gamma` of shape (channels,), starts at `init_value` (ConvNeXt's 1e-6, so
    that each block begins close to the identity). torchvision's ConvNeXt keeps it as the
    parameter `layer_scale` of shape (channels, 1, 1), timm's as `gamma` of shape (channels,):
    the porter takes either (`keras_zoo.port.tensors`).

    >>> import numpy as np
    >>> layer = LayerScale(0.5)
    >>> np.asarray(layer(np.ones((1, 2, 3), "float32"))).tolist(), tuple(layer.gamma.shape)
    ([[[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]], (3,))
    """

    def __init__(self, init_value: float = 1e-6, **kwargs: Any) -> None:
        from keras_zoo.checks import check_positive_number

        super().__init__(**kwargs)
        self.init_value = float(check_positive_number(init_value, "init_value"))

    def build(self, input_shape: Any) -> None:
        if input_shape[-1] is None:
            raise ValueError(f"{self.name}: a layer scale needs a known number of channels")
        self.gamma = self.add_weight(
            shape=(int(input_shape[-1]),),
            initializer=keras.initializers.Constant(self.init_value),
            name="gamma",
        )

    def call(self, x: Any) -> Any:
        return x * keras.ops.cast(self.gamma, x.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "init_value": self.init_value}
