"""Confusion matrices and per-class precision and recall."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class
    (`sklearn.metrics.confusion_matrix` over the labels 0 .. num_classes - 1, so that a class
    absent from both has its row and column of zeros).

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 1]])
    """
    from sklearn import metrics

    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} and {y_pred.size}")
    for arg, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(
                f"{arg}: class indices must be in [0, {num_classes}), got {y.min()}..{y.max()}"
            )
    if not y_true.size:  # scikit-learn refuses empty input; no images count nothing
        return np.zeros((num_classes, num_classes), np.int64)
    with warnings.catch_warnings():
        # its warning about a 1 x 1 matrix is for calls without labels=; one class asks for it
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        matrix = metrics.confusion_matrix(
            y_true.astype(np.int64), y_pred.astype(np.int64), labels=np.arange(num_classes)
        )
    return matrix.astype(np.int64)


def precision_recall(matrix: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (of the predictions of a class, the true ones) and recall (of the
    images of a class, those found); 0 for a class never predicted or never present
    (`sklearn.metrics.precision_recall_fscore_support` with zero_division=0).

    >>> p, r = precision_recall(np.array([[3, 1], [0, 4]]))
    >>> p.round(3).tolist(), r.round(3).tolist()
    ([1.0, 0.8], [0.75, 1.0])
    """
    from sklearn import metrics

    matrix = np.asarray(matrix)
    n = len(matrix)
    if matrix.ndim != 2 or matrix.shape != (n, n):
        raise ValueError(f"matrix: expected a square confusion matrix, got shape {matrix.shape}")
    if not matrix.any():  # scikit-learn refuses weights that are all 0; nothing was counted
        return np.zeros(n), np.zeros(n)
    # each cell (true i, predicted j) as one sample, weighted by its count
    true, predicted = np.indices(matrix.shape)
    precision, recall, _, _ = metrics.precision_recall_fscore_support(
        true.ravel(),
        predicted.ravel(),
        labels=np.arange(n),
        average=None,
        sample_weight=matrix.ravel().astype(np.float64),
        zero_division=0,
    )
    return precision, recall


def plot_confusion_matrix(
    matrix: ArrayLike,
    class_names: Sequence[str],
    *,
    title: str = "confusion matrix",
    compact: bool = False,
) -> Figure:
    """The matrix as a matplotlib Figure: counts in the cells, shaded by the fraction of
    each true class (row). compact: smaller, at 72 dpi, so that a dashboard that fits images
    to a card of about 350 pixels (TensorBoard's) shows the counts legibly."""
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(
            f"matrix: expected shape ({n}, {n}) for {n} class names, got {matrix.shape}"
        )
    rows = matrix.sum(axis=1, keepdims=True)
    fraction = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = 1.8 + 0.3 * n if compact else 2.5 + 0.45 * n
    figure = Figure(figsize=(size + 1, size), layout="constrained", dpi=72 if compact else 100)
    ax = figure.add_subplot()
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, label="fraction of the true class")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if fraction[i, j] > 0.5 else "black",
                )
    return figure
