"""timm's and megvii's checkpoint layouts: told apart by their keys, renamed into keras_zoo's by
the tables in keras_zoo.port.key_maps, and then computing timm's own function.

timm's MobileNet V2/V3 (random weights, calibrated then randomized batch norm, eval mode) are
converted, loaded and compared on their logits: float32 max |keras - timm| / max |timm| <= 2e-5
at 224x224 and 193x257, float64 <= 1e-10. timm's V3 uses batch-norm epsilon 1e-5 (torchvision's
1e-3), hence bn_epsilon=1e-5. As in test_parity_mobilenet.py, random V3 networks can amplify
float32 rounding, so each uses a seed whose timm float32 output is within 5e-6 of its float64
output, and the test asserts that first.
"""

import copy

import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo.port import (
    LAYOUTS,
    adapt_input_conv,
    convert_state_dict,
    detect_layout,
    load_state_dict,
    read_checkpoint,
)
from tests.conftest import relative_error
from tests.parity import FLOAT32_TOLERANCE, FLOAT64_TOLERANCE
from tests.torch_models import (
    import_timm,
    import_torchvision,
    randomize,
    state_dict_numpy,
    torch_model,
)

timm = import_timm()
timm_adapt_input_conv = timm.models._manipulate.adapt_input_conv
torchvision = import_torchvision()

REFERENCE_CONDITIONING = 5e-6
# (timm name, keras_zoo id, build kwargs, seed of a well-conditioned reference)
TIMM_MOBILENETS = [
    ("mobilenetv2_100", "mobilenet_v2", {}, 0),
    ("mobilenetv3_large_100", "mobilenet_v3_large", {"bn_epsilon": 1e-5}, 20),
    ("mobilenetv3_small_100", "mobilenet_v3_small", {"bn_epsilon": 1e-5}, 1),
]
IDS = [name for name, *_ in TIMM_MOBILENETS]
_cache = {}


def timm_reference(name, seed=0):
    """timm's `name` with random weights and batch norm, in eval mode (cached; copy to change)."""
    if (name, seed) not in _cache:
        _cache[name, seed] = randomize(timm.create_model(name), seed=seed)
    return _cache[name, seed]


def ported(kid, state_dict, input_shape=(None, None, 3), **kwargs):
    model = keras_zoo.build(kid, classifier_activation=None, input_shape=input_shape, **kwargs)
    load_state_dict(model, state_dict)
    return model


def keras_logits(model, x):
    return np.asarray(model(x, training=False))  # eager: no tracing per input size


