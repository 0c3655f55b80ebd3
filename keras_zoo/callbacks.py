"""TensorBoard callbacks that show what a network sees: feature maps, kernels, Grad-CAM, the
confusion matrix and a transformer's attention, for keras_zoo models and any Functional,
Sequential or nested Keras model.

Each writes into `log_dir` itself (Keras' own TensorBoard callback writes into its train/ and
validation/ sub-folders, so both can share one log_dir), at the end of every
`every_n_epochs`-th epoch from the first, with the epoch index (from 0, as Keras' epoch
scalars) as the step; titles drawn into the pictures count epochs from 1, as Keras prints
them. Tags never carry the model's name, so runs compare, and sort after Keras' `epoch_loss`
and `epoch_accuracy`, which TensorBoard then shows first:

    inputs                                        FeatureMapLogger: the sample images
    feature_maps/<layer>                          one channel grid per sample
    features/<layer>/mean, /std, /zero_fraction   (zero_fraction where the output is >= 0)
    kernels/<layer>                               KernelStatsLogger: histogram
    update_ratio                                  ||dW|| / ||W|| per layer, a chart per epoch
    filters/<first conv>                          the first convolution's filters
    kernels/<layer> in runs kernel_stats/mean, /std, /min, /max   (scalars=True)
    grad_cam/<layer>                              GradCAMLogger, one image per sample
    attention/rollout                             AttentionMapLogger: the class token's
                                                  rollout over every block, one per sample
    attention/<attention layer>                   its heads' maps in a grid, one per sample
    confusion_matrix                              ConfusionMatrixLogger
    precision, recall in runs classes/<class>     one chart each, a line per class

Pictures are enlarged (nearest neighbour) until a channel is at least 16 pixels a side and a
grid 256 pixels wide; maps smaller than 4x4 are left out of the default layers.

>>> import numpy as np, keras, keras_zoo
>>> from keras_zoo.callbacks import FeatureMapLogger, KernelStatsLogger
>>> model = keras_zoo.build("mobilenet_v3_small", input_shape=(64, 64, 3), classes=3)
>>> model.compile("adam", "sparse_categorical_crossentropy")
>>> x, y = np.random.rand(8, 64, 64, 3), np.arange(8) % 3
>>> import tempfile; log_dir = tempfile.mkdtemp()
>>> history = model.fit(x, y, epochs=1, verbose=0, callbacks=[
...     FeatureMapLogger(log_dir, x[:2]), KernelStatsLogger(log_dir)])
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, cast

import keras
import numpy as np

from keras_zoo.checks import check_positive_int
from keras_zoo.viz import attention as _attention
from keras_zoo.viz import features as _features
from keras_zoo.viz import images as _images
from keras_zoo.viz import kernels as _kernels
from keras_zoo.viz.confusion import confusion_matrix, plot_confusion_matrix, precision_recall
from keras_zoo.viz.gradcam import grad_cam
from keras_zoo.viz.graph import (
    MIN_MAP,
    as_feature_map,
    default_cam_layer,
    find_layers,
    large_enough,
    make_probe,
)

_WRITERS: dict = {}  # folder -> [writer, callbacks in a fit using it]


def _tensorboard_installed() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _open_writer(log_dir: str):
    """One summary writer per folder, shared by the callbacks that write there during a fit:
    TensorBoard reads a folder's event files one after another, so two live writers in one
    folder would hide each other's latest events."""
    import tensorflow as tf

    key = os.path.realpath(log_dir)
    entry = _WRITERS.get(key)
    if entry is None or not os.path.isdir(key):  # a folder deleted since: start afresh
        entry = _WRITERS[key] = [tf.summary.create_file_writer(log_dir), 0]
    entry[1] += 1
    return entry[0]


def _close_writer(log_dir: str) -> None:
    key = os.path.realpath(log_dir)
    entry = _WRITERS.get(key)
    if entry is None:
        return
    entry[1] -= 1
    entry[0].flush()
    if entry[1] <= 0:
        entry[0].close()
        del _WRITERS[key]


