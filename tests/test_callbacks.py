"""The TensorBoard callbacks (keras_zoo.callbacks): what they write, read back from the event
files with TensorBoard's own EventAccumulator, and served by a real TensorBoard server.

Models are fitted with run_eagerly=True: on this CPU-only machine an eager fit of a tiny batch
takes about 2 s where tracing the train step of a MobileNet takes about 12 s; the callbacks do
not depend on it.
"""

import io
import os
import sys
import types
import urllib.parse

import keras
import numpy as np
import pytest
from conftest import TensorBoardServer
from PIL import Image

import keras_zoo
from keras_zoo import viz
from keras_zoo.callbacks import (
    ConfusionMatrixLogger,
    FeatureMapLogger,
    GradCAMLogger,
    KernelStatsLogger,
)
from keras_zoo.viz.images import (
    display_images,
    enlarge,
    filter_tiles,
    grid_shape,
    overlay_heatmaps,
    tile_channels,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASS_NAMES = ["cat", "dog", "bird"]
SAMPLES = 4  # more than tf.summary.image's default max_outputs (3)
STATS = {
    "mean": np.mean,
    "std": np.std,
    "zero_fraction": lambda v: np.mean(v == 0),
}


# ---------------------------------------------------------------------------------------------
# reading event files back


def load_events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def tags_of(acc):
    return set(acc.Tags()["tensors"])


def plugin_of(acc, tag):
    return acc.SummaryMetadata(tag).plugin_data.plugin_name


def steps_of(acc, tag):
    return [event.step for event in acc.Tensors(tag)]


def value_of(acc, tag, index=-1):
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(acc.Tensors(tag)[index].tensor_proto)


def scalar_of(acc, tag, index=-1):
    return value_of(acc, tag, index).item()


def images_of(acc, tag, index=-1):
    """(width, height, [PNG bytes, ...]) of one image summary event."""
    value = value_of(acc, tag, index)
    return int(value[0]), int(value[1]), list(value[2:])


def decode_png(data: bytes) -> np.ndarray:
    assert data.startswith(PNG_SIGNATURE)
    return np.asarray(Image.open(io.BytesIO(data)))


def as_uint8_close(png: np.ndarray, picture: np.ndarray):
    """A PNG decoded to uint8 shows `picture` (float in [0, 1] or uint8): tf.summary.image
    converts floats to uint8 by truncating x * 255.5, so a pixel is within 1 of x * 255."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8:
        picture = picture * 255.0
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    assert png.shape == picture.shape
    np.testing.assert_allclose(png.astype(np.float64), picture.astype(np.float64), atol=1.0 + 1e-6)


# ---------------------------------------------------------------------------------------------
# models and data


def small_sequential(name="small_sequential", classes=3):
    """Conv2D / MaxPooling2D / Flatten / Dense at 32x32, layers named."""
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_b"),
            keras.layers.MaxPooling2D(name="pool_a"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_c"),
            keras.layers.MaxPooling2D(name="pool_b"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(classes, activation="softmax", name="dense"),
        ],
        name=name,
    )


def small_functional(name):
    """A Functional model with a branch, every layer named, so that two of them differ only in
    the model's name."""
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    y = keras.layers.Conv2D(4, 3, padding="same", name="branch")(x)
    x = keras.layers.Add(name="merge")([x, y])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.SeparableConv2D(6, 3, padding="same", activation="relu", name="sep")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def compiled(model, loss="sparse_categorical_crossentropy"):
    model.compile(keras.optimizers.Adam(1e-2), loss, run_eagerly=True)
    return model


def data(n, size, seed=0, shift=0):
    """n noise images, the channel of each image's class brighter, and the classes."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) + shift) % 3
    images = rng.random((n, size, size, 3)).astype(np.float32) * 0.5
    images[np.arange(n), :, :, labels] += 0.5
    return images, labels


def fit_with_inspection(model, x, y, log_dir, epochs):
    """Fits `model` with the feature-map, kernel and Grad-CAM loggers on x[:2]; the events."""
    model.fit(
        x,
        y,
        epochs=epochs,
        verbose=0,
        callbacks=[
            FeatureMapLogger(log_dir, x[:2]),
            KernelStatsLogger(log_dir),
            GradCAMLogger(log_dir, x[:2]),
        ],
    )
    return load_events(log_dir)


def last_layer_per_resolution(model):
    """Independently of keras_zoo.viz: the last of model.layers at each spatial resolution."""
    last = {}
    for layer in model.layers:
        shape = layer.output.shape
        if len(shape) == 4:
            last[tuple(shape[1:3])] = layer.name  # keeps the first appearance's position
    return list(last.values())


# ---------------------------------------------------------------------------------------------
# shared checks


def grid_size(value_shape):
    """(height, width) of the channel grid of a (N, h, w, c) map, independently of
    keras_zoo.viz: the smallest whole zoom that makes a channel >= 16 pixels a side and the
    grid >= 256 wide, 1 pixel between tiles."""
    _, h, w, c = value_shape
    rows, cols = grid_shape(c)
    zoom = next(z for z in range(1, 1000) if min(h, w) * z >= 16 and cols * (w * z + 1) - 1 >= 256)
    return rows * h * zoom + rows - 1, cols * w * zoom + cols - 1


def check_inputs(acc, samples):
    """The sample images under `inputs`, once, enlarged to >= 128 pixels a side, in order."""
    assert plugin_of(acc, "inputs") == "images" and steps_of(acc, "inputs")[:1] == [0]
    _, _, pngs = images_of(acc, "inputs", 0)
    assert len(pngs) == len(samples)
    pictures = [decode_png(png) for png in pngs]
    for picture in pictures:
        assert min(picture.shape[:2]) >= 128 and picture.shape[2] == 3
    for picture, want in zip(pictures, display_images(samples)):
        as_uint8_close(picture, want)
    if len(samples) > 1:
        assert not np.array_equal(pictures[0], pictures[1])


def check_feature_maps(acc, model, samples, names, steps):
    """The inputs, and feature_maps/<name> images and features/<name>/... scalars for exactly
    `names`, at `steps`, the last of them equal to what keras_zoo.viz.feature_maps gives now."""
    tags = tags_of(acc)
    check_inputs(acc, samples)
    assert {t for t in tags if t.startswith("feature_maps/")} == {
        f"feature_maps/{name}" for name in names
    }
    maps = viz.feature_maps(model, samples, names)
    # zero_fraction only where the output cannot be negative (after a ReLU)
    assert {t for t in tags if t.startswith("features/")} == {
        f"features/{name}/{stat}"
        for name in names
        for stat in STATS
        if stat != "zero_fraction" or maps[name].min() >= 0
    }
    assert not any(t.startswith("activations/") for t in tags)
    for name, value in maps.items():
        tag = f"feature_maps/{name}"
        assert plugin_of(acc, tag) == "images"
        assert steps_of(acc, tag) == steps
        height, width = grid_size(value.shape)
        assert width >= 256 and height >= 16
        for index in range(len(steps)):
            header_w, header_h, pngs = images_of(acc, tag, index)
            assert (header_w, header_h) == (width, height)
            assert len(pngs) == len(samples)
            for png in pngs:
                picture = decode_png(png)
                assert picture.shape[:2] == (height, width)
                assert picture.min() < picture.max()  # not a blank grid
        # the last epoch's pictures are the current model's channels, image by image
        _, _, pngs = images_of(acc, tag)
        for png, one in zip(pngs, value):
            as_uint8_close(decode_png(png), tile_channels(one))
        for stat, numpy_stat in STATS.items():
            stat_tag = f"features/{name}/{stat}"
            if stat_tag not in tags:
                continue
            assert plugin_of(acc, stat_tag) == "scalars"
            assert steps_of(acc, stat_tag) == steps
            np.testing.assert_allclose(
                scalar_of(acc, stat_tag), numpy_stat(value), rtol=1e-5, atol=1e-7
            )


def check_kernels(acc, model, steps):
    """A histogram per kernel and the update-ratio chart at `steps`; no kernel scalars (they
    are opt-in, in runs of their own)."""
    kernels = [w for w in viz.named_weights(model) if w.kernel_tag is not None]
    assert kernels
    expected = {f"kernels/{weight.kernel_tag}" for weight in kernels}
    assert {t for t in tags_of(acc) if t.startswith("kernels/")} == expected
    assert plugin_of(acc, "update_ratio") == "images"
    assert steps_of(acc, "update_ratio") == steps
    _, _, pngs = images_of(acc, "update_ratio")
    chart = decode_png(pngs[0])
    assert chart.shape[1] >= 500 and chart.min() < chart.max()
    for weight in kernels:
        values = keras.ops.convert_to_numpy(weight.variable).astype(np.float64)
        tag = f"kernels/{weight.kernel_tag}"
        assert plugin_of(acc, tag) == "histograms"
        assert steps_of(acc, tag) == steps
        for index in range(len(steps)):
            histogram = value_of(acc, tag, index)
            assert histogram.ndim == 2 and histogram.shape[1] == 3
            assert histogram[:, 2].sum() == values.size
        histogram = value_of(acc, tag)
        np.testing.assert_allclose(
            [histogram[0, 0], histogram[-1, 1]], [values.min(), values.max()], rtol=1e-5, atol=1e-9
        )


def check_filters(acc, model, steps):
    first = viz.first_conv(model)
    assert {t for t in tags_of(acc) if t.startswith("filters/")} == {f"filters/{first.name}"}
    tag = f"filters/{first.name}"
    assert plugin_of(acc, tag) == "images"
    assert steps_of(acc, tag) == steps
    tiles = filter_tiles(keras.ops.convert_to_numpy(first.layer.kernel))
    width, height, pngs = images_of(acc, tag)
    assert min(height, width) >= 8 * first.layer.kernel.shape[0]
    assert (height, width) == tiles.shape[:2]
    assert len(pngs) == 1
    picture = decode_png(pngs[0])
    assert picture.shape == tiles.shape  # RGB tiles
    as_uint8_close(picture, tiles)


def check_grad_cam(acc, model, samples, layer, steps):
    tag = f"grad_cam/{layer}"
    assert {t for t in tags_of(acc) if t.startswith("grad_cam/")} == {tag}
    assert plugin_of(acc, tag) == "images"
    assert steps_of(acc, tag) == steps
    zoom = -(-128 // min(samples.shape[1:3]))  # enlarged as the inputs are
    size = (samples.shape[1] * zoom, samples.shape[2] * zoom)
    for index in range(len(steps)):
        width, height, pngs = images_of(acc, tag, index)
        assert (height, width) == size
        assert len(pngs) == len(samples)
        for png in pngs:
            assert decode_png(png).shape == (*size, 3)
    _, _, pngs = images_of(acc, tag)
    expected = enlarge(overlay_heatmaps(samples, viz.grad_cam(model, samples, layer=layer)))
    for png, picture in zip(pngs, expected):
        as_uint8_close(decode_png(png), picture)


# ---------------------------------------------------------------------------------------------
# one fit of a keras_zoo model, read by several tests


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    base = tmp_path_factory.mktemp("zoo_run")
    logs = types.SimpleNamespace(
        main=base / "main", cam_stage3=base / "cam_stage3", cm_dataset=base / "cm_dataset"
    )
    model = compiled(keras_zoo.build("mobilenet_v3_small", input_shape=(64, 64, 3), classes=3))
    x, y = data(8, 64)
    samples = x[:SAMPLES]
    x_ds, y_ds = data(9, 64, seed=1, shift=1)
    one_hot = np.eye(3, dtype=np.float32)[y_ds]
    dataset = tf.data.Dataset.from_tensor_slices((x_ds, one_hot)).batch(4)
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=4,
        verbose=0,
        callbacks=[
            FeatureMapLogger(logs.main, samples),
            KernelStatsLogger(logs.main),
            GradCAMLogger(logs.main, samples),
            ConfusionMatrixLogger(logs.main, (x, y), CLASS_NAMES),
            GradCAMLogger(logs.cam_stage3, samples, layer="stage3"),
            ConfusionMatrixLogger(logs.cm_dataset, dataset, CLASS_NAMES),
        ],
    )
    return types.SimpleNamespace(
        model=model,
        x=x,
        y=y,
        samples=samples,
        x_ds=x_ds,
        y_ds=y_ds,
        logs=logs,
        acc=load_events(logs.main),
    )


# 1. FeatureMapLogger


def test_feature_maps_of_a_keras_zoo_model(zoo_run):
    stages = [layer.name for layer in keras_zoo.stage_outputs(zoo_run.model)]
    assert stages == ["stage1", "stage2", "stage3", "stage4"]
    # at 64x64 stage 4 is 2x2: a map that small is left out
    assert zoo_run.model.get_layer("stage4").output.shape[1:3] == (2, 2)
    check_feature_maps(zoo_run.acc, zoo_run.model, zoo_run.samples, stages[:3], steps=[0, 1])


def test_small_maps_are_left_out_unless_named(tmp_path):
    keras.utils.set_random_seed(6)
    model = compiled(keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3))
    x, y = data(2, 32)
    named = FeatureMapLogger(tmp_path / "named", x, layers=["stage3", "stage4"])
    with pytest.warns(UserWarning, match=r"every default layer .* smaller than 16x16"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[
                FeatureMapLogger(tmp_path / "default", x),
                named,
                FeatureMapLogger(tmp_path / "none", x, min_size=16),
            ],
        )
    default = tags_of(load_events(tmp_path / "default"))
    # 32x32: stages of 8x8, 4x4, 2x2 and 1x1
    assert {t for t in default if t.startswith("feature_maps/")} == {
        "feature_maps/stage1",
        "feature_maps/stage2",
    }
    check_feature_maps(load_events(tmp_path / "named"), model, x, ["stage3", "stage4"], steps=[0])
    assert tags_of(load_events(tmp_path / "none")) == {"inputs"}


def test_feature_maps_every_n_epochs(tmp_path):
    keras.utils.set_random_seed(1)
    model = compiled(small_sequential())
    x, y = data(4, 32)
    model.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[
            FeatureMapLogger(tmp_path / "every2", x[:2], every_n_epochs=2),
            KernelStatsLogger(tmp_path / "every2", every_n_epochs=2),
            FeatureMapLogger(tmp_path / "every1", x[:2]),
        ],
    )
    every2, every1 = load_events(tmp_path / "every2"), load_events(tmp_path / "every1")
    assert any(t.startswith("kernels/") for t in tags_of(every2))
    for tag in tags_of(every2) - {"inputs"}:  # the inputs are logged once
        assert steps_of(every2, tag) == [0, 2], tag
    assert tags_of(every1)
    for tag in tags_of(every1) - {"inputs"}:
        assert steps_of(every1, tag) == [0, 1, 2], tag
    check_feature_maps(every2, model, x[:2], last_layer_per_resolution(model), steps=[0, 2])


# 2. KernelStatsLogger


def test_kernel_stats_and_histograms(zoo_run):
    check_kernels(zoo_run.acc, zoo_run.model, steps=[0, 1])


def test_first_convolution_filters(zoo_run):
    check_filters(zoo_run.acc, zoo_run.model, steps=[0, 1])


class _Snapshots(keras.callbacks.Callback):
    """Every kernel at the start of training and at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def _take(self):
        self.kernels.append(
            {
                w.kernel_tag: keras.ops.convert_to_numpy(w.variable).copy()
                for w in viz.named_weights(self.model)
                if w.kernel_tag
            }
        )

    def on_train_begin(self, logs=None):
        self._take()

    def on_epoch_end(self, epoch, logs=None):
        self._take()


def test_update_ratios_and_opt_in_kernel_scalars(tmp_path):
    keras.utils.set_random_seed(7)
    model = compiled(small_sequential())
    model.get_layer("conv_a").trainable = False  # a layer that does not learn: ratio 0
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", run_eagerly=True)
    x, y = data(4, 32)
    snapshots, logger = _Snapshots(), KernelStatsLogger(tmp_path, scalars=True)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[snapshots, logger])
    assert [epoch for epoch, _ in logger.update_ratios] == [0, 1]
    for (epoch, ratios), before, after in zip(
        logger.update_ratios, snapshots.kernels, snapshots.kernels[1:]
    ):
        for tag, ratio in ratios.items():
            want = np.linalg.norm(after[tag] - before[tag]) / np.linalg.norm(before[tag])
            np.testing.assert_allclose(ratio, want, rtol=1e-6, err_msg=f"{tag}, epoch {epoch}")
        assert ratios["conv_a"] == 0 and ratios["conv_b"] > 1e-4
    # the scalars: one chart per kernel, a line per statistic from the runs kernel_stats/...
    values = keras.ops.convert_to_numpy(model.get_layer("conv_b").kernel).astype(np.float64)
    numpy_stats = {
        "mean": values.mean(),
        "std": values.std(ddof=1),
        "min": values.min(),
        "max": values.max(),
    }
    for stat, number in numpy_stats.items():
        run = load_events(tmp_path / "kernel_stats" / stat)
        assert tags_of(run) == {
            f"kernels/{w.kernel_tag}" for w in viz.named_weights(model) if w.kernel_tag
        }
        assert plugin_of(run, "kernels/conv_b") == "scalars"
        assert steps_of(run, "kernels/conv_b") == [0, 1]
        np.testing.assert_allclose(scalar_of(run, "kernels/conv_b"), number, rtol=1e-5)
    assert not any(
        t.startswith("kernels/") and plugin_of(load_events(tmp_path), t) == "scalars"
        for t in tags_of(load_events(tmp_path))
    )


