"""keras_zoo.layers.BatchNormalization (Keras' batch norm with torch's running variance and
TensorFlow's fused kernel in inference) and keras_zoo.layers.Conv2D (grouped convolutions as
TensorFlow's own op), which must compute what Keras' (and torch's) own layers compute; and the
feature outputs' record (keras_zoo.features): what every family marks, what survives save/load,
what the backbone is."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_zoo
from keras_zoo.features import (
    FeatureOutput,
    StageOutput,
    backbone_end,
    feature_info,
    token_grid,
)
from keras_zoo.layers import BatchNormalization, Conv2D, grouped_conv_support
from keras_zoo.models.vit import vision_transformer
from tests.conftest import assert_save_load_round_trip, random_batch_norm_weights, relative_error


def _pair(rng, shape, **kwargs):
    """(keras_zoo layer, Keras layer) built for `shape` with the same random statistics."""
    ours, theirs = BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    theirs.build(shape)
    weights = random_batch_norm_weights(theirs, rng, 0.3)
    for layer in (ours, theirs):
        layer.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize(
    "kwargs", [{}, {"epsilon": 1e-5, "scale": False}, {"center": False, "axis": 3}]
)
def test_inference_equals_keras_batch_norm(rng, kwargs):
    x = rng.normal(0, 2, (2, 5, 6, 8)).astype("float32")
    ours, theirs = _pair(rng, x.shape, **kwargs)
    assert relative_error(ours(x, training=False), theirs(x, training=False)) < 1e-6


def test_inference_uses_the_fused_kernel_and_training_does_not(rng):
    # The fused op is what TensorFlow merges into the convolution: the point of the layer.
    ours, _ = _pair(rng, (1, 4, 4, 8))

    def op_types(training):
        fn = tf.function(lambda x: ours(x, training=training))
        graph = fn.get_concrete_function(tf.TensorSpec((1, 4, 4, 8))).graph
        return {op.type for op in graph.get_operations()}

    assert "FusedBatchNormV3" in op_types(False)
    assert "FusedBatchNormV3" not in op_types(True)


def test_training_and_frozen_layers_behave_as_keras(rng):
    x = rng.normal(1, 2, (4, 3, 3, 6)).astype("float32")
    ours, theirs = _pair(rng, x.shape, momentum=0.5)
    np.testing.assert_array_equal(ours(x, training=True), theirs(x, training=True))
    np.testing.assert_array_equal(ours.moving_mean.numpy(), theirs.moving_mean.numpy())
    # the running variance is torch's (tests/test_recipes_optim.py), not Keras' biased one
    assert relative_error(ours.moving_variance.numpy(), theirs.moving_variance.numpy()) > 1e-2
    theirs.moving_variance.assign(ours.moving_variance)
    for layer in (ours, theirs):  # a frozen batch norm normalises with its moving statistics
        layer.trainable = False
    assert relative_error(ours(x, training=True), theirs(x, training=True)) < 1e-6
    np.testing.assert_array_equal(ours.moving_mean.numpy(), theirs.moving_mean.numpy())


def test_other_ranks_and_channels_first_fall_back_to_keras(rng):
    for shape, axis in (((3, 7), -1), ((2, 6, 4, 4), 1)):
        x = rng.normal(0, 1, shape).astype("float32")
        ours, theirs = _pair(rng, shape, axis=axis)
        np.testing.assert_array_equal(ours(x, training=False), theirs(x, training=False))


def test_mixed_precision_returns_the_compute_dtype(rng):
    x = rng.normal(0, 1, (2, 4, 4, 8)).astype("float32")
    ours, theirs = _pair(rng, x.shape, dtype="mixed_float16")
    y = ours(x.astype("float16"), training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert relative_error(y, theirs(x.astype("float16"), training=False)) < 1e-3


def test_saved_models_keep_the_layer(rng, tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3)(inputs)))
    assert_save_load_round_trip(model, rng.normal(0, 1, (2, 8, 8, 3)).astype("float32"), tmp_path)
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("bn")) is BatchNormalization


@pytest.mark.parametrize("fused", [True, False])
def test_training_keeps_torchs_running_statistics(torch, rng, fused):
    """Ten training calls of the layer and of torch.nn.BatchNorm2d from the same statistics:
    the same outputs and running mean and variance (torch's unbiased rule), in float32; and
    the setting survives get_config."""
    x = rng.normal(1, 2, (10, 3, 5, 5, 6)).astype("float32")
    ours = BatchNormalization(epsilon=1e-5, momentum=0.9, fused=fused)
    ours = BatchNormalization.from_config(ours.get_config())
    assert ours.fused is fused
    ours.build(x.shape[1:])
    theirs = torch.nn.BatchNorm2d(6, eps=1e-5, momentum=0.1).train()
    weights = random_batch_norm_weights(ours, rng, 0.3)
    ours.set_weights(weights)
    with torch.no_grad():
        for tensor, value in zip(
            (theirs.weight, theirs.bias, theirs.running_mean, theirs.running_var), weights
        ):
            tensor.copy_(torch.from_numpy(value))
    for batch in x:
        expected = theirs(torch.from_numpy(batch.transpose(0, 3, 1, 2))).detach().numpy()
        got = ours(batch, training=True)
        assert relative_error(got, expected.transpose(0, 2, 3, 1)) < 1e-5
    assert relative_error(ours.moving_mean.numpy(), theirs.running_mean.numpy()) < 1e-6
    assert relative_error(ours.moving_variance.numpy(), theirs.running_var.numpy()) < 1e-6


def test_models_use_the_fused_layer_only_after_single_op_convolutions():
    import keras_zoo

    def kinds(name, layers):
        model = keras_zoo.build(name, input_shape=(64, 64, 3))
        assert all(type(model.get_layer(n)) is BatchNormalization for n in layers)
        return [model.get_layer(n).fused for n in layers]

    # stem conv, expansion 1x1: fused; after the depthwise conv: Keras' own
    assert kinds(
        "mobilenet_v2", ["features.0.1", "features.2.conv.0.1", "features.2.conv.1.1"]
    ) == [True, True, False]
    # after ResNeXt's grouped 3x3 (keras_zoo's Conv2D, one TensorFlow op): fused as well
    assert kinds("resnext50_32x4d", ["bn1", "layer1.0.bn1", "layer1.0.bn2"]) == [True, True, True]
    # ShuffleNet V1: after the first unit's plain 1x1 and a later unit's grouped 1x1, fused;
    # after the depthwise 3x3, Keras' own
    assert kinds(
        "shufflenet_v1",
        ["features.0.branch_main_1.1", "features.1.branch_main_1.1", "features.1.branch_main_1.4"],
    ) == [True, True, False]


def test_small_epsilons_are_kept_not_raised_to_a_minimum(rng):
    # Dead channels (variance 0) expose any epsilon the fused kernel would substitute.
    x = rng.normal(0, 1e-3, (1, 4, 4, 3)).astype("float32")
    for epsilon in (1e-5, 1e-7):
        ours, theirs = _pair(rng, x.shape, epsilon=epsilon)
        for layer in (ours, theirs):
            layer.moving_variance.assign(np.zeros(3, "float32"))
        fused = tf.function(lambda v, layer=ours: layer(v, training=False))(x)
        assert relative_error(fused, theirs(x, training=False)) < 1e-6


# (input shape, filters, kernel size, stride, groups, padding, use_bias): ResNeXt's 3x3 in 32
# groups, stride 2 on an odd size as after blocks._pad ('valid') and with 'same' (which pads
# an odd size evenly, as PyTorch does), ShuffleNet's 1x1 in 3 groups
GROUPED = [
    ((2, 9, 9, 64), 64, 3, 1, 32, "same", False),
    ((2, 13, 11, 64), 128, 3, 2, 32, "valid", False),
    ((1, 15, 15, 12), 24, 3, 2, 4, "same", True),
    ((2, 7, 5, 60), 240, 1, 1, 3, "valid", True),
]
GROUPED_IDS = ["3x3g32", "3x3g32-stride2-odd", "3x3g4-stride2-same-bias", "1x1g3-bias"]


def _grouped_pair(rng, shape, filters, kernel_size, stride, groups, padding, use_bias):
    """(keras_zoo Conv2D, Keras Conv2D) built for `shape` with the same random weights."""
    kwargs = {"strides": stride, "padding": padding, "groups": groups, "use_bias": use_bias}
    ours = Conv2D(filters, kernel_size, **kwargs)
    theirs = keras.layers.Conv2D(filters, kernel_size, **kwargs)
    for layer in (ours, theirs):
        layer.build(shape)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in theirs.weights]
    for layer in (ours, theirs):
        layer.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize("case", GROUPED, ids=GROUPED_IDS)
def test_grouped_conv_equals_keras_and_torch(rng, case):
    import torch

    shape, filters, kernel_size, stride, groups, padding, use_bias = case
    ours, theirs = _grouped_pair(rng, *case)
    x = rng.normal(0, 1, shape).astype("float32")
    y = tf.function(lambda v: ours(v))(x).numpy()
    assert relative_error(y, theirs(x)) < 1e-6
    conv = torch.nn.Conv2d(
        shape[-1],
        filters,
        kernel_size,
        stride,
        groups=groups,
        padding=kernel_size // 2 if padding == "same" else 0,
        bias=use_bias,
    )
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(ours.kernel.numpy().transpose(3, 2, 0, 1)))
        if use_bias:
            conv.bias.copy_(torch.from_numpy(ours.bias.numpy()))
        want = conv(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert relative_error(y, want) < 1e-6


@pytest.mark.parametrize("case", GROUPED, ids=GROUPED_IDS)
def test_grouped_conv_gradients_equal_keras(rng, case):
    ours, theirs = _grouped_pair(rng, *case)
    x = tf.constant(rng.normal(0, 1, case[0]).astype("float32"))

    def gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) ** 2)
        return tape.gradient(loss, [x, *layer.trainable_weights])

    for got, want in zip(gradients(ours), gradients(theirs)):
        assert relative_error(got, want) < 1e-5


def test_grouped_conv_is_one_tensorflow_op(rng):
    # The point of the layer: no XLA function called from the graph, where it can be avoided.
    ours, theirs = _grouped_pair(rng, *GROUPED[0])

    def op_types(layer, dtype="float32"):
        fn = tf.function(lambda v: layer(v))
        graph = fn.get_concrete_function(tf.TensorSpec(GROUPED[0][0], dtype)).graph
        return {op.type for op in graph.get_operations()}

    assert "StatefulPartitionedCall" in op_types(theirs)  # Keras' XLA-compiled function
    # TensorFlow's CPU kernels compute grouped convolutions in every float dtype, with or
    # without oneDNN; they differentiate them only through oneDNN, and never in float64.
    assert grouped_conv_support("float32") in ("tensorflow", "forward")
    assert grouped_conv_support("float64") == "forward"
    assert "Conv2D" in op_types(ours) and "StatefulPartitionedCall" not in op_types(ours)


def test_grouped_conv_trains_saves_and_folds(rng, tmp_path):
    import keras_zoo

    inputs = keras.Input((10, 10, 12))
    x = keras.layers.Conv2D(24, 1, use_bias=False, name="reduce")(inputs)
    x = Conv2D(24, 3, padding="same", groups=6, use_bias=False, name="grouped")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    x = rng.normal(0, 1, (8, 10, 10, 12)).astype("float32")
    y = rng.integers(0, 3, 8)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = model.get_layer("grouped").kernel.numpy().copy()
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(model.get_layer("grouped").kernel.numpy(), before)

    assert_save_load_round_trip(model, x, tmp_path)
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("grouped")) is Conv2D
    assert loaded.get_layer("grouped").get_config() == model.get_layer("grouped").get_config()

    folded = keras_zoo.fold_batchnorm(model)
    assert type(folded.get_layer("grouped")) is Conv2D and folded.get_layer("grouped").use_bias
    assert relative_error(folded(x, training=False), model(x, training=False)) < 1e-5


def test_models_use_the_layer_for_grouped_convolutions_only():
    import keras_zoo

    def kinds(name, layers):
        model = keras_zoo.build(name, input_shape=(64, 64, 3))
        return [type(model.get_layer(n)).__module__.split(".")[0] for n in layers]

    assert kinds("resnext50_32x4d", ["layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv2"]) == [
        "keras",
        "keras_zoo",
        "keras_zoo",
    ]
    assert kinds(
        "shufflenet_v1_g3_x1_0",
        [
            "features.0.branch_main_1.0",  # plain: first unit
            "features.0.branch_main_2.0",
            "features.1.branch_main_1.0",
        ],
    ) == ["keras", "keras_zoo", "keras_zoo"]


def test_without_onednn_grouped_convs_are_tensorflow_ops_with_xla_gradients():
    # TensorFlow's own CPU kernels compute grouped convolutions but refuse their gradients:
    # the forward pass must stay one Conv2D op, and the gradients must be Keras'.
    code = (
        "import keras, numpy as np, tensorflow as tf\n"
        "from keras_zoo.layers import Conv2D, grouped_conv_support\n"
        "assert grouped_conv_support('float32') == 'forward'\n"
        "ours, theirs = Conv2D(8, 3, 2, groups=4), keras.layers.Conv2D(8, 3, 2, groups=4)\n"
        "x = tf.constant(np.random.default_rng(0).normal(0, 1, (2, 7, 6, 8)), 'float32')\n"
        "ours.build(x.shape); theirs.build(x.shape); theirs.set_weights(ours.get_weights())\n"
        "fn = tf.function(ours)\n"
        "ops = {op.type for op in fn.get_concrete_function(x).graph.get_operations()}\n"
        "assert 'Conv2D' in ops and 'StatefulPartitionedCall' not in ops, ops\n"
        "def grads(layer, call):\n"
        "    with tf.GradientTape() as tape:\n"
        "        tape.watch(x)\n"
        "        loss = tf.reduce_sum(call(x) ** 2)\n"
        "    return tape.gradient(loss, [x, *layer.trainable_weights])\n"
        "for a, b in zip(grads(ours, fn), grads(theirs, theirs)):\n"
        "    err = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))\n"
        "    assert err < 1e-5, err\n"
        # TensorFlow's graph optimiser would fuse the bias and ReLU into a kernel that
        # refuses grouped convolutions at run time: predict runs the optimised graph
        "model = keras.Sequential([keras.Input((7, 6, 8)), ours, keras.layers.ReLU()])\n"
        "want = keras.activations.relu(theirs(x)).numpy()\n"
        "assert np.allclose(model.predict(x, verbose=0), want, atol=1e-5)\n"
    )
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------------------------------------
# the feature outputs' record (keras_zoo.features)

TINY_VIT = dict(patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)


def _described(model):
    return [(f.name, f.reduction, f.channels, f.grid, f.prefix_tokens) for f in feature_info(model)]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5"])
def test_cnn_stages_are_feature_maps_at_strides_4_to_32(name):
    model = keras_zoo.build(name, input_shape=(64, 96, 3))
    info = feature_info(model)
    assert [(f.name, f.reduction, f.grid, f.prefix_tokens) for f in info] == [
        (f"stage{i + 1}", 4 * 2**i, None, 0) for i in range(4)
    ]
    for f in info:
        assert isinstance(f.layer, StageOutput) and isinstance(f.layer, FeatureOutput)
        assert f.layer.stride == f.reduction
        assert tuple(f.output.shape) == (None, 64 // f.reduction, 96 // f.reduction, f.channels)
    assert keras_zoo.stage_outputs(model) == [f.layer for f in info]
    assert keras_zoo.features.token_grid(model) is None
    assert keras_zoo.layers.token_grid(model) is None


def test_a_vits_blocks_are_feature_outputs_of_tokens_on_the_grid():
    model = vision_transformer(**TINY_VIT, input_shape=(40, 32, 3), classes=3)
    assert _described(model) == [
        (f"encoder.layers.encoder_layer_{i}", 8, 16, (5, 4), 1) for i in range(2)
    ]
    for f in feature_info(model):
        # the marker is the block's output: the identity of its residual add
        assert f.layer.input is model.get_layer(f"{f.name}.mlp_residual").output
    assert keras_zoo.stage_outputs(model) == []
    grid = keras_zoo.layers.token_grid(model)
    assert grid == keras_zoo.features.TokenGrid(rows=5, columns=4, prefix_tokens=1, patch=8)
    # a user's model around it still reads the record
    inputs = keras.Input((40, 32, 3))
    outer = keras.Model(inputs, model(inputs))
    assert _described(outer) == _described(model) and token_grid(outer) == grid


def test_the_record_survives_save_load_and_adds_no_weights_or_ops(rng, tmp_path):
    vit = vision_transformer(**TINY_VIT, input_shape=(32, 32, 3), classes=3)
    cnn = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3)
    for model in (vit, cnn):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert _described(loaded) == _described(model)
        assert all(not f.layer.weights for f in feature_info(model))
    assert_save_load_round_trip(vit, rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32"), tmp_path)
    marker = FeatureOutput(16, grid=[2, 3], prefix_tokens=1, name="block")
    again = FeatureOutput.from_config(marker.get_config())
    assert (again.reduction, again.grid, again.prefix_tokens) == (16, (2, 3), 1)


def test_stage_outputs_saved_under_their_registered_name_still_load():
    # a StageOutput as .keras files record it: registered as keras_zoo>StageOutput, a stride
    config = {
        "module": "keras_zoo.layers",
        "class_name": "StageOutput",
        "config": {"name": "stage2", "trainable": True, "dtype": "float32", "stride": 8},
        "registered_name": "keras_zoo>StageOutput",
    }
    layer = keras.saving.deserialize_keras_object(config)
    assert type(layer) is StageOutput and (layer.name, layer.stride, layer.reduction) == (
        "stage2",
        8,
        8,
    )
    assert layer.grid is None and layer.get_config()["stride"] == 8
    assert "reduction" not in layer.get_config()
    assert keras_zoo.StageOutput is StageOutput is keras_zoo.layers.StageOutput


def _old_freeze_rule(model, classifier):
    """--freeze-backbone's rule as training applied it: through the last StageOutput, else up
    to the first classifier layer."""
    stages = [i for i, layer in enumerate(model.layers) if isinstance(layer, StageOutput)]
    heads = [i for i, layer in enumerate(model.layers) if layer.name in classifier]
    return stages[-1] + 1 if stages else heads[0]


@pytest.mark.parametrize(
    "name", ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5", "vit"]
)
def test_backbone_end_is_what_freeze_backbone_freezes(name):
    if name == "vit":
        model, classifier = vision_transformer(**TINY_VIT, input_shape=(32, 32, 3)), ("heads.head",)
    else:
        model = keras_zoo.build(name, input_shape=(64, 64, 3))
        classifier = keras_zoo.model_info(name).classifier
    end = backbone_end(model, classifier)
    assert end == _old_freeze_rule(model, classifier)
    names = [layer.name for layer in model.layers]
    if name == "vit":  # the final norm belongs to the backbone, the head does not
        assert names[end - 3 : end + 1] == [
            "encoder.ln",
            "token_pool.crop",
            "token_pool",
            "heads.head",
        ]
    else:
        assert names[end - 1] == "stage4"
        assert all(
            not layer.weights for layer in model.layers[end:] if layer.name not in classifier
        )


def test_backbone_end_without_features_or_a_classifier_is_a_family_bug():
    vit = vision_transformer(**TINY_VIT, input_shape=(32, 32, 3), include_top=False)
    with pytest.raises(RuntimeError, match="no stage output and no classifier layer"):
        backbone_end(vit, ("heads.head",))
    inputs = keras.Input((8,))
    plain = keras.Model(inputs, keras.layers.Dense(2, name="fc")(keras.layers.Dense(4)(inputs)))
    assert plain.layers[backbone_end(plain, ("fc",))].name == "fc"  # layers[0] is the input