def _caller_stacklevel() -> int:
    """The stacklevel of the first caller outside this module, so warnings point at user code."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_back.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level + 1


class InspectionCallback(keras.callbacks.Callback):
    """Writes summaries to `log_dir` every `every_n_epochs` epochs; subclasses say what in
    `log(epoch)`, into `log_dir` or into a run beside it (`run(name)`). Without TensorBoard
    it warns once and writes nothing."""

    def __init__(self, log_dir: str | os.PathLike, every_n_epochs: int = 1):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a folder path, got {log_dir!r}")
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = check_positive_int(every_n_epochs, "every_n_epochs")
        self.enabled = _tensorboard_installed()
        if not self.enabled:
            warnings.warn(
                f"{type(self).__name__}: TensorBoard is not installed, so nothing will be "
                f"written to {self.log_dir}; install it with `pip install tensorboard`",
                stacklevel=_caller_stacklevel(),
            )
        self._writer = None
        self._runs: dict[str, object] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.enabled:
            self.prepare()
            self._writer = _open_writer(self.log_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._writer is None or epoch % self.every_n_epochs:
            return
        with self._writer.as_default(step=epoch):
            self.log(epoch)
        for writer in (self._writer, *self._runs.values()):
            writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer = None
            _close_writer(self.log_dir)
            for folder in self._runs:
                _close_writer(folder)
            self._runs = {}

    def run(self, name: str) -> Any:
        """The writer of the run `log_dir/name` (TensorBoard draws a run's scalars of one tag
        as one line of the tag's chart)."""
        folder = os.path.join(self.log_dir, name)
        if folder not in self._runs:
            self._runs[folder] = _open_writer(folder)
        return self._runs[folder]

    def prepare(self) -> None:
        """Called at the start of training, with self.model set: checks and set-up."""

    def log(self, epoch: int) -> None:
        raise NotImplementedError


def log_text(log_dir: str | os.PathLike, tag: str, markdown: str, step: int = 0) -> None:
    """`markdown` as TensorBoard text under `tag` in `log_dir` (nothing without TensorBoard),
    through the folder's shared writer."""
    import tensorflow as tf

    if not _tensorboard_installed():
        return
    log_dir = os.fspath(log_dir)
    with _open_writer(log_dir).as_default(step=step):
        tf.summary.text(tag, markdown)
    _close_writer(log_dir)


def _run_name(name: str) -> str:
    """A class or statistic name as one folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "_"


class FeatureMapLogger(InspectionCallback):
    """Logs the sample images under `inputs` (once, at the first logged epoch) and, for each
    chosen layer, a grid of its channels (each min-max normalised, enlarged to at least 16
    pixels a channel and 256 a grid) for every sample under `feature_maps/<layer>`, and the
    activations' mean, std and (for outputs that are >= 0 on the samples, as after a ReLU)
    fraction of zeros under `features/<layer>/...`.

    images: the fixed sample, as the model takes it (N, H, W, C), or a tf.data.Dataset whose
    first batch is used. layers: layer names; default: a keras_zoo model's feature outputs (a
    CNN's stage outputs, a Vision Transformer's blocks), for any other model the last layer at
    each spatial resolution, each left out when its maps are smaller than `min_size` x
    `min_size`. A feature output of tokens is shown as the map of its patch tokens.
    max_channels: show only the first channels of wide layers (default: all).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        images: Any,
        layers: Sequence[str] | None = None,
        every_n_epochs: int = 1,
        *,
        max_channels: int | None = None,
        min_size: int = MIN_MAP,
    ):
        super().__init__(log_dir, every_n_epochs)
        self.images = images
        self.layers = [layers] if isinstance(layers, str) else layers
        self.max_channels = (
            None if max_channels is None else check_positive_int(max_channels, "max_channels")
        )
        self.min_size = check_positive_int(min_size, "min_size")

    def prepare(self) -> None:
        self._batch = _features.as_images(self.model, self.images)
        refs = _features.resolve_layers(self.model, self.layers, self._batch.shape[1:])
        probe = make_probe(self.model, refs)
        # a feature output's tokens (a ViT block's) are seen as the map of its patch tokens
        self._probe = lambda x: [as_feature_map(v, ref) for ref, v in zip(refs, probe(x))]
        first = [np.asarray(v) for v in self._probe(self._batch)]
        self._kept = [
            i
            for i, v in enumerate(first)
            if self.layers is not None or v.ndim != 4 or large_enough(v.shape, self.min_size)
        ]
        if not self._kept:
            warnings.warn(
                f"FeatureMapLogger: every default layer of {self.model.name!r} is "
                f"smaller than {self.min_size}x{self.min_size} for these images; "
                "name the layers to log them",
                stacklevel=2,
            )
        self._refs = [refs[i] for i in self._kept]
        self._nonnegative = [bool(first[i].min() >= 0) for i in self._kept]
        self._inputs_logged = False

    def log(self, epoch: int) -> None:
        import tensorflow as tf

        if not self._inputs_logged:
            tf.summary.image(
                "inputs",
                _images.display_images(self._batch),
                max_outputs=len(self._batch),
                description=f"the {len(self._batch)} sample images, in the "
                "order of the feature maps' and Grad-CAM's",
            )
            self._inputs_logged = True
        if not self._kept:
            return
        values = self._probe(self._batch)
        for ref, nonnegative, value in zip(
            self._refs, self._nonnegative, [values[i] for i in self._kept]
        ):
            value = np.asarray(value)
            if value.ndim == 4:
                grids = np.stack(
                    [_images.tile_channels(v, max_channels=self.max_channels) for v in value]
                )
                tf.summary.image(
                    f"feature_maps/{ref.name}",
                    grids,
                    max_outputs=len(grids),
                    description=f"{value.shape[-1]} channels of {value.shape[1]}x{value.shape[2]}",
                )
            for stat, number in _features.activation_stats(value).items():
                if stat != "zero_fraction" or nonnegative:
                    tf.summary.scalar(f"features/{ref.name}/{stat}", number)


