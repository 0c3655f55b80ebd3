import keras
import numpy as np
import pytest

import keras_zoo
from tests.conftest import assert_save_load_round_trip

MOBILENET_IDS = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_registered():
    assert keras_zoo.list_models("mobilenet*") == MOBILENET_IDS
    assert "alpha" in keras_zoo.model_info("mobilenet_v2").keywords
    assert "depth_multiplier" in keras_zoo.model_info("mobilenet_v1").keywords


@pytest.mark.parametrize("name", MOBILENET_IDS)
def test_parameter_count_and_macs_equal_the_published_figures(name):
    info = keras_zoo.model_info(name)
    model = keras_zoo.build(name)
    assert _trainable(model) == info.params
    assert keras_zoo.count_macs(model) / 1e9 == pytest.approx(info.gmacs, rel=0.01)


@pytest.mark.parametrize(
    "name, alpha, params",
    [  # torchvision's figures for its width_mult
        ("mobilenet_v2", 0.75, 2_636_424),
        ("mobilenet_v2", 0.5, 1_968_680),
        ("mobilenet_v2", 0.35, 1_677_128),
        ("mobilenet_v3_large", 0.75, 3_377_576),
    ],
)
def test_width_multiplier_counts_equal_torchvision(name, alpha, params):
    assert _trainable(keras_zoo.build(name, alpha=alpha)) == params


@pytest.mark.parametrize("alpha, depth_multiplier", [(1.0, 1), (0.5, 1), (0.25, 2), (0.75, 3)])
def test_v1_counts_equal_keras_applications(alpha, depth_multiplier):
    theirs = keras.applications.MobileNet(
        weights=None, alpha=alpha, depth_multiplier=depth_multiplier
    )
    ours = keras_zoo.build("mobilenet_v1", alpha=alpha, depth_multiplier=depth_multiplier)
    assert _trainable(ours) == _trainable(theirs)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 1.4])
def test_v2_counts_equal_keras_applications(alpha):
    theirs = keras.applications.MobileNetV2(weights=None, alpha=alpha)
    assert _trainable(keras_zoo.build("mobilenet_v2", alpha=alpha)) == _trainable(theirs)


