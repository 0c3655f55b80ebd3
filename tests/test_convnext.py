"""The ConvNeXt family: its table against torchvision's own modules and published figures, the
layer names the port relies on, the stage outputs, stochastic depth, the LayerScale layer and
bad input. The numbers themselves are tests/test_parity_convnext.py's."""

import keras
import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo.blocks import gelu_erf
from keras_zoo.features import feature_info
from keras_zoo.layers import DropPath, LayerScale
from keras_zoo.models.convnext import VARIANTS, convnext
from tests.conftest import assert_save_load_round_trip, relative_error
from tests.torch_models import import_torchvision, torch_model

CONVNEXT_IDS = ["convnext_base", "convnext_large", "convnext_small", "convnext_tiny"]
# a ConvNeXt small enough to build in a moment
SMALL = dict(depths=(1, 2, 1, 1), dims=(8, 16, 24, 32))


def _meta_reference(name: str, **kwargs):
    """torchvision's own `name`, on the meta device: its structure without its weights."""
    with torch.device("meta"):
        return torch_model(name, **kwargs)


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def tiny():
    return keras_zoo.build("convnext_tiny")


def test_registered():
    assert keras_zoo.list_models("convnext*") == CONVNEXT_IDS
    info = keras_zoo.model_info("convnext_tiny")
    assert info.family == "convnext" and "drop_path_rate" in info.keywords
    assert not {"depths", "dims"} & set(info.keywords)  # the architecture the id fixes
    assert info.default_weights.key == "torchvision:IMAGENET1K_V1"
    assert info.input_size == (224, 224, 3) and info.crop_pct == pytest.approx(224 / 236)


@pytest.mark.parametrize("row", VARIANTS, ids=lambda row: row.name)
def test_the_table_is_torchvisions(row):
    tv = import_torchvision()
    ref = _meta_reference(row.name)
    stages = [ref.features[2 * s + 1] for s in range(4)]
    assert row.depths == tuple(len(stage) for stage in stages)
    assert row.dims == tuple(stage[0].block[0].in_channels for stage in stages)
    # the rate torchvision trains with reaches its last block
    assert stages[-1][-1].stochastic_depth.p == pytest.approx(row.trained_drop_path_rate)
    meta = tv.models.get_model_weights(row.name).DEFAULT.meta
    info = keras_zoo.model_info(row.name)
    assert (
        row.params == info.params == meta["num_params"] == sum(p.numel() for p in ref.parameters())
    )
    assert row.gmacs == info.gmacs == meta["_ops"]


def test_convnext_tiny_has_the_published_parameters_and_macs(tiny):
    info = keras_zoo.model_info("convnext_tiny")
    assert _trainable(tiny) == info.params == tiny.count_params()
    # torchvision's GFLOPS are MACs of the convolutions and Linears: LayerNorm, GELU and the
    # layer scale are not counted, here as there
    assert keras_zoo.count_macs(tiny) / 1e9 == pytest.approx(info.gmacs, abs=5e-4)
    assert tiny.output.shape == (None, 1000)


def test_layer_names_are_torchvisions_module_paths(tiny):
    # each weighted layer is a module with parameters; the layer scale is a bare parameter of
    # its block, named like the parameter
    expected = set()
    for key in _meta_reference("convnext_tiny").state_dict():
        module, _, parameter = key.rpartition(".")
        expected.add(key if parameter == "layer_scale" else module)
    assert {layer.name for layer in tiny.layers if layer.weights} == expected
    assert isinstance(tiny.get_layer("features.1.0.layer_scale"), LayerScale)
    assert isinstance(tiny.get_layer("features.1.0.block.0"), keras.layers.DepthwiseConv2D)


def test_layer_norms_gelus_and_layer_scales_are_convnexts(tiny):
    norms = [layer for layer in tiny.layers if isinstance(layer, keras.layers.LayerNormalization)]
    # the stem's, one per block, the three downsamplings' and the head's, all over the channels
    assert len(norms) == 1 + 18 + 3 + 1
    assert {layer.epsilon for layer in norms} == {1e-6}
    for norm in norms:  # one scale per channel: the last axis
        assert norm.gamma.shape == (norm.input.shape[-1],)
        assert list(norm.axis) == [-1]
    gelus = [layer for layer in tiny.layers if layer.name.endswith(".block.4")]
    assert len(gelus) == 18 and all(layer.activation is gelu_erf for layer in gelus)
    scales = [layer for layer in tiny.layers if isinstance(layer, LayerScale)]
    assert len(scales) == 18 and all(np.all(s.gamma.numpy() == np.float32(1e-6)) for s in scales)
    assert not any(isinstance(layer, DropPath) for layer in tiny.layers)  # off by default


