"""keras_zoo.viz: layer naming and probing through nested models, channel grids, kernel
statistics, Grad-CAM, confusion matrices and the plots."""

import warnings

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo import viz
from keras_zoo.viz.images import grid_shape, minmax


def _quadrant_model():
    """Two classes on 32x32 images: class 0 sees only the top-right quadrant, class 1 only the
    bottom-left one (masks after a ones-kernel convolution, no biases)."""
    top_right = np.zeros((1, 32, 32, 1), "float32")
    top_right[:, :16, 16:] = 1
    bottom_left = np.zeros((1, 32, 32, 1), "float32")
    bottom_left[:, 16:, :16] = 1
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(
        4, 3, padding="same", use_bias=False, kernel_initializer="ones", name="conv"
    )(inputs)
    a = keras.layers.Lambda(lambda t: t * top_right, name="mask_tr")(x)
    b = keras.layers.Lambda(lambda t: t * bottom_left, name="mask_bl")(x)
    x = keras.layers.Concatenate(name="features")([a, b])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    head = keras.layers.Dense(2, use_bias=False, name="head")
    outputs = head(x)
    head.set_weights([np.array([[1, 0]] * 4 + [[0, 1]] * 4, "float32")])
    return keras.Model(inputs, outputs, name="quadrants")


def _peak_quadrant(heatmap):
    h, w = heatmap.shape
    quadrants = {
        "top-left": heatmap[: h // 2, : w // 2],
        "top-right": heatmap[: h // 2, w // 2 :],
        "bottom-left": heatmap[h // 2 :, : w // 2],
        "bottom-right": heatmap[h // 2 :, w // 2 :],
    }
    return max(quadrants, key=lambda k: quadrants[k].mean())


def test_grad_cam_peaks_in_the_quadrant_the_class_depends_on(rng):
    model = _quadrant_model()
    images = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    for class_index, quadrant in ((0, "top-right"), (1, "bottom-left")):
        heatmaps = viz.grad_cam(model, images, class_index=class_index, layer="features")
        assert heatmaps.shape == (3, 32, 32)
        assert heatmaps.min() >= 0 and np.allclose(heatmaps.max(axis=(1, 2)), 1)
        assert [_peak_quadrant(h) for h in heatmaps] == [quadrant] * 3
        opposite = heatmaps[:, 16:, :16] if class_index == 0 else heatmaps[:, :16, 16:]
        assert opposite.max() < 0.05
    per_image = viz.grad_cam(model, images, class_index=[0, 1, 0], layer="features")
    assert [_peak_quadrant(h) for h in per_image] == ["top-right", "bottom-left", "top-right"]


def test_grad_cam_defaults_to_the_predicted_class_and_the_last_feature_map(rng):
    model = _quadrant_model()
    images = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    images[0, 16:, :16] = 0  # image 0: nothing in the bottom-left, so class 0 wins
    images[1, :16, 16:] = 0  # image 1: class 1 wins
    assert viz.default_cam_layer(model).name == "features"
    heatmaps = viz.grad_cam(model, images)
    assert [_peak_quadrant(h) for h in heatmaps] == ["top-right", "bottom-left"]


def test_grad_cam_through_a_nested_model_equals_a_computation_by_hand(rng):
    backbone = keras_zoo.build("mobilenet_v3_small", include_top=False, input_shape=(64, 64, 3))
    nested = keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            keras.layers.Rescaling(0.5, name="half"),
            backbone,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ]
    )
    images = rng.uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    heatmaps = viz.grad_cam(nested, images, class_index=2, layer="stage3")
    # the same computed by hand on the backbone's own graph
    import tensorflow as tf

    stage3 = keras.Model(backbone.inputs[0], backbone.get_layer("stage3").output)
    both = keras.Model(backbone.inputs[0], [stage3.outputs[0], backbone.outputs[0]])
    with tf.GradientTape() as tape:
        a, features = both(images * 0.5)
        score = tf.math.log(nested.get_layer("head")(nested.get_layer("gap")(features))[:, 2])
    grads = tape.gradient(score, a)
    cam = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * a, -1))
    cam = cam / tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    expected = tf.image.resize(cam[..., None], (64, 64))[..., 0].numpy()
    np.testing.assert_allclose(heatmaps, expected, atol=1e-5)
    assert 0.9 < heatmaps.max() <= 1
    # the probe reaches the same layer through the nesting
    np.testing.assert_allclose(
        viz.feature_maps(nested, images, ["stage3"])["stage3"],
        stage3(images * 0.5),
        rtol=1e-5,
        atol=1e-6,
    )


