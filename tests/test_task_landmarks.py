"""The facial-landmark task end to end: crops as OpenCV cuts and resizes them (PFLD-pytorch's
data preparation), augmentation that moves the points with the pixels, training on synthetic
faces that brings the NME down, evaluate's NME/FR/AUC and CED plot, predict's points drawn,
TensorBoard's faces through the real server, an ONNX export that gives the same points, and
the errors of bad input."""

from __future__ import annotations

import json
import os
import urllib.parse

import cv2
import numpy as np
import pytest
from conftest import TensorBoardServer
from landmark_faces import face, make_pts_folder, template68
from PIL import Image
from test_callbacks import decode_png, images_of, load_events, steps_of, tags_of

from keras_zoo import cli
from keras_zoo.description import describe
from keras_zoo.tasks import task_named
from keras_zoo.tasks.landmarks import crops
from keras_zoo.tasks.landmarks.annotations import MIRROR

TASK = task_named("landmarks")
FACES = 48
EPOCHS = 8


def opencv_crop(image: np.ndarray, x0: int, y0: int, size: int, out: int) -> np.ndarray:
    """PFLD-pytorch's crop: the square cut out with a black border where it leaves the image,
    then cv2.resize (bilinear)."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = x0, y0, x0 + size, y0 + size
    cut = image[max(0, y1) : min(height, y2), max(0, x1) : min(width, x2)]
    cut = cv2.copyMakeBorder(
        cut,
        max(0, -y1),
        max(0, y2 - height),
        max(0, -x1),
        max(0, x2 - width),
        cv2.BORDER_CONSTANT,
        value=0,
    )
    return cv2.resize(cut.astype(np.float32), (out, out))


@pytest.mark.parametrize("region", [(50, 40, 200), (10, 20, 112), (300, 250, 150), (-20, -30, 90)])
def test_a_crop_is_opencvs_resize_of_the_cut_square(region):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3)).astype(np.uint8), (0, 0), 3)
    want = opencv_crop(image, *region, 112)
    got = crops.crop_images([image], np.array([region], np.float32), 112)[0]
    # OpenCV samples the cut's own edge beyond it (its border rule) where ours sees black:
    # the outermost crop pixels of a square that leaves the image differ, no other
    inner = np.s_[2:-2, 2:-2]
    np.testing.assert_allclose(got[inner], want[inner], atol=2e-3)
    if region[0] >= 0 and region[1] >= 0:
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_landmark_regions_are_pfld_pytorchs_integer_crops():
    points = np.array([[[10.4, 20.7], [50.2, 80.9], [30.0, 40.0]]], np.float32)
    # extent (10, 20)..(50, 80) + 1 = 41 x 61, centre trunc(10 + 20.5, 20 + 30.5) = (30, 50),
    # side trunc(61 * 1.2) = 73, corner (30 - 36, 50 - 36)
    np.testing.assert_array_equal(crops.landmark_regions(points), [[-6, 14, 73]])
    np.testing.assert_allclose(
        crops.to_image(crops.to_crop(points.reshape(1, -1), [[-6, 14, 73]]), [[-6, 14, 73]]),
        points.reshape(1, -1),
        rtol=1e-6,
    )
    np.testing.assert_allclose(crops.box_region((100, 50, 40, 80)), [76, 46, 88])


def dark_fraction(batch: np.ndarray, points: np.ndarray) -> float:
    """The fraction of the points inside their crops that sit on a dark dot (the synthetic
    faces draw each point as one on a light face)."""
    side = batch.shape[1]
    hits, total = 0, 0
    for picture, pts in zip(batch, points.reshape(len(points), -1, 2)):
        for x, y in pts * side:
            if 1 <= x < side - 1 and 1 <= y < side - 1:
                total += 1
                hits += picture[int(y), int(x)].sum() < 1.2  # PFLD's 0..1 values, 3 channels
    return hits / total


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_pts_folder(str(tmp_path_factory.mktemp("faces")), FACES)


def prepare():
    import keras_zoo

    return describe(keras_zoo.build("pfld_0_25", num_landmarks=68)).preprocessing


def test_augmented_points_stay_on_their_pixels(faces):
    data = TASK.read(faces)
    pre = prepare()
    changes = ("rotate", "scale", "shift", "flip")
    ds = TASK.dataset(
        data.files[:16], data.targets[:16], image_size=112, preprocessing=pre, batch_size=16,
        training=True, augment=changes, seed=3,
    )  # fmt: skip
    x, y = (np.asarray(v) for v in next(iter(ds)))
    y = y[:, :136]  # the points, before the head pose and the flags
    plain_x, plain_y = (
        np.asarray(v)
        for v in next(iter(TASK.dataset(data.files[:16], data.targets[:16], image_size=112,
                                        preprocessing=pre, batch_size=16)))
    )  # fmt: skip
    plain_y = plain_y[:, :136]
    assert not np.allclose(y, plain_y, atol=1e-3)  # the crops did change
    assert dark_fraction(plain_x, plain_y) > 0.95
    assert dark_fraction(x, y) > 0.95
    # the test sees a point off its pixel: the unchanged points on the changed crops miss
    assert dark_fraction(x, plain_y) < 0.6


def test_a_flip_renumbers_the_points_by_the_mirror_table(tmp_path):
    """A symmetric face, upright: mirrored and renumbered, its points are the same but for
    one shift across (the crop is not centred on the face to the pixel); the pictures differ
    (the background is not symmetric), so flips did happen."""
    from landmark_faces import render, write_pts

    points = template68() * 50 + 80
    rng = np.random.default_rng(1)
    Image.fromarray(render(points, 160, (80, 80), 50, rng)).save(tmp_path / "f.png")
    write_pts(str(tmp_path / "f.pts"), points)
    data = TASK.read(tmp_path)
    assert data.mirror == MIRROR[68]
    files, targets = list(data.files) * 8, np.repeat(data.targets, 8, 0)
    ds = TASK.dataset(
        files, targets, image_size=112, preprocessing=prepare(), batch_size=8, training=True,
        augment=("flip",), seed=0,
    )  # fmt: skip
    x, y = (np.asarray(v) for v in next(iter(ds)))
    y = y[:, :136].reshape(8, -1, 2)
    points = data.targets[:, :136]
    plain = crops.to_crop(points, crops.landmark_regions(points)).reshape(-1, 2)
    flipped = np.array([not np.allclose(x[i], x[0]) for i in range(8)])
    assert flipped.any() and not flipped.all()
    for i in range(8):
        moved = y[i] - plain
        np.testing.assert_allclose(moved[:, 1], 0, atol=1e-5)
        np.testing.assert_allclose(moved[:, 0], moved[0, 0], atol=1e-5)
    shifts = {round(float(y[i, 0, 0] - plain[0, 0]), 5) for i in range(8)}
    assert len(shifts) == 2  # flipped and not
    # the table matters: numbered as they were, the mirrored points are not a shift of these
    mirrored = np.stack([1 - plain[:, 0], plain[:, 1]], 1)
    assert np.ptp(mirrored[:, 0] - plain[:, 0]) > 0.5


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory):
    """keras-zoo train pfld_0_25 on the synthetic faces: (run folder, run.json), its weights
    drawn from a fixed seed (how far eight epochs bring the NME down varies with the draw;
    this draw's best is 0.43 of the first epoch's)."""
    import keras

    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("run")
    argv = ["train", "pfld_0_25", "--data", faces, "--epochs", str(EPOCHS), "--batch-size"]
    argv += ["16", "--lr", "5e-3", "--out", str(out), "--log-dir", str(out / "logs")]
    argv += ["--verbose", "0"]
    assert cli.main(argv) == 0
    return out, json.loads((out / "run.json").read_text())


def test_training_brings_the_nme_down(trained):
    out, record = trained
    assert record["description"]["task"] == "landmarks"
    assert json.loads((out / "landmarks.json").read_text()) == {"points": 68}
    nme = record["results"]["history"]["val_nme"]
    assert len(nme) == EPOCHS and min(nme) < 0.55 * nme[0], nme
    assert record["results"]["best_val_nme"] == min(nme)


def test_evaluate_prints_nme_failure_rate_auc_and_draws_the_ced(trained, faces, capsys):
    out, record = trained
    weights = str(out / "best.weights.h5")
    argv = ["evaluate", "pfld_0_25", "--weights", weights, "--data", faces]
    assert cli.main(argv + ["--subset", "validation"]) == 0
    printed = capsys.readouterr().out
    faces_seen = record["validation_images"]
    assert f"pfld_0_25 on {faces_seen} images" in printed
    headline = float(printed.split("NME ")[1].split()[0])
    assert abs(headline - record["results"]["best_val_nme"]) < 2e-3
    for line in ("NME (outer eye corners)", "NME (box diagonal)", "failure rate @0.1", "AUC @0.1"):
        assert line in printed
    ced = np.asarray(Image.open(out / "ced_validation.png").convert("RGB"))
    assert ced.shape[0] > 300 and len(np.unique(ced.reshape(-1, 3), axis=0)) > 20


def test_predict_prints_the_points_and_draws_them(trained, faces, tmp_path, capsys):
    out, _ = trained
    picture = os.path.join(faces, "face_000.png")
    argv = ["predict", "pfld_0_25", "--weights", str(out / "best.weights.h5"), picture]
    assert cli.main(argv + ["--box", "30,25,100,110", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    values = printed.split("68 points: ")[1].split("\n")[0].split()
    points = np.array([v.split(",") for v in values], float)
    assert points.shape == (68, 2)
    drawn = np.asarray(Image.open(tmp_path / "face_000_landmarks.png"))
    original = np.asarray(Image.open(picture).convert("RGB"))
    red = (drawn[..., 0] > 200) & (drawn[..., 1] < 80)
    assert red.sum() > 68 and not ((original[..., 0] > 200) & (original[..., 1] < 80)).any()
    ys, xs = np.nonzero(red)
    inside = (points[:, 0] >= 0) & (points[:, 0] < 160) & (points[:, 1] >= 0)
    # every red pixel is within a dot's radius of a predicted point
    nearest = np.min(np.hypot(xs[:, None] - points[inside, 0], ys[:, None] - points[inside, 1]), 1)
    assert nearest.max() < 2.5


def test_tensorboard_shows_the_faces_with_both_sets_of_points(trained, tmp_path):
    out, _ = trained
    log_dir = out / "logs"
    acc = load_events(log_dir)
    assert {"landmarks/faces", "landmarks/ced"} <= tags_of(acc)
    assert steps_of(acc, "landmarks/faces") == list(range(EPOCHS))
    _, _, pngs = images_of(acc, "landmarks/faces")
    picture = decode_png(pngs[0])
    assert picture.shape == (112 * 3, 112 * 3, 3)
    green = (picture[..., 1] > 200) & (picture[..., 0] < 80)
    red = (picture[..., 0] > 200) & (picture[..., 1] < 80)
    assert green.sum() > 68 * 3 and red.sum() > 10
    with TensorBoardServer(log_dir, tmp_path / "tensorboard.log") as server:
        tags = server.wait_for(
            "/data/plugin/images/tags", lambda a: "landmarks/faces" in a.get(".", {})
        )
        assert tags["."]["landmarks/faces"]["samples"] == len(pngs)
        query = urllib.parse.urlencode({"tag": "landmarks/faces", "run": ".", "sample": 0})
        entries = server.json(f"/data/plugin/images/images?{query}")
        png = server.get(f"/data/plugin/images/individualImage?{entries[-1]['query']}")
        np.testing.assert_array_equal(decode_png(png), picture)


def test_an_onnx_export_gives_the_same_points(trained, faces, tmp_path, capsys):
    out, _ = trained
    path = tmp_path / "pfld.onnx"
    weights = str(out / "best.weights.h5")
    argv = ["export", "pfld_0_25", str(path), "--weights", weights, "--data", faces]
    assert cli.main(argv) == 0
    check = json.loads(open(f"{path}.json").read())["check"]
    assert check["agreement"] == 1.0 and check["random"]["max_relative_error"] <= 1e-4
    # the NME on the labelled faces, of the Keras model and of the export, on their crops
    assert check["NME"]["images"] == FACES
    assert abs(check["NME"]["keras"] - check["NME"]["export"]) < 1e-4
    assert check["NME"]["keras"] < 0.8  # trained: 1.25 before
    picture = os.path.join(faces, "face_001.png")
    capsys.readouterr()
    results = {}
    for w in (weights, str(path)):
        argv = ["predict", "pfld_0_25", "--weights", w, picture, "--box", "30,25,100,110"]
        assert cli.main(argv + ["--out", str(tmp_path)]) == 0
        results[w] = capsys.readouterr().out.split("68 points: ")[1].split("\n")[0]
    keras_points = np.array([v.split(",") for v in results[weights].split()], float)
    onnx_points = np.array([v.split(",") for v in results[str(path)].split()], float)
    np.testing.assert_allclose(onnx_points, keras_points, atol=0.11)  # printed to 0.1 pixel


@pytest.mark.parametrize("suffix", [".tflite", ".xml"])
def test_litert_and_openvino_exports_are_exact(trained, tmp_path, suffix):
    out, _ = trained
    path = tmp_path / f"pfld{suffix}"
    argv = ["export", "pfld_0_25", str(path), "--weights", str(out / "best.weights.h5")]
    assert cli.main(argv) == 0
    check = json.loads(open(f"{path}.json").read())["check"]
    assert check["agreement"] == 1.0 and check["random"]["max_relative_error"] <= 1e-4


def test_the_face_detector_finds_the_astronaut_and_refuses_noise(tmp_path):
    from skimage import data as skimage_data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(photo)
    (region,) = TASK.regions([str(photo)], options={"box": None})
    x0, y0, side = region
    # her face spans about x 170..260, y 50..160 of the 512x512 photo
    assert x0 < 180 and x0 + side > 250 and y0 < 70 and y0 + side > 150 and side < 220
    noise = tmp_path / "noise.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(noise)
    with pytest.raises(ValueError, match=r"^image '.*noise.png': no face found"):
        TASK.regions([str(noise)], options={"box": None})


def test_bad_input_is_named_on_the_first_line(tmp_path, faces, capsys):
    picture = os.path.join(faces, "face_000.png")
    with pytest.raises(ValueError, match=r"^image '.*face_000.png': the face's crop .* lies "
                       r"mostly outside the 160x160 image"):  # fmt: skip
        TASK.regions([picture], options={"box": (500, 500, 50, 50)})
    with pytest.raises(ValueError, match=r"^box: expected x,y,width,height"):
        TASK.prediction_options({"box": "1,2,3"})
    with pytest.raises(TypeError, match=r"^top_k: not an option of landmarks' predict"):
        TASK.prediction_options({"top_k": 3})
    assert cli.main(["predict", "mobilenet_v3_small", "--weights", "x.h5", picture,
                     "--out", str(tmp_path)]) == 2  # fmt: skip
    assert "out: mobilenet_v3_small's predict (classification) draws nothing" in (
        capsys.readouterr().err
    )
    # a .pts file with another point count than the data's others
    mixed = tmp_path / "mixed"
    make_pts_folder(str(mixed), 2)
    lines = (mixed / "face_001.pts").read_text().splitlines()
    (mixed / "face_001.pts").write_text("\n".join(["version: 1", "n_points: 67", "{"]
                                                  + lines[3:-2] + ["}"]) + "\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"face_001.pts"):
        TASK.read(mixed)


def test_the_loss_is_chosen_by_name_and_checked_first(faces, tmp_path):
    from keras_zoo.training import train

    kinds = [TASK.loss().kind, TASK.loss("wing").kind, TASK.loss("pfld").kind]
    assert kinds == ["l2", "wing", "pfld"]
    with pytest.raises(ValueError, match=r"^loss must be one of 'l2', 'wing', 'pfld'; got 'l1'"):
        train("pfld_0_25", faces, loss="l1", out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"^loss: mobilenet_v3_small's task \(classification\) "):
        train("mobilenet_v3_small", faces, loss="wing", out=str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_target_losses_read_the_points_angles_and_flags_of_a_target():
    from keras_zoo.tasks.landmarks.fitting import TargetLoss
    from keras_zoo.tasks.landmarks.measures import L2Loss, WingLoss, pfld_loss

    rng = np.random.default_rng(0)
    points, predicted = rng.random((4, 196)), rng.random((4, 196))
    angles, predicted_angles = rng.normal(0, 20, (4, 3)), rng.normal(0, 20, (4, 3))
    flags = np.array([[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 1], [0] * 6], float)
    target = np.concatenate([points, angles, flags], 1)
    with_angles = np.concatenate([predicted, predicted_angles], 1)
    want = float(pfld_loss(points, predicted, angles, predicted_angles, flags))
    assert want > 0
    np.testing.assert_allclose(float(TargetLoss("pfld")(target, with_angles)), want, rtol=1e-6)
    np.testing.assert_allclose(
        float(TargetLoss("l2")(target, predicted)), float(L2Loss()(points, predicted)), rtol=1e-6
    )
    wing = WingLoss(width=10.0, curvature=2.0, scale=112.0)
    np.testing.assert_allclose(
        float(TargetLoss("wing")(target, predicted)), float(wing(points, predicted)), rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"^loss 'pfld': the model gives no angles"):
        TargetLoss("pfld")(target, predicted)


def test_pfld_loss_trains_the_auxiliary_net_and_keeps_the_landmark_model(tmp_path, faces):
    from landmark_faces import make_wflw

    import keras_zoo
    from keras_zoo.inference import evaluate
    from keras_zoo.tasks.landmarks.pose import head_pose
    from keras_zoo.training import train

    wflw = make_wflw(str(tmp_path / "wflw"), 24)
    data = TASK.read(wflw)
    ds = TASK.dataset(data.files[:8], data.targets[:8], image_size=112,
                      preprocessing=prepare(), batch_size=8)  # fmt: skip
    _, y = (np.asarray(v) for v in next(iter(ds)))
    assert y.shape == (8, 196 + 3 + 6)
    # the angles PFLD-pytorch computes from the crop's points, and the file's flags
    np.testing.assert_allclose(y[:, 196:199], head_pose(y[:, :196]), atol=1e-4)
    np.testing.assert_array_equal(y[:, 199:], data.attributes[:8])

    out = tmp_path / "run"
    result = train("pfld_0_25", wflw, epochs=1, batch_size=8, loss="pfld", out=str(out),
                   inspect=False, verbose=0)  # fmt: skip
    record = json.loads((out / "run.json").read_text())
    assert record["loss"] == "pfld" and "auxiliary" not in record["description"]["keywords"]
    # the kept weights are the plain model's (the auxiliary net left out)
    model = keras_zoo.build("pfld_0_25", num_landmarks=98, weights=str(out / "best.weights.h5"))
    assert isinstance(model.output, type(model.inputs[0]))
    measured = evaluate("pfld_0_25", result.weights, wflw, subset="validation")
    assert abs(measured.score - result.best) < 1e-4
    with pytest.raises(ValueError, match=r"^loss 'pfld': data .* has no WFLW attribute flags"):
        train("pfld_0_25", faces, loss="pfld", out=str(tmp_path / "pts"))
    assert not (tmp_path / "pts").exists()


def test_a_98_point_model_starts_a_68_point_one(tmp_path):
    """Fine-tuning on other points: the head the data asks for (`Task.head`) is new, the rest
    loads from the start weights."""
    import keras_zoo

    start = keras_zoo.build("pfld_0_25")
    start.save_weights(tmp_path / "wflw.weights.h5")
    head = TASK.head(TASK.read(make_pts_folder(str(tmp_path / "faces"), 2)).names)
    assert head == {"num_landmarks": 68, "classes": 136}
    tuned = keras_zoo.build("pfld_0_25", weights=str(tmp_path / "wflw.weights.h5"), **head)
    assert tuned.output.shape[-1] == 136
    for name in ("conv1", "conv3_1.conv.0", "conv8"):
        for got, want in zip(tuned.get_layer(name).weights, start.get_layer(name).weights):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_the_synthetic_faces_are_faces():
    """The test data: 68 points inside the picture, symmetric under the mirror table."""
    picture, points = face(np.random.default_rng(0))
    assert picture.shape == (160, 160, 3) and points.shape == (68, 2)
    assert (points > 0).all() and (points < 160).all()
    template = template68()
    mirrored = np.stack([-template[:, 0], template[:, 1]], 1)[list(MIRROR[68])]
    np.testing.assert_allclose(mirrored, template, atol=1e-6)