class KernelStatsLogger(InspectionCallback):
    """Logs, for every convolution (also depthwise and separable) and dense kernel, its
    histogram `kernels/<layer>`; the relative size of each kernel's update since the last
    logged epoch, ||W - W_before|| / ||W_before||, as one chart of every layer by depth
    (`update_ratio`: which layers learn, and how fast; a layer far below the others learns
    little, a frozen one, at 0, is not drawn on the log axis); and the first convolution's
    filters as one image `filters/<layer>`, in gray when `gray` (for a model that sees
    grayscale pictures as RGB) or its input has one channel.

    scalars: also the mean, std (ddof=1), min and max of each kernel, as one chart per layer
    (`kernels/<layer>`) with a line each, from the runs kernel_stats/mean, /std, /min, /max.
    After a fit, `update_ratios` holds what was drawn: (epoch, {layer: ratio}) per logged
    epoch.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        every_n_epochs: int = 1,
        *,
        scalars: bool = False,
        gray: bool = False,
    ):
        super().__init__(log_dir, every_n_epochs)
        self.scalars, self.gray = bool(scalars), bool(gray)

    def prepare(self) -> None:
        self._kernels = [w for w in _kernels.named_weights(self.model) if w.kernel_tag]
        self._first = _kernels.first_conv(self.model)
        self._before = [keras.ops.convert_to_numpy(w.variable).copy() for w in self._kernels]
        self.update_ratios: list[tuple[int, dict[str, float]]] = []

    def log(self, epoch: int) -> None:
        import tensorflow as tf

        ratios = []
        for i, weight in enumerate(self._kernels):
            values = keras.ops.convert_to_numpy(weight.variable)
            tf.summary.histogram(f"kernels/{weight.kernel_tag}", values)
            ratios.append(_kernels.update_ratio(values, self._before[i]))
            self._before[i] = values.copy()
            if self.scalars:
                stat = _kernels.weight_stat(weight.name, values)
                for key in ("mean", "std", "min", "max"):
                    with self.run(os.path.join("kernel_stats", key)).as_default(step=epoch):
                        tf.summary.scalar(f"kernels/{weight.kernel_tag}", getattr(stat, key))
        if self._kernels:
            # prepare kept only the weights with a kernel_tag
            names = [cast(str, w.kernel_tag) for w in self._kernels]
            self.update_ratios.append((epoch, dict(zip(names, ratios))))
            figure = _kernels.update_ratio_figure(
                names, [(e, np.array(list(r.values()))) for e, r in self.update_ratios]
            )
            tf.summary.image(
                "update_ratio",
                _images.figure_to_array(figure)[None],
                description="||W - W_before|| / ||W_before|| of each kernel "
                "since the last logged epoch, by depth",
            )
        if self._first is not None:
            kernel = keras.ops.convert_to_numpy(self._first.layer.kernel)
            tf.summary.image(
                f"filters/{self._first.name}",
                _images.filter_tiles(kernel, gray=self.gray)[None],
                description=f"{kernel.shape[-1]} filters of {kernel.shape[0]}x"
                f"{kernel.shape[1]}x{kernel.shape[2]}" + (", in gray" if self.gray else ""),
            )


class GradCAMLogger(InspectionCallback):
    """Logs Grad-CAM heatmaps (`keras_zoo.viz.grad_cam`) over the sample images under
    `grad_cam/<layer>`, one image per sample, enlarged as the inputs are.

    class_index: a class for all images, one per image, or None for each image's predicted
    class; layer: default the last layer whose maps are at least 4x4 for the samples
    (`keras_zoo.viz.default_cam_layer`).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        images: Any,
        class_index: int | Sequence[int] | None = None,
        layer: str | None = None,
        every_n_epochs: int = 1,
    ):
        super().__init__(log_dir, every_n_epochs)
        self.images, self.class_index, self.layer = images, class_index, layer

    def prepare(self) -> None:
        self._batch = _features.as_images(self.model, self.images)
        ref = (
            default_cam_layer(self.model, self._batch.shape[1:])
            if self.layer is None
            else find_layers(self.model, [self.layer], argument="layer")[0]
        )
        self._layer = ref.name

    def log(self, epoch: int) -> None:
        import tensorflow as tf

        heatmaps = grad_cam(self.model, self._batch, self.class_index, self._layer)
        tf.summary.image(
            f"grad_cam/{self._layer}",
            _images.enlarge(_images.overlay_heatmaps(self._batch, heatmaps)),
            max_outputs=len(self._batch),
        )


