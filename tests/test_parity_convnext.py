"""The Keras ConvNeXts compute torchvision's and timm's function.

The references are torchvision's own ConvNeXt (torchvision.models.get_model) and timm's own
(timm.create_model), with every parameter random (`randomize_convnext`), the layer scales
included: at their initial 1e-6 every block would add next to nothing to its input, and a
mistake inside a block would hide under the tolerance. Their state_dicts are loaded into the
Keras model by name (timm's through its layout table and its weight set), and the logits are
compared as max |keras - torch| / max |torch|:

- float32 <= 2e-5 (measured 6e-7 .. 8e-7): convnext_tiny at 224x224 and at the odd,
  non-square 97x131; timm's convnext_tiny loaded as the weight set timm:convnext_tiny.fb_in1k;
- float64 <= 1e-10 (measured 1.5e-15 .. 2.8e-15): convnext_tiny at 97x131, and
  convnext_small, _base and _large at 64x64, one image each (a size-dependent mistake shows at
  the other sizes), with their parameter counts and GMACs;
- the checks can fail: GELU's tanh approximation in place of torch's erf is off by 1.4e-4,
  outside the float32 tolerance; LayerNorm's epsilon 1e-5 (torch's default) in place of
  ConvNeXt's 1e-6 by 9e-6, which only the float64 tolerance catches.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import keras_zoo
from keras_zoo.port import load_state_dict
from tests.conftest import relative_error, use_weight_set
from tests.parity import FLOAT32_TOLERANCE, FLOAT64_TOLERANCE, ported, torch_logits
from tests.torch_models import import_timm, state_dict_numpy, torch_model

ODD = (97, 131)


@torch.no_grad()
def randomize_convnext(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values for every parameter of a torchvision or timm ConvNeXt: convolution and
    Linear weights normal over fan-in, their biases normal (0.2), LayerNorm scales in
    [0.5, 1.5) and shifts normal (0.2), the layer scales (torchvision's layer_scale, timm's
    gamma) normal, of order 1. A parameter of any other kind is an error. Returns the model in
    eval mode."""
    g = torch.Generator().manual_seed(seed)
    done = set()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.copy_(_normal(m.weight.shape, g) * m.weight[0].numel() ** -0.5)
            m.bias.copy_(_normal(m.bias.shape, g) * 0.2)
        elif isinstance(m, nn.LayerNorm):  # torchvision's LayerNorm2d and timm's subclass it
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(_normal(m.bias.shape, g) * 0.2)
        else:
            continue
        done.update(id(p) for p in m.parameters(recurse=False))
    for path, p in model.named_parameters():
        if id(p) in done:
            continue
        if path.rpartition(".")[2] not in ("layer_scale", "gamma"):
            raise TypeError(f"randomize_convnext: no rule for {path}")
        p.copy_(_normal(p.shape, g))
    return model.eval()


def _normal(shape, g: torch.Generator) -> torch.Tensor:
    # drawn in float32 whatever the model's dtype: torch draws float64 normals 4x slower
    return torch.randn(shape, generator=g)


def reference(name: str, dtype=torch.float32, seed: int = 0) -> nn.Module:
    """torchvision's `name`, random (`randomize_convnext`), in `dtype`; built on the meta
    device, so that torchvision's own initialisation is not paid for."""
    with torch.device("meta"):
        model = torch_model(name).to(dtype)
    return randomize_convnext(model.to_empty(device="cpu"), seed)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # torch's OpenMP pool spins against TensorFlow's threads on a small machine: float64's
    # grouped convolutions (one small op per channel) took from 0.3 to 9 s with two threads,
    # 0.2 s with one
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return reference("convnext_tiny")


@pytest.fixture(scope="module")
def odd_tiny(tiny):
    """convnext_tiny at 97x131 (float32) with `tiny`'s weights, a batch and torch's logits."""
    x = np.random.default_rng(1).normal(size=(2, *ODD, 3)).astype("float32")
    return ported("convnext_tiny", tiny, (*ODD, 3)), x, torch_logits(tiny, x)


def test_the_layer_scales_are_random_and_ported(tiny, odd_tiny):
    model, _, _ = odd_tiny
    scales = [m.layer_scale.detach() for m in tiny.modules() if hasattr(m, "layer_scale")]
    assert len(scales) == 18 and all(s.shape[1:] == (1, 1) for s in scales)
    assert all(float(s.abs().mean()) > 0.3 for s in scales)  # not torchvision's 1e-6
    gamma = model.get_layer("features.5.8.layer_scale").gamma.numpy()
    np.testing.assert_array_equal(gamma, tiny.features[5][8].layer_scale.detach().numpy()[:, 0, 0])


def test_float32_logits_match_torchvision_at_224(tiny, rng):
    model = ported("convnext_tiny", tiny, (224, 224, 3))
    x = rng.normal(size=(2, 224, 224, 3)).astype("float32")
    assert relative_error(model.predict(x, verbose=0), torch_logits(tiny, x)) <= FLOAT32_TOLERANCE


def test_float32_logits_match_torchvision_at_an_odd_size(odd_tiny):
    model, x, want = odd_tiny
    assert relative_error(model.predict(x, verbose=0), want) <= FLOAT32_TOLERANCE


