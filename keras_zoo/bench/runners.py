"""The contenders as callables of an NHWC numpy batch: a Keras model as one compiled
TensorFlow function, a torch module eager, and the torch reference that supplies the modules."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_zoo.bench.cases import TorchFn

if TYPE_CHECKING:
    import keras


def keras_runner(model: keras.Model, jit_compile: bool = False) -> Callable:
    """model(x, training=False) as one compiled TensorFlow function (the same for every Keras
    contender), returning a numpy array."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    return lambda x: fn(x).numpy()


def nchw(run: Callable) -> Callable:
    """`run`, which takes NCHW batches, called with NHWC ones: the transposed copy is made at
    the first call with a batch and reused, so the timed calls (the same batch over and over)
    pay no transpose."""
    last: dict[str, np.ndarray] = {}

    def call(x):
        if last.get("x") is not x:
            last["x"], last["nchw"] = x, np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return run(last["nchw"])

    return call


def torch_runner(module: Any) -> Callable:
    """`module` eager under torch.inference_mode(), on NHWC batches (see `nchw`)."""
    import torch

    module.eval()

    def run(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return nchw(run)


def torch_trainer(
    module: Any,
    labels: np.ndarray,
    *,
    lr: float = 0.01,
    momentum: float = 0.9,
    decay: float = 1e-4,
) -> Callable:
    """One training step of `module` on NHWC batches (see `nchw`) with `labels`, as a torch
    training loop writes it: train mode, cross-entropy on the logits, zero_grad, backward,
    torch.optim.SGD with momentum and weight decay `decay` kept off parameters of one
    dimension or less (norms, biases: timm's param_groups_weight_decay)."""
    import torch

    module.train()
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        [
            {"params": [p for p in params if p.ndim > 1], "weight_decay": decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=momentum,
    )
    target = torch.from_numpy(np.asarray(labels, np.int64))

    def step(x):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)), target)
        loss.backward()
        optimizer.step()
        return loss.item()

    return nchw(step)


TORCH_REFERENCE = "keras_zoo.torch_reference:torch_model"


def load_torch_reference(spec: str | None) -> TorchFn | None:
    """FUNCTION(name, num_classes, alpha) -> torch module, from "MODULE:FUNCTION" (default
    TORCH_REFERENCE: torchvision's, timm's and megvii's own models); None when torch or the
    module is not importable (the torch column is then left out)."""
    if not spec:
        return None
    module_name, _, attr = spec.partition(":")
    try:
        importlib.import_module("torch")
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None
