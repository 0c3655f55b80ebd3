"""Bad input is a clear error naming the argument or file, never a TensorFlow error: bad
keywords, images that the input pipeline's decoder cannot read, and the command line's errors,
whose first line says what is wrong."""

import io
import json
import re

import h5py
import keras
import numpy as np
import pytest
from PIL import Image

import keras_zoo
import keras_zoo.data
from keras_zoo import cli
from keras_zoo.checks import check_image_size, op_error_text
from keras_zoo.data import _check_header, read_image, scan_folder, verify_images


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(classes=-1), ValueError, "classes must be a positive integer"),
        (dict(classes=0), ValueError, "classes"),
        (dict(classes=2.5), ValueError, "classes"),
        (dict(classes=True), ValueError, "classes"),
        (
            dict(include_top=False, pooling="mean"),
            ValueError,
            "pooling must be one of None, 'avg', 'max'",
        ),
        (dict(pooling="max"), ValueError, "pooling='max' applies only with include_top=False"),
        (dict(input_shape=(16, 16, 3)), ValueError, "input_shape.*>= 32"),
        (
            dict(input_shape=(224, 224)),
            ValueError,
            r"input_shape must be \(height, width, channels\)",
        ),
        (dict(input_shape=(3, 224, 224)), ValueError, r"channels-first.*\(224, 224, 3\)"),
        (dict(input_shape=(224, 224, 0)), ValueError, "channel count"),
        (dict(input_shape=(224, 224, None)), ValueError, "channel count"),
        (dict(input_shape="224"), ValueError, "input_shape"),
        (dict(weights="/no/such/file.weights.h5"), ValueError, "no such file"),
        (dict(weights="model.pkl"), ValueError, "weights='model.pkl'"),
        (dict(weights=3), TypeError, "weights must be None, 'imagenet', a weight set key"),
        (dict(include_top="yes"), TypeError, "include_top must be True or False"),
        (dict(classifier_activation="softmaxx"), ValueError, "classifier_activation"),
        (dict(input_tensor=[1, 2, 3]), TypeError, "input_tensor must be a symbolic Keras tensor"),
        (dict(out_indices=(0,)), ValueError, "out_indices applies only with features_only"),
        (dict(features_only=True, out_indices=(4,)), ValueError, "out_indices must be"),
        (dict(features_only=True, out_indices=(1, 1)), ValueError, "out_indices must be"),
        (dict(features_only=True, pooling="avg"), ValueError, "pooling does not apply"),
        (dict(name=""), TypeError, "name must be"),
    ],
)
def test_bad_keywords(kwargs, error, match):
    with pytest.raises(error, match=match):
        keras_zoo.build("resnet18", **kwargs)


def test_build_with_the_id_as_a_keyword_says_how_to_call_it():
    """keras_zoo.build(name="resnet18") was Python's "missing 1 required positional argument"."""
    with pytest.raises(TypeError) as err:
        keras_zoo.build(name="resnet18", classes=10)
    assert str(err.value) == (
        "keras_zoo.build takes the model id as its first argument, without a keyword: "
        "keras_zoo.build('resnet18', ...); name= is the Keras model's own name"
    )
    with pytest.raises(TypeError, match=r"without a keyword: keras_zoo.build\('resnet50', ...\)$"):
        keras_zoo.build()


def test_one_image_size_check_for_every_caller():
    assert check_image_size(32) == 32 and check_image_size(None, allow_none=True) is None
    for bad in (31, 0, -64, 64.0, "64", True, None):
        with pytest.raises(
            ValueError,
            match=rf"^image_size must be an integer >= 32, got "
            rf"{re.escape(repr(bad))}$",
        ):
            check_image_size(bad)
    with pytest.raises(ValueError, match=r"^--size must be None or an integer >= 8, got 4$"):
        check_image_size(4, "--size", min_size=8, allow_none=True)
    with pytest.raises(
        ValueError,
        match=r"^input_shape \(16, None, 3\): each of height and "
        r"width must be None or an integer >= 32, got 16$",
    ):
        keras_zoo.build("resnet18", input_shape=(16, None, 3))


def test_input_tensor_and_input_shape_must_agree():
    with pytest.raises(ValueError, match="disagrees with input_tensor"):
        keras_zoo.build("resnet18", input_tensor=keras.Input((64, 64, 3)), input_shape=(96, 96, 3))


def test_input_tensor_too_small():
    with pytest.raises(ValueError, match="input_tensor shape"):
        keras_zoo.build("resnet18", input_tensor=keras.Input((16, 16, 3)))


