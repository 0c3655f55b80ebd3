"""The Keras ResNet family computes torchvision's function.

The reference of every id (resnet*, resnext*, wide_resnet*) is torchvision's own module
(torchvision.models.get_model, tests/torch_models.py) with random weights and calibrated batch
norm; it is loaded into the Keras model by name and compared on logits and on every stage output:

- in float32, the dtype users run, max |keras - torch| / max |torch| <= 2e-5 for every id at
  224x224 (the 101- and 152-layer ids, whose blocks their 50-layer siblings share, at 128x128,
  where as at 224 every stride-2 layer sees an even size), and at an odd non-square size for
  one id of each block kind (the floor of a correct port is ~1e-6 here);
- in float64 both compute the same function to ~1e-15, so the check there is 1e-10: any
  architecture or layout bug (stride placement, padding, epsilon, a transposed kernel) gives
  1e-3 or more, and an even size catches asymmetric padding that an odd size hides.
"""

import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo.port import load_state_dict
from tests.conftest import relative_error
from tests.parity import (
    FLOAT32_TOLERANCE,
    FLOAT64_TOLERANCE,
    logit_error,
    ported,
    reference,
    torch_logits,
)
from tests.test_registry import RESNET_IDS
from tests.torch_models import state_dict_numpy, torch_model

# float64 runs are slower: one id for each block kind (basic, bottleneck, grouped, wide)
FLOAT64_IDS = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"]
FLOAT64_SIZES = {"224": (224, 224), "odd-97x131": (97, 131)}


@pytest.mark.parametrize("size", FLOAT64_SIZES.values(), ids=FLOAT64_SIZES.keys())
@pytest.mark.parametrize("name", FLOAT64_IDS)
def test_float64_logits_equal_torch(name, size, rng, float64):
    assert logit_error(name, size, rng, torch.float64) <= FLOAT64_TOLERANCE


# every id at 224, the deep ones at 128 (even at every stride 2, as 224); the odd size, whose
# padding every id shares, for one id of each block kind
DEEP_IDS = [name for name in RESNET_IDS if "101" in name or "152" in name]
FLOAT32_CASES = (
    [
        pytest.param(name, (224, 224), id=f"{name}-224")
        for name in RESNET_IDS
        if name not in DEEP_IDS
    ]
    + [pytest.param(name, (128, 128), id=f"{name}-128") for name in DEEP_IDS]
    + [pytest.param(name, (193, 257), id=f"{name}-odd-193x257") for name in FLOAT64_IDS]
)


@pytest.mark.parametrize("name, size", FLOAT32_CASES)
def test_float32_logits_match_torch(name, size, rng):
    assert logit_error(name, size, rng) <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_stage_outputs_equal_torch_layers(name, rng, float64):
    ref = reference(name, torch.float64)
    model = ported(name, ref, (None, None, 3), features_only=True, optional_modules=("fc",))
    x = rng.normal(size=(1, 120, 88, 3))
    with torch.no_grad():
        t = torch.from_numpy(x.transpose(0, 3, 1, 2))
        t = ref.maxpool(ref.relu(ref.bn1(ref.conv1(t))))
        expected = []
        for stage in (ref.layer1, ref.layer2, ref.layer3, ref.layer4):
            t = stage(t)
            expected.append(t.numpy().transpose(0, 2, 3, 1).copy())
    for got, want in zip(model.predict(x, verbose=0), expected):
        assert got.shape == want.shape
        assert relative_error(got, want) <= FLOAT64_TOLERANCE


def test_a_wrong_layout_is_caught_by_the_numbers(rng, float64):
    # The checks above are not blind: swapping kh and kw of one 3x3 kernel keeps every shape.
    ref = reference("resnet18", torch.float64)
    model = ported("resnet18", ref, (64, 64, 3))
    layer = model.get_layer("layer2.0.conv1")
    layer.set_weights([layer.get_weights()[0].transpose(1, 0, 2, 3)])
    x = rng.normal(size=(1, 64, 64, 3))
    assert relative_error(model.predict(x, verbose=0), torch_logits(ref, x)) > 1e-3


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
