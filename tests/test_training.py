"""The training workflow end to end on a generated class-per-folder tree: train, evaluate and
predict from the command line, two workers, and bad input (resuming a stopped run:
test_training_kills.py)."""

import io
import json
import os
import sys
import urllib.parse

import keras
import numpy as np
import pytest
from PIL import Image

from keras_zoo import cli
from keras_zoo.commands.train import TENSORBOARD_FLAGS
from keras_zoo.data import make_dataset, scan_folder
from keras_zoo.inference import load_trained
from keras_zoo.layers import TemperatureSoftmax
from keras_zoo.training import train
from tests.conftest import COLOURS, h5_arrays, make_tree, run_workers

MODEL = "mobilenet_v3_small"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("data") / "colours")


def _run_argv(data, out, logs):
    """`keras-zoo train`: one epoch on `data` into `out`, logging into `logs`."""
    return [
        "train",
        MODEL,
        "--data",
        str(data),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--image-size",
        "32",
        "--alpha",
        "0.75",
        "--out",
        str(out),
        "--log-dir",
        str(logs),
        "--verbose",
        "0",
    ]


@pytest.fixture(scope="module")
def run(tree, tmp_path_factory):
    """One epoch of `keras-zoo train` on the tree."""
    base = tmp_path_factory.mktemp("run")
    out, logs = base / "out", base / "logs"
    code = cli.main(_run_argv(tree, out, logs))
    assert code == 0
    return out, logs


def test_train_writes_weights_class_indices_and_the_run_configuration(run, tree):
    out, logs = run
    assert sorted(os.listdir(out)) == ["best.weights.h5", "class_indices.json", "run.json"]
    assert json.loads((out / "class_indices.json").read_text()) == {
        "0": "blue",
        "1": "green",
        "2": "red",
    }
    config = json.loads((out / "run.json").read_text())
    assert (config["model"], config["model_args"], config["image_size"], config["classes"]) == (
        MODEL,
        {"alpha": 0.75},
        32,
        3,
    )
    assert config["train_images"] + config["validation_images"] == 30
    assert config["validation_images"] == 6  # 20% of each class
    assert config["results"]["epochs_run_now"] == 1
    assert 0 <= config["results"]["best_val_accuracy"] <= 1
    trained = load_trained(MODEL, str(out / "best.weights.h5"))
    assert trained.model.output.shape == (None, 3) and trained.image_size == 32
    # the inspection callbacks and Keras' own scalars are in the log folder
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def events(folder):
        acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
        acc.Reload()
        return acc

    acc = events(logs)
    tags = set(acc.Tags()["tensors"])
    # at 32x32 the stages are 8x8, 4x4, 2x2 and 1x1: the two smallest are left out, and
    # Grad-CAM looks at the last stage of at least 4x4
    assert {t for t in tags if t.startswith(("feature_maps/", "grad_cam/"))} == {
        "feature_maps/stage1",
        "feature_maps/stage2",
        "grad_cam/stage2",
    }
    assert {"inputs", "confusion_matrix", "update_ratio", "kernels/features.0.0", "run"} <= tags
    # the run's configuration as text: a markdown code block of run.json before the results
    from tensorboard.util import tensor_util

    assert acc.SummaryMetadata("run").plugin_data.plugin_name == "text"
    text = tensor_util.make_ndarray(acc.Tensors("run")[0].tensor_proto).item().decode()
    assert all(line.startswith("    ") for line in text.splitlines())
    assert json.loads(text) == {k: v for k, v in config.items() if k != "results"}
    validation = events(logs / "validation")
    assert "epoch_accuracy" in validation.Tags()["tensors"]
    assert not events(logs / "train").Tags()["graph"]  # no graph the Graphs tab cannot read
    assert set(events(logs / "classes" / "red").Tags()["tensors"]) == {"precision", "recall"}