def test_weights_that_do_not_fit(tmp_path):
    small = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3)
    path = tmp_path / "r18.weights.h5"
    small.save_weights(path)
    with pytest.raises(ValueError, match="do not fit resnet50"):
        keras_zoo.build("resnet50", input_shape=(32, 32, 3), classes=3, weights=str(path))


def test_weights_made_at_another_width_name_the_keyword(tmp_path, capsys):
    """The README's training example as it was: a width-1.0 mobilenet_v2 file fine-tuned at
    --alpha 0.75. The error names alpha and the value the weights were made at."""
    from tests.conftest import make_tree
    from tests.torch_models import torch_model

    data = make_tree(tmp_path / "data", per_class=2, size=32)
    weights = tmp_path / "mobilenet_v2.weights.h5"
    keras_zoo.build("mobilenet_v2", input_shape=(32, 32, 3)).save_weights(weights)
    out = tmp_path / "out"
    argv = ["train", "mobilenet_v2", "--data", str(data), "--alpha", "0.75"]
    flags = ["--weights", str(weights), "--image-size", "32", "--epochs", "1", "--out", str(out)]
    lines = _fails(capsys, [*argv, *flags])
    assert lines[0].startswith(f"keras-zoo train: error: weights={str(weights)!r} do not fit")
    assert lines[1] == (
        "The weights are for alpha=1.0, not alpha=0.75: build mobilenet_v2 with alpha=1.0 "
        "(on the command line --model-arg alpha=1.0)."
    )
    assert not out.exists()
    # a checkpoint made at 0.75, built at the default width
    import torch

    path = tmp_path / "narrow.pth"
    torch.save(torch_model("mobilenet_v2", alpha=0.75).state_dict(), path)
    with pytest.raises(ValueError) as err:
        keras_zoo.build("mobilenet_v2", weights=str(path), input_shape=(32, 32, 3))
    assert (
        str(err.value)
        .splitlines()[1]
        .startswith(
            "The weights are for alpha=0.75, not alpha=1.0: build mobilenet_v2 with alpha=0.75"
        )
    )
    # another architecture's weights: no keyword explains them, none is named
    with pytest.raises(ValueError) as err:
        keras_zoo.build("mobilenet_v3_small", weights=str(weights), input_shape=(32, 32, 3))
    assert "do not fit mobilenet_v3_small" in str(err.value) and "alpha" not in str(err.value)


def test_a_keras_file_that_does_not_fit_leaves_the_model_unchanged(tmp_path):
    from keras_zoo.port.loading import load_keras_file

    keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3).save_weights(
        tmp_path / "r18.weights.h5"
    )
    model = keras_zoo.build("resnet34", input_shape=(32, 32, 3), classes=3)
    before = model.get_weights()
    with pytest.raises(ValueError, match="do not fit resnet34"):
        load_keras_file(model, str(tmp_path / "r18.weights.h5"), ("fc",), full_model=None)
    assert all((a == b).all() for a, b in zip(before, model.get_weights()))


# ---------------------------------------------------------------------------------------------
# damaged images: caught by the pipeline's own decoder before anything runs or is written

MODEL = "mobilenet_v3_small"


