"""The Keras Vision Transformers compute torchvision's function.

The reference is torchvision's own VisionTransformer (torchvision.models.get_model, built with
the same image_size), with every parameter random (tests/torch_models.py); its state_dict is
loaded into the Keras model by name, through the porter's layout table (the packed
in_proj_weight split into query, key and value), and the logits are compared as
max |keras - torch| / max |torch|: <= 2e-5 in float32 at 224x224 and at another multiple of
the patch size, and <= 1e-10 in float64 at one of the two sizes for each id (a size-dependent
mistake, in the patch grid or the position embedding, is off by far more than float32's 2e-5).
"""

import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo.port import load_state_dict
from tests.parity import FLOAT32_TOLERANCE, FLOAT64_TOLERANCE, torch_logits
from tests.torch_models import random_transformer_reference, state_dict_numpy

CASES = [
    pytest.param("vit_b_16", 224, id="vit_b_16-224"),
    pytest.param("vit_b_16", 160, id="vit_b_16-160"),
    pytest.param("vit_b_32", 224, id="vit_b_32-224"),
    pytest.param("vit_b_32", 192, id="vit_b_32-192"),
]


def _logit_error(name, size, rng, dtype):
    ref = random_transformer_reference(name, seed=len(name), image_size=size).to(dtype)
    model = keras_zoo.build(name, input_shape=(size, size, 3), classifier_activation=None)
    load_state_dict(model, state_dict_numpy(ref))
    np_dtype = "float64" if dtype == torch.float64 else "float32"
    assert all(w.dtype == np_dtype for w in model.weights)
    x = rng.normal(size=(2, size, size, 3)).astype(np_dtype)
    got, want = model.predict(x, verbose=0), torch_logits(ref, x)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("name, size", CASES)
def test_float32_logits_match_torch(name, size, rng):
    assert _logit_error(name, size, rng, torch.float32) <= FLOAT32_TOLERANCE


@pytest.mark.parametrize(
    "name, size", [c for c in CASES if c.id in ("vit_b_16-160", "vit_b_32-224")]
)
def test_float64_logits_equal_torch(name, size, rng, float64):
    assert _logit_error(name, size, rng, torch.float64) <= FLOAT64_TOLERANCE