def test_tensorboard_serves_a_train_run_a_person_can_read(run, tmp_path):
    """Through a real server's HTTP API, started with the flags train prints: every epoch's
    images, readable feature maps, Grad-CAM, one input per class, few scalar charts."""
    import tensorflow as tf
    from conftest import TensorBoardServer
    from PIL import Image

    out, logs = run
    # beside the run, a tag with more steps than the 10 images TensorBoard keeps by default
    writer = tf.summary.create_file_writer(str(logs.parent / "steps"))
    with writer.as_default():
        for step in range(12):
            tf.summary.image("step", np.full((1, 4, 4, 1), step / 11, np.float32), step=step)
    writer.close()
    flags = TENSORBOARD_FLAGS.split()
    with TensorBoardServer(logs.parent, tmp_path / "tensorboard.log", *flags) as server:
        run_name = logs.name
        images = server.wait_for(
            "/data/plugin/images/tags",
            lambda a: "grad_cam/stage2" in a.get(run_name, {}) and "step" in a.get("steps", {}),
        )
        steps = server.json("/data/plugin/images/images?run=steps&tag=step&sample=0")
        assert [entry["step"] for entry in steps] == list(range(12))  # every one kept

        def pictures(tag):
            answer = []
            for sample in range(images[run_name][tag]["samples"]):
                query = urllib.parse.urlencode({"run": run_name, "tag": tag, "sample": sample})
                entry = server.json(f"/data/plugin/images/images?{query}")[-1]
                png = server.get(f"/data/plugin/images/individualImage?{entry['query']}")
                answer.append(np.asarray(Image.open(io.BytesIO(png))))
            return answer

        for tag in ("feature_maps/stage1", "feature_maps/stage2"):
            for picture in pictures(tag):
                assert picture.shape[1] >= 256 and picture.min() < picture.max(), tag
        assert len(pictures("grad_cam/stage2")) == 3
        inputs = pictures("inputs")  # one per class, in class order: blue, green, red
        assert [int(np.argmax(p.reshape(-1, 3).mean(0))) for p in inputs] == [2, 1, 0]
        scalars = server.json("/data/plugin/scalars/tags")
        charts = set().union(*(scalars[r] for r in scalars if r.startswith(run_name)))
        assert {"epoch_loss", "epoch_accuracy", "precision", "recall"} <= charts
        assert len(charts) <= 60, sorted(charts)
        # Keras' loss and accuracy sort first among the tag groups TensorBoard shows
        assert all(c.startswith("epoch_") or c > "epoch_loss" for c in charts), sorted(charts)


