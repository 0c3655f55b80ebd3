"""The shared blocks take their parts as parameters: activations by torch's or Keras' names or
as functions, squeeze-and-excitation with its own width, activation and gate, and the batch
norm's layer chosen by the caller (`fused`)."""

import keras
import numpy as np
import pytest
import torch
from torch import nn

from keras_zoo import blocks
from keras_zoo.blocks import (
    TORCH_ACTIVATIONS,
    activation,
    batch_norm,
    inverted_res_block,
    make_divisible,
    se_block,
)
from keras_zoo.layers import BatchNormalization
from tests.conftest import assert_save_load_round_trip
from tests.torch_models import import_torchvision

F = nn.functional
# torch's own function for every torch name blocks.activation knows
TORCH_FUNCTIONS = {
    "relu": F.relu,
    "relu6": F.relu6,
    "hardswish": F.hardswish,
    "hard_swish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "hard_sigmoid": F.hardsigmoid,
    "silu": F.silu,
    "swish": F.silu,
    "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hardtanh": F.hardtanh,
    "mish": F.mish,
    "elu": F.elu,
    "celu": F.celu,
    "selu": F.selu,
    "softplus": F.softplus,
    "leaky_relu": F.leaky_relu,
    "identity": lambda t: t,
}


def _apply(kind, x, name="act"):
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, activation(inputs, kind, name=name))
    return model, np.asarray(model.predict(x, verbose=0))


def test_every_torch_name_is_torchs_function(rng):
    assert set(TORCH_FUNCTIONS) == set(TORCH_ACTIVATIONS)
    # both sides of every kink and both tails
    x = np.concatenate([np.linspace(-8, 8, 161), rng.normal(0, 3, 95)]).reshape(1, 16, 16)
    x = x.astype("float32")
    for kind, fn in TORCH_FUNCTIONS.items():
        model, got = _apply(kind, x)
        want = fn(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=kind)
        assert model.get_layer("act") is model.layers[-1]


def test_gelu_is_the_exact_form_and_gelu_tanh_the_approximation():
    x = np.linspace(-4, 4, 81, dtype="float32")[None]
    exact, approximate = _apply("gelu", x)[1], _apply("gelu_tanh", x)[1]
    assert np.abs(exact - approximate).max() > 1e-4  # the two are told apart at this tolerance
    np.testing.assert_allclose(exact, F.gelu(torch.from_numpy(x)).numpy(), atol=1e-6)


def test_leaky_relu_has_torchs_slope():
    assert _apply("leaky_relu", np.array([[-1.0]], "float32"))[1].item() == pytest.approx(-0.01)


def test_keras_names_and_functions_pass_through(rng):
    x = rng.normal(size=(2, 5)).astype("float32")
    np.testing.assert_allclose(_apply("softsign", x)[1], x / (1 + np.abs(x)), rtol=1e-6)
    np.testing.assert_allclose(_apply(lambda t: 2 * t, x)[1], 2 * x, rtol=1e-6)
    inputs = keras.Input((5,))
    assert activation(inputs, None, name="none") is inputs


def test_an_unknown_activation_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match=r"^activation 'swiss' \(act\): expected a torch name "
        r"\(relu, relu6, .*silu.*\), a Keras activation name "
        r"\(.*softsign.*\)",
    ):
        activation(keras.Input((4,)), "swiss", name="act")
    with pytest.raises(TypeError, match=r"^activation \(act\): expected a name"):
        activation(keras.Input((4,)), 3, name="act")


def test_gelu_tanh_survives_save_and_load(rng, tmp_path):
    model = _apply("gelu_tanh", np.zeros((1, 3), "float32"))[0]
    assert_save_load_round_trip(model, rng.normal(size=(2, 3)).astype("float32"), tmp_path)


def _load_se(model, torch_se, name="se"):
    for fc in ("fc1", "fc2"):
        conv = getattr(torch_se, fc)
        model.get_layer(f"{name}.{fc}").set_weights(
            [conv.weight.detach().numpy().transpose(2, 3, 1, 0), conv.bias.detach().numpy()]
        )


