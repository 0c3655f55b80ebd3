"""Print the measured port error of each id against its torch reference (needs the test extra).

    python scripts/parity_report.py [NAME ...]

For each id: max |keras - torch| / max |torch| of the logits on two random 224x224 images, with
both frameworks in float32 and in float64, using the references and seeds of the parity tests
(keras_zoo/torch_reference.py: torchvision's and timm's own modules; megvii's ShuffleNet V1 layout
hand-written, as it has no installable source). The Vision Transformers (vit_b_16, vit_b_32,
vit_l_16, vit_l_32) are compared as tests/test_parity_vit.py compares them: torchvision's own
VisionTransformer with every parameter random (tests/torch_models.py
random_transformer_reference), its state_dict loaded by name; the EfficientNets and
ConvNeXts with the references of their parity tests (tests/test_parity_efficientnet.py: batch
norm calibrated after its random affine parameters; tests/test_parity_convnext.py: every
parameter random, the layer scales included). The last column names the reference's class.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import keras_zoo  # noqa: E402
from keras_zoo.port import load_state_dict  # noqa: E402
from tests import test_parity_convnext, test_parity_efficientnet  # noqa: E402
from tests.parity import logit_error, reference, torch_logits  # noqa: E402
from tests.test_parity_mobilenet import CONFIGS  # noqa: E402
from tests.torch_models import random_transformer_reference, state_dict_numpy  # noqa: E402

SEEDS = {name: (alpha, seed) for name, alpha, seed in CONFIGS if alpha == 1.0}
DEFAULT = [
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "shufflenet_v2_x1_0",
    "shufflenet_v1_g3_x1_0",
    "vit_b_16",
    "vit_b_32",
    "vit_l_16",
    "vit_l_32",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "convnext_tiny",
]
# the families whose parity tests make their own references: reference(name, dtype)
FAMILY_REFERENCES = {
    "efficientnet": test_parity_efficientnet.reference,
    "convnext": test_parity_convnext.reference,
}
TRANSFORMERS = ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32")
SIZE = 224


def transformer_error(name: str, dtype: torch.dtype) -> tuple[float, type]:
    """(max |keras - torch| / max |torch| of the logits, the reference's class) of Vision
    Transformer `name` at SIZE x SIZE, with the reference and seed of tests/test_parity_vit.py
    and Keras' floatx already set to `dtype`'s."""
    ref = random_transformer_reference(name, seed=len(name), image_size=SIZE).to(dtype)
    return module_error(name, ref, dtype)


def module_error(name: str, ref: torch.nn.Module, dtype: torch.dtype) -> tuple[float, type]:
    """(max |keras - torch| / max |torch| of the logits, the reference's class) of `name`
    ported from the torch module `ref` at SIZE x SIZE, Keras' floatx already `dtype`'s."""
    model = keras_zoo.build(name, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    load_state_dict(model, state_dict_numpy(ref))
    np_dtype = "float64" if dtype == torch.float64 else "float32"
    x = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np_dtype)
    got, want = model.predict(x, verbose=0), torch_logits(ref, x)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want))), type(ref)


def main() -> int:
    names = sys.argv[1:] or DEFAULT
    print(f"{'id':<24} {'float32':>10} {'float64':>10}  reference")
    for name in names:
        alpha, seed = SEEDS.get(name, (None, None))
        errors = []
        for dtype, floatx in ((torch.float32, "float32"), (torch.float64, "float64")):
            keras.config.set_floatx(floatx)
            keras.config.set_dtype_policy(floatx)
            family = keras_zoo.model_info(name).family
            if name in TRANSFORMERS or family in FAMILY_REFERENCES:
                error, source = (
                    transformer_error(name, dtype)
                    if name in TRANSFORMERS
                    else module_error(name, FAMILY_REFERENCES[family](name, dtype), dtype)
                )
                errors.append(error)
                continue
            errors.append(
                logit_error(
                    name, (SIZE, SIZE), np.random.default_rng(0), dtype, alpha=alpha, seed=seed
                )
            )
            source = type(reference(name, alpha=alpha, seed=seed))
        print(
            f"{name:<24} {errors[0]:>10.2e} {errors[1]:>10.2e}  "
            f"{source.__module__}.{source.__qualname__}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
