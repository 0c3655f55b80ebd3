"""Kernel statistics and histograms: what a network's weights look like."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import keras
import numpy as np

from keras_zoo.viz.graph import LayerRef, walk_layers

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class KernelStat(NamedTuple):
    """One weight's statistics; std is the sample standard deviation (ddof=1)."""

    name: str
    shape: tuple
    mean: float
    std: float
    min: float
    max: float


class NamedWeight(NamedTuple):
    """A weight variable with the names the inspection tools give it.

    name: "<layer name>/<variable name>" (as in `kernel_stats`); kernel_tag: the name its
    TensorBoard tags use, the layer name alone when the layer has one kernel, or None for a
    weight that is not a kernel (bias, batch-norm statistics...).
    """

    name: str
    kernel_tag: str | None
    variable: keras.Variable
    ref: LayerRef


def named_weights(model: keras.Model) -> list[NamedWeight]:
    """Every floating-point weight of `model` (nested models opened), in graph order.

    A kernel is a variable called "kernel", "depthwise_kernel" or "pointwise_kernel": the
    weights of convolutions (also depthwise and separable), dense layers and the projections
    of an attention layer. A variable of a layer's own sublayer is named by its path inside
    the layer ("self_attention/query/kernel"), so that an attention layer's four kernels keep
    four names.
    """
    found = []
    for ref in walk_layers(model):
        weights = [v for v in ref.layer.weights if "float" in str(v.dtype)]
        kernels = [v for v in weights if v.name.endswith("kernel")]
        for v in weights:
            name = _name_in_layer(ref.layer, v)
            tag = None
            if any(v is k for k in kernels):
                tag = ref.name if len(kernels) == 1 else f"{ref.name}/{name}"
            found.append(NamedWeight(f"{ref.name}/{name}", tag, v, ref))
    return found


def _name_in_layer(layer: keras.layers.Layer, variable: keras.Variable) -> str:
    """The variable's path below `layer` ("query/kernel" in a MultiHeadAttention; its name
    alone for a layer's own weight)."""
    prefix = f"{getattr(layer, 'path', layer.name)}/"
    path = str(getattr(variable, "path", variable.name))
    return path[len(prefix) :] if path.startswith(prefix) else variable.name


def weight_stat(name: str, values: np.ndarray) -> KernelStat:
    values = np.asarray(values, np.float64)
    std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
    return KernelStat(
        name,
        tuple(values.shape),
        float(values.mean()),
        std,
        float(values.min()),
        float(values.max()),
    )


def kernel_stats(model: keras.Model, *, kernels_only: bool = False) -> list[KernelStat]:
    """Rows (weight name, shape, mean, std, min, max) for every weight of `model` (every
    kernel only, with kernels_only=True), in graph order, computed in float64.

    >>> import keras_zoo
    >>> rows = kernel_stats(keras_zoo.build("resnet18"))
    >>> rows[0].name, rows[0].shape, rows[1].name
    ('conv1/kernel', (7, 7, 3, 64), 'bn1/gamma')
    """
    return [
        weight_stat(w.name, keras.ops.convert_to_numpy(w.variable))
        for w in named_weights(model)
        if w.kernel_tag is not None or not kernels_only
    ]


def first_conv(model: keras.Model) -> LayerRef | None:
    """The first (non-depthwise) 2-D convolution of `model`, whose filters see the image."""
    for ref in walk_layers(model):
        if isinstance(ref.layer, keras.layers.Conv2D):
            return ref
    return None


