"""Weight sets as data, and loading above construction.

- every id's weight sets agree with their publishers' own records (torchvision's Weights enums,
  timm's pretrained cfgs), which nobody on this project wrote;
- weights="imagenet" / "source:tag" / a file path resolve, download (file:// here), check their
  sha256, convert their layout, set the keywords the weights fix, and load;
- bad input names the weight set, the keyword or the file to fetch;
- include_preprocessing and other input channels;
- keras_zoo/port imports nothing from the zoo.
"""

import ast
import dataclasses
import hashlib
import pathlib

import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo import cli, registry
from keras_zoo.pretrained import cache_path
from keras_zoo.weight_sets import HF_URL, resize_size
from tests.conftest import relative_error, use_weight_set
from tests.torch_models import import_timm, import_torchvision, randomize, torch_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALL_WEIGHTS = [
    (name, ws) for name in keras_zoo.list_models() for ws in keras_zoo.list_weights(name)
]


def test_every_weight_set_records_its_source_and_preprocessing():
    assert len(ALL_WEIGHTS) == 78  # 50 torchvision, 19 timm, 8 megvii, 1 PFLD-pytorch
    sources = ("torchvision", "timm", "megvii", "pfld_pytorch")
    for name, ws in ALL_WEIGHTS:
        assert ws.source in sources and ws.url.startswith("https://")
        assert ws.layout in sources and ws.filename
        pre = ws.preprocessing
        assert pre.interpolation in ("bilinear", "bicubic") and 0.8 < pre.crop_pct <= 1
        assert len(pre.mean) == len(pre.std) == 3 and pre.channel_order in ("RGB", "BGR")
        assert ws.top1 is None or 50 < ws.top1 < 90, (name, ws.key)
        info = keras_zoo.model_info(name)
        assert set(ws.config) <= set(info.keywords), (name, ws.key, ws.config)
    # the first weight set is the default and gives the id its preprocessing and top-1
    info = keras_zoo.model_info("resnet50")
    assert info.default_weights.key == "torchvision:IMAGENET1K_V2"
    assert info.top1 == 80.858 and info.crop_pct == pytest.approx(224 / 232)
    assert keras_zoo.model_info("shufflenet_v1_g8_x1_5").channel_order == "BGR"
    ids_with = {name for name, _ in ALL_WEIGHTS}
    # the ids without published weights: the ShuffleNets whose width is a keyword, and PFLD's
    # 0.25X (PFLD-pytorch publishes width 1.0 only)
    without = {"shufflenet_v1", "shufflenet_v2", "pfld_0_25"}
    assert ids_with == set(keras_zoo.list_models()) - without


def test_torchvision_weight_sets_are_torchvisions_own():
    torchvision = import_torchvision()
    checked = 0
    for name in keras_zoo.list_models():
        ours = [ws for ws in keras_zoo.list_weights(name) if ws.source == "torchvision"]
        try:
            enum = torchvision.models.get_model_weights(name)
        except ValueError:  # not a torchvision id
            assert not ours, name
            continue
        assert [ws.tag for ws in ours] == sorted((w.name for w in enum), reverse=True)
        assert ours[0].tag == enum.DEFAULT.name  # "imagenet" is torchvision's DEFAULT
        for ws in ours:
            theirs = enum[ws.tag]
            transforms = theirs.transforms()
            assert ws.url == theirs.url and theirs.url.split("-")[-1].startswith(ws.sha256)
            assert ws.top1 == pytest.approx(theirs.meta["_metrics"]["ImageNet-1K"]["acc@1"])
            assert list(ws.preprocessing.input_size) == transforms.crop_size * 2
            assert [ws.preprocessing.resize_size] == transforms.resize_size
            assert ws.preprocessing.interpolation == transforms.interpolation.value
            assert ws.preprocessing.mean == pytest.approx(transforms.mean)
            assert ws.preprocessing.std == pytest.approx(transforms.std)
            size = ws.preprocessing.input_size
            # a ViT's position embedding grows with the size its weights were trained at
            params = (
                keras_zoo.model_info(name).params
                if (*size, 3) == keras_zoo.model_info(name).input_size
                else keras_zoo.build(name, input_shape=(*size, 3)).count_params()
            )
            assert theirs.meta["num_params"] == params, (name, ws.tag)
            checked += 1
    assert checked == 50


