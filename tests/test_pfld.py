"""PFLD computes PFLD-pytorch's function (its PFLDInference and AuxiliaryNet, written out in
tests/pfld_torch.py) with random weights and batch norm calibrated on data, loaded from the
checkpoint format its train.py writes ({"epoch", "pfld_backbone", "auxiliarynet"}, zip and
legacy torch files) through build(..., weights=path) and `keras-zoo port`, torch-free.

Landmarks and angles, on a face crop (scikit-image's astronaut, as PFLD-pytorch prepares one:
BGR, divided by 255) and on noise: float32 max |keras - torch| / max |torch| <= 2e-5, float64
<= 1e-10. A wrong batch-norm epsilon, ReLU6 for ReLU, a residual too many or bn8 applied
fails these bounds by far (checked below)."""

import copy
import os

import numpy as np
import pytest
import torch
from skimage import data as skimage_data

import keras_zoo
from keras_zoo import cli
from keras_zoo.port import convert_state_dict, detect_layout, load_state_dict, read_checkpoint
from tests.conftest import relative_error
from tests.parity import FLOAT32_TOLERANCE, FLOAT64_TOLERANCE
from tests.pfld_torch import PFLDInference, PFLDTraining
from tests.torch_models import randomize


def face_and_noise() -> np.ndarray:
    """(2, 112, 112, 3): a square crop of the astronaut's face, downsampled 2x, then uniform
    noise; BGR in [0, 1] as PFLD-pytorch's inputs."""
    crop = skimage_data.astronaut()[10:234, 120:344].astype("float64")  # RGB, 224x224
    face = crop.reshape(112, 2, 112, 2, 3).mean(axis=(1, 3))[..., ::-1] / 255.0
    noise = np.random.default_rng(0).random((112, 112, 3))
    return np.stack([face, noise])


@pytest.fixture(scope="module")
def images():
    return face_and_noise()


@torch.no_grad()
def calibrate(model: torch.nn.Module, batch: torch.Tensor) -> torch.nn.Module:
    """Running statistics from train-mode passes over `batch` (cumulative average), under the
    affine parameters the model has: every batch norm's input then has the statistics it sees."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for chunk in batch.split(4):
        model(chunk)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()


@pytest.fixture(scope="module")
def reference(images):
    """PFLD-pytorch's two modules with random weights (He-normal), random affine batch norms
    and running statistics from faces (the crop, flipped and shifted) and noise."""
    model = randomize(PFLDTraining(), seed=5, calibration_size=112)
    face = images[:1]
    views = [face, face[:, :, ::-1], np.roll(face, 9, axis=1), np.roll(face, -7, axis=2)]
    noise = np.random.default_rng(1).random((4, 112, 112, 3))
    batch = np.concatenate([*views, noise]).astype("float32")
    return calibrate(model, torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()))


def torch_outputs(ref: torch.nn.Module, x: np.ndarray) -> dict:
    with torch.no_grad():
        landmarks, angles = ref(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    return {"landmarks": landmarks.numpy(), "angles": angles.numpy()}


def errors(got: dict, want: dict) -> dict:
    """Per output and image (face, noise), max |got - want| / max |want|."""
    return {
        (key, what): relative_error(np.asarray(got[key])[i], want[key][i])
        for key in ("landmarks", "angles")
        for i, what in enumerate(("face", "noise"))
    }


@pytest.fixture(scope="module")
def checkpoints(reference, tmp_path_factory):
    """train.py's checkpoint of the reference in both torch formats."""
    folder = tmp_path_factory.mktemp("pfld")
    paths = {}
    for fmt in ("zip", "legacy"):
        paths[fmt] = folder / f"{fmt}" / "checkpoint.pth.tar"
        paths[fmt].parent.mkdir()
        torch.save(
            reference.checkpoint(epoch=7),
            paths[fmt],
            _use_new_zipfile_serialization=fmt == "zip",
        )
    return paths


@pytest.fixture(scope="module")
def model(checkpoints):
    return keras_zoo.build("pfld", weights=str(checkpoints["zip"]), auxiliary=True)