def test_stage_outputs_are_at_strides_4_to_32(tiny):
    assert [(f.name, f.reduction, f.channels) for f in feature_info(tiny)] == [
        ("stage1", 4, 96),
        ("stage2", 8, 192),
        ("stage3", 16, 384),
        ("stage4", 32, 768),
    ]
    # each stage's output is torchvision's: the output of features.1, 3, 5 and 7
    assert [f.layer.input.name for f in feature_info(tiny)] == [
        tiny.get_layer(f"features.{k}.{last}").output.name
        for k, last in ((1, 2), (3, 2), (5, 8), (7, 2))
    ]
    model = keras_zoo.build("convnext_tiny", features_only=True, input_shape=(64, 96, 3))
    assert [tuple(o.shape[1:]) for o in model.outputs] == [
        (64 // s, 96 // s, c) for s, c in zip((4, 8, 16, 32), (96, 192, 384, 768))
    ]


def test_headless_pooled_and_other_classes():
    size = (64, 96, 3)
    assert convnext(**SMALL, include_top=False, input_shape=size).output.shape == (None, 2, 3, 32)
    for pooling in ("avg", "max"):
        pooled = convnext(**SMALL, include_top=False, pooling=pooling, input_shape=size)
        assert pooled.output.shape == (None, 32)
    model = convnext(**SMALL, classes=10, input_shape=(None, None, 3))
    assert model.output.shape == (None, 10)
    assert [layer.name for layer in model.layers[-3:]] == [
        "classifier.0",
        "classifier.2",
        "predictions",
    ]


def test_drop_path_rates_are_torchvisions_stochastic_depth():
    (row,) = [row for row in VARIANTS if row.name == "convnext_tiny"]
    rate = row.trained_drop_path_rate
    model = keras_zoo.build("convnext_tiny", drop_path_rate=rate, input_shape=(32, 32, 3))
    ours = {layer.name: layer.rate for layer in model.layers if isinstance(layer, DropPath)}
    # torchvision's convnext_tiny trains with stochastic_depth_prob 0.1: block i of 18 drops
    # at 0.1 * i / 17, the first not at all
    ref = _meta_reference("convnext_tiny")
    theirs = {
        f"{path}.stochastic_depth": module.stochastic_depth.p
        for path, module in ref.named_modules()
        if hasattr(module, "stochastic_depth") and module.stochastic_depth.p > 0
    }
    assert len(ours) == 17 and ours.keys() == theirs.keys()
    assert all(ours[k] == pytest.approx(theirs[k], rel=1e-12) for k in ours)


def test_drop_path_is_the_identity_in_inference_and_drops_in_training(rng):
    plain = convnext(**SMALL, input_shape=(32, 32, 3), classifier_activation=None)
    dropping = convnext(
        **SMALL, drop_path_rate=0.5, input_shape=(32, 32, 3), classifier_activation=None
    )
    # layer scales of order 1, so that every block's branch counts
    weights = [
        rng.uniform(0.5, 1.5, w.shape).astype("float32") if "layer_scale" in w.path else w.numpy()
        for w in plain.weights
    ]
    plain.set_weights(weights)
    dropping.set_weights(weights)  # the same weights: a DropPath has none
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    want = plain(x, training=False)
    np.testing.assert_array_equal(dropping(x, training=False), want)
    assert relative_error(dropping(x, training=True), want) > 1e-2
    np.testing.assert_array_equal(plain(x, training=True), want)  # nothing else trains apart


def test_layer_scale_serializes_and_saves(rng, tmp_path):
    layer = LayerScale(0.25, name="scale")
    again = LayerScale.from_config(layer.get_config())
    assert (again.name, again.init_value) == ("scale", 0.25)
    assert keras.saving.serialize_keras_object(layer)["registered_name"] == "keras_zoo>LayerScale"
    x = rng.normal(size=(2, 3, 5)).astype("float32")
    np.testing.assert_allclose(layer(x), 0.25 * x, rtol=1e-7)
    assert tuple(layer.gamma.shape) == (5,) and layer.gamma.path == "scale/gamma"
    model = convnext(**SMALL, input_shape=(32, 32, 3), classes=3)
    for w in model.weights:
        if "layer_scale" in w.path:
            w.assign(rng.normal(size=w.shape).astype("float32"))
    assert_save_load_round_trip(model, rng.normal(size=(2, 32, 32, 3)).astype("float32"), tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(drop_path_rate=1.0), r"drop_path_rate must be a number in \[0, 1\), got 1.0"),
        (dict(drop_path_rate="0.1"), r"drop_path_rate must be a number in \[0, 1\), got '0.1'"),
        (dict(input_shape=(16, 16, 3)), r"input_shape \(16, 16, 3\): .* >= 32, got 16"),
        (dict(depths=(3, 3, 9)), r"depths must be 4 positive integers \(one per stage\)"),
        (dict(dims=(96, 192, 0, 768)), r"dims must be 4 positive integers \(one per stage\)"),
    ],
)
def test_bad_input_is_one_line_naming_the_argument(kwargs, message):
    arguments = {**dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)), **kwargs}
    with pytest.raises(ValueError, match=f"^{message}") as err:
        if {"depths", "dims"} & set(kwargs):
            convnext(**arguments)
        else:
            keras_zoo.build("convnext_tiny", **kwargs)
    assert "\n" not in str(err.value)


def test_other_bad_input():
    with pytest.raises(ValueError, match=r"^init_value must be a positive number, got 0"):
        LayerScale(0)
    with pytest.raises(TypeError, match="does not take the keyword.*'dims'"):
        keras_zoo.build("convnext_tiny", dims=(8, 16, 24, 32))