def test_timm_weight_sets_are_timms_own():
    timm = import_timm()
    timm_sets = [(name, ws) for name, ws in ALL_WEIGHTS if ws.source == "timm"]
    assert {ws.tag.partition(".")[0] for _, ws in timm_sets} == {
        "convnext_base",
        "convnext_large",
        "convnext_small",
        "convnext_tiny",
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_b3",
        "efficientnet_b4",
        "efficientnet_b5",
        "mobilenetv1_100",
        "mobilenetv2_100",
        "mobilenetv3_large_100",
        "mobilenetv3_small_100",
        "resnet50",
    }
    for name, ws in timm_sets:
        cfg = timm.models.get_pretrained_cfg(ws.tag).to_dict()
        pre = ws.preprocessing
        # timm's GitHub release file where it has one, else its Hugging Face repository's
        # (the url of ConvNeXt's fb_* configs is facebookresearch's file, in another layout)
        assert ws.url == (cfg["url"] if "github.com" in cfg["url"] else HF_URL.format(tag=ws.tag))
        assert cfg["hf_hub_id"] == f"timm/{ws.tag}" and cfg["num_classes"] == 1000
        assert cfg["mean"] == pytest.approx(pre.mean) and cfg["std"] == pytest.approx(pre.std)
        assert cfg["interpolation"] == pre.interpolation
        # the size and crop the published top-1 was measured at: timm's train size, or its
        # test size (resnet50.a1_in1k's 81.214 is at 288, crop 1.0)
        if pre.input_size == tuple(cfg["input_size"][1:]):
            assert pre.crop_pct == pytest.approx(cfg["crop_pct"])
        else:
            assert pre.input_size == tuple(cfg["test_input_size"][1:])
            assert pre.crop_pct == pytest.approx(cfg["test_crop_pct"])
        # timm's model of that tag is keras_zoo's id: the same parameter count
        with torch.device("meta"):  # its structure, without paying for its initialisation
            model = timm.create_model(ws.tag.partition(".")[0], pretrained=False)
        assert sum(p.numel() for p in model.parameters()) == keras_zoo.model_info(name).params


def test_resize_sizes_follow_the_crop_fraction():
    assert resize_size(224, 0.875) == 256 and resize_size(224, 224 / 232) == 232
    assert resize_size(224, 0.95) == 235 and resize_size(288, 1.0) == 288


def test_list_weights_command_and_readme_table(capsys):
    assert cli.main(["list", "--weights"]) == 0
    table = capsys.readouterr().out.strip()
    assert table.count("\n") == len(ALL_WEIGHTS) + 1
    assert (
        "| resnet50 | torchvision:IMAGENET1K_V2 (default) | 80.858 | torchvision | 224 | 232 |"
        in table
    )
    assert table in (ROOT / "README.md").read_text(), "README's weights table is out of date"
    assert cli.main(["list", "mobilenet_v3_s*", "--weights"]) == 0
    assert "timm:mobilenetv3_small_100.lamb_in1k" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------
# fetching and loading, with files the tests make


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home"


