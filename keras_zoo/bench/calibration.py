"""The runtimes table's models made fit to be checked and quantized: random weights whose
outputs differ from image to image (batch-norm statistics of a random batch, no torch weight
left at zero), and images for int8 calibration."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_zoo.bench.cases import Case, TorchFn, case_size, torch_module, zoo_model

if TYPE_CHECKING:
    import keras

CALIBRATION_IMAGES = 32
STATISTICS_BATCH = 8  # random images the batch norms' statistics are taken from


def runtime_models(
    case: Case, size: int, torch_fn: TorchFn | None = None
) -> tuple[keras.Model, Any]:
    """(Keras model, torch reference or None without `torch_fn`) of `case` for the runtimes
    table: random weights, each batch norm's statistics taken from one random batch (see
    `calibrate_batch_norms`), and on the torch side no parameter left at zero (see
    `fill_zero_parameters`). A case with a fixed input size is built at that one
    (`case_size`).

    The batch is half uniform noise in [-1, 1] (the table's own output check's kind) and half
    random pictures as `keras_zoo.export` checks an export on (`deploy.images.Images.random`,
    prepared as the model's description says): statistics of only one kind leave a deep random
    network's activations growing block after block on the other (efficientnet_v2_s's logits
    reached 2.5e3), until float32 rounding decides its outputs and no export can agree."""
    import keras_zoo
    from keras_zoo.deploy.images import Images

    own = case_size(case, size)
    model = zoo_model(case, own)
    half = STATISTICS_BATCH // 2
    noise = np.random.default_rng(4).uniform(-1, 1, (half, own, own, 3)).astype(np.float32)
    pictures = Images(keras_zoo.describe(model).preprocessing, False, (own, own, 3)).random(
        STATISTICS_BATCH - half, seed=4
    )
    x = np.concatenate([noise, pictures]).astype(np.float32)
    model = calibrate_batch_norms(model, x)
    module = torch_module(case, torch_fn) if torch_fn else None
    if module is not None:
        fill_zero_parameters(module)
        calibrate_torch_batch_norms(module, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return model, module


def fill_zero_parameters(module: Any, std: float = 0.02, seed: int = 0) -> list[str]:
    """Gives every weight (a parameter of two or more axes) of torch `module` that is zero
    everywhere seeded normal values of standard deviation `std`, and returns their names.
    torchvision starts some at zero (a Vision Transformer's head and class token), which makes
    every image's output the same and an output check of the runtimes blind (`check_outputs`);
    zero biases and batch-norm shifts are left as they are."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    filled = []
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * std)
                filled.append(name)
    return filled


def calibrate_batch_norms(model: keras.Model, x: np.ndarray) -> keras.Model:
    """Sets the moving statistics of every batch norm of Keras `model` to those of batch `x`
    (one training-mode pass with momentum 0) and returns the model. Initial statistics (mean 0,
    variance 1) let a deep random network's outputs collapse to the same vector for every
    image, against which an output check proves nothing and int8 calibration sees no ranges;
    statistics of the data keep them apart."""
    import keras

    from keras_zoo import walk

    norms = [
        layer for layer in walk.layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    model(x, training=True)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return model


def calibrate_torch_batch_norms(module: Any, x: np.ndarray) -> Any:
    """`calibrate_batch_norms` for a torch module and an NCHW batch; returns it in eval mode."""
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 1.0  # torch's momentum weighs the new batch: 1 keeps only its statistics
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(x))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return module.eval()


def calibration_images(
    folder: str, size: int, count: int = CALIBRATION_IMAGES, seed: int = 0
) -> str:
    """Writes `count` smooth random RGB images (8x8 noise, bilinearly enlarged to size x size)
    as PNGs into `folder` and returns it: int8 calibration data for a speed benchmark, where
    the activations need ranges, not meaning."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small = small.resize((size, size), Image.Resampling.BILINEAR)
        small.save(os.path.join(folder, f"{i:03d}.png"))
    return folder
