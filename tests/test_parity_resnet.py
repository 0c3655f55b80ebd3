"""The Keras ResNet family computes torchvision's function.

Torch references (torchvision's module names, random weights, calibrated batch norm) are loaded
into the Keras models by name and compared on logits and on every stage output:

- in float64 both frameworks compute the same function to ~1e-14; any architecture or layout
  bug (stride placement, padding, epsilon, a transposed kernel) gives 1e-3 or more;
- in float32, the dtype users run, Keras is as close to the float64 result as torch itself is.
  These random deep networks amplify rounding (torch float32 is 1e-5 .. 1e-4 off its own
  float64 result on resnet50/101), so a fixed float32 threshold would measure the reference,
  not the port.
"""

import copy

import keras
import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo.port import load_state_dict
from tests.conftest import relative_error
from tests.torch_models import randomize, state_dict_numpy, torch_model

FLOAT64_TOLERANCE = 1e-10
FLOAT32_FACTOR = 2.0  # Keras float32 error <= FLOAT32_FACTOR x torch float32 error

PARITY_IDS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d",
              "resnext101_64x4d", "wide_resnet50_2"]
SIZES = {"224": (224, 224), "odd-97x131": (97, 131), "even-96x160": (96, 160)}


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx("float32")


def _reference(name):
    return randomize(torch_model(name), seed=len(name))


def _ported(name, ref, input_shape, **kwargs):
    model = keras_zoo.build(name, input_shape=input_shape, classifier_activation=None, **kwargs)
    skip = ("fc",) if kwargs.get("features_only") else ()
    load_state_dict(model, state_dict_numpy(ref), skip_modules=skip)
    return model


def _torch(ref, x):
    with torch.no_grad():
        return ref(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("name", PARITY_IDS)
def test_float64_logits_equal_torch(name, size, rng, float64):
    ref = _reference(name).double()
    model = _ported(name, ref, (*size, 3))
    x = rng.normal(size=(2, *size, 3))
    assert relative_error(model.predict(x, verbose=0), _torch(ref, x)) <= FLOAT64_TOLERANCE


@pytest.mark.parametrize("name", PARITY_IDS)
def test_float32_logits_as_accurate_as_torch(name, rng):
    ref = _reference(name)
    model = _ported(name, ref, (224, 224, 3))
    x = rng.normal(size=(2, 224, 224, 3)).astype("float32")
    truth = _torch(copy.deepcopy(ref).double(), x.astype("float64"))
    torch_error = relative_error(_torch(ref, x), truth)
    keras_error = relative_error(model.predict(x, verbose=0), truth)
    assert keras_error <= FLOAT32_FACTOR * torch_error, (keras_error, torch_error)


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_stage_outputs_equal_torch_layers(name, rng, float64):
    ref = _reference(name).double()
    model = _ported(name, ref, (None, None, 3), features_only=True)
    x = rng.normal(size=(1, 120, 88, 3))
    with torch.no_grad():
        t = torch.from_numpy(x.transpose(0, 3, 1, 2))
        t = ref.maxpool(ref.relu(ref.bn1(ref.conv1(t))))
        expected = []
        for stage in (ref.layer1, ref.layer2, ref.layer3, ref.layer4):
            t = stage(t)
            expected.append(t.numpy().transpose(0, 2, 3, 1))
    for got, want in zip(model.predict(x, verbose=0), expected):
        assert got.shape == want.shape
        assert relative_error(got, want) <= FLOAT64_TOLERANCE


def test_a_wrong_layout_is_caught_by_the_numbers(rng, float64):
    # The checks above are not blind: swapping kh and kw of one 3x3 kernel keeps every shape.
    ref = _reference("resnet18").double()
    model = _ported("resnet18", ref, (64, 64, 3))
    layer = model.get_layer("layer2.0.conv1")
    layer.set_weights([layer.get_weights()[0].transpose(1, 0, 2, 3)])
    x = rng.normal(size=(1, 64, 64, 3))
    assert relative_error(model.predict(x, verbose=0), _torch(ref, x)) > 1e-3


def test_checkpoint_of_another_architecture_is_refused_and_model_unchanged():
    model = keras_zoo.build("resnext50_32x4d", input_shape=(64, 64, 3))
    before = [w.copy() for w in model.get_weights()]
    state = state_dict_numpy(torch_model("resnet50"))
    with pytest.raises(ValueError, match=r"layer1\.0\.conv2: checkpoint weight \(64, 64, 3, 3\)"):
        load_state_dict(model, state)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_missing_and_unexpected_keys_are_listed():
    model = keras_zoo.build("resnet18", input_shape=(64, 64, 3))
    state = state_dict_numpy(torch_model("resnet18"))
    state["layer1.0.conv3.weight"] = state.pop("layer1.0.conv2.weight")
    with pytest.raises(ValueError) as err:
        load_state_dict(model, state)
    message = str(err.value)
    assert "layer1.0.conv2: needs layer1.0.conv2.weight" in message
    assert "layer1.0.conv3.weight (closest: 'layer1.0.conv2')" in message