def test_filters_of_gray_pictures_are_the_sum_over_the_inputs(tmp_path):
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32)
    tiles = filter_tiles(kernel, gray=True, zoom=1, pad=0)
    assert np.array_equal(tiles[..., 0], tiles[..., 1])  # gray
    summed = kernel.sum(axis=2)  # what a filter applies to an image with R = G = B
    for i in range(4):
        tile = tiles[:, 3 * (i % 2) : 3 * (i % 2) + 3][3 * (i // 2) : 3 * (i // 2) + 3, :, 0]
        f = summed[..., i]
        np.testing.assert_allclose(tile, (f - f.min()) / (f.max() - f.min()), atol=1e-6)


def test_tags_carry_no_model_name(tmp_path):
    keras.utils.set_random_seed(2)
    x, y = data(4, 32)
    tag_sets = []
    for name in ("first_model", "second_model"):
        model = compiled(small_functional(name))
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[
                FeatureMapLogger(tmp_path / name, x[:2]),
                KernelStatsLogger(tmp_path / name),
                GradCAMLogger(tmp_path / name, x[:2]),
            ],
        )
        tags = tags_of(load_events(tmp_path / name))
        assert not any(name in tag for tag in tags)
        tag_sets.append(tags)
    assert tag_sets[0] == tag_sets[1]
    assert any(t.startswith("kernels/") for t in tag_sets[0])
    assert any(t.startswith("feature_maps/") for t in tag_sets[0])


def test_keras_zoo_tags_carry_no_model_name(zoo_run):
    assert zoo_run.model.name
    assert not any(zoo_run.model.name in tag for tag in tags_of(zoo_run.acc))


# 3. Functional, Sequential and nested models


def test_functional_model(tmp_path):
    keras.utils.set_random_seed(3)
    model = compiled(small_functional("functional"))
    x, y = data(4, 32)
    acc = fit_with_inspection(model, x, y, tmp_path, epochs=2)
    expected = last_layer_per_resolution(model)
    assert expected == ["merge", "sep"]
    check_feature_maps(acc, model, x[:2], expected, steps=[0, 1])
    check_kernels(acc, model, steps=[0, 1])
    # SeparableConv2D has two kernels: each gets its own tag
    assert {"kernels/sep/depthwise_kernel", "kernels/sep/pointwise_kernel"} <= tags_of(acc)
    check_filters(acc, model, steps=[0, 1])
    check_grad_cam(acc, model, x[:2], "sep", steps=[0, 1])


def test_sequential_model(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(4)
    model = compiled(small_sequential())
    x, y = data(6, 32)
    x_ds, y_ds = data(10, 32, seed=1, shift=1)
    dataset = tf.data.Dataset.from_tensor_slices((x_ds, np.eye(3, dtype=np.float32)[y_ds])).batch(4)
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[
            FeatureMapLogger(tmp_path, x[:SAMPLES]),
            KernelStatsLogger(tmp_path),
            GradCAMLogger(tmp_path, x[:SAMPLES]),
            ConfusionMatrixLogger(tmp_path, (x, y), CLASS_NAMES),
            ConfusionMatrixLogger(tmp_path / "cm_dataset", dataset, CLASS_NAMES),
        ],
    )
    acc = load_events(tmp_path)
    expected = last_layer_per_resolution(model)
    assert expected == ["conv_b", "conv_c", "pool_b"]
    check_feature_maps(acc, model, x[:SAMPLES], expected, steps=[0, 1])
    check_kernels(acc, model, steps=[0, 1])
    check_filters(acc, model, steps=[0, 1])
    check_grad_cam(acc, model, x[:SAMPLES], "pool_b", steps=[0, 1])
    # this small model's predictions are not all one class, so that precision and recall differ
    # from class to class and mistakes in the matrix show
    check_confusion(acc, model, x, y, steps=[0, 1], varied=True, log_dir=tmp_path)
    check_confusion(
        load_events(tmp_path / "cm_dataset"),
        model,
        x_ds,
        y_ds,
        steps=[0, 1],
        varied=True,
        log_dir=tmp_path / "cm_dataset",
    )


def test_nested_model(tmp_path):
    keras.utils.set_random_seed(5)
    backbone = keras_zoo.build("mobilenet_v3_small", input_shape=(64, 64, 3), include_top=False)
    model = compiled(
        keras.Sequential(
            [
                keras.Input((64, 64, 3)),
                backbone,
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(3, activation="softmax"),
            ],
            name="nested",
        )
    )
    x, y = data(4, 64)
    acc = fit_with_inspection(model, x, y, tmp_path, epochs=1)
    stages = [layer.name for layer in keras_zoo.stage_outputs(backbone)]
    assert stages == ["stage1", "stage2", "stage3", "stage4"]
    check_feature_maps(acc, model, x[:2], stages[:3], steps=[0])
    check_kernels(acc, model, steps=[0])
    # the backbone's kernels and the outer Dense are all there, without the backbone's name
    assert not any(backbone.name in tag for tag in tags_of(acc))
    assert f"kernels/{model.layers[-1].name}" in tags_of(acc)
    check_filters(acc, model, steps=[0])
    check_grad_cam(acc, model, x[:2], "stage3", steps=[0])  # stage 4 is 2x2


# 4. GradCAMLogger


def test_grad_cam_images(zoo_run):
    # by default at the last stage output of at least 4x4: stage 3 at 64x64
    assert viz.default_cam_layer(zoo_run.model).name == "stage3"
    check_grad_cam(zoo_run.acc, zoo_run.model, zoo_run.samples, "stage3", steps=[0, 1])


def test_grad_cam_at_a_chosen_layer(zoo_run):
    acc = load_events(zoo_run.logs.cam_stage3)
    assert tags_of(acc) == {"grad_cam/stage3"}
    check_grad_cam(acc, zoo_run.model, zoo_run.samples, "stage3", steps=[0, 1])


# 5. ConfusionMatrixLogger


def check_confusion(acc, model, x, truth, steps, varied=False, log_dir=None):
    tags = tags_of(acc)
    assert "confusion_matrix" in tags
    assert plugin_of(acc, "confusion_matrix") == "images"
    assert steps_of(acc, "confusion_matrix") == steps
    predicted = model.predict(x, verbose=0).argmax(axis=-1)
    matrix = viz.confusion_matrix(truth, predicted, len(CLASS_NAMES))
    precision, recall = viz.precision_recall(matrix)
    if varied:
        assert len(set(predicted)) > 1 and len(set(precision)) > 1 and len(set(recall)) > 1
    assert not any(t.startswith(("precision", "recall")) for t in tags)
    # one chart each, a line per class: the runs classes/<class> hold tags precision, recall
    assert sorted(os.listdir(os.path.join(log_dir, "classes"))) == sorted(CLASS_NAMES)
    for name, p, r in zip(CLASS_NAMES, precision, recall):
        run = load_events(os.path.join(log_dir, "classes", name))
        assert tags_of(run) == {"precision", "recall"}
        for tag, number in (("precision", p), ("recall", r)):
            assert plugin_of(run, tag) == "scalars"
            assert steps_of(run, tag) == steps
            np.testing.assert_allclose(scalar_of(run, tag), number, rtol=1e-6, err_msg=tag)
    width, height, pngs = images_of(acc, "confusion_matrix")
    assert len(pngs) == 1
    picture = decode_png(pngs[0])
    rendered = viz.figure_to_array(
        viz.plot_confusion_matrix(
            matrix, CLASS_NAMES, title=f"confusion matrix, epoch {steps[-1] + 1}", compact=True
        )
    )
    assert picture.shape == rendered.shape == (height, width, 3)
    np.testing.assert_array_equal(picture, rendered)  # titled as Keras counts epochs


def test_confusion_matrix_from_arrays(zoo_run):
    check_confusion(
        zoo_run.acc, zoo_run.model, zoo_run.x, zoo_run.y, steps=[0, 1], log_dir=zoo_run.logs.main
    )


def test_confusion_matrix_from_a_dataset_of_one_hot_labels(zoo_run):
    acc = load_events(zoo_run.logs.cm_dataset)
    check_confusion(
        acc,
        zoo_run.model,
        zoo_run.x_ds,
        zoo_run.y_ds,
        steps=[0, 1],
        log_dir=zoo_run.logs.cm_dataset,
    )
    assert not any(t.startswith(("feature_maps/", "kernels/")) for t in tags_of(acc))


def test_confusion_matrix_class_names_of_the_wrong_length(tmp_path):
    model = compiled(small_sequential())
    x, y = data(4, 32)
    logger = ConfusionMatrixLogger(tmp_path, (x, y), ["cat", "dog"])  # checked at fit start
    with pytest.raises(ValueError, match=r"class_names: 2 names for a model with 3 outputs"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    assert int(model.optimizer.iterations) == 0  # raised before any training step
    for bad in ("cat", ["cat"], []):
        with pytest.raises(ValueError, match="class_names"):
            ConfusionMatrixLogger(tmp_path, (x, y), bad)


# 6. without TensorBoard


def test_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    log_dir = tmp_path / "logs"
    model = compiled(small_sequential())
    x, y = data(4, 32)
    callbacks = []
    for make in (
        lambda: FeatureMapLogger(log_dir, x[:2]),
        lambda: KernelStatsLogger(log_dir),
        lambda: GradCAMLogger(log_dir, x[:2]),
        lambda: ConfusionMatrixLogger(log_dir, (x, y), CLASS_NAMES),
    ):
        with pytest.warns(UserWarning, match="TensorBoard is not installed"):
            callbacks.append(make())
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=callbacks)
    assert len(history.history["loss"]) == 2
    assert not log_dir.exists() or not any(log_dir.rglob("*"))


# 7. bad input


def test_unknown_layer_name(tmp_path):
    model = compiled(small_sequential())
    x, y = data(4, 32)
    names = [layer.name for layer in model.layers]
    for logger in (
        FeatureMapLogger(tmp_path, x[:2], layers=["conv_a", "conv_z"]),
        GradCAMLogger(tmp_path, x[:2], layer="conv_z"),
    ):
        with pytest.raises(ValueError, match=r"no layer 'conv_z'.*Valid layer names: ") as info:
            model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
        for name in names:
            assert name in str(info.value)
    assert not any(tmp_path.iterdir())


def test_wrong_image_shape(tmp_path):
    model = compiled(small_sequential())
    x, y = data(4, 32)
    for logger in (
        FeatureMapLogger(tmp_path, np.zeros((2, 16, 16, 3), np.float32)),
        FeatureMapLogger(tmp_path, np.zeros((2, 32, 32, 1), np.float32)),
        GradCAMLogger(tmp_path, np.zeros((2, 16, 16, 3), np.float32)),
    ):
        with pytest.raises(ValueError, match=r"images: expected images of shape \(N, 32, 32, 3\)"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_every_n_epochs_must_be_a_positive_integer(tmp_path, every):
    x, y = data(2, 32)
    for make in (
        lambda: FeatureMapLogger(tmp_path, x, every_n_epochs=every),
        lambda: KernelStatsLogger(tmp_path, every_n_epochs=every),
        lambda: GradCAMLogger(tmp_path, x, every_n_epochs=every),
        lambda: ConfusionMatrixLogger(tmp_path, (x, y), CLASS_NAMES, every_n_epochs=every),
    ):
        with pytest.raises(ValueError, match="every_n_epochs must be a positive integer"):
            make()


# 8. a real TensorBoard server


def test_tensorboard_server_shows_the_feature_maps(zoo_run, tmp_path):
    expected = {f"feature_maps/stage{i}" for i in range(1, 4)}
    with TensorBoardServer(zoo_run.logs.main, tmp_path / "tensorboard.log") as server:
        tags = server.wait_for(
            "/data/plugin/images/tags", lambda answer: expected <= set(answer.get(".", {}))
        )
        # the server knows each event holds one image per sample image
        assert tags["."]["feature_maps/stage2"]["samples"] == SAMPLES
        size = grid_size(zoo_run.model.get_layer("stage2").output.shape)
        query = urllib.parse.urlencode(
            {"tag": "feature_maps/stage2", "run": ".", "sample": SAMPLES - 1}
        )
        entries = server.json(f"/data/plugin/images/images?{query}")
        assert [entry["step"] for entry in entries] == [0, 1]
        png = server.get(f"/data/plugin/images/individualImage?{entries[-1]['query']}")
        assert png.startswith(PNG_SIGNATURE)
        picture = decode_png(png)
        assert picture.shape[:2] == size
        # the last sample's grid at the last epoch, as the event file has it
        _, _, pngs = images_of(zoo_run.acc, "feature_maps/stage2")
        np.testing.assert_array_equal(picture, decode_png(pngs[-1]))


# regressions


def test_confusion_matrix_reads_column_labels_as_class_indices(tmp_path):
    model = compiled(small_sequential())
    x, y = data(30, 32)
    logger = ConfusionMatrixLogger(tmp_path, (x, y[:, None]), CLASS_NAMES)
    logger.set_model(model)
    assert logger.matrix().sum(axis=1).tolist() == [10, 10, 10]


def test_a_deleted_log_dir_is_written_again(tmp_path):
    import shutil

    model = compiled(small_sequential())
    x, y = data(4, 32)
    log_dir = tmp_path / "logs"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[FeatureMapLogger(log_dir, x[:1])])
    shutil.rmtree(log_dir)
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[FeatureMapLogger(log_dir, x[:1]), KernelStatsLogger(log_dir)],
    )
    tags = tags_of(load_events(log_dir))
    assert "feature_maps/conv_b" in tags and "kernels/conv_a" in tags


def test_the_missing_tensorboard_warning_points_at_the_caller(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    for make in (
        lambda: FeatureMapLogger(tmp_path, np.zeros((1, 32, 32, 3))),
        lambda: KernelStatsLogger(tmp_path),
    ):
        with pytest.warns(UserWarning, match="TensorBoard is not installed") as record:
            make()
        assert record[0].filename == __file__