def _timm_logits(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def test_timm_weight_set_downloads_checks_converts_and_loads(
    tmp_path, keras_home, monkeypatch, rng
):
    # timm's own MobileNetV3-Small: timm's key layout and timm's batch-norm epsilon (1e-5)
    timm = import_timm()
    ref = randomize(timm.create_model("mobilenetv3_small_100"), seed=3).eval()
    staged = tmp_path / "staged.pth"
    torch.save(ref.state_dict(), staged)
    ws = use_weight_set(
        monkeypatch, "mobilenet_v3_small", "timm:mobilenetv3_small_100.lamb_in1k", staged
    )
    model = keras_zoo.build(
        "mobilenet_v3_small", weights=ws.key, classifier_activation=None, input_shape=(160, 160, 3)
    )
    x = rng.normal(size=(2, 160, 160, 3)).astype("float32")
    assert relative_error(model.predict(x, verbose=0), _timm_logits(ref, x)) <= 2e-5
    assert model.get_layer("features.0.1").epsilon == 1e-5
    assert pathlib.Path(cache_path(ws)).is_file()
    # the second time reads the cache, without the mirror
    for f in (tmp_path / "mirror").iterdir():
        f.unlink()
    again = keras_zoo.build(
        "mobilenet_v3_small", weights=ws.key, include_top=False, input_shape=(160, 160, 3)
    )
    np.testing.assert_array_equal(
        again.get_layer("features.0.0").kernel.numpy(),
        model.get_layer("features.0.0").kernel.numpy(),
    )


def test_imagenet_is_the_first_weight_set_and_a_wrong_hash_is_deleted(
    tmp_path, keras_home, monkeypatch, rng
):
    ref = randomize(torch_model("resnet18"), seed=1)
    staged = tmp_path / "staged.pth"
    torch.save(ref.state_dict(), staged)
    ws = use_weight_set(monkeypatch, "resnet18", "torchvision:IMAGENET1K_V1", staged)
    model = keras_zoo.build(
        "resnet18", weights="imagenet", classifier_activation=None, input_shape=(64, 64, 3)
    )
    x = rng.normal(size=(1, 64, 64, 3)).astype("float32")
    assert relative_error(model.predict(x, verbose=0), _timm_logits(ref, x)) <= 2e-5
    pathlib.Path(cache_path(ws)).unlink()
    bad = dataclasses.replace(ws, sha256="00000000")
    monkeypatch.setitem(
        registry._REGISTRY,
        "resnet18",
        dataclasses.replace(keras_zoo.model_info("resnet18"), weights=(bad,)),
    )
    with pytest.raises(ValueError, match="starts with 00000000; the file was deleted"):
        keras_zoo.build("resnet18", weights="imagenet")
    assert not list(keras_home.rglob("*.pth"))


def test_offline_download_says_which_file_to_fetch_and_where(tmp_path, keras_home, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_WEIGHTS_URL", (tmp_path / "nowhere").as_uri())
    ws = keras_zoo.model_info("resnet50").default_weights
    with pytest.raises(ValueError) as err:
        keras_zoo.build("resnet50", weights="imagenet")
    message = str(err.value)
    assert "could not download" in message and "resnet50-11ad3fa6.pth" in message
    assert f"save it as {cache_path(ws)}" in message
    assert not list(keras_home.rglob("*.pth"))


def test_a_file_saved_into_the_cache_by_hand_is_checked_before_its_first_use(
    tmp_path, keras_home, monkeypatch
):
    """What the offline error tells a user to do, with the wrong file: refused with the path
    and both hashes, not loaded; the right one is loaded and remembered, and hashed again
    only once it changes."""
    from keras_zoo import pretrained
    from keras_zoo.port import convert

    staged, other = tmp_path / "staged.pth", tmp_path / "other.pth"
    ref = randomize(torch_model("shufflenet_v2_x0_5"), seed=1)
    torch.save(ref.state_dict(), staged)
    torch.save(randomize(torch_model("shufflenet_v2_x0_5"), seed=2).state_dict(), other)
    ws = use_weight_set(monkeypatch, "shufflenet_v2_x0_5", "torchvision:IMAGENET1K_V1", staged)
    right = tmp_path / "mirror" / ws.filename
    path = pathlib.Path(cache_path(ws))
    path.parent.mkdir(parents=True)
    path.write_bytes(other.read_bytes())  # the same architecture, other weights
    wrong = hashlib.sha256(other.read_bytes()).hexdigest()
    build = dict(weights="imagenet", classifier_activation=None, input_shape=(32, 32, 3))
    with pytest.raises(ValueError) as err:
        keras_zoo.build("shufflenet_v2_x0_5", **build)
    message = str(err.value)
    assert message.startswith(f"weights='torchvision:IMAGENET1K_V1': {path} has sha256 {wrong}")
    assert f"starts with {ws.sha256}" in message and path.read_bytes() == other.read_bytes()
    # the right file: loaded, and its check remembered beside it
    path.write_bytes(right.read_bytes())
    model = keras_zoo.build("shufflenet_v2_x0_5", **build)
    np.testing.assert_array_equal(
        model.get_layer("conv1.0").kernel.numpy(),
        ref.conv1[0].weight.detach().numpy().transpose(2, 3, 1, 0),
    )
    hashed = []
    real = convert.sha256_of
    monkeypatch.setattr(convert, "sha256_of", lambda p: hashed.append(p) or real(p))
    assert pretrained.fetch(ws) == str(path) and hashed == []
    # changed since (another size or time): hashed again
    path.write_bytes(other.read_bytes())
    with pytest.raises(ValueError, match=f"has sha256 {wrong}"):
        pretrained.fetch(ws)
    assert hashed == [str(path)]
    # a file:// download is checked and remembered the same way
    path.unlink()
    assert pretrained.fetch(ws) == str(path) and path.read_bytes() == right.read_bytes()
    hashed.clear()
    assert pretrained.fetch(ws) == str(path) and hashed == []


def test_megvii_checkpoints_are_fetched_by_hand_into_the_cache(keras_home, rng):
    ws = keras_zoo.model_info("shufflenet_v1_g3_x0_5").default_weights
    with pytest.raises(
        ValueError,
        match=r"fetch the ShuffleNetV1-0.5x-group3 checkpoint from "
        r"https://1drv.ms/.* and save it as .*megvii.pth",
    ):
        keras_zoo.build("shufflenet_v1_g3_x0_5", weights="imagenet")
    # megvii's files wrap the state dict and prefix DataParallel's "module."
    ref = randomize(torch_model("shufflenet_v1_g3_x0_5"), seed=2)
    path = pathlib.Path(cache_path(ws))
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, path)
    model = keras_zoo.build(
        "shufflenet_v1_g3_x0_5",
        weights="imagenet",
        classifier_activation=None,
        input_shape=(96, 96, 3),
    )
    x = rng.normal(size=(1, 96, 96, 3)).astype("float32")
    assert relative_error(model.predict(x, verbose=0), _timm_logits(ref, x)) <= 2e-5


# (timm model, keras_zoo id, seed of a reference whose float32 result is well conditioned)
@pytest.mark.parametrize(
    "timm_name, keras_name, seed",
    [
        ("mobilenetv2_100", "mobilenet_v2", 0),
        ("mobilenetv3_large_100", "mobilenet_v3_large", 3),
        ("mobilenetv1_100", "mobilenet_v1", 0),
    ],
)
def test_a_checkpoint_path_is_read_in_its_detected_layout(
    timm_name, keras_name, seed, tmp_path, rng
):
    timm = import_timm()
    ref = randomize(timm.create_model(timm_name), seed=seed).eval()
    path = tmp_path / f"{timm_name}.pth"
    torch.save(ref.state_dict(), path)
    # timm's V3 needs batch-norm epsilon 1e-5: its layout sets it
    model = keras_zoo.build(
        keras_name, weights=str(path), classifier_activation=None, input_shape=(128, 128, 3)
    )
    x = rng.normal(size=(2, 128, 128, 3)).astype("float32")
    want = _timm_logits(ref, x)
    truth = _timm_logits(ref.double(), x.astype("float64"))
    assert relative_error(want, truth) <= 5e-6, "ill-conditioned reference"
    assert relative_error(model.predict(x, verbose=0), want) <= 2e-5


def test_unknown_weight_set_lists_the_available_ones():
    with pytest.raises(
        ValueError,
        match=r"weights='torchvision:IMAGENET1K_V3': resnet50 has no "
        r"such weight set; available: 'torchvision:IMAGENET1K_V2'"
        r", 'torchvision:IMAGENET1K_V1', 'timm:resnet50.a1_in1k'",
    ):
        keras_zoo.build("resnet50", weights="torchvision:IMAGENET1K_V3")
    with pytest.raises(ValueError, match="not a weight set of resnet18 .* nor a weights file"):
        keras_zoo.build("resnet18", weights="imagenet21k")
    with pytest.raises(ValueError, match="shufflenet_v2 has no published weights; ids that have"):
        keras_zoo.build("shufflenet_v2", weights="imagenet")


def test_weights_that_fix_a_keyword_refuse_another_value(keras_home):
    with pytest.raises(ValueError, match=r"weights='imagenet' fix alpha=1.0; got alpha=0.75"):
        keras_zoo.build("mobilenet_v2", alpha=0.75, weights="imagenet")
    with pytest.raises(ValueError, match=r"fix bn_epsilon=1e-05; got bn_epsilon=0.001"):
        keras_zoo.build(
            "mobilenet_v3_large", bn_epsilon=1e-3, weights="timm:mobilenetv3_large_100.ra_in1k"
        )
    assert not keras_home.exists()  # refused before any download


# ------------------------------------------------------------------------------------------
def test_include_preprocessing_takes_raw_images(rng, tmp_path):
    for name in ("resnet18", "shufflenet_v1_g3_x0_5"):
        info = keras_zoo.model_info(name)
        plain = keras_zoo.build(name, input_shape=(64, 64, 3))
        raw = keras_zoo.build(name, input_shape=(64, 64, 3), include_preprocessing=True)
        raw.set_weights(plain.get_weights())
        images = rng.integers(0, 256, size=(2, 64, 64, 3)).astype("float32")
        x = (images / 255 - np.float32(info.mean)) / np.float32(info.std)
        if info.channel_order == "BGR":
            x = x[..., ::-1]
        np.testing.assert_allclose(
            raw.predict(images, verbose=0), plain.predict(x, verbose=0), rtol=1e-4, atol=1e-6
        )
    raw.save(tmp_path / "raw.keras")
    import keras

    loaded = keras.models.load_model(tmp_path / "raw.keras")
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), raw.predict(images, verbose=0))
    with pytest.raises(ValueError, match="include_preprocessing normalises 3-channel"):
        keras_zoo.build("resnet18", input_shape=(64, 64, 1), include_preprocessing=True)


