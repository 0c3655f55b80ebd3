"""Shared parts of the parity tests: references, porting them, running them."""

import copy
import functools

import numpy as np
import torch

import keras_zoo
from keras_zoo.port import load_state_dict
from tests.torch_models import random_reference, state_dict_numpy

FLOAT64_TOLERANCE = 1e-10  # the same function: ~1e-15 measured (scripts/parity_report.py)
FLOAT32_TOLERANCE = 2e-5  # max |keras - torch| / max |torch| of a correct float32 port


@functools.lru_cache(maxsize=1)
def _float32_reference(name, alpha, seed, affine_first):
    kwargs = {} if alpha is None else {"alpha": alpha}
    return random_reference(name, seed, affine_first=affine_first, **kwargs)


def reference(name, dtype=torch.float32, *, alpha=None, seed=None, affine_first=False):
    """A torch reference of `name` with random weights and calibrated batch norm (cached;
    `affine_first`: see tests.torch_models.randomize)."""
    seed = len(name) if seed is None else seed
    return copy.deepcopy(_float32_reference(name, alpha, seed, affine_first)).to(dtype)


def ported(name, ref, input_shape, *, optional_modules=(), **build_kwargs):
    """`build(name, ...)` (logits) with the reference's weights loaded by name."""
    model = keras_zoo.build(
        name, input_shape=input_shape, classifier_activation=None, **build_kwargs
    )
    load_state_dict(model, state_dict_numpy(ref), optional_modules=optional_modules)
    return model


def torch_logits(ref, x: np.ndarray) -> np.ndarray:
    """The reference's output for NHWC `x` (in the reference's dtype)."""
    with torch.no_grad():
        return ref(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def logit_error(name, size, rng, dtype=torch.float32, *, alpha=None, seed=None) -> float:
    """max |keras - torch| / max |torch| of the logits of `name` ported from its reference, on
    a random batch of two `size` images, both frameworks in `dtype`."""
    ref = reference(name, dtype, alpha=alpha, seed=seed)
    kwargs = {} if alpha is None else {"alpha": alpha}
    model = ported(name, ref, (*size, 3), **kwargs)
    np_dtype = "float64" if dtype == torch.float64 else "float32"
    assert all(w.dtype == np_dtype for w in model.weights)
    x = rng.normal(size=(2, *size, 3)).astype(np_dtype)
    got = model.predict(x, verbose=0)
    want = torch_logits(ref, x)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