def plot_kernel_histograms(
    model: keras.Model, names: Sequence[str] | None = None, *, bins: int = 60, cols: int = 3
) -> Figure:
    """Histograms of the weights called `names` (as `kernel_stats` names them; default: every
    kernel), one panel each with its mean, std, min and max, as a matplotlib Figure.

    >>> import keras_zoo
    >>> model = keras_zoo.build("resnet18")
    >>> figure = plot_kernel_histograms(model, ["conv1/kernel", "fc/kernel"])
    >>> [ax.get_title() for ax in figure.axes]
    ['conv1/kernel (7, 7, 3, 64)', 'fc/kernel (512, 1000)']
    """
    from keras_zoo.checks import check_positive_int

    bins, cols = check_positive_int(bins, "bins"), check_positive_int(cols, "cols")
    weights = named_weights(model)
    by_name = {w.name: w for w in weights}
    if names is None:
        chosen = [w for w in weights if w.kernel_tag is not None]
    else:
        if isinstance(names, str):
            names = [names]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(
                f"names: {model.name!r} has no weight {unknown[0]!r}; valid weight "
                f"names: {', '.join(by_name)}"
            )
        chosen = [by_name[n] for n in names]
    if not chosen:
        raise ValueError(f"{model.name!r} has no kernels to plot")
    return histogram_figure(chosen, bins=bins, cols=cols)


def histogram_figure(weights: Sequence[NamedWeight], *, bins: int = 60, cols: int = 3) -> Figure:
    """Histograms of `weights` (from `named_weights`), one panel each with its statistics."""
    from matplotlib.figure import Figure

    cols = min(cols, len(weights))
    rows = -(-len(weights) // cols)
    figure = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    for i, weight in enumerate(weights):
        values = keras.ops.convert_to_numpy(weight.variable)
        stat = weight_stat(weight.name, values)
        ax = figure.add_subplot(rows, cols, i + 1)
        ax.hist(values.ravel(), bins=bins, color="tab:blue")
        ax.set_title(f"{weight.name} {stat.shape}", fontsize=9)
        ax.text(
            0.98,
            0.95,
            f"mean {stat.mean:.3g}\nstd {stat.std:.3g}\nmin {stat.min:.3g}\nmax {stat.max:.3g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
        )
        ax.tick_params(labelsize=7)
    return figure


def update_ratio(after: np.ndarray, before: np.ndarray) -> float:
    """||after - before|| / ||before|| (Frobenius norms, in float64): how much of a weight an
    update changed; 0 for an untouched weight, inf for an update of an all-zero one."""
    after, before = np.asarray(after, np.float64), np.asarray(before, np.float64)
    change, size = float(np.linalg.norm(after - before)), float(np.linalg.norm(before))
    return change / size if size > 0 else (0.0 if change == 0 else float("inf"))


def update_ratio_figure(names: Sequence[str], history: Sequence[tuple[int, np.ndarray]]) -> Figure:
    """The update ratios of kernels `names` (in depth order) as a matplotlib Figure: one line
    for each of the last 6 logged epochs of `history` ((epoch from 0, ratios) pairs), the
    latest in black, on a log scale (a ratio of 0, a frozen layer's, leaves a gap)."""
    from matplotlib.figure import Figure

    width = min(16.0, 5.0 + 0.16 * len(names))
    figure = Figure(figsize=(width, 4.6), layout="constrained")
    ax = figure.add_subplot()
    x = np.arange(len(names))
    history = list(history)[-6:]
    for k, (epoch, ratios) in enumerate(history):
        latest = k == len(history) - 1
        shown = np.where(ratios > 0, ratios, np.nan)  # a log axis cannot show 0
        ax.plot(
            x,
            shown,
            marker="o",
            markersize=3 if latest else 2,
            color="black" if latest else None,
            alpha=1.0 if latest else 0.35,
            linewidth=1.6 if latest else 0.8,
            label=f"epoch {epoch + 1}",
        )
    ax.set_yscale("log")
    ax.set_ylabel("||W - W_before|| / ||W_before||")
    epoch = history[-1][0] + 1 if history else 0
    ax.set_title(f"relative update of each kernel since the last logged epoch, epoch {epoch}")
    ax.set_xticks(x, names, rotation=90, fontsize=6 if len(names) > 30 else 8)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    if len(history) > 1:
        ax.legend(fontsize=7, ncol=min(len(history), 8), loc="lower left")
    return figure