def test_grad_cam_rejects_bad_classes_and_layers(rng):
    model = _quadrant_model()
    images = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"class_index: expected .* in \[0, 2\)"):
        viz.grad_cam(model, images, class_index=2)
    with pytest.raises(ValueError, match="class_index"):
        viz.grad_cam(model, images, class_index=[0, 1, 1])
    with pytest.raises(ValueError, match="not a feature map"):
        viz.grad_cam(model, images, layer="pool")
    with pytest.raises(ValueError, match="has no layer 'nope'.*Valid layer names: conv, mask_tr"):
        viz.grad_cam(model, images, layer="nope")
    with pytest.raises(ValueError, match=r"images: expected images of shape \(N, 32, 32, 3\)"):
        viz.grad_cam(model, images[:, :16])


def test_names_are_unique_and_free_of_the_model_name():
    def block(name):
        inputs = keras.Input((16, 16, 3))
        return keras.Model(
            inputs, keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs), name=name
        )

    inputs = keras.Input((16, 16, 3))
    x = block("a")(inputs)
    x = block("b")(x)
    x = keras.layers.Conv2D(2, 1, name="last")(x)
    model = keras.Model(inputs, x, name="outer_1")
    assert [ref.name for ref in viz.walk_layers(model)] == ["a/conv", "b/conv", "last"]
    assert [ref.name for ref in viz.walk_layers(model, include_models=True)] == [
        "a",
        "a/conv",
        "b",
        "b/conv",
        "last",
    ]
    (ref,) = viz.find_layers(model, ["b/conv"])
    assert ref.layer is model.get_layer("b").get_layer("conv")


def test_default_feature_layers_of_any_model_are_the_last_at_each_resolution():
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3, padding="same", name="a"),
            keras.layers.ReLU(name="a_relu"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(8, 3, padding="same", name="b"),
            keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(2, name="out"),
        ]
    )
    assert [ref.name for ref in viz.default_feature_layers(model)] == ["a_relu", "b", "c"]
    stages = viz.default_feature_layers(keras_zoo.build("resnet18"))
    assert [(ref.name, ref.layer.stride) for ref in stages] == [
        ("stage1", 4),
        ("stage2", 8),
        ("stage3", 16),
        ("stage4", 32),
    ]


def test_variable_size_models_take_the_resolutions_from_the_images(rng):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="b")(x)
    model = keras.Model(inputs, x)
    with pytest.raises(ValueError, match="no fixed input size"):
        viz.default_feature_layers(model)
    maps = viz.feature_maps(model, rng.uniform(0, 1, (1, 20, 20, 3)))
    assert {k: v.shape for k, v in maps.items()} == {"a": (1, 20, 20, 4), "b": (1, 10, 10, 4)}


def _token_model(marked: bool):
    """4x4 patches of 8 pixels, a class token, one attention over LayerNorm'd tokens and a head
    on the class token; the tokens after the attention marked as a feature output on the grid
    when `marked` (no PositionEmbedding: the marker alone says where the tokens lie)."""
    from keras_zoo.features import FeatureOutput
    from keras_zoo.layers import ClassToken

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 8, strides=8, name="patchify")(inputs)
    x = ClassToken(name="cls")(keras.layers.Reshape((16, 8), name="flat")(x))
    y = keras.layers.LayerNormalization(name="norm")(x)
    y = keras.layers.MultiHeadAttention(2, 4, name="attention")(y, y)
    x = keras.layers.Add(name="residual")([x, y])
    if marked:
        x = FeatureOutput(8, grid=(4, 4), prefix_tokens=1, name="block")(x)
    x = keras.layers.Flatten(name="first")(keras.layers.Cropping1D((0, 16), name="crop")(x))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_token_features_are_read_from_the_feature_outputs(rng):
    marked, plain = _token_model(True), _token_model(False)
    # the marker's grid makes the tokens maps: the feature layer, Grad-CAM at the attention's
    # input; unmarked, the model is one of convolutions
    assert [ref.name for ref in viz.default_feature_layers(marked)] == ["block"]
    assert viz.default_cam_layer(marked).name == "norm"
    assert [ref.name for ref in viz.default_feature_layers(plain)] == ["patchify"]
    assert viz.default_cam_layer(plain).name == "patchify"
    images = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    tokens = keras.Model(marked.inputs, marked.get_layer("block").output).predict(images, verbose=0)
    maps = viz.feature_maps(marked, images)
    np.testing.assert_array_equal(maps["block"], tokens[:, 1:].reshape(2, 4, 4, 8))
    assert viz.grad_cam(marked, images, resize=False).shape == (2, 4, 4)
    # a token layer that is not a feature output stays tokens
    assert viz.feature_maps(marked, images, ["residual"])["residual"].shape == (2, 17, 8)


