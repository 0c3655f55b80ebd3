"""keras_zoo.fold_batchnorm: the inference export computes the model's function with every
foldable batch norm folded into the layer before it, and leaves the rest alone."""

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo import walk
from tests.conftest import assert_save_load_round_trip, random_batch_norm_weights, relative_error


def _randomize_batch_norms(model, rng):
    """Statistics far from the initial ones, so that a wrong fold shows in the outputs."""
    for layer in walk.layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(random_batch_norm_weights(layer, rng, 0.2))


def _batch_norms(model):
    return [
        layer for layer in walk.layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v1",
        "mobilenet_v2",
        "mobilenet_v3_small",
        "resnet18",
        "resnext50_32x4d",
        "shufflenet_v1",
        "shufflenet_v2",
    ],
)
def test_every_family_folds_completely_and_computes_the_same(name, rng):
    model = keras_zoo.build(name, input_shape=(64, 64, 3), classifier_activation=None)
    _randomize_batch_norms(model, rng)
    before = [w.numpy().copy() for w in model.weights]
    folded = keras_zoo.fold_batchnorm(model)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    assert relative_error(folded(x, training=False), model(x, training=False)) < 1e-5
    assert not _batch_norms(folded)
    # the batch norms' names remain (as identities), so every layer name still resolves
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    assert keras_zoo.count_macs(folded) == keras_zoo.count_macs(model)
    # the original is untouched
    assert len(_batch_norms(model)) > 0
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), old)


def test_any_functional_model_folds_keras_applications_included(rng):
    model = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), alpha=0.35)
    _randomize_batch_norms(model, rng)
    folded = keras_zoo.fold_batchnorm(model)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    assert not _batch_norms(folded)
    assert relative_error(folded.predict(x, verbose=0), model.predict(x, verbose=0)) < 1e-5


def _mixed_model():
    """Batch norms that fold (after a conv, a depthwise conv with a bias, a Dense, inside a
    nested Sequential model) and ones that must not (after an activation inside the conv, after
    a conv whose output has another use or is a model output, after an Add, on the wrong axis)."""
    inputs = keras.Input((12, 12, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn_conv")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=True, name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn_dw")(x)
    a = keras.layers.Conv2D(16, 1, activation="relu", name="conv_relu")(x)
    a = keras.layers.BatchNormalization(name="bn_after_relu")(a)
    b = keras.layers.Conv2D(16, 1, name="conv_shared")(x)
    b_bn = keras.layers.BatchNormalization(name="bn_shared")(b)
    x = keras.layers.Add(name="add")([a, b_bn, b])
    x = keras.layers.BatchNormalization(name="bn_after_add")(x)
    x = keras.layers.Conv2D(6, 1, name="conv_axis1")(x)
    x = keras.layers.BatchNormalization(axis=1, name="bn_axis1")(x)
    nested = keras.Sequential(
        [
            keras.Input((10, 10, 6)),
            keras.layers.Conv2D(5, 3, use_bias=False, name="inner_conv"),
            keras.layers.BatchNormalization(name="inner_bn"),
        ],
        name="nested",
    )
    x = nested(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(7, name="dense")(x)
    x = keras.layers.BatchNormalization(name="bn_dense")(x)
    y = keras.layers.Dense(3, name="out")(x)
    side = keras.layers.Conv2D(2, 1, name="conv_out")(inputs)
    side_bn = keras.layers.BatchNormalization(name="bn_of_output")(side)
    return keras.Model(inputs, [y, side, side_bn])


def test_only_foldable_batch_norms_fold_nested_models_included(rng):
    model = _mixed_model()
    _randomize_batch_norms(model, rng)
    folded = keras_zoo.fold_batchnorm(model)
    left = sorted(layer.name for layer in _batch_norms(folded))
    assert left == ["bn_after_add", "bn_after_relu", "bn_axis1", "bn_of_output", "bn_shared"]
    assert folded.get_layer("conv").use_bias and folded.get_layer("dw").use_bias
    assert folded.get_layer("nested").get_layer("inner_conv").use_bias
    for name in ("conv_shared", "conv_relu", "conv_axis1", "conv_out"):  # nothing folded in
        np.testing.assert_array_equal(
            folded.get_layer(name).kernel.numpy(), model.get_layer(name).kernel.numpy()
        )
    x = rng.uniform(-1, 1, (3, 12, 12, 4)).astype("float32")
    for got, want in zip(folded(x, training=False), model(x, training=False)):
        assert relative_error(got, want) < 1e-5


def test_sequential_models_fold_and_folded_models_save(rng, tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, name="c"),
            keras.layers.BatchNormalization(name="b"),
            keras.layers.ReLU(),
        ]
    )
    _randomize_batch_norms(model, rng)
    folded = keras_zoo.fold_batchnorm(model)
    assert isinstance(folded, keras.Sequential) and not _batch_norms(folded)
    x = rng.uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    assert relative_error(folded(x), model(x)) < 1e-5
    assert_save_load_round_trip(folded, x, tmp_path)


def test_models_without_a_graph_are_refused():
    with pytest.raises(TypeError, match="model must be a Functional or Sequential"):
        keras_zoo.fold_batchnorm("resnet50")

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="model: fold_batchnorm needs Functional or Sequential"):
        keras_zoo.fold_batchnorm(Subclassed())


def test_grouped_convolutions_keep_their_layer_with_the_batch_norm_folded_in(rng):
    from keras_zoo.layers import Conv2D

    model = keras_zoo.build(
        "shufflenet_v1_g3_x0_5", input_shape=(64, 64, 3), classifier_activation=None
    )
    _randomize_batch_norms(model, rng)
    folded = keras_zoo.fold_batchnorm(model)
    for name in ("features.0.branch_main_2.0", "features.1.branch_main_1.0"):
        layer = folded.get_layer(name)
        assert type(layer) is Conv2D and layer.groups == 3 and layer.use_bias
        assert type(folded.get_layer(name[:-1] + "1")) is keras.layers.Identity
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    assert relative_error(folded(x, training=False), model(x, training=False)) < 1e-5
