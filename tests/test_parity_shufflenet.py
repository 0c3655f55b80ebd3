"""ShuffleNet V2 and V1 compute their references' function: random weights, calibrated batch
norm, loaded by name. The references (tests/torch_models.py):

- shufflenet_v2_x*: torchvision's own module (torchvision.models.get_model);
- shufflenet_v1_g*: a hand-written module in megvii's official release layout (groups 3 and 8;
  first_conv, features.N.branch_main_1/_2, classifier.0 without bias), because megvii's
  ShuffleNet-Series has no installable source.

float32: max |keras - torch| / max |torch| <= 2e-5 at 224x224 and 193x257 (measured ~1e-6);
float64: <= 1e-10, the same function."""

import pytest
import torch

from tests.conftest import relative_error
from tests.parity import FLOAT32_TOLERANCE, FLOAT64_TOLERANCE, logit_error, ported, reference

FLOAT32_IDS = [
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "shufflenet_v1_g3_x0_5",
    "shufflenet_v1_g3_x1_0",
    "shufflenet_v1_g8_x0_5",
    "shufflenet_v1_g8_x1_5",
]
FLOAT64_IDS = ["shufflenet_v2_x1_0", "shufflenet_v1_g3_x1_0", "shufflenet_v1_g8_x1_0"]


@pytest.mark.parametrize("size", [(224, 224), (193, 257)], ids=["224", "odd-193x257"])
@pytest.mark.parametrize("name", FLOAT32_IDS)
def test_float32_logits_match_torch(name, size, rng):
    assert logit_error(name, size, rng) <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("size", [(224, 224), (97, 131)], ids=["224", "odd-97x131"])
@pytest.mark.parametrize("name", FLOAT64_IDS)
def test_float64_logits_equal_torch(name, size, rng, float64):
    assert logit_error(name, size, rng, torch.float64) <= FLOAT64_TOLERANCE


@pytest.mark.parametrize(
    "name, stages, classifier",
    [
        ("shufflenet_v2_x1_0", lambda r: [r.stage2, r.stage3, nn_seq(r.stage4, r.conv5)], ("fc",)),
        (
            "shufflenet_v1_g3_x1_0",
            lambda r: [r.features[:4], r.features[4:12], r.features[12:]],
            ("classifier.0",),
        ),
    ],
)
def test_stage_outputs_equal_torch(name, stages, classifier, rng, float64):
    ref = reference(name, torch.float64)
    model = ported(name, ref, (None, None, 3), features_only=True, optional_modules=classifier)
    x = rng.normal(size=(1, 96, 128, 3))
    stem = ref.conv1 if hasattr(ref, "conv1") else ref.first_conv
    with torch.no_grad():
        t = ref.maxpool(stem(torch.from_numpy(x.transpose(0, 3, 1, 2))))
        expected = [t.numpy().transpose(0, 2, 3, 1).copy()]
        for stage in stages(ref):
            t = stage(t)
            expected.append(t.numpy().transpose(0, 2, 3, 1).copy())
    outputs = model.predict(x, verbose=0)
    assert len(outputs) == 4
    for got, want in zip(outputs, expected):
        assert got.shape == want.shape
        assert relative_error(got, want) <= FLOAT64_TOLERANCE


def nn_seq(*modules):
    return torch.nn.Sequential(*modules)
