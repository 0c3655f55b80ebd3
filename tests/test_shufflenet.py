import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.blocks import channel_shuffle
from keras_zoo.models.shufflenet import SCALES, V1_GROUPS
from tests.conftest import assert_save_load_round_trip


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_registered_ids():
    assert keras_zoo.list_models("shufflenet_v2*") == [
        "shufflenet_v2",
        "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_5",
        "shufflenet_v2_x2_0",
    ]
    assert len(keras_zoo.list_models("shufflenet_v1_g*")) == 8
    assert keras_zoo.model_info("shufflenet_v1_g3_x1_0").channel_order == "BGR"
    assert {"groups", "scale"} <= set(keras_zoo.model_info("shufflenet_v1").keywords)
    assert "scale" in keras_zoo.model_info("shufflenet_v2").keywords


@pytest.mark.parametrize("name", keras_zoo.list_models("shufflenet*"))
def test_counts_and_macs_equal_the_registry(name):
    info = keras_zoo.model_info(name)
    model = keras_zoo.build(name)
    assert _trainable(model) == info.params
    assert keras_zoo.count_macs(model) / 1e9 == pytest.approx(info.gmacs, rel=0.015)


def test_v1_counts_equal_the_megvii_layout_reference():
    from tests.torch_models import torch_model

    for name in keras_zoo.list_models("shufflenet_v1_g*"):
        ref = torch_model(name)
        assert _trainable(keras_zoo.build(name)) == sum(p.numel() for p in ref.parameters())
    # mmpretrain's 1.0x g3 has 1.87M parameters with a classifier bias (1,000 more than megvii's)
    assert keras_zoo.model_info("shufflenet_v1_g3_x1_0").params + 1000 == pytest.approx(
        1.87e6, abs=5e3
    )


@pytest.mark.parametrize("groups, mflops", [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_v1_complexity_at_1x_matches_the_paper(groups, mflops):
    # the paper's Table 1 complexity (MFLOPs, i.e. multiply-adds) for each group count at 1x
    model = keras_zoo.build("shufflenet_v1", groups=groups, scale=1.0)
    assert keras_zoo.count_macs(model) / 1e6 == pytest.approx(mflops, rel=0.015)


@pytest.mark.parametrize("groups", V1_GROUPS)
@pytest.mark.parametrize("scale", SCALES)
def test_v1_every_groups_and_scale_builds_and_runs(groups, scale, rng):
    model = keras_zoo.build(
        "shufflenet_v1", groups=groups, scale=scale, classes=10, input_shape=(64, 96, 3)
    )
    out = model.predict(rng.normal(size=(2, 64, 96, 3)).astype("float32"), verbose=0)
    assert out.shape == (2, 10) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    feats = keras_zoo.build("shufflenet_v1", groups=groups, scale=scale, features_only=True)
    assert [tuple(o.shape[1:3]) for o in feats.outputs] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    widths = [o.shape[-1] for o in feats.outputs[1:]]
    assert widths == [widths[0], 2 * widths[0], 4 * widths[0]]
    assert all(w % (4 * groups) == 0 for w in widths)


@pytest.mark.parametrize("scale, widths", [(0.5, (24, 48, 96, 1024)), (2.0, (24, 244, 488, 2048))])
def test_v2_features_only_and_headless(scale, widths):
    model = keras_zoo.build(
        "shufflenet_v2", scale=scale, features_only=True, input_shape=(160, 224, 3)
    )
    assert [tuple(o.shape[1:]) for o in model.outputs] == [
        (160 // s, 224 // s, c) for s, c in zip((4, 8, 16, 32), widths)
    ]
    head = keras_zoo.build("shufflenet_v2", scale=scale, include_top=False, pooling="avg")
    assert head.output.shape == (None, widths[-1])


@pytest.mark.parametrize("groups", [2, 3, 8])
def test_channel_shuffle_equals_a_numpy_reference(groups, rng):
    c = 24
    x = rng.normal(size=(2, 3, 5, c)).astype("float32")
    inputs = keras.Input((None, None, c))
    got = keras.Model(inputs, channel_shuffle(inputs, groups, name="s")).predict(x, verbose=0)
    # split into `groups` groups of consecutive channels and interleave them
    expected = x.reshape(2, 3, 5, groups, c // groups).swapaxes(3, 4).reshape(2, 3, 5, c)
    np.testing.assert_array_equal(got, expected)
    order = (
        np.concatenate(
            [np.arange(g * (c // groups), (g + 1) * (c // groups)) for g in range(groups)]
        )
        .reshape(groups, -1)
        .T.ravel()
    )
    np.testing.assert_array_equal(got, x[..., order])


def test_channel_shuffle_graph_has_no_5d_transpose():
    import tensorflow as tf

    inputs = keras.Input((7, 7, 48))
    model = keras.Model(inputs, channel_shuffle(inputs, 3, name="s"))
    graph = tf.function(model).get_concrete_function(tf.TensorSpec((1, 7, 7, 48))).graph
    ranks = [len(op.outputs[0].shape) for op in graph.get_operations() if op.type == "Transpose"]
    assert ranks and max(ranks) <= 4


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "shufflenet_v1_g8_x0_5"])
def test_save_load_round_trip(name, tmp_path, rng):
    model = keras_zoo.build(name, input_shape=(None, None, 3), classes=3)
    x = rng.normal(size=(2, 96, 64, 3)).astype("float32")
    assert_save_load_round_trip(model, x, tmp_path)


def test_bad_input():
    with pytest.raises(ValueError, match=r"groups must be one of 1, 2, 3, 4, 8; got 5"):
        keras_zoo.build("shufflenet_v1", groups=5)
    with pytest.raises(ValueError, match=r"scale must be one of 0.5, 1.0, 1.5, 2.0; got 0.75"):
        keras_zoo.build("shufflenet_v1", scale=0.75)
    with pytest.raises(ValueError, match=r"scale must be one of"):
        keras_zoo.build("shufflenet_v2", scale=3)
    with pytest.raises(TypeError, match="'scale'"):
        keras_zoo.build("shufflenet_v2_x1_0", scale=0.5)
    with pytest.raises(ValueError, match=r"channels \(10\) must be divisible by groups \(3\)"):
        channel_shuffle(keras.Input((4, 4, 10)), 3, name="s")