class ConfusionMatrixLogger(InspectionCallback):
    """Logs the confusion matrix of the model's predictions on `data` as an image
    (`confusion_matrix`) and each class's precision and recall as one chart each (`precision`,
    `recall`), with a line per class from the runs classes/<class>.

    data: a tf.data.Dataset of (images, labels) batches, or an (images, labels) pair; labels
    are class indices, shape (N,) or (N, 1), or one-hot rows. class_names: one per model output.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        data: Any,
        class_names: Sequence[str],
        every_n_epochs: int = 1,
    ):
        super().__init__(log_dir, every_n_epochs)
        if isinstance(class_names, str) or len(class_names) < 2:
            raise ValueError(
                f"class_names: expected a list of at least 2 names, got {class_names!r}"
            )
        self.data, self.class_names = data, [str(c) for c in class_names]
        runs = [_run_name(c) for c in self.class_names]
        if len(set(runs)) != len(runs):
            raise ValueError(f"class_names: {self.class_names!r} do not make distinct folder names")
        self._class_runs = runs

    def prepare(self) -> None:
        outputs = self.model.outputs[0].shape[-1]
        if outputs != len(self.class_names):
            raise ValueError(
                f"class_names: {len(self.class_names)} names for a model with {outputs} outputs"
            )

    def _batches(self) -> Iterator[Any]:
        import tensorflow as tf

        if isinstance(self.data, tf.data.Dataset):
            yield from self.data
        elif isinstance(self.data, (tuple, list)) and len(self.data) == 2:
            x, y = self.data
            for start in range(0, len(x), 64):
                yield x[start : start + 64], y[start : start + 64]
        else:
            raise TypeError(
                "data: expected a tf.data.Dataset of (images, labels) or an "
                f"(images, labels) pair, got {type(self.data).__name__}"
            )

    def matrix(self) -> np.ndarray:
        """The confusion matrix of the current model on `data`."""
        truth, predicted = [], []
        for x, y in self._batches():
            y = np.asarray(y)
            one_hot = y.ndim == 2 and y.shape[1] == len(self.class_names)
            truth.append(y.argmax(axis=-1) if one_hot else y.ravel())
            # a plain call, not predict: under a multi-worker strategy predict runs collective
            # ops that the workers which do not log would never join
            predicted.append(np.asarray(self.model(x, training=False)).argmax(axis=-1))
        return confusion_matrix(
            np.concatenate(truth), np.concatenate(predicted), len(self.class_names)
        )

    def log(self, epoch: int) -> None:
        import tensorflow as tf

        matrix = self.matrix()
        figure = plot_confusion_matrix(
            matrix, self.class_names, compact=True, title=f"confusion matrix, epoch {epoch + 1}"
        )
        tf.summary.image("confusion_matrix", _images.figure_to_array(figure)[None])
        precision, recall = precision_recall(matrix)
        for run, p, r in zip(self._class_runs, precision, recall):
            with self.run(os.path.join("classes", run)).as_default(step=epoch):
                tf.summary.scalar("precision", p)
                tf.summary.scalar("recall", r)


class AttentionMapLogger(InspectionCallback):
    """Logs, for each sample image, where a Vision Transformer's class token looks
    (`keras_zoo.viz.attention`): its attention rollout over every block under
    `attention/rollout`, and at each chosen block its attention per head, a grid of the heads
    (head 0 top left, row by row), under `attention/<attention layer>`. Each map is min-max
    scaled on its own and coloured over the image, a patch a block, enlarged as the inputs are.

    images: the fixed sample, as the model takes it (N, H, W, C), or a tf.data.Dataset whose
    first batch is used. blocks: the MultiHeadAttention layers shown per head, by name or by
    index among them (negative from the end); default the first, middle and last.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        images: Any,
        blocks: Sequence[int | str] | None = None,
        every_n_epochs: int = 1,
    ):
        super().__init__(log_dir, every_n_epochs)
        if isinstance(blocks, (int, str)) and not isinstance(blocks, bool):
            blocks = [blocks]
        if blocks is not None and (
            not isinstance(blocks, Sequence)
            or not blocks
            or any(isinstance(b, bool) or not isinstance(b, (int, str)) for b in blocks)
        ):
            raise TypeError(
                "blocks: expected MultiHeadAttention layer names or indices (a non-empty "
                f"list), got {blocks!r}"
            )
        self.images, self.blocks = images, blocks

    def prepare(self) -> None:
        self._batch = _features.as_images(self.model, self.images)
        self._blocks = [ref.name for ref in _attention.resolve_blocks(self.model, self.blocks)]
        self._grid = _attention.token_grid_of(self.model)

    def log(self, epoch: int) -> None:
        import tensorflow as tf

        maps = _attention.attention_maps(self.model, self._batch, self._blocks)
        tf.summary.image(
            "attention/rollout",
            _attention.overlay_maps(self._batch, maps.rollout),
            max_outputs=len(self._batch),
            description="the class token's attention rollout over every block, on the "
            f"{maps.grid.rows}x{maps.grid.columns} patches",
        )
        for name, heads in maps.heads.items():
            tf.summary.image(
                f"attention/{name}",
                np.stack([_attention.head_grid(x, h) for x, h in zip(self._batch, heads)]),
                max_outputs=len(self._batch),
                description=f"the class token's attention in each of the {heads.shape[1]} "
                "heads, head 0 top left, row by row",
            )