def torch_logits(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def batch(size):
    return np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32")


def timm_float64_logits(name, seed, size):
    """timm's float64 logits on batch(size) (cached: the float32 and float64 tests share it)."""
    key = ("float64", name, seed, size)
    if key not in _cache:
        ref = copy.deepcopy(timm_reference(name, seed)).double()
        _cache[key] = torch_logits(ref, batch(size).astype("float64"))
    return _cache[key]


@pytest.mark.parametrize("name, kid, kwargs, seed", TIMM_MOBILENETS, ids=IDS)
def test_timm_mobilenet_float32_logits(name, kid, kwargs, seed):
    ref = timm_reference(name, seed)
    # one model (input_shape (None, None, 3)) for both sizes: the build is much of the time
    model = ported(kid, convert_state_dict(state_dict_numpy(ref), "timm"), **kwargs)
    for size in [(224, 224), (193, 257)]:
        x = batch(size)
        expected = torch_logits(ref, x)
        truth = timm_float64_logits(name, seed, size)
        assert relative_error(expected, truth) <= REFERENCE_CONDITIONING, f"ill-conditioned {size}"
        assert relative_error(keras_logits(model, x), expected) <= FLOAT32_TOLERANCE, size


@pytest.mark.parametrize("name, kid, kwargs, seed", TIMM_MOBILENETS, ids=IDS)
def test_timm_mobilenet_float64_logits(name, kid, kwargs, seed, float64):
    ref = copy.deepcopy(timm_reference(name, seed)).double()
    model = ported(kid, convert_state_dict(state_dict_numpy(ref), "timm"), (193, 257, 3), **kwargs)
    got = keras_logits(model, batch((193, 257)).astype("float64"))
    assert got.dtype == np.float64
    assert relative_error(got, timm_float64_logits(name, seed, (193, 257))) <= FLOAT64_TOLERANCE


@pytest.mark.parametrize(
    "name, torchvision_name",
    [
        ("mobilenetv2_100", "mobilenet_v2"),
        ("mobilenetv3_large_100", "mobilenet_v3_large"),
        ("mobilenetv3_small_100", "mobilenet_v3_small"),
    ],
)
def test_timm_mobilenet_becomes_torchvisions_names_and_shapes(name, torchvision_name):
    state = state_dict_numpy(timm.create_model(name))
    converted = convert_state_dict(state, "timm")
    want = getattr(torchvision.models, torchvision_name)().state_dict()
    assert {k: v.shape for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in want.items()
    }


def test_conversion_leaves_its_input_alone():
    state = state_dict_numpy(timm.create_model("mobilenetv3_small_100"))
    before = {k: v.copy() for k, v in state.items()}
    converted = convert_state_dict(state, "timm")
    assert list(state) == list(before)
    for k, v in state.items():
        np.testing.assert_array_equal(v, before[k])
        assert v.shape == before[k].shape
    assert converted["classifier.0.weight"].shape == (1024, 576)
    assert state["conv_head.weight"].shape == (1024, 576, 1, 1)


def test_timm_mobilenetv1_loads_unchanged():
    ref = timm_reference("mobilenetv1_100")
    state = state_dict_numpy(ref)
    assert detect_layout(state) == "timm"
    converted = convert_state_dict(state, "timm")
    assert list(converted) == list(state)
    model = ported("mobilenet_v1", converted, (96, 128, 3))
    x = batch((96, 128))
    assert relative_error(keras_logits(model, x), torch_logits(ref, x)) <= FLOAT32_TOLERANCE


def test_timm_resnet50_is_torchvision_layout_and_loads_unchanged():
    state = state_dict_numpy(timm.create_model("resnet50"))
    assert detect_layout(state) == "torchvision"
    converted = convert_state_dict(state, "torchvision")
    assert list(converted) == list(state)
    assert all(np.array_equal(converted[k], v) for k, v in state.items())
    assert convert_state_dict(state, "timm").keys() == state.keys()  # timm's own maps too
    ported("resnet50", converted)


def test_timm_safetensors_file_reads_converts_and_loads(tmp_path):
    from safetensors.torch import save_file

    ref = timm_reference("mobilenetv3_small_100", seed=1)
    save_file(ref.state_dict(), tmp_path / "model.safetensors")
    state = read_checkpoint(tmp_path / "model.safetensors")
    assert detect_layout(state) == "timm"
    model = ported("mobilenet_v3_small", convert_state_dict(state), (96, 128, 3), bn_epsilon=1e-5)
    x = batch((96, 128))
    assert relative_error(keras_logits(model, x), torch_logits(ref, x)) <= FLOAT32_TOLERANCE


@pytest.mark.parametrize(
    "module, layout",
    [
        (lambda: torchvision.models.resnet18(), "torchvision"),
        (lambda: torchvision.models.mobilenet_v2(), "torchvision"),
        (lambda: torchvision.models.mobilenet_v3_small(), "torchvision"),
        (lambda: torchvision.models.shufflenet_v2_x0_5(), "torchvision"),
        (lambda: timm.create_model("resnet18"), "torchvision"),
        (lambda: timm.create_model("mobilenetv1_100"), "timm"),
        (lambda: timm.create_model("mobilenetv2_100"), "timm"),
        (lambda: timm.create_model("mobilenetv3_large_100"), "timm"),
        (lambda: timm.create_model("mobilenetv3_small_100", num_classes=0), "timm"),
        (lambda: torch_model("shufflenet_v1_g3_x1_0"), "megvii"),
    ],
    ids=[
        "tv-resnet18",
        "tv-mobilenet_v2",
        "tv-mobilenet_v3_small",
        "tv-shufflenet_v2",
        "timm-resnet18",
        "timm-mobilenetv1",
        "timm-mobilenetv2",
        "timm-mobilenetv3_large",
        "timm-mobilenetv3_small-headless",
        "megvii-shufflenet_v1",
    ],
)
def test_detect_layout(module, layout):
    state = state_dict_numpy(module())
    assert detect_layout(state) == layout
    assert detect_layout(list(state)) == layout
    assert len(convert_state_dict(state, layout)) == len(state)  # every key placed


@pytest.mark.parametrize(
    "keys",
    [
        [],
        ["encoder.layers.0.weight", "decoder.weight"],
        [
            "first_conv.0.weight",
            "features.0.branch_main.0.weight",
            "conv_last.0.weight",
        ],  # megvii V2
        ["conv_stem.weight", "bn1.weight"],  # no blocks
    ],
)
def test_detect_layout_unknown_is_none(keys):
    assert detect_layout(keys) is None


def test_identity_layouts_keep_names():
    state = state_dict_numpy(torch_model("shufflenet_v1_g3_x1_0"))
    converted = convert_state_dict(state, "megvii")
    assert list(converted) == list(state)


def test_unknown_layout_lists_the_known_ones():
    with pytest.raises(ValueError, match="torchvision.*timm.*megvii.*pfld_pytorch"):
        convert_state_dict({"conv1.weight": np.zeros((1, 3, 1, 1))}, "caffe")
    assert set(LAYOUTS) == {"torchvision", "timm", "megvii", "pfld_pytorch"}


@pytest.mark.parametrize(
    "extra",
    [
        "blocks.1.0.aa.weight",  # a submodule no block kind has
        "head.fc.weight",  # a top-level module no timm map has
    ],
)
def test_unplaceable_timm_key_is_named(extra):
    state = state_dict_numpy(timm.create_model("mobilenetv2_100"))
    state[extra] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=extra.replace(".", r"\.")):
        convert_state_dict(state, "timm")