def test_a_vits_feature_layers_are_its_blocks_as_token_maps(rng):
    from keras_zoo.models.vit import vision_transformer

    config = dict(patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32)
    model = vision_transformer(**config, input_shape=(32, 40, 3), classes=3)
    blocks = [f"encoder.layers.encoder_layer_{i}" for i in range(3)]
    assert [ref.name for ref in viz.default_feature_layers(model)] == blocks
    images = rng.uniform(0, 1, (2, 32, 40, 3)).astype("float32")
    maps = viz.feature_maps(model, images)
    # the maps features_only returns, on the same weights
    features = vision_transformer(
        **config, input_shape=(32, 40, 3), features_only=True, out_indices=(0, 1, 2)
    )
    for layer in (layer for layer in features.layers if layer.weights):
        layer.set_weights(model.get_layer(layer.name).get_weights())
    for block, want in zip(blocks, features.predict(images, verbose=0)):
        assert maps[block].shape == (2, 4, 5, 16)
        np.testing.assert_allclose(maps[block], want, rtol=1e-6, atol=1e-6)
    figure = viz.plot_feature_maps(model, images[0], blocks[-1], n=4)
    assert len(figure.axes) == 4


def test_subclassed_models_are_refused_clearly():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="Functional or Sequential model"):
        viz.walk_layers(Net())


def test_tile_channels_puts_each_normalised_channel_in_its_cell(rng):
    fmap = rng.normal(size=(5, 7, 11)).astype("float32")
    fmap[..., 3] = 2.0  # a constant channel becomes 0
    grid = viz.tile_channels(fmap, min_tile=1, min_width=0)  # as they are
    rows, cols = grid_shape(11)
    assert (rows, cols) == (3, 4)
    assert grid.shape == (rows * 5 + rows - 1, cols * 7 + cols - 1, 1)
    for c in range(11):
        r, q = divmod(c, cols)
        cell = grid[r * 6 : r * 6 + 5, q * 8 : q * 8 + 7, 0]
        np.testing.assert_allclose(cell, minmax(fmap[..., c]), atol=1e-6)
    assert grid[5, :, 0].min() == 1.0  # the separator row
    assert viz.tile_channels(fmap, max_channels=4, min_tile=1, min_width=0).shape == (
        2 * 5 + 1,
        2 * 7 + 1,
        1,
    )
    # by default enlarged by a whole factor: a channel >= 16 pixels a side, the grid >= 256
    # wide; 5x7 channels four to a row: 16 / 5 asks for 4, 4 * (7 * z + 1) - 1 >= 256 for 10
    big = viz.tile_channels(fmap)
    assert big.shape == (rows * 50 + rows - 1, cols * 70 + cols - 1, 1)
    for c in range(11):
        r, q = divmod(c, cols)
        cell = big[r * 51 : r * 51 + 50, q * 71 : q * 71 + 70, 0]
        np.testing.assert_allclose(
            cell, np.kron(minmax(fmap[..., c]), np.ones((10, 10))), atol=1e-6
        )


def test_filter_tiles_show_rgb_filters_enlarged(rng):
    kernel = rng.normal(size=(3, 3, 3, 5)).astype("float32")
    tiles = viz.filter_tiles(kernel, zoom=4)
    assert tiles.shape == (2 * 12 + 1, 3 * 12 + 2, 3)
    first = tiles[:12:4, :12:4]  # filter 0, one pixel per kernel tap
    np.testing.assert_allclose(first, minmax(kernel[..., 0]), atol=1e-6)
    gray = viz.filter_tiles(rng.normal(size=(3, 3, 8, 2)), zoom=1)
    assert gray.shape == (3, 7, 3) and np.array_equal(gray[..., 0], gray[..., 2])


def test_kernel_stats_are_numpys_for_every_weight():
    model = keras_zoo.build("shufflenet_v2_x0_5", input_shape=(64, 64, 3), classes=7)
    rows = viz.kernel_stats(model)
    assert len(rows) == len(model.weights)
    assert len({r.name for r in rows}) == len(rows)
    by_name = {r.name: r for r in rows}
    for name, values in (
        ("fc/kernel", model.get_layer("fc").kernel),
        ("conv1.1/moving_variance", model.get_layer("conv1.1").moving_variance),
        ("stage2.0.branch1.0/kernel", model.get_layer("stage2.0.branch1.0").kernel),
    ):
        values = keras.ops.convert_to_numpy(values).astype("float64")
        row = by_name[name]
        assert row.shape == values.shape
        np.testing.assert_allclose(
            [row.mean, row.std, row.min, row.max],
            [values.mean(), values.std(ddof=1), values.min(), values.max()],
            rtol=1e-12,
        )
    kernels = viz.kernel_stats(model, kernels_only=True)
    assert {r.name.rpartition("/")[2] for r in kernels} == {"kernel"}
    convs = [
        layer
        for layer in model.layers
        if isinstance(
            layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
        )
    ]
    assert len(kernels) == len(convs)
    assert viz.first_conv(model).name == "conv1.0"