@pytest.mark.parametrize(
    "name, widths",
    [
        ("mobilenet_v1", (128, 256, 512, 1024)),
        ("mobilenet_v2", (24, 32, 96, 1280)),
        ("mobilenet_v3_large", (24, 40, 112, 960)),
        ("mobilenet_v3_small", (16, 24, 48, 576)),
    ],
)
def test_features_only_strides_and_headless_shapes(name, widths):
    model = keras_zoo.build(name, features_only=True, input_shape=(160, 224, 3))
    assert [tuple(o.shape[1:]) for o in model.outputs] == [
        (160 // s, 224 // s, c) for s, c in zip((4, 8, 16, 32), widths)
    ]
    assert keras_zoo.build(name, include_top=False).output.shape == (None, 7, 7, widths[-1])
    pooled = keras_zoo.build(name, include_top=False, pooling="max", input_shape=(None, None, 3))
    assert pooled.output.shape == (None, widths[-1])
    assert keras_zoo.build(name, classes=10).output.shape == (None, 10)


def test_resolution_multiplier_is_the_input_size(rng):
    for size in (128, 160, 192):
        model = keras_zoo.build("mobilenet_v1", alpha=0.5, input_shape=(size, size, 3))
        out = model.predict(rng.normal(size=(1, size, size, 3)).astype("float32"), verbose=0)
        assert out.shape == (1, 1000) and np.isclose(out.sum(), 1.0, atol=1e-5)


def test_layer_names_are_reference_module_paths():
    names = {layer.name for layer in keras_zoo.build("mobilenet_v3_large").layers if layer.weights}
    assert {
        "features.0.0",
        "features.0.1",
        "features.4.block.2.fc1",
        "features.4.block.3.0",
        "features.16.0",
        "classifier.0",
        "classifier.3",
    } <= names
    names = {layer.name for layer in keras_zoo.build("mobilenet_v2").layers if layer.weights}
    assert {
        "features.1.conv.0.0",
        "features.1.conv.1",
        "features.2.conv.2",
        "features.2.conv.3",
        "features.18.0",
        "classifier.1",
    } <= names
    names = {layer.name for layer in keras_zoo.build("mobilenet_v1").layers if layer.weights}
    assert {"conv_stem", "bn1", "blocks.3.5.conv_dw", "blocks.3.5.bn2", "classifier"} <= names


def test_batch_norm_epsilons():
    def eps(name):
        return {
            layer.epsilon
            for layer in keras_zoo.build(name).layers
            if isinstance(layer, keras.layers.BatchNormalization)
        }

    assert eps("mobilenet_v2") == {1e-5} and eps("mobilenet_v1") == {1e-5}
    assert eps("mobilenet_v3_small") == {1e-3}


def test_depthwise_layers_are_depthwise_not_grouped():
    layers = keras_zoo.build("mobilenet_v2").layers
    convs = [layer for layer in layers if type(layer) is keras.layers.Conv2D]
    assert all(layer.groups == 1 for layer in convs)
    assert sum(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in layers) == 17


@pytest.mark.parametrize("name", MOBILENET_IDS)
def test_save_load_round_trip(name, tmp_path, rng):
    model = keras_zoo.build(name, input_shape=(96, 96, 3), classes=4, alpha=0.75)
    x = rng.normal(size=(2, 96, 96, 3)).astype("float32")
    assert_save_load_round_trip(model, x, tmp_path)


@pytest.mark.parametrize("name", MOBILENET_IDS)
@pytest.mark.parametrize("alpha", [0, -0.5, "1.0", None, True])
def test_bad_alpha(name, alpha):
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        keras_zoo.build(name, alpha=alpha)


def test_other_bad_input():
    with pytest.raises(ValueError, match=r"depth_multiplier must be a positive integer"):
        keras_zoo.build("mobilenet_v1", depth_multiplier=0)
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        keras_zoo.build("mobilenet_v2", dropout=1.0)
    with pytest.raises(ValueError, match=r"input_shape.*>= 32"):
        keras_zoo.build("mobilenet_v3_small", input_shape=(24, 24, 3))
    # refused before anything is downloaded
    with pytest.raises(ValueError, match=r"weights='imagenet' fix alpha=1.0; got alpha=0.75"):
        keras_zoo.build("mobilenet_v2", alpha=0.75, weights="imagenet")
    with pytest.raises(ValueError, match="fix depth_multiplier=1; got depth_multiplier=2"):
        keras_zoo.build("mobilenet_v1", depth_multiplier=2, weights="imagenet")
    with pytest.raises(TypeError, match="'depth_multiplier'"):
        keras_zoo.build("mobilenet_v2", depth_multiplier=2)


def test_checkpoint_through_the_porter_with_a_new_head(tmp_path, rng):
    import torch

    from keras_zoo.pretrained import port
    from tests.conftest import relative_error
    from tests.parity import torch_logits
    from tests.torch_models import randomize, torch_model

    ref = randomize(torch_model("mobilenet_v3_small"), seed=1)
    torch.save({"model": ref.state_dict()}, tmp_path / "v3s.pth")
    port("mobilenet_v3_small", tmp_path / "v3s.pth", tmp_path / "v3s.weights.h5")
    x = rng.normal(size=(1, 128, 128, 3)).astype("float32")
    model = keras_zoo.build(
        "mobilenet_v3_small",
        weights=str(tmp_path / "v3s.weights.h5"),
        input_shape=(128, 128, 3),
        classifier_activation=None,
    )
    assert relative_error(model.predict(x, verbose=0), torch_logits(ref, x)) <= 2e-5
    five = keras_zoo.build("mobilenet_v3_small", weights=str(tmp_path / "v3s.pth"), classes=5)
    # the hidden classifier layer is kept, the 1000-way output layer left out on purpose
    np.testing.assert_array_equal(
        five.get_layer("classifier.0").kernel.numpy(), ref.classifier[0].weight.detach().numpy().T
    )
    assert five.output.shape == (None, 5)
