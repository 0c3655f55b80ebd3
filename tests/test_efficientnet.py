"""EfficientNet B0-B7 and EfficientNetV2: torchvision's published parameter counts and GMACs,
stage outputs, stochastic depth as torchvision places it, and bad input."""

import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo.layers import DropPath
from tests.torch_models import torch_model

IDS = keras_zoo.list_models("efficientnet*")
# GMACs are torchvision's at each weight set's own size: checked where a build at that size
# costs little (one id of each batch-norm setting and table kind)
MACS_IDS = ("efficientnet_b0", "efficientnet_b5", "efficientnet_v2_s")


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_every_id_is_registered():
    assert IDS == sorted(
        [f"efficientnet_b{i}" for i in range(8)] + [f"efficientnet_v2_{s}" for s in "sml"]
    )


@pytest.mark.parametrize("name", IDS)
def test_counts_and_batch_norms_equal_torchvision(name):
    """Parameters (and GMACs for MACS_IDS) as torchvision publishes them; every batch norm's
    epsilon and momentum as torchvision's module has them."""
    info = keras_zoo.model_info(name)
    shape = info.input_size if name in MACS_IDS else (64, 64, 3)  # the count is size-free
    model = keras_zoo.build(name, input_shape=shape)
    assert _trainable(model) == info.params
    if name in MACS_IDS:
        assert keras_zoo.count_macs(model) / 1e9 == pytest.approx(info.gmacs, abs=5e-4)
    with torch.device("meta"):
        reference = torch_model(name)
    theirs = {
        (m.eps, round(1 - m.momentum, 12))
        for m in reference.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    }
    ours = {
        (n.epsilon, round(n.momentum, 12)) for n in model.layers if hasattr(n, "moving_variance")
    }
    assert len(theirs) == 1 and ours == theirs


@pytest.mark.parametrize(
    "name, widths",
    [("efficientnet_b0", (24, 40, 112, 1280)), ("efficientnet_v2_s", (48, 64, 160, 1280))],
)
def test_features_only_strides_and_headless_shapes(name, widths):
    model = keras_zoo.build(name, features_only=True, input_shape=(96, 128, 3))
    assert [tuple(o.shape[1:]) for o in model.outputs] == [
        (96 // s, 128 // s, c) for s, c in zip((4, 8, 16, 32), widths)
    ]
    if name == "efficientnet_b0":
        pooled = keras_zoo.build(name, include_top=False, pooling="avg", input_shape=(64, 64, 3))
        assert pooled.output.shape == (None, widths[-1])


def test_stochastic_depth_where_torchvision_puts_it(rng):
    """Every residual block drops its branch at torchvision's rate (stochastic_depth_prob *
    k / n for block k of n); inference is unchanged, training is not."""
    model = keras_zoo.build("efficientnet_b0", input_shape=(32, 32, 3), drop_path_rate=0.2)
    ours = {layer.name: layer.rate for layer in model.layers if isinstance(layer, DropPath)}
    reference = torch_model("efficientnet_b0")
    theirs = {
        path: module.p
        for path, module in reference.named_modules()
        if type(module).__name__ == "StochasticDepth"
        and reference.get_submodule(path.rsplit(".", 1)[0]).use_res_connect
    }
    assert ours.keys() == theirs.keys() and len(ours) == 9
    assert all(ours[k] == pytest.approx(theirs[k], rel=1e-12) for k in ours)
    plain = keras_zoo.build("efficientnet_b0", input_shape=(32, 32, 3), drop_path_rate=0.0)
    plain.set_weights(model.get_weights())
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), plain(x, training=False))
    assert not np.allclose(model(x, training=True), plain(x, training=True))


def test_bn_epsilon_keyword_sets_every_batch_norm():
    built = keras_zoo.build("efficientnet_b0", bn_epsilon=1e-3, input_shape=(32, 32, 3))
    assert {n.epsilon for n in built.layers if hasattr(n, "moving_variance")} == {1e-3}


@pytest.mark.parametrize(
    "keyword, value, message",
    [
        ("dropout", 1.5, "dropout"),
        ("drop_path_rate", 1.0, r"drop_path_rate must be a number in \[0, 1\)"),
        ("bn_epsilon", 0, "bn_epsilon"),
    ],
)
def test_bad_keywords_are_one_line_errors(keyword, value, message):
    with pytest.raises(ValueError, match=f"^{message}") as error:
        keras_zoo.build("efficientnet_b0", input_shape=(32, 32, 3), **{keyword: value})
    assert "\n" not in str(error.value)