def test_float32_landmarks_and_angles_match_pfld_pytorch(model, reference, images):
    want = torch_outputs(reference, images.astype("float32"))
    got = model.predict(images.astype("float32"), verbose=0)
    assert sorted(got) == ["angles", "landmarks"]
    assert got["landmarks"].shape == (2, 196) and got["angles"].shape == (2, 3)
    measured = errors(got, want)
    assert max(measured.values()) <= FLOAT32_TOLERANCE, measured
    # the outputs depend on the input: the face and the noise are told apart
    assert relative_error(want["landmarks"][0], want["landmarks"][1]) > 0.05


def test_the_model_names_the_landmarks_task(model):
    from keras_zoo.tasks import task_of

    assert keras_zoo.describe(model).task == "landmarks"
    assert task_of(model).name == "landmarks" and task_of(model).score_name == "NME"


def test_planted_mistakes_fail_the_bounds(model, reference, images):
    """The comparison sees a wrong batch-norm epsilon and ReLU6 for ReLU (eager calls read the
    layers' attributes as they are now), a residual where PFLD-pytorch has none and bn8
    applied."""
    import keras

    x = images.astype("float32")
    want = torch_outputs(reference, x)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    # bn1, bn2, 3 in each of the 13 blocks, conv7's, the auxiliary net's 4; ReLUs likewise,
    # conv8's included
    assert len(norms) == 2 + 3 * 13 + 1 + 4 and len(relus) == 2 + 2 * 13 + 2 + 4
    try:
        for layer in norms:
            layer.epsilon = 1e-3
        assert max(errors(model(x, training=False), want).values()) > 50 * FLOAT32_TOLERANCE
    finally:
        for layer in norms:
            layer.epsilon = 1e-5
    try:
        for layer in relus:
            layer.max_value = 6.0
        assert max(errors(model(x, training=False), want).values()) > 50 * FLOAT32_TOLERANCE
    finally:
        for layer in relus:
            layer.max_value = None
    assert max(errors(model(x, training=False), want).values()) <= FLOAT32_TOLERANCE
    # and what the port must not do that the paper would: a shortcut around conv5_1 (128 ->
    # 128 at stride 1), bn8 after conv8
    got = model.predict(x, verbose=0)
    shortcut = copy.deepcopy(reference)
    shortcut.pfld_backbone.conv5_1.use_res_connect = True
    with_bn8 = copy.deepcopy(reference)
    backbone = with_bn8.pfld_backbone
    backbone.conv8 = torch.nn.Sequential(backbone.conv8, backbone.bn8)
    for planted in (shortcut, with_bn8):
        measured = errors(got, torch_outputs(planted, x))
        assert measured["landmarks", "face"] > 50 * FLOAT32_TOLERANCE


def test_float64_equals_pfld_pytorch(reference, images, float64):
    ref = PFLDTraining().double()
    ref.load_state_dict(reference.state_dict())
    ref.eval()
    model = keras_zoo.build("pfld", auxiliary=True)
    # PFLDTraining's keys are the checkpoint's as the reader flattens it: pfld_backbone.conv1...
    state = {k: v.numpy() for k, v in ref.state_dict().items()}
    load_state_dict(model, convert_state_dict(state, "pfld_pytorch"))
    assert all(w.dtype == "float64" for w in model.weights)
    measured = errors(model.predict(images, verbose=0), torch_outputs(ref, images))
    assert max(measured.values()) <= FLOAT64_TOLERANCE, measured


def test_include_preprocessing_takes_rgb_0_255_as_pfld_pytorch_prepares_it(
    model, checkpoints, images
):
    """PFLD-pytorch's inputs are OpenCV's BGR divided by 255: the id's preprocessing says so,
    and include_preprocessing=True turns RGB values in [0, 255] into them."""
    raw = keras_zoo.build(
        "pfld", weights=str(checkpoints["zip"]), auxiliary=True, include_preprocessing=True
    )
    rgb = np.round(images[..., ::-1] * 255).astype("float32")
    want = model.predict((rgb[..., ::-1] / 255).astype("float32"), verbose=0)
    got = raw.predict(rgb, verbose=0)
    for key in ("landmarks", "angles"):
        assert relative_error(got[key], want[key]) <= 1e-5


