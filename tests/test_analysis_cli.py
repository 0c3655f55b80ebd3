"""keras-zoo analyze-features / analyze-kernels and their scripts: the files they write hold
the model's own numbers; bad input fails before anything is written."""

import csv
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import keras_zoo
from keras_zoo import cli, viz
from keras_zoo.data import read_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """mobilenet_v3_small weights with 5 classes, moved away from their initial values so that
    loading them is visible."""
    model = keras_zoo.build("mobilenet_v3_small", input_shape=(64, 64, 3), classes=5)
    rng = np.random.default_rng(1)
    model.set_weights(
        [
            w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim > 1 else w
            for w in model.get_weights()
        ]
    )
    path = tmp_path_factory.mktemp("weights") / "small.weights.h5"
    model.save_weights(path)
    return str(path), model


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("images") / "photo.png"
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(path)
    return str(path)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_analyze_features_writes_grids_and_the_statistics_of_the_model(
    weights, image, tmp_path, capsys
):
    path, model = weights
    out = tmp_path / "features"
    assert (
        cli.main(
            [
                "analyze-features",
                "mobilenet_v3_small",
                "--weights",
                path,
                "--classes",
                "5",
                "--image-size",
                "64",
                "--image",
                image,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    # stage 4 is 2x2 at 64x64: its numbers are in the CSV, but it is no picture
    assert sorted(os.listdir(out)) == [
        "feature_stats.csv",
        "stage1.png",
        "stage2.png",
        "stage3.png",
    ]
    # the image prepared as keras_zoo.preprocessing prepares it: resized, centre-cropped
    x = keras_zoo.preprocessing("mobilenet_v3_small", path, image_size=64)(read_image(image)[None])
    expected = viz.feature_maps(model, x)
    rows = _rows(out / "feature_stats.csv")
    assert [r["layer"] for r in rows] == list(expected)
    for row in rows:
        value = expected[row["layer"]]
        assert row["shape"] == "x".join(map(str, value.shape[1:]))
        np.testing.assert_allclose(
            [float(row[k]) for k in ("mean", "std", "min", "max", "zero_fraction")],
            [value.mean(), value.std(), value.min(), value.max(), np.mean(value == 0)],
            rtol=1e-5,
            atol=1e-7,
        )
    with Image.open(out / "stage2.png") as png:
        assert png.format == "PNG" and png.size[0] > 300
    assert "stage4" in capsys.readouterr().out


def test_analyze_features_builds_the_model_with_model_arg(weights, image, tmp_path):
    """--model-arg bn_epsilon=0.01 (MobileNet V3's default: 0.001) reaches the model: the
    statistics are those of the id built with it and the same weights."""
    path, _ = weights
    out = tmp_path / "eps"
    argv = ["analyze-features", "mobilenet_v3_small", "--weights", path, "--classes", "5"]
    flags = ["--image-size", "64", "--image", image, "--layers", "stage3", "--out", str(out)]
    assert cli.main([*argv, *flags, "--model-arg", "bn_epsilon=0.01"]) == 0
    row = _rows(out / "feature_stats.csv")[0]
    x = keras_zoo.preprocessing("mobilenet_v3_small", path, image_size=64)(read_image(image)[None])
    for eps, same in ((0.01, True), (0.001, False)):
        model = keras_zoo.build(
            "mobilenet_v3_small",
            weights=path,
            classes=5,
            input_shape=(64, 64, 3),
            bn_epsilon=eps,
        )
        value = viz.feature_maps(model, x, ["stage3"])["stage3"]
        close = np.allclose([float(row["mean"]), float(row["std"])], [value.mean(), value.std()])
        assert close is same, eps


def test_analyze_features_takes_layer_names_and_n(weights, image, tmp_path):
    path, _ = weights
    out = tmp_path / "two"
    assert (
        cli.main(
            [
                "analyze-features",
                "mobilenet_v3_small",
                "--weights",
                path,
                "--classes",
                "5",
                "--image-size",
                "64",
                "--image",
                image,
                "--out",
                str(out),
                "--layers",
                "features.1",
                "stage3",
                "-n",
                "4",
            ]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == ["feature_stats.csv", "features.1.png", "stage3.png"]


def test_analyze_features_builds_a_trained_run_as_its_run_json_says(image, tmp_path, capsys):
    """The weights train wrote, with run.json and class_indices.json beside them: built as
    evaluate and predict build them (the run's alpha, input size and classes), none of them
    given again."""
    import json

    run = tmp_path / "run"
    run.mkdir()
    trained = keras_zoo.build("mobilenet_v3_small", alpha=0.75, input_shape=(32, 32, 3), classes=2)
    trained.save_weights(run / "best.weights.h5")
    (run / "class_indices.json").write_text(json.dumps({"0": "blue", "1": "red"}))
    config = {"model": "mobilenet_v3_small", "model_args": {"alpha": 0.75}, "image_size": 32}
    (run / "run.json").write_text(json.dumps(config))
    weights = str(run / "best.weights.h5")
    argv = ["analyze-features", "mobilenet_v3_small", "--weights", weights, "--image", image]
    assert cli.main([*argv, "--layers", "stage2", "--out", str(tmp_path / "f")]) == 0
    row = _rows(tmp_path / "f" / "feature_stats.csv")[0]
    x = keras_zoo.preprocessing("mobilenet_v3_small", image_size=32)(read_image(image)[None])
    value = viz.feature_maps(trained, x, ["stage2"])["stage2"]
    assert row["shape"] == "x".join(map(str, value.shape[1:])) == "4x4x24"
    np.testing.assert_allclose(float(row["mean"]), value.mean(), rtol=1e-5, atol=1e-7)
    capsys.readouterr()
    assert cli.main([*argv, "--classes", "5", "--out", str(tmp_path / "g")]) == 2
    assert "--classes 5: the weights train wrote have 2 classes" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize(
    "case", ["unreadable image", "missing image", "unknown layer", "missing weights"]
)
def test_analyze_features_bad_input_is_one_clear_error_and_writes_nothing(
    case, weights, image, tmp_path, capsys
):
    path, _ = weights
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    args = {
        "unreadable image": ["--image", str(bad)],
        "missing image": ["--image", str(tmp_path / "nope.jpg")],
        "unknown layer": ["--image", image, "--layers", "stage1", "stage9"],
        "missing weights": ["--image", image],
    }[case]
    weight_file = str(tmp_path / "nope.weights.h5") if case == "missing weights" else path
    out = tmp_path / "out"
    code = cli.main(
        [
            "analyze-features",
            "mobilenet_v3_small",
            "--weights",
            weight_file,
            "--classes",
            "5",
            "--image-size",
            "64",
            "--out",
            str(out),
            *args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    message = err.strip().splitlines()[-1]
    assert message.startswith("keras-zoo analyze-features: error: ")
    expected = {
        "unreadable image": f"image '{bad}' is not a readable image",
        "missing image": "nope.jpg': no such file",
        "unknown layer": "has no layer 'stage9'",
        "missing weights": "nope.weights.h5",
    }[case]
    assert expected in message
    if case == "unknown layer":
        assert "Valid layer names: features.0.0.pad, features.0.0, " in message
        assert "stage4" in message


def test_analyze_kernels_writes_the_statistics_histograms_and_filters(weights, tmp_path, capsys):
    path, model = weights
    out = tmp_path / "kernels"
    assert (
        cli.main(
            [
                "analyze-kernels",
                "mobilenet_v3_small",
                "--weights",
                path,
                "--classes",
                "5",
                "--image-size",
                "64",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = _rows(out / "kernel_stats.csv")
    expected = viz.kernel_stats(model)
    assert [r["name"] for r in rows] == [s.name for s in expected]
    for row, stat in zip(rows, expected):
        np.testing.assert_allclose(
            [float(row[k]) for k in ("mean", "std", "min", "max")],
            [stat.mean, stat.std, stat.min, stat.max],
            rtol=1e-12,
        )
    kernels = [w.kernel_tag for w in viz.named_weights(model) if w.kernel_tag]
    assert sorted(os.listdir(out / "histograms")) == sorted(f"{k}.png" for k in kernels)
    filters = viz.filter_tiles(keras.ops.convert_to_numpy(model.get_layer("features.0.0").kernel))
    with Image.open(out / "first_conv_filters.png") as png:
        assert png.size == (filters.shape[1], filters.shape[0])
    assert f"statistics of {len(expected)} weights" in capsys.readouterr().out


def test_any_saved_keras_model_can_be_analysed(image, tmp_path):
    model = keras.Sequential(
        [
            keras.Input((48, 48, 3)),
            keras.layers.Conv2D(6, 5, padding="same", activation="relu", name="conv_a"),
            keras.layers.MaxPooling2D(name="pool_a"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, name="out"),
        ],
        name="tiny",
    )
    saved = tmp_path / "tiny.keras"
    model.save(saved)
    assert (
        cli.main(["analyze-features", str(saved), "--image", image, "--out", str(tmp_path / "f")])
        == 0
    )
    assert sorted(os.listdir(tmp_path / "f")) == ["conv_a.png", "conv_b.png", "feature_stats.csv"]
    assert cli.main(["analyze-kernels", str(saved), "--out", str(tmp_path / "k")]) == 0
    assert [r["name"] for r in _rows(tmp_path / "k" / "kernel_stats.csv")] == [
        "conv_a/kernel",
        "conv_a/bias",
        "conv_b/kernel",
        "conv_b/bias",
        "out/kernel",
        "out/bias",
    ]


def test_the_scripts_run_the_same_commands(image, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "script"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "analyze_feature_map.py"),
            "shufflenet_v2_x0_5",
            "--image",
            image,
            "--image-size",
            "64",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "stage1.png" in os.listdir(out)
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "analyze_kernel_weight.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0 and "analyze-kernels" in result.stdout