def _image_tree(root, per_class=2):
    rng = np.random.default_rng(0)
    for name in ("blue", "red"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _truncated_jpeg(path):
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _one_bit_bmp(path):
    Image.fromarray(np.random.default_rng(2).integers(0, 2, (32, 32)).astype(bool)).save(path)
    with Image.open(path) as image:
        assert image.mode == "1"


# how each damaged file is made, its name, and what the error says is wrong with it
DAMAGED = {
    "truncated JPEG": (_truncated_jpeg, "3.jpg", "image file is truncated"),
    "1-bit BMP": (_one_bit_bmp, "3.bmp", "TensorFlow's decoder does not read this 1-bit BMP"),
}


def _damaged(kind, folder):
    write, name, reason = DAMAGED[kind]
    path = folder / name
    write(path)
    _check_header(str(path), str(path))  # what PIL's check alone lets through
    return path, reason


def _fails(capsys, argv):
    """The stderr lines of a command that must fail: status 2, the error on the first line, no
    traceback."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"keras-zoo {argv[0]}: error: "), lines
    return lines


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The files train writes for a 2-class mobilenet_v3_small at 32x32 (untrained weights)."""
    folder = tmp_path_factory.mktemp("trained")
    keras_zoo.build(
        MODEL, input_shape=(32, 32, 3), classes=2, alpha=0.75, classifier_activation=None
    ).save_weights(folder / "best.weights.h5")
    (folder / "class_indices.json").write_text(json.dumps({"0": "blue", "1": "red"}))
    (folder / "run.json").write_text(json.dumps({"model": MODEL, "alpha": 0.75, "image_size": 32}))
    return folder


def test_a_run_record_with_alpha_and_no_model_args_still_builds_its_model(trained):
    """run.json of earlier releases kept the width as "alpha": it builds the model as the
    family keyword, with nothing given again."""
    from keras_zoo.inference import load_trained

    run = load_trained(MODEL, str(trained / "best.weights.h5"))
    assert run.model_args == {"alpha": 0.75} and run.image_size == 32
    reference = keras_zoo.build(MODEL, input_shape=(32, 32, 3), classes=2, alpha=0.75)
    assert [w.shape for w in run.model.weights] == [w.shape for w in reference.weights]


@pytest.mark.parametrize("kind", DAMAGED)
def test_train_refuses_an_image_the_decoder_cannot_read(kind, tmp_path, capsys):
    data = _image_tree(tmp_path / "data")
    bad, reason = _damaged(kind, data / "red")
    out = tmp_path / "out"
    lines = _fails(
        capsys,
        [
            "train",
            MODEL,
            "--data",
            str(data),
            "--out",
            str(out),
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--verbose",
            "0",
        ],
    )
    assert lines[0].startswith(
        f"keras-zoo train: error: {bad} is not a readable image: {reason}"
    ), lines
    assert not out.exists()


@pytest.mark.parametrize("kind", DAMAGED)
def test_predict_and_evaluate_refuse_an_image_the_decoder_cannot_read(
    kind, trained, tmp_path, capsys
):
    data = _image_tree(tmp_path / "data")
    good = data / "blue" / "0.png"
    weights = str(trained / "best.weights.h5")
    assert cli.main(["predict", MODEL, "--weights", weights, str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"{good}: ")
    bad, reason = _damaged(kind, data / "red")
    lines = _fails(capsys, ["predict", MODEL, "--weights", weights, str(good), str(bad)])
    assert lines[0].startswith(
        f"keras-zoo predict: error: image '{bad}' is not a readable image: {reason}"
    ), lines
    out = tmp_path / "evaluation"
    lines = _fails(
        capsys, ["evaluate", MODEL, "--weights", weights, "--data", str(data), "--out", str(out)]
    )
    assert lines[0].startswith(
        f"keras-zoo evaluate: error: {bad} is not a readable image: {reason}"
    ), lines
    assert not out.exists()


def test_read_image_names_a_file_the_decoder_cannot_read(tmp_path):
    for kind in DAMAGED:
        bad, reason = _damaged(kind, tmp_path)
        with pytest.raises(
            ValueError, match=re.escape(f"image '{bad}' is not a readable image: {reason}")
        ):
            read_image(bad)


def test_every_image_the_decoder_cannot_read_is_listed(tmp_path):
    data = _image_tree(tmp_path / "data")
    jpeg, _ = _damaged("truncated JPEG", data / "blue")
    bmp, _ = _damaged("1-bit BMP", data / "red")
    with pytest.raises(ValueError) as err:
        verify_images(sorted((data / "blue").iterdir()) + sorted((data / "red").iterdir()))
    first, *rest = str(err.value).splitlines()
    assert first.startswith(f"{jpeg} is not a readable image: image file is truncated")
    assert rest == [f"also unreadable (1): {bmp}"]


def test_scan_folder_decodes_every_image(tmp_path):
    data = _image_tree(tmp_path / "data", per_class=3)
    assert len(scan_folder(data).files) == 6
    bmp, _ = _damaged("1-bit BMP", data / "red")
    assert len(scan_folder(data, verify=False).files) == 7  # the header check alone passes it
    with pytest.raises(ValueError, match=re.escape(f"{bmp} is not a readable image")):
        scan_folder(data)


# ---------------------------------------------------------------------------------------------
# every command line error: a first line that says what is wrong, details after it


def _keras_weights_of_resnet18(path):
    keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3).save_weights(path)


def _checkpoint_of_another_stem(path):
    from safetensors.numpy import save_file

    save_file({"conv1.weight": np.zeros((64, 3, 3, 3), np.float32)}, str(path))


def test_command_line_errors_start_with_a_line_that_says_what_is_wrong(trained, tmp_path, capsys):
    data = _image_tree(tmp_path / "data")
    jpeg, _ = _damaged("truncated JPEG", data / "red")
    _keras_weights_of_resnet18(tmp_path / "r18.weights.h5")
    _checkpoint_of_another_stem(tmp_path / "stem.safetensors")
    odd = tmp_path / "odd"
    odd.mkdir()
    for name in ("class_indices.json", "run.json"):
        (odd / name).write_bytes((trained / name).read_bytes())
    with h5py.File(odd / "best.weights.h5", "w") as f:  # HDF5, but not Keras' layout
        f.create_group("layers").create_group("dense")
    broken_run = tmp_path / "broken_run"
    broken_run.mkdir()
    for name in ("class_indices.json", "best.weights.h5"):
        (broken_run / name).write_bytes((trained / name).read_bytes())
    (broken_run / "run.json").write_text("{not json")
    weights = str(trained / "best.weights.h5")
    cases = [  # argv, what the first line must name and say
        (
            [
                "analyze-kernels",
                "resnet34",
                "--weights",
                str(tmp_path / "r18.weights.h5"),
                "--classes",
                "3",
                "--image-size",
                "32",
                "--out",
                str(tmp_path / "k"),
            ],
            ["r18.weights.h5", "do not fit resnet34", "needs (3, 3, 64, 64)"],
        ),
        (
            [
                "port",
                "resnet18",
                str(tmp_path / "stem.safetensors"),
                str(tmp_path / "p.weights.h5"),
            ],
            ["stem.safetensors does not fit resnet18: conv1: checkpoint weight (64, 3, 3, 3)"],
        ),
        (
            ["predict", MODEL, "--weights", weights, str(jpeg)],
            [f"image '{jpeg}' is not a readable image: image file is truncated"],
        ),
        (
            ["train", MODEL, "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "t")],
            [f"data '{tmp_path / 'missing'}': no such folder"],
        ),
        (
            ["predict", MODEL, "--weights", str(odd / "best.weights.h5"), str(data / "red/0.png")],
            ["best.weights.h5' is not a readable weights file: not laid out as Keras weights"],
        ),
        (
            [
                "predict",
                MODEL,
                "--weights",
                str(broken_run / "best.weights.h5"),
                str(data / "red/0.png"),
            ],
            [f"{broken_run / 'run.json'}: expected a JSON object of the run's configuration"],
        ),
    ]
    for argv, expected in cases:
        lines = _fails(capsys, argv)
        first = lines[0]
        assert all(e in first for e in expected), (argv, lines)
        assert not first.endswith(":") and "Example error message" not in first, first
        # details, if any, are lines of a report, not pages of tensor values
        assert len(lines) < 60 and all(len(line) < 400 for line in lines), lines
    assert not (tmp_path / "k").exists() and not (tmp_path / "t").exists()
    assert not (tmp_path / "p.weights.h5").exists()


def test_a_decoder_error_inside_the_pipeline_is_a_line_not_a_traceback(
    trained, tmp_path, capsys, monkeypatch
):
    """An image damaged after the check (here: the check skipped) fails in the tf.data
    pipeline with TensorFlow's InvalidArgumentError, which main reports in a line, without the
    pipeline's node names and op tags."""
    data = _image_tree(tmp_path / "data")
    _damaged("truncated JPEG", data / "red")
    monkeypatch.setattr(keras_zoo.data, "verify_images", lambda *args, **kwargs: None)
    lines = _fails(
        capsys,
        [
            "evaluate",
            MODEL,
            "--weights",
            str(trained / "best.weights.h5"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert lines == [
        "keras-zoo evaluate: error: TensorFlow could not run on this input: "
        "jpeg::Uncompress failed. Invalid JPEG data or crop window."
    ]
    assert not (tmp_path / "out").exists()


def test_op_error_text_keeps_the_reason_of_eager_pipeline_and_fit_errors(tmp_path):
    import tensorflow as tf

    bad, _ = _damaged("1-bit BMP", tmp_path)
    reason = "Number of channels inherent in the image must be 1, 3 or 4, was 0"
    with pytest.raises(tf.errors.InvalidArgumentError) as eager:
        keras_zoo.data._decode(str(bad))
    images = tf.data.Dataset.from_tensor_slices([str(bad)]).map(keras_zoo.data._decode)
    with pytest.raises(tf.errors.InvalidArgumentError) as pipeline:
        list(images)
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    batches = tf.data.Dataset.zip(
        images.map(lambda x: tf.image.resize(x, (32, 32))), tf.data.Dataset.from_tensor_slices([0])
    ).batch(1)
    with pytest.raises(tf.errors.InvalidArgumentError) as fit:
        model.fit(batches, verbose=0, shuffle=False)
    assert "{{function_node" in str(eager.value)  # what is taken off
    assert "[[{{node" in str(pipeline.value) and "Graph execution error" in str(fit.value)
    for err in (eager, pipeline, fit):
        assert op_error_text(err.value) == reason
