"""Layer-by-layer comparison of a Keras model with a PyTorch module, for debugging ports.

Layers are paired by name: a Keras layer named like a PyTorch module path ("layer1.0.conv2",
or a block's output "layer1.0") is compared with that module's output. The first pair whose
relative error exceeds the tolerance is where the port goes wrong.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np


def relative_error(a: Any, b: Any) -> float:
    """max |a - b| / max |b| in float64, the one measure of error against a reference `b`
    (ports, exports, tests); inf when either holds a non-finite value or when `b` is all zero
    and `a` is not (0 when both are).

    >>> relative_error([1.0, 3.0], [1.0, 4.0])
    0.25
    >>> relative_error([0.0], [0.0]), relative_error([1e-9], [0.0])
    (0.0, inf)
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    difference, scale = np.abs(a - b).max(), np.abs(b).max()
    if scale == 0:
        return 0.0 if difference == 0 else float("inf")
    return float(difference / scale)


@dataclasses.dataclass(frozen=True)
class LayerDiff:
    name: str
    shape: tuple[int, ...]
    error: float  # relative_error(keras, torch)


@dataclasses.dataclass(frozen=True)
class Comparison:
    rows: list[LayerDiff]
    tolerance: float

    @property
    def first_divergence(self) -> LayerDiff | None:
        """The first layer, in the Keras graph's order, whose error exceeds the tolerance."""
        return next((row for row in self.rows if not row.error <= self.tolerance), None)

    def __str__(self) -> str:
        lines = [f"{'layer':<32} {'shape':<20} {'rel. error':>10}"]
        for row in self.rows:
            mark = "  <- first divergence" if row is self.first_divergence else ""
            lines.append(f"{row.name:<32} {str(row.shape):<20} {row.error:>10.2e}{mark}")
        return "\n".join(lines)


def compare(
    model: keras.Model, module: Any, images: np.ndarray, *, tolerance: float = 2e-5
) -> Comparison:
    """Runs `images` (NHWC) through both and compares every pair of same-named layers.

    PyTorch outputs are captured with forward hooks and cloned at once, since in-place
    activations (ReLU(inplace=True), Hardswish) would overwrite them. Modules called more than
    once per forward pass are not compared.

    Example::

        report = compare(keras_model, torch_module, images)
        print(report)                   # every paired layer with its relative error
        report.first_divergence         # LayerDiff(name='layer2.0.conv1', ...) or None
    """
    import torch

    images = np.asarray(images, dtype="float32")
    keras_names = [layer.name for layer in model.layers]
    modules = dict(module.named_modules())
    common = [n for n in keras_names if n in modules and n != ""]
    captured: dict[str, list] = {n: [] for n in common}
    handles = [
        modules[n].register_forward_hook(
            lambda _m, _i, out, n=n: captured[n].append(out.detach().clone())
        )
        for n in common
    ]
    try:
        module.eval()
        with torch.no_grad():
            module(torch.from_numpy(images.transpose(0, 3, 1, 2)))
    finally:
        for handle in handles:
            handle.remove()
    names = [n for n in common if len(captured[n]) == 1]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outputs = probe.predict(images, verbose=0)
    if len(names) == 1:
        outputs = [outputs]
    rows = []
    for name, got in zip(names, outputs):
        want = captured[name][0].numpy()
        if want.ndim == 4 and got.ndim == 4:
            want = want.transpose(0, 2, 3, 1)
        elif want.shape != got.shape and np.squeeze(want).shape == np.squeeze(got).shape:
            want = want.reshape(got.shape)  # e.g. torch's (N, C, 1, 1) pooled map
        if want.shape != got.shape:
            rows.append(LayerDiff(name, tuple(got.shape), float("inf")))
            continue
        rows.append(LayerDiff(name, tuple(got.shape), relative_error(got, want)))
    return Comparison(rows, tolerance)
