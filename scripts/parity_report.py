"""Print the measured port error of each id against its torch reference (needs the test extra).

    python scripts/parity_report.py [NAME ...]

For each id: max |keras - torch| / max |torch| of the logits on two random 224x224 images, with
both frameworks in float32 and in float64, using the references and seeds of the parity tests
(keras_zoo/torch_reference.py: torchvision's and timm's own modules; megvii's ShuffleNet V1 layout
hand-written, as it has no installable source). The last column names the reference's class.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from tests.parity import logit_error, reference  # noqa: E402
from tests.test_parity_mobilenet import CONFIGS  # noqa: E402

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
]


def main() -> int:
    names = sys.argv[1:] or DEFAULT
    print(f"{'id':<24} {'float32':>10} {'float64':>10}  reference")
    for name in names:
        alpha, seed = SEEDS.get(name, (None, None))
        errors = []
        for dtype, floatx in ((torch.float32, "float32"), (torch.float64, "float64")):
            keras.config.set_floatx(floatx)
            keras.config.set_dtype_policy(floatx)
            errors.append(
                logit_error(
                    name, (224, 224), np.random.default_rng(0), dtype, alpha=alpha, seed=seed
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