def test_the_legacy_file_loads_the_same(checkpoints, reference, images):
    model = keras_zoo.build("pfld", weights=str(checkpoints["legacy"]), auxiliary=True)
    x = images.astype("float32")
    measured = errors(model.predict(x, verbose=0), torch_outputs(reference, x))
    assert max(measured.values()) <= FLOAT32_TOLERANCE, measured
    assert keras_zoo.describe(model).weights_layout == "pfld_pytorch"


def test_the_checkpoint_reads_torch_free_with_bn8_dropped(checkpoints, reference):
    state = read_checkpoint(checkpoints["legacy"])
    assert {k.partition(".")[0] for k in state} == {"pfld_backbone", "auxiliarynet"}
    assert detect_layout(state) == "pfld_pytorch"
    converted = convert_state_dict(state)
    assert "bn8.weight" not in converted and "conv8.bias" in converted
    assert "auxiliarynet.conv4.0.weight" in converted and "fc.weight" in converted
    backbone = reference.pfld_backbone.state_dict()
    assert len(converted) == len(backbone) - 5 + len(reference.auxiliarynet.state_dict())
    # the earlier train.py's name for the backbone's entry reads the same
    older = {k.replace("pfld_backbone.", "plfd_backbone."): v for k, v in state.items()}
    assert convert_state_dict(older).keys() == converted.keys()


def test_backbone_checkpoints_load_into_the_landmark_model(
    checkpoints, reference, images, tmp_path
):
    """test.py's use: the backbone alone, from the full checkpoint (the auxiliary net's
    tensors left out) or from a checkpoint of the backbone only, which the auxiliary model
    refuses."""
    x = images.astype("float32")
    want = torch_outputs(reference, x)["landmarks"]
    alone = tmp_path / "backbone.pth"
    torch.save(reference.pfld_backbone.state_dict(), alone)
    wrapped = tmp_path / "wrapped.pth.tar"
    torch.save({"epoch": 3, "pfld_backbone": reference.pfld_backbone.state_dict()}, wrapped)
    for path in (checkpoints["zip"], alone, wrapped):
        model = keras_zoo.build("pfld", weights=str(path))
        assert model.output_shape == (None, 196)
        assert relative_error(model.predict(x, verbose=0), want) <= FLOAT32_TOLERANCE
    with pytest.raises(ValueError, match=r"auxiliarynet\.conv1\.0: needs"):
        keras_zoo.build("pfld", weights=str(wrapped), auxiliary=True)


def test_keras_zoo_port_writes_the_checkpoint_s_weights(checkpoints, reference, images, tmp_path):
    out = tmp_path / "pfld.weights.h5"
    assert cli.main(["port", "pfld", str(checkpoints["legacy"]), str(out)]) == 0
    model = keras_zoo.build("pfld", weights=str(out), auxiliary=True)
    x = images.astype("float32")
    measured = errors(model.predict(x, verbose=0), torch_outputs(reference, x))
    assert max(measured.values()) <= FLOAT32_TOLERANCE, measured


def test_parameters_equal_pfld_pytorch_s_without_bn8():
    ref = PFLDInference()
    bn8 = sum(p.numel() for p in ref.bn8.parameters())
    torch_params = sum(p.numel() for p in ref.parameters())
    for name in keras_zoo.list_models("pfld*"):
        model = keras_zoo.build(name)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == keras_zoo.model_info(name).params
        assert keras_zoo.count_macs(model) / 1e9 == pytest.approx(
            keras_zoo.model_info(name).gmacs, rel=1e-3
        )
    assert keras_zoo.model_info("pfld").params == torch_params - bn8 == 1_264_548
    info = keras_zoo.model_info("pfld")
    assert info.task == "landmarks" and info.input_size == (112, 112, 3)
    assert info.channel_order == "BGR" and info.mean == (0, 0, 0) and info.std == (1, 1, 1)