def test_plot_feature_maps_is_a_grid_of_gray_channels(rng):
    model = keras_zoo.build("resnet18", input_shape=(64, 64, 3))
    image = rng.uniform(-1, 1, (64, 64, 3)).astype("float32")
    figure = viz.plot_feature_maps(model, image, "layer2.0")
    assert len(figure.axes) == 12
    assert figure.axes[0].get_subplotspec().get_gridspec().get_geometry() == (3, 4)
    expected = viz.feature_maps(model, image, ["layer2.0"])["layer2.0"][0]
    for i in (0, 7, 11):
        shown = figure.axes[i].get_images()[0]
        assert shown.get_cmap().name == "gray"
        np.testing.assert_allclose(shown.get_array(), expected[..., i], rtol=1e-5, atol=1e-6)
    assert len(viz.plot_feature_maps(model, image, "layer2.0", n=5).axes) == 5
    with pytest.raises(ValueError, match="layer: 'resnet18' has no layer 'layer9'"):
        viz.plot_feature_maps(model, image, "layer9")
    with pytest.raises(ValueError, match="not a feature map"):
        viz.plot_feature_maps(model, image, "fc")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        viz.plot_feature_maps(model, image, "stage1", n=0)


def test_plot_kernel_histograms_has_a_panel_per_kernel():
    model = keras_zoo.build("mobilenet_v3_small", input_shape=(64, 64, 3), classes=4)
    kernels = viz.kernel_stats(model, kernels_only=True)
    figure = viz.plot_kernel_histograms(model)
    assert len(figure.axes) == len(kernels)
    counts = sum(patch.get_height() for patch in figure.axes[0].patches)
    assert counts == np.prod(kernels[0].shape)
    with pytest.raises(
        ValueError, match="has no weight 'conv1/kernel'; valid weight names: features.0.0/kernel"
    ):
        viz.plot_kernel_histograms(model, ["conv1/kernel"])


def test_confusion_matrix_and_precision_recall_count_by_hand(rng):
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    matrix = viz.confusion_matrix(y_true, y_pred, 4)
    for i in range(4):
        for j in range(4):
            assert matrix[i, j] == np.sum((y_true == i) & (y_pred == j))
    precision, recall = viz.precision_recall(matrix)
    for c in range(4):
        assert precision[c] == pytest.approx(np.mean(y_true[y_pred == c] == c))
        assert recall[c] == pytest.approx(np.mean(y_pred[y_true == c] == c))
    with pytest.raises(ValueError, match=r"y_pred: class indices must be in \[0, 3\)"):
        viz.confusion_matrix([0, 1], [0, 3], 3)
    figure = viz.plot_confusion_matrix(matrix, ["a", "b", "c", "d"])
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["a", "b", "c", "d"]
    picture = viz.figure_to_array(figure)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3


def test_precision_recall_of_a_class_never_predicted_or_never_present_is_0():
    # class 2 is never predicted, class 3 neither present nor predicted
    y_true, y_pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing undefined to warn about: 0 is the answer
        matrix = viz.confusion_matrix(y_true, y_pred, 4)
        precision, recall = viz.precision_recall(matrix)
        empty = viz.confusion_matrix([], [], 3)
        one = viz.confusion_matrix([0, 0], [0, 0], 1)
        assert viz.precision_recall(empty)[0].tolist() == [0.0, 0.0, 0.0]
        assert [a.tolist() for a in viz.precision_recall(one)] == [[1.0], [1.0]]
    assert matrix.dtype == np.int64 and matrix.tolist() == [
        [1, 1, 0, 0],
        [0, 2, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 0, 0],
    ]
    assert precision.tolist() == [1 / 2, 2 / 4, 0.0, 0.0]
    assert recall.tolist() == [1 / 2, 2 / 2, 0 / 2, 0.0]
    assert empty.tolist() == [[0] * 3] * 3 and one.tolist() == [[2]]
    with pytest.raises(
        ValueError,
        match=r"matrix: expected a square confusion matrix, got "
        r"shape \(2, 3\)",
    ):
        viz.precision_recall(np.zeros((2, 3)))


def test_overlay_blends_a_colour_map_over_the_image():
    images = np.zeros((1, 4, 4, 3), "float32")
    images[0, :, :2] = 1.0
    heat = np.zeros((1, 4, 4), "float32")
    heat[0, 0, 0] = 1.0
    out = viz.overlay_heatmaps(images, heat, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == (1, 4, 4, 3)
    import matplotlib

    hot, cold = (np.array(matplotlib.colormaps["jet"](v)[:3]) for v in (1.0, 0.0))
    np.testing.assert_allclose(out[0, 0, 0], np.round(255 * (0.5 + 0.5 * hot)), atol=1)
    np.testing.assert_allclose(out[0, 3, 3], np.round(255 * 0.5 * cold), atol=1)
