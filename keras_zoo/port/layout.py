"""The one place where PyTorch tensor layouts become Keras weight layouts, per layer type.

| PyTorch                           | Keras                                | transform             |
|-----------------------------------|--------------------------------------|-----------------------|
| Conv2d weight (O, I/g, kh, kw)    | Conv2D kernel (kh, kw, I/g, O)       | transpose(2, 3, 1, 0) |
| depthwise weight (C*m, 1, kh, kw) | DepthwiseConv2D kernel (kh, kw, C, m)| transpose + reshape   |
| Linear weight (out, in)           | Dense kernel (in, out)               | transpose             |
| BatchNorm2d weight, bias, running_mean, running_var | gamma, beta, moving_mean, moving_variance | as is |

Keras splits grouped-convolution channels into the same contiguous groups as PyTorch, so a
grouped kernel needs no more than the plain transpose.
"""

from __future__ import annotations

import keras
import numpy as np

# PyTorch tensor names each Keras layer type consumes, in the order of layer.get_weights().
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")
IGNORED_KEYS = ("num_batches_tracked",)


def torch_keys(layer: keras.layers.Layer) -> tuple[str, ...]:
    """The PyTorch parameter names (after the module path) that fill `layer`'s weights."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return _BN_KEYS
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
        return ("weight", "bias") if layer.use_bias else ("weight",)
    raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) has no PyTorch layout")


def keras_weights_from_torch(layer: keras.layers.Layer, tensors: dict[str, np.ndarray]) -> list:
    """`layer`'s weights, in get_weights() order, from its module's PyTorch tensors."""
    out = []
    for key in torch_keys(layer):
        t = np.asarray(tensors[key])
        if key == "weight" and isinstance(layer, keras.layers.DepthwiseConv2D):
            c_m, _, kh, kw = t.shape
            multiplier = c_m // layer.kernel.shape[2]
            # torch output channel c*m + j is input channel c's j-th filter
            t = t.reshape(-1, multiplier, kh, kw).transpose(2, 3, 0, 1)
        elif key == "weight" and isinstance(layer, keras.layers.Conv2D):
            t = t.transpose(2, 3, 1, 0)
        elif key == "weight" and isinstance(layer, keras.layers.Dense):
            t = t.T
        out.append(np.ascontiguousarray(t))
    return out