def _screenshots():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "tensorboard_screenshots",
        os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "tensorboard_screenshots.py"),
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_screenshot_script_says_how_to_get_a_browser(run, tmp_path, monkeypatch, capsys):
    script = _screenshots()
    monkeypatch.setattr(script, "BROWSERS", ("no-such-browser",))
    assert script.main([str(run[1].parent), "--out", str(tmp_path / "shots")]) == 2
    assert "apt-get install chromium" in capsys.readouterr().err
    assert script.main([str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "shots").exists()


@pytest.mark.needs_tool(*_screenshots().BROWSERS, install="apt-get install chromium")
def test_the_screenshot_script_renders_the_dashboards(run, tmp_path):
    from PIL import Image

    out = tmp_path / "shots"
    assert (
        _screenshots().main(
            [
                str(run[1].parent),
                "--out",
                str(out),
                "--images",
                "feature_maps",
                "--width",
                "1000",
                "--height",
                "800",
            ]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == [
        "tensorboard_images_feature_maps.png",
        "tensorboard_scalars.png",
    ]
    for name in os.listdir(out):
        picture = np.asarray(Image.open(out / name).convert("RGB"))
        assert picture.shape == (800, 1000, 3)
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50, name  # a page, not blank
    # the feature-map grids, mid grays, fill much of their page (TensorBoard's own page, of
    # white, orange and text, a few percent)
    page = np.asarray(Image.open(out / "tensorboard_images_feature_maps.png").convert("RGB"))
    page = page.astype(int)
    gray = (
        (abs(page[..., 0] - page[..., 1]) < 4)
        & (abs(page[..., 1] - page[..., 2]) < 4)
        & (page[..., 0] > 40)
        & (page[..., 0] < 215)
    )
    assert gray.mean() > 0.1


def _validation_predictions(out, tree):
    trained = load_trained(MODEL, str(out / "best.weights.h5"))
    folder = scan_folder(tree)
    _, val_idx = folder.split(trained.config["validation_split"], trained.config["seed"])
    ds = make_dataset(
        np.array(folder.files)[val_idx],
        folder.labels[val_idx],
        image_size=32,
        preprocessing=trained.preprocessing,
        batch_size=4,
    )
    logits = np.concatenate([trained.model.predict_on_batch(x) for x, _ in ds])
    return logits, folder.labels[val_idx], np.array(folder.files)[val_idx]


def test_evaluate_reports_the_models_own_accuracy_and_draws_the_matrix(run, tree, capsys, tmp_path):
    out, _ = run
    assert (
        cli.main(
            [
                "evaluate",
                MODEL,
                "--weights",
                str(out / "best.weights.h5"),
                "--data",
                str(tree),
                "--subset",
                "validation",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    logits, labels, _ = _validation_predictions(out, tree)
    accuracy = np.mean(logits.argmax(-1) == labels)
    assert f"on 6 images of {tree} (validation): accuracy {accuracy:.4f}" in printed
    for name in COLOURS:
        assert f"  {name} " in printed
    with Image.open(tmp_path / "eval" / "confusion_matrix_validation.png") as png:
        assert png.format == "PNG"


def test_predict_prints_temperature_scaled_probabilities(run, tree, capsys):
    out, _ = run
    logits, _, files = _validation_predictions(out, tree)
    assert (
        cli.main(
            [
                "predict",
                MODEL,
                "--weights",
                str(out / "best.weights.h5"),
                "--top-k",
                "2",
                "--temperature",
                "2.5",
                *files[:2],
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    names = ["blue", "green", "red"]
    for line, row, path in zip(lines, logits[:2], files[:2]):
        probs = np.exp(row / 2.5) / np.exp(row / 2.5).sum()
        top = np.argsort(-probs)[:2]
        assert line == f"{path}: " + ", ".join(f"{names[i]} {probs[i]:.4f}" for i in top)


def _printed_probabilities(capsys, argv):
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return [
        [
            (pair.rsplit(" ", 1)[0], float(pair.rsplit(" ", 1)[1]))
            for pair in line.split(": ", 1)[1].split(", ")
        ]
        for line in lines[-2:]
    ]


def test_predict_and_evaluate_run_in_the_runtimes_and_on_exports(run, tree, tmp_path, capsys):
    """--runtime exports the trained weights and runs them there; an export written by
    `keras-zoo export` runs in place of the weights, with the classes and preprocessing of
    its run; every way gives the Keras model's probabilities and accuracy."""
    out, _ = run
    weights = str(out / "best.weights.h5")
    _, _, files = _validation_predictions(out, tree)
    argv = ["predict", MODEL, "--top-k", "3", "--temperature", "2", *files[:2]]
    want = _printed_probabilities(capsys, [*argv, "--weights", weights])
    assert cli.main(["export", MODEL, str(tmp_path / "m.onnx"), "--weights", weights]) == 0
    record = json.loads((tmp_path / "m.onnx.json").read_text())
    assert record["class_names"] == ["blue", "green", "red"]
    assert record["metadata"]["run"]["validation_split"] == 0.2
    capsys.readouterr()
    for extra in (
        ["--weights", weights, "--runtime", "litert"],
        ["--weights", str(tmp_path / "m.onnx")],
    ):
        got = _printed_probabilities(capsys, [*argv, *extra])
        assert [[c for c, _ in top] for top in got] == [[c for c, _ in top] for top in want]
        np.testing.assert_allclose(
            [[p for _, p in top] for top in got], [[p for _, p in top] for top in want], atol=2e-4
        )
    accuracies = []
    for extra in ([], ["--runtime", "openvino"]):
        assert (
            cli.main(
                [
                    "evaluate",
                    MODEL,
                    "--weights",
                    weights,
                    "--data",
                    str(tree),
                    "--subset",
                    "validation",
                    "--out",
                    str(tmp_path / "e"),
                    *extra,
                ]
            )
            == 0
        )
        accuracies.append(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    assert (
        cli.main(
            [
                "evaluate",
                MODEL,
                "--weights",
                str(tmp_path / "m.onnx"),
                "--data",
                str(tree),
                "--subset",
                "validation",
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    accuracies.append(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    assert len(set(accuracies)) == 1, accuracies
    _fails(
        capsys,
        [*argv, "--weights", str(tmp_path / "m.onnx"), "--runtime", "litert"],
        "is a onnx export, which runs in onnx; drop --runtime",
    )


def test_temperature_softmax_smooths_and_serialises():
    logits = np.array([[3.0, 1.0, -2.0]], "float32")
    for t in (0.5, 1.0, 4.0):
        expected = np.exp(logits / t) / np.exp(logits / t).sum()
        np.testing.assert_allclose(TemperatureSoftmax(t)(logits), expected, rtol=1e-6)
    assert np.max(TemperatureSoftmax(4.0)(logits)) < np.max(TemperatureSoftmax(1.0)(logits))
    inputs = keras.Input((3,))
    model = keras.Model(inputs, TemperatureSoftmax(3.0)(inputs))
    clone = keras.Model.from_config(model.get_config())
    assert clone.layers[-1].temperature == 3.0
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        TemperatureSoftmax(0)


def test_two_workers_finish_with_identical_weights(tree, tmp_path):
    codes, outputs = run_workers(
        lambda index: [
            sys.executable,
            "-m",
            "keras_zoo",
            "train",
            "shufflenet_v2_x0_5",
            "--data",
            str(tree),
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--image-size",
            "32",
            "--strategy",
            "multi-worker",
            "--out",
            str(tmp_path / f"worker{index}"),
            "--verbose",
            "2",
        ]
    )
    assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]

    a = h5_arrays(tmp_path / "worker0" / "best.weights.h5")
    b = h5_arrays(tmp_path / "worker1" / "best.weights.h5")
    assert a.keys() == b.keys() and len(a) > 50
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # only the chief logs for TensorBoard
    assert (tmp_path / "worker0" / "train").is_dir()
    assert not (tmp_path / "worker1" / "train").exists()


def test_the_mirrored_strategy_trains_on_this_machines_devices(tree, tmp_path):
    result = train(
        "shufflenet_v2_x0_5",
        str(tree),
        epochs=1,
        batch_size=8,
        image_size=32,
        out=str(tmp_path / "out"),
        strategy="mirrored",
        inspect=False,
        verbose=0,
    )
    assert len(result.history["loss"]) == 1 and os.path.isfile(result.weights)


def _fails(capsys, argv, expected, out=None):
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"keras-zoo {argv[0]}: error: ") and expected in err[-1], err
    if out is not None:
        assert not os.path.exists(out)


@pytest.mark.parametrize("case", ["no class folders", "one class", "no images", "not a folder"])
def test_train_refuses_bad_data_folders(case, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    if case == "one class":
        make_tree(data, per_class=2, classes={"only": 0})
    elif case == "no images":
        (data / "a").mkdir()
        (data / "b").mkdir()
        (data / "a" / "notes.txt").write_text("not an image")
    elif case == "not a folder":
        data = tmp_path / "missing"
    expected = {
        "no class folders": "has no class sub-folders",
        "one class": "has one class sub-folder ('only')",
        "no images": "has no images",
        "not a folder": "no such folder",
    }[case]
    out = tmp_path / "out"
    if case == "no images":
        with pytest.warns(UserWarning, match="notes.txt"):
            _fails(capsys, ["train", MODEL, "--data", str(data), "--out", str(out)], expected, out)
    else:
        _fails(capsys, ["train", MODEL, "--data", str(data), "--out", str(out)], expected, out)


def test_train_refuses_a_corrupt_image_naming_it(tree, tmp_path, capsys):
    data = make_tree(tmp_path / "data", per_class=2)
    (data / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    _fails(
        capsys,
        ["train", MODEL, "--data", str(data), "--out", str(tmp_path / "out")],
        f"{data / 'red' / 'broken.jpg'} is not a readable image",
        tmp_path / "out",
    )


def test_a_non_image_file_is_left_out_with_a_warning_naming_it(tmp_path):
    data = make_tree(tmp_path / "data", per_class=2)
    (data / "red" / "labels.csv").write_text("a,b\n")
    with pytest.warns(UserWarning, match=r"left out 1 file.*labels.csv"):
        folder = scan_folder(data)
    assert len(folder.files) == 6


def _files(*folders):
    """Every file under `folders`, with its modification time and contents."""
    return {
        path: (path.stat().st_mtime_ns, path.read_bytes())
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_finished_run_is_refused_and_left_as_it_was(run, tree, capsys):
    """The same command again, into the folder of the finished run: refused before anything
    is written, its weights, record and TensorBoard run left whole."""
    out, logs = run
    before = _files(out, logs)
    _fails(
        capsys,
        _run_argv(tree, out, logs),
        f"out {str(out)!r} holds a finished run (its run.json has the results): to train "
        f"again give another --out, or --new-run to train into {f'{out}-2'!r}",
    )
    assert _files(out, logs) == before
    assert not os.path.exists(f"{out}-2") and not os.path.exists(f"{logs}-2")


def test_new_runs_started_at_once_claim_a_numbered_folder_each(tmp_path):
    """Eight `--new-run`s beside one run, all claiming at the same moment (as runs on machines
    that share the folder do), get eight numbers; a number whose log folder is taken is given
    back whole."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from keras_zoo import training

    out, logs = tmp_path / "out", tmp_path / "logs"
    out.mkdir()
    (out / "run.json").write_text("{}")  # an unfinished run
    (tmp_path / "logs-3").mkdir()  # another run's TensorBoard folder
    start = threading.Barrier(8)

    def claim(_):
        start.wait()
        return training._folders(MODEL, "data", str(out), str(logs), True, claim=True)

    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(claim, range(8)))
    numbers = [2, *range(4, 11)]
    assert sorted(claimed) == sorted((f"{out}-{n}", f"{logs}-{n}") for n in numbers)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["out", "logs-3", *(f"{f}-{n}" for f in ("out", "logs") for n in numbers)]
    )


def test_new_run_is_refused_under_the_multi_worker_strategy(run, tree, capsys):
    """Each worker would claim a number of its own: refused, before anything is written."""
    out, logs = run
    _fails(
        capsys,
        [*_run_argv(tree, out, logs), "--new-run", "--strategy", "multi-worker"],
        "new_run: not with strategy 'multi-worker', whose workers would each pick a numbered "
        "folder of their own; give every worker the same new out instead",
    )
    assert not os.path.exists(f"{out}-2") and not os.path.exists(f"{logs}-2")


def _split_tree(root, validation="val"):
    """train/ of 6 images per class beside `validation`/ of 2, and test/ of 1."""
    make_tree(root / "train", per_class=6)
    make_tree(root / validation, per_class=2, seed=1)
    make_tree(root / "test", per_class=1, seed=2)
    return root


def test_a_folder_split_into_train_and_val_trains_on_its_classes(run, tmp_path, capsys):
    """`--data split` with train/, val/ and test/ inside: the classes are the folders inside
    them (not "train", "val" and "test"), training reads train/ and validation val/, and
    --new-run puts the run beside the finished one it would have written over."""
    out, logs = run
    data = _split_tree(tmp_path / "split")
    argv = _run_argv(data, out, logs)
    with pytest.warns(UserWarning, match=r"^validation_split 0.3 does not apply: data "):
        code = cli.main(
            [*argv, "--new-run", "--no-inspect", "--verbose", "2"] + ["--validation-split", "0.3"]
        )
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert printed[:2] == [
        f"new run in {out}-2: {out} holds a run",
        f"training on the 18 images of {data / 'train'}, validating on the 6 of {data / 'val'}",
    ]
    second = out.parent / f"{out.name}-2"
    assert json.loads((second / "class_indices.json").read_text()) == {
        "0": "blue",
        "1": "green",
        "2": "red",
    }
    config = json.loads((second / "run.json").read_text())
    assert config["split"] == {"training": "train", "validation": "val"}
    assert (config["validation_split"], config["train_images"], config["validation_images"]) == (
        None,
        18,
        6,
    )
    assert config["log_dir"] == f"{logs}-2"
    # evaluate's subsets are the same folders
    weights = str(second / "best.weights.h5")
    assert (
        cli.main(
            ["evaluate", MODEL, "--weights", weights, "--data", str(data), "--subset", "validation"]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{MODEL} on 6 images of {data} (validation): accuracy ")
    assert [line.split()[0] for line in printed[2:5]] == ["blue", "green", "red"]
    _fails(
        capsys,
        [
            "evaluate",
            MODEL,
            "--weights",
            weights,
            "--data",
            str(data / "val"),
            "--subset",
            "training",
        ],
        f"subset 'training': the run trained on data split into train/ and val/, and data "
        f"{str(data / 'val')!r} is not split so; give --data the folder that holds them",
    )


@pytest.mark.parametrize("case", ["train alone", "no train", "classes differ", "validation"])
def test_train_refuses_split_folders_that_make_no_pair(case, tmp_path, capsys):
    data = tmp_path / "data"
    if case == "train alone":
        make_tree(data / "train", per_class=1)
        expected = (
            f"data {str(data)!r} holds the split folder(s) train/ but no val/, validation/ or "
            "test/: data that comes split holds train/ beside val/, validation/ or test/, each "
            f"with one folder of images per class; or give data {str(data / 'train')!r} to hold "
            "validation images out of it"
        )
    elif case == "no train":
        make_tree(data / "test", per_class=1)
        make_tree(data / "val", per_class=1)
        expected = f"data {str(data)!r} holds the split folder(s) test/, val/ but no train/: "
    elif case == "classes differ":
        make_tree(data / "train", per_class=1)
        make_tree(data / "validation", per_class=1, classes={"blue": 2, "cyan": 1, "red": 0})
        expected = (
            f"data {str(data)!r}: the class folders of train/ and validation/ differ (only in "
            "train/: green; only in validation/: cyan); both need the same classes"
        )
    else:  # validation/ is the validation data where there is no val/: its classes are read
        _split_tree(data, validation="validation")
        (data / "validation" / "red").rename(data / "validation" / "purple")
        expected = "(only in train/: red; only in validation/: purple)"
    out = tmp_path / "out"
    _fails(capsys, ["train", MODEL, "--data", str(data), "--out", str(out)], expected, out)


def test_train_refuses_small_images_and_missing_weights(tree, tmp_path, capsys):
    out = tmp_path / "out"
    for command in (
        ["train", MODEL, "--data", str(tree), "--out", str(out)],
        ["evaluate", MODEL, "--weights", "w.weights.h5", "--data", str(tree)],
        ["predict", MODEL, "--weights", "w.weights.h5", "image.png"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([*command, "--image-size", "16"])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[0] == (
            f"keras-zoo {command[0]}: error: argument --image-size: image size must be an "
            "integer >= 32, got 16"
        )
        assert not out.exists()
    with pytest.raises(ValueError, match=r"^image_size must be an integer >= 32, got 16$"):
        train(MODEL, str(tree), image_size=16, out=out)
    with pytest.raises(ValueError, match=r"^image_size must be an integer >= 32, got 32.0$"):
        train(MODEL, str(tree), image_size=32.0, out=out)
    assert not out.exists()
    _fails(
        capsys,
        [
            "train",
            MODEL,
            "--data",
            str(tree),
            "--weights",
            str(tmp_path / "nope.pth"),
            "--out",
            str(out),
        ],
        "nope.pth",
        out,
    )
    _fails(
        capsys,
        ["train", "resnet18", "--data", str(tree), "--alpha", "0.5", "--out", str(out)],
        "resnet18 has no width multiplier",
        out,
    )


def test_predict_and_evaluate_refuse_weights_that_do_not_fit(run, tree, tmp_path, capsys):
    out, _ = run
    other = tmp_path / "other"
    other.mkdir()
    for name in ("best.weights.h5", "run.json"):
        (other / name).write_bytes((out / name).read_bytes())
    (other / "class_indices.json").write_text(json.dumps({"0": "blue", "1": "green"}))
    image = str(next((tree / "red").iterdir()))
    _fails(
        capsys,
        ["predict", MODEL, "--weights", str(other / "best.weights.h5"), image],
        "hold a classifier of 3 classes but",
    )
    _fails(
        capsys,
        ["predict", MODEL, "--weights", str(tmp_path / "missing.weights.h5"), image],
        "missing.weights.h5': no such file",
    )
    _fails(
        capsys,
        ["predict", MODEL, "--weights", str(out / "best.weights.h5"), str(tmp_path / "nope.png")],
        "nope.png': no such file",
    )
    data = make_tree(tmp_path / "two", per_class=2, classes={"blue": 2, "green": 1, "yellow": 0})
    _fails(
        capsys,
        ["evaluate", MODEL, "--weights", str(out / "best.weights.h5"), "--data", str(data)],
        "has the classes ['blue', 'green', 'yellow'] but",
    )


@pytest.fixture(scope="module")
def keyword_run(tree, tmp_path_factory):
    """One epoch of shufflenet_v1 with groups=2, given by --model-arg: its default, 3, gives
    weights of other shapes, so only a model built with the keyword loads them."""
    out = tmp_path_factory.mktemp("keyword_run") / "out"
    argv = ["train", "shufflenet_v1", "--data", str(tree), "--model-arg", "groups=2"]
    flags = ["--epochs", "1", "--batch-size", "8", "--image-size", "32", "--no-inspect"]
    assert cli.main([*argv, *flags, "--verbose", "0", "--out", str(out)]) == 0
    return out


def _first_error(capsys, argv):
    """The first stderr line of a command that fails with status 2."""
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[0].startswith(f"keras-zoo {argv[0]}: error: "), err
    return err[0]


def test_family_keywords_reach_the_model_and_the_run_record(keyword_run, tree, tmp_path, capsys):
    import keras_zoo

    weights = str(keyword_run / "best.weights.h5")
    assert json.loads((keyword_run / "run.json").read_text())["model_args"] == {"groups": 2}
    trained = load_trained("shufflenet_v1", weights)
    assert trained.model_args == {"groups": 2}
    shapes = [tuple(w.shape) for w in trained.model.weights]
    for groups, same in ((2, True), (3, False)):
        model = keras_zoo.build("shufflenet_v1", groups=groups, input_shape=(32, 32, 3), classes=3)
        assert ([tuple(w.shape) for w in model.weights] == shapes) is same
    # evaluate, predict and export build it from run.json, no keyword repeated
    image = str(next((tree / "red").iterdir()))
    assert cli.main(["predict", "shufflenet_v1", "--weights", weights, image]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")
    evaluate = ["evaluate", "shufflenet_v1", "--weights", weights, "--data", str(tree)]
    assert cli.main([*evaluate, "--out", str(tmp_path / "e")]) == 0
    assert f"on 30 images of {tree} (all): accuracy " in capsys.readouterr().out
    assert (
        cli.main(["export", "shufflenet_v1", str(tmp_path / "m.onnx"), "--weights", weights]) == 0
    )
    record = json.loads((tmp_path / "m.onnx.json").read_text())
    assert record["metadata"]["run"]["model_args"] == {"groups": 2}
    # a keyword given to them takes the run's place: groups=3 does not fit these weights
    for argv in (
        ["predict", "shufflenet_v1", "--weights", weights, image],
        [*evaluate, "--out", str(tmp_path / "e3")],
    ):
        assert "do not fit shufflenet_v1" in _first_error(
            capsys, [*argv, "--model-arg", "groups=3"]
        )
    assert not (tmp_path / "e3").exists()
    assert (
        cli.main(
            ["predict", "shufflenet_v1", "--weights", weights, "--model-arg", "groups=2", image]
        )
        == 0
    )
    capsys.readouterr()


def test_model_arg_builds_an_id_for_export_and_analyze_features(
    keyword_run, tree, tmp_path, capsys
):
    """The weights alone, without the run's files beside them: the model is the id built with
    --model-arg, which they fit only with groups=2."""
    alone = tmp_path / "alone.weights.h5"
    alone.write_bytes((keyword_run / "best.weights.h5").read_bytes())
    model = ["--weights", str(alone), "--classes", "3", "--image-size", "32"]
    image = str(next((tree / "blue").iterdir()))
    analyze = ["analyze-features", "shufflenet_v1", *model, "--image", image]
    export = ["export", "shufflenet_v1", str(tmp_path / "m.onnx"), *model]
    for argv in ([*analyze, "--out", str(tmp_path / "f")], export):
        assert "do not fit shufflenet_v1" in _first_error(capsys, argv)
        assert cli.main([*argv, "--model-arg", "groups=2"]) == 0
    assert "stage1.png" in os.listdir(tmp_path / "f")
    record = json.loads((tmp_path / "m.onnx.json").read_text())
    assert record["metadata"]["model_args"] == {"groups": 2}


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "mobilenet_v2", "--data", "DATA", "--out", "OUT"],
        ["evaluate", "mobilenet_v2", "--weights", "w.weights.h5", "--data", "DATA", "--out", "OUT"],
        ["predict", "mobilenet_v2", "--weights", "w.weights.h5", "image.png"],
        ["export", "mobilenet_v2", "OUT/m.onnx"],
        ["analyze-features", "mobilenet_v2", "--image", "image.png", "--out", "OUT"],
        ["analyze-kernels", "mobilenet_v2", "--out", "OUT"],
        ["demo", "mobilenet_v2"],
    ],
    ids=lambda argv: argv[0],
)
def test_model_arg_names_an_unknown_or_ill_typed_keyword(argv, tree, tmp_path, capsys):
    """Checked against the id's family keywords before anything is read or written; the
    first line names the argument, and for an unknown key the keywords the id takes."""
    argv = [str(tmp_path / "out") if a == "OUT" else str(tree) if a == "DATA" else a for a in argv]
    argv = [a.replace("OUT/", f"{tmp_path / 'out'}/") for a in argv]
    prefix = f"keras-zoo {argv[0]}: error: argument --model-arg: "
    cases = {
        "groups=3": "mobilenet_v2 takes no keyword 'groups'; it takes: alpha, dropout",
        "alpha=abc": "mobilenet_v2's alpha takes a number (its default is 1.0), got 'abc'",
        "dropout=[0.1]": "mobilenet_v2's dropout takes a number (its default is 0.2), got [0.1]",
        "classes=3": "'classes' is not a family keyword of mobilenet_v2",
    }
    for given, expected in cases.items():
        assert _first_error(capsys, [*argv, "--model-arg", given]).startswith(prefix + expected)
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--model-arg", "alpha"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        f"keras-zoo {argv[0]}: error: argument --model-arg: expected KEY=VALUE such as "
        "alpha=0.75, got 'alpha'"
    )


def test_digits_command_writes_the_bundled_dataset(tmp_path, capsys):
    root = tmp_path / "digits"
    assert cli.main(["digits", str(root), "--size", "16"]) == 0
    folder = scan_folder(root)
    assert folder.class_names == tuple(str(d) for d in range(10)) and len(folder.files) == 1797
    from sklearn.datasets import load_digits

    digits = load_digits()
    with Image.open(root / "7" / "0007.png") as png:
        assert png.size == (16, 16) and png.mode == "RGB"
        small = np.asarray(png.convert("L").resize((8, 8), Image.BILINEAR), float)
    # the picture is the scan it came from (up to resampling)
    assert np.corrcoef(small.ravel(), digits.images[7].ravel())[0, 1] > 0.9
    assert cli.main(["digits", str(root), "--size", "16"]) == 0  # a complete tree is kept


def test_transfer_learning_loads_all_but_the_head_and_can_freeze_the_backbone(tree, tmp_path):
    import keras_zoo

    source = keras_zoo.build("shufflenet_v2_x0_5", input_shape=(32, 32, 3))  # 1000 classes
    rng = np.random.default_rng(3)
    source.set_weights(
        [w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in source.get_weights()]
    )
    source.save_weights(tmp_path / "source.weights.h5")
    snapshots = {}

    class Snapshot(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            snapshots["begin"] = {layer.name: layer.get_weights() for layer in self.model.layers}

        def on_train_end(self, logs=None):
            snapshots["end"] = {layer.name: layer.get_weights() for layer in self.model.layers}

    train(
        "shufflenet_v2_x0_5",
        str(tree),
        epochs=1,
        batch_size=8,
        image_size=32,
        weights=str(tmp_path / "source.weights.h5"),
        freeze_backbone=True,
        out=str(tmp_path / "out"),
        inspect=False,
        verbose=0,
        callbacks=[Snapshot()],
    )
    begin, end = snapshots["begin"], snapshots["end"]
    for name in ("conv1.0", "stage2.0.branch1.0", "conv5.1"):  # backbone, batch norm included
        for a, b, c in zip(begin[name], end[name], source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, c, err_msg=name)  # loaded from the source
            np.testing.assert_array_equal(b, c, err_msg=name)  # and frozen
    assert begin["fc"][0].shape == (1024, 3)  # a new head for the 3 classes
    assert not np.array_equal(begin["fc"][0], end["fc"][0])  # which trained
    config = json.loads((tmp_path / "out" / "run.json").read_text())
    assert config["freeze_backbone"] is True and config["weights"].endswith("source.weights.h5")