def test_gelus_tanh_approximation_is_caught_by_the_numbers(odd_tiny):
    from keras_zoo.blocks import gelu_erf, gelu_tanh

    model, x, want = odd_tiny
    gelus = [layer for layer in model.layers if layer.name.endswith(".block.4")]
    assert len(gelus) == 18 and all(layer.activation is gelu_erf for layer in gelus)
    try:
        for layer in gelus:
            layer.activation = gelu_tanh
        # eager calls: each one reads the layers' settings afresh. Measured: 1.4e-4, some 300
        # times a correct port's 5e-7
        assert relative_error(model(x, training=False), want) > FLOAT32_TOLERANCE
    finally:
        for layer in gelus:
            layer.activation = gelu_erf
    assert relative_error(model(x, training=False), want) <= FLOAT32_TOLERANCE


def test_float64_logits_equal_torchvision_and_the_layernorm_epsilon_matters(tiny, rng, float64):
    import keras

    ref = copy.deepcopy(tiny).double()
    model = ported("convnext_tiny", ref, (*ODD, 3))
    assert all(w.dtype == "float64" for w in model.weights)
    x = rng.normal(size=(1, *ODD, 3))
    want = torch_logits(ref, x)
    assert relative_error(model(x, training=False), want) <= FLOAT64_TOLERANCE
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.LayerNormalization)]
    assert len(norms) == 2 + 18 + 3 and {layer.epsilon for layer in norms} == {1e-6}
    for layer in norms:
        layer.epsilon = 1e-5  # torch's default, not ConvNeXt's: measured 9e-6
    assert relative_error(model(x, training=False), want) > 1e3 * FLOAT64_TOLERANCE


def _assert_published_counts(model, name):
    """`model` (built at 64x64) has the published parameter count and, at 224x224, GMACs."""
    info = keras_zoo.model_info(name)
    assert model.count_params() == info.params
    # GMACs counted at 64x64 (a 224x224 model would cost its build once more): the body is
    # convolutional and both sizes are multiples of its stride 32, so each of its maps has
    # (224 / 64) ** 2 times the positions at 224; the classifier's Dense does not grow
    head = int(np.prod(model.get_layer("classifier.2").kernel.shape))
    macs = (keras_zoo.count_macs(model) - head) * (224 / 64) ** 2 + head
    assert macs / 1e9 == pytest.approx(info.gmacs, abs=5e-4)


@pytest.mark.parametrize("name", ["convnext_small", "convnext_base", "convnext_large"])
def test_float64_logits_of_the_bigger_variants_equal_torchvision(name, rng, float64):
    ref = reference(name, torch.float64, seed=len(name))
    model = ported(name, ref, (64, 64, 3))
    x = rng.normal(size=(1, 64, 64, 3))
    assert relative_error(model(x, training=False), torch_logits(ref, x)) <= FLOAT64_TOLERANCE
    # every tensor of torchvision's loaded by name, none left over
    assert model.count_params() == sum(p.numel() for p in ref.parameters())
    _assert_published_counts(model, name)


def test_timms_convnext_loads_as_its_weight_set(tmp_path, monkeypatch, rng):
    from safetensors.torch import save_file

    from keras_zoo.port import convert_state_dict, detect_layout

    timm = import_timm()
    with torch.device("meta"):
        module = timm.create_model("convnext_tiny", pretrained=False)
    ref = randomize_convnext(module.to_empty(device="cpu"), seed=3)
    x = rng.normal(size=(2, 96, 128, 3)).astype("float32")
    want = torch_logits(ref, x)
    # timm's names become torchvision's names and shapes, every key placed, and compute the
    # same in torchvision's module
    state = state_dict_numpy(ref)
    assert detect_layout(state) == "timm"
    converted = convert_state_dict(state)
    with torch.device("meta"):
        tv = torch_model("convnext_tiny")
    assert {k: v.shape for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in tv.state_dict().items()
    }
    tv = tv.to_empty(device="cpu")
    tv.load_state_dict({k: torch.from_numpy(v) for k, v in converted.items()})
    assert relative_error(torch_logits(tv.eval(), x), want) <= 1e-6
    with pytest.raises(ValueError, match=r"cannot place 'stages\.0\.blocks\.0\.mlp\.fc3\.weight'"):
        convert_state_dict({**state, "stages.0.blocks.0.mlp.fc3.weight": np.zeros(1)})
    # and as the weight set timm:convnext_tiny.fb_in1k: fetched, checked, converted, loaded
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    staged = tmp_path / "staged.safetensors"
    save_file(ref.state_dict(), staged)
    ws = use_weight_set(monkeypatch, "convnext_tiny", "timm:convnext_tiny.fb_in1k", staged)
    model = keras_zoo.build(
        "convnext_tiny", weights=ws.key, input_shape=(96, 128, 3), classifier_activation=None
    )
    assert relative_error(model.predict(x, verbose=0), want) <= FLOAT32_TOLERANCE
    # timm's gamma (C,) and torchvision's layer_scale (C, 1, 1) are the same weight
    assert ref.stages[3].blocks[2].gamma.shape == (768,)
    np.testing.assert_array_equal(
        model.get_layer("features.7.2.layer_scale").gamma.numpy(),
        ref.stages[3].blocks[2].gamma.detach().numpy(),
    )


def test_load_state_dict_names_what_a_truncated_checkpoint_lacks(tiny, odd_tiny):
    model, _, _ = odd_tiny  # left unchanged: nothing is set unless the whole checkpoint fits
    state = state_dict_numpy(tiny)
    del state["features.3.1.layer_scale"]
    with pytest.raises(ValueError, match=r"features\.3\.1\.layer_scale: needs features\.3\.1"):
        load_state_dict(model, state)