@pytest.mark.parametrize(
    "act, gate, torch_act, torch_gate",
    [
        ("silu", "sigmoid", nn.SiLU, nn.Sigmoid),  # EfficientNet's
        ("relu", "hardsigmoid", nn.ReLU, nn.Hardsigmoid),  # MobileNet V3's, the default
    ],
)
def test_se_block_is_torchvisions_squeeze_excitation(rng, act, gate, torch_act, torch_gate):
    torchvision = import_torchvision()
    torch.manual_seed(0)
    ref = torchvision.ops.SqueezeExcitation(
        16, 6, activation=torch_act, scale_activation=torch_gate
    ).eval()
    inputs = keras.Input((5, 5, 16))
    kwargs = {} if act == "relu" else {"activation_kind": act, "gate": gate}
    model = keras.Model(inputs, se_block(inputs, 6, name="se", **kwargs))
    _load_se(model, ref)
    x = rng.normal(size=(2, 5, 5, 16)).astype("float32")
    with torch.no_grad():
        want = ref(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    assert model.get_layer("se.fc1").filters == 6
    assert [
        n
        for n in ("se.activation", "se.scale_activation")
        if n in {layer.name for layer in model.layers}
    ] == ["se.activation", "se.scale_activation"]


def test_se_block_refuses_a_width_that_is_not_a_positive_int():
    with pytest.raises(
        ValueError,
        match=r"^squeeze_channels \(se\) must be a positive int, "
        r"got 0\.25",
    ):
        se_block(keras.Input((5, 5, 16)), 0.25, name="se")


def test_inverted_res_block_takes_the_squeeze_width_and_its_parts():
    def block(**kwargs):
        inputs = keras.Input((14, 14, 40))
        y = inverted_res_block(
            inputs,
            240,
            40,
            activation_kind="silu",
            use_se=True,
            name="features.5",
            seq="block",
            project_as_unit=True,
            **kwargs,
        )
        return keras.Model(inputs, y)

    # MobileNet V3's default: a quarter of the expanded channels, a multiple of 8
    default = block()
    assert default.get_layer("features.5.block.2.fc1").filters == make_divisible(240 // 4, 8)
    assert isinstance(default.get_layer("features.5.block.2.activation"), keras.layers.ReLU)
    # EfficientNet's: a quarter of the block's input channels, SiLU and sigmoid
    efficient = block(
        se_channels=lambda cin, expanded: max(1, cin // 4), se_activation="silu", se_gate="sigmoid"
    )
    assert efficient.get_layer("features.5.block.2.fc1").filters == 10
    assert efficient.get_layer("features.5.block.2.activation").get_config()["activation"] == "silu"
    assert (
        efficient.get_layer("features.5.block.2.scale_activation").get_config()["activation"]
        == "sigmoid"
    )
    assert block(se_channels=12).get_layer("features.5.block.2.fc1").filters == 12


def test_batch_norm_layer_is_the_callers_explicit_choice():
    inputs = keras.Input((6, 6, 8))
    conv = keras.layers.Conv2D(8, 3, groups=4)(inputs)  # Keras' grouped conv

    def layer(**kwargs):
        return keras.Model(inputs, batch_norm(conv, name="bn", **kwargs)).get_layer("bn")

    assert type(layer(fused=True)) is BatchNormalization and layer(fused=True).fused
    assert type(layer(fused=False)) is BatchNormalization and not layer(fused=False).fused
    with pytest.raises(TypeError, match="fused"):
        layer()
    with pytest.raises(TypeError, match=r"^fused must be True or False \(bn\), got 1"):
        layer(fused=1)


def test_the_designs_private_names_are_the_public_blocks():
    assert blocks._make_divisible is blocks.make_divisible
    assert blocks._inverted_res_block is blocks.inverted_res_block