def test_widths_landmarks_and_features():
    small = keras_zoo.build("pfld_0_25", num_landmarks=68)
    assert small.output_shape == (None, 136)
    assert small.get_layer("multi_scale").output.shape == (None, 4 + 8 + 32)
    assert "alpha" not in keras_zoo.model_info("pfld_0_25").keywords
    features = keras_zoo.build("pfld", features_only=True)
    assert [tuple(o.shape[1:]) for o in features.outputs] == [
        (28, 28, 64),
        (14, 14, 16),
        (7, 7, 32),
    ]
    headless = keras_zoo.build("pfld", include_top=False, num_landmarks=106)
    assert headless.output_shape == (None, 176)
    assert keras_zoo.build("pfld", classes=212).output_shape == (None, 212)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match=r"num_landmarks must be one of 68, 98, 106; got 5"):
        keras_zoo.build("pfld", num_landmarks=5)
    with pytest.raises(ValueError, match=r"input_shape \(128, 128, 3\): pfld takes 112x112"):
        keras_zoo.build("pfld", input_shape=(128, 128, 3))
    with pytest.raises(ValueError, match=r"pfld takes 112x112"):
        keras_zoo.build("pfld", input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=r"classes=136 does not fit num_landmarks=98.*=68"):
        keras_zoo.build("pfld", num_landmarks=98, classes=136)
    with pytest.raises(ValueError, match=r"auxiliary=True .* include_top=True"):
        keras_zoo.build("pfld", auxiliary=True, include_top=False)
    with pytest.raises(ValueError, match=r"pooling does not apply"):
        keras_zoo.build("pfld", include_top=False, pooling="avg")
    with pytest.raises(ValueError, match=r"classifier_activation does not apply"):
        keras_zoo.build("pfld", classifier_activation="softmax")


def test_the_published_checkpoint_is_checked_by_its_git_blob_id(
    checkpoints, reference, images, tmp_path, monkeypatch
):
    """pfld_pytorch:WFLW has no published sha256: a download, or a file saved into the cache by
    hand, must have the git blob id the repository's tree records (here: a stand-in checkpoint
    registered with its own id, computed by git itself, served from a file:// mirror)."""
    import dataclasses
    import shutil
    import subprocess

    from keras_zoo import registry
    from keras_zoo.port.convert import git_blob_of
    from keras_zoo.pretrained import cache_path

    info = keras_zoo.model_info("pfld")
    ws = info.weight_set("pfld_pytorch:WFLW")
    assert ws.published_hash == ("git blob", "6c790656cfc3543837ea02928879a97fa22a97ff")
    assert ws.config == {} and ws.preprocessing == info.preprocessing
    staged = checkpoints["zip"]
    blob = subprocess.run(
        ["git", "hash-object", str(staged)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_blob_of(str(staged)) == blob
    mine = dataclasses.replace(ws, git_blob=blob)
    monkeypatch.setitem(registry._REGISTRY, "pfld", dataclasses.replace(info, weights=(mine,)))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(staged, mirror / ws.filename)
    monkeypatch.setenv("KERAS_ZOO_WEIGHTS_URL", mirror.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    model = keras_zoo.build("pfld", weights="pfld_pytorch:WFLW", auxiliary=True)
    x = images.astype("float32")
    measured = errors(model.predict(x, verbose=0), torch_outputs(reference, x))
    assert max(measured.values()) <= FLOAT32_TOLERANCE, measured
    assert keras_zoo.describe(model).weights == "pfld_pytorch:WFLW"
    # another file under the cache's name: refused, naming it and both ids, and left in place
    cached = cache_path(mine)
    with open(cached, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(ValueError) as caught:
        keras_zoo.build("pfld", weights="pfld_pytorch:WFLW")
    message = str(caught.value)
    assert f"{cached} has git blob {git_blob_of(cached)}" in message
    assert f"the published git blob of pfld_pytorch:WFLW is {blob}" in message
    assert os.path.isfile(cached)