def test_one_input_channel_sums_the_pretrained_rgb_filters(tmp_path, rng):
    ref = randomize(torch_model("resnet18"), seed=4)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    rgb = keras_zoo.build("resnet18", weights=str(path), input_shape=(64, 64, 3))
    gray = keras_zoo.build("resnet18", weights=str(path), input_shape=(64, 64, 1))
    x = rng.normal(size=(2, 64, 64, 1)).astype("float32")
    # a gray image through the summed filters is the same image in all three RGB channels
    assert (
        relative_error(gray.predict(x, verbose=0), rgb.predict(np.repeat(x, 3, axis=-1), verbose=0))
        <= 2e-5
    )


def test_four_input_channels_adapt_as_timm_does(tmp_path):
    timm = import_timm()
    from timm.models._manipulate import adapt_input_conv

    ref = randomize(torch_model("resnet18"), seed=4)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    model = keras_zoo.build("resnet18", weights=str(path), input_shape=(64, 64, 4))
    assert timm is not None
    want = adapt_input_conv(4, ref.conv1.weight.detach().clone()).numpy().transpose(2, 3, 1, 0)
    np.testing.assert_allclose(model.get_layer("conv1").kernel.numpy(), want, rtol=1e-6)


def test_the_porter_imports_nothing_from_the_zoo():
    # helpers that import no family
    allowed = {
        "keras_zoo.checks",
        "keras_zoo._version",
        "keras_zoo.files",
        "keras_zoo.walk",
        "keras_zoo.compat",
        "keras_zoo.torch_reference",  # imports torchvision on CPU builds of torch
    }
    for path in (ROOT / "keras_zoo" / "port").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from keras_zoo import x" imports keras_zoo.x
                names = (
                    [f"{node.module}.{a.name}" for a in node.names]
                    if node.module == "keras_zoo"
                    else [node.module]
                )
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name == "keras_zoo" or name.startswith("keras_zoo."):
                    assert name.startswith("keras_zoo.port") or name in allowed, (path.name, name)