def test_timm_block_of_the_wrong_kind_is_named():
    # V2 has no ConvBnAct block ("cn", V3's last): its keys cannot be placed in V2's numbering
    state = state_dict_numpy(timm.create_model("mobilenetv2_100"))
    state["blocks.7.0.conv.weight"] = np.zeros((8, 320, 1, 1), np.float32)
    state["blocks.7.0.bn1.weight"] = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match=r"blocks\.7\.0\.conv\.weight"):
        convert_state_dict(state, "timm")


def test_undetectable_checkpoint_without_layout_is_an_error():
    with pytest.raises(ValueError, match="known layouts"):
        convert_state_dict({"encoder.weight": np.zeros(1)})


@pytest.mark.parametrize("in_channels", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adapt_input_conv_is_timms(in_channels, dtype, rng):
    weight = rng.normal(size=(8, 3, 3, 3)).astype(dtype)
    got = adapt_input_conv(weight, in_channels)
    want = timm_adapt_input_conv(in_channels, torch.from_numpy(weight.copy())).numpy()
    assert got.dtype == dtype and got.shape == (8, in_channels, 3, 3)
    # timm sums float64 weights in float32; keras_zoo keeps float64
    atol = 1e-6 * np.abs(weight).max() if dtype == np.float64 else 0
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def test_adapt_input_conv_keeps_float16(rng):
    weight = rng.normal(size=(4, 3, 3, 3)).astype(np.float16)
    got = adapt_input_conv(weight, 4)
    want = timm_adapt_input_conv(4, torch.from_numpy(weight.copy())).numpy()
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "weight, in_channels",
    [
        (np.zeros((8, 3, 3, 3), np.float32), 0),
        (np.zeros((8, 3, 3, 3), np.float32), -2),
        (np.zeros((8, 3, 3), np.float32), 1),
        (np.zeros((8, 27), np.float32), 4),
        (np.zeros((8, 4, 3, 3), np.float32), 1),
    ],
)
def test_adapt_input_conv_bad_arguments(weight, in_channels):
    with pytest.raises(ValueError):
        adapt_input_conv(weight, in_channels)
