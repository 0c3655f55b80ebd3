"""Exports checked in their runtimes: one id per block kind in every converted format at an
odd input size, int8 and float16 variants, the record beside the file, atomic writes, and bad input.

The outputs compared here come from the runtimes themselves (LiteRT's interpreter, ONNX
Runtime, OpenVINO, TensorFlow's SavedModel loader), on models whose batch norms are calibrated
on data so that their outputs depend on the input (keras_zoo.bench.calibrate_batch_norms)."""

import json
import os
import warnings
from collections import Counter

import keras
import numpy as np
import onnx
import pytest
from conftest import relative_error
from PIL import Image

import keras_zoo
from keras_zoo import cli, deploy, walk
from keras_zoo.bench import calibrate_batch_norms
from keras_zoo.deploy import exporting
from keras_zoo.deploy.images import Images
from keras_zoo.layers import ChannelShuffle

SIZE = 67  # odd: every stride-2 layer sees an odd size somewhere
BLOCK_KINDS = {  # id -> keywords: one id per kind of block
    "resnet18": {},  # basic residual blocks
    "resnext50_32x4d": {},  # bottlenecks with grouped 3x3 convolutions
    "mobilenet_v1": {"alpha": 0.25},  # depthwise separable, ReLU6
    "mobilenet_v3_small": {},  # inverted residuals, hard-swish, squeeze-excite
    "efficientnet_b0": {},  # MBConv: SiLU, squeeze-excite with a sigmoid gate
    "shufflenet_v2_x0_5": {},  # channel split and shuffle
    "shufflenet_v1_g3_x0_5": {},  # grouped 1x1 convolutions and shuffle
}
SUFFIX = {"litert": ".tflite", "onnx": ".onnx", "openvino": ".xml", "saved_model": ""}
# Every kind in every converted format; a SavedModel is Keras' own graph run by TensorFlow,
# with no converter in between to get a kind of block wrong, so two kinds suffice there: the
# one with hard-swish and squeeze-excite and the one with channel shuffle.
SAVED_MODEL_KINDS = ("mobilenet_v3_small", "shufflenet_v2_x0_5")
EXPORT_CASES = [
    pytest.param(name, fmt, id=f"{name}-{fmt}")
    for name in BLOCK_KINDS
    for fmt in deploy.FORMATS
    if fmt != "saved_model" or name in SAVED_MODEL_KINDS
]


def _model(name, size=SIZE, classes=10, seed=0, **kwargs):
    """`name` with seeded random weights (the same model in every run) and batch norms
    calibrated on random pictures of the kind export's check uses, and on noise."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model = keras_zoo.build(name, input_shape=(size, size, 3), classes=classes, **kwargs)
    pictures = Images(keras_zoo.model_info(name).preprocessing, False, (size, size, 3)).random(
        8, seed=seed + 1
    )
    noise = rng.normal(0, 1, (8, size, size, 3)).astype("float32")
    return calibrate_batch_norms(model, np.concatenate([pictures, noise]))


@pytest.fixture(scope="module")
def models():
    return {name: _model(name, **kwargs) for name, kwargs in BLOCK_KINDS.items()}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of 12 smooth random RGB images of assorted sizes."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for i in range(12):
        small = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
        Image.fromarray(small).resize((80 + 7 * i, 90), Image.BILINEAR).save(root / f"{i}.png")
    return root


def _layout_changes(path) -> int:
    """How often ONNX Runtime converts between its blocked NCHWc layout, in which it computes
    convolutions, and plain NCHW when it runs the ONNX file at `path` (ReorderInput and
    ReorderOutput nodes in its optimized graph)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = f"{path}.optimized"
    options.log_severity_level = 3  # its warning that the file is for this CPU only
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ops = Counter(node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node)
    os.remove(options.optimized_model_filepath)  # (the folder's listing is checked)
    return ops["ReorderInput"] + ops["ReorderOutput"]


def _torch_layout_changes(name, **kwargs) -> int:
    """_layout_changes of torch's own ONNX export of `name`'s reference module
    (tests/torch_models.py), at SIZE x SIZE."""
    import tempfile

    import torch

    from tests.torch_models import torch_model

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{name}.onnx")
        torch.onnx.export(
            torch_model(name, **kwargs).eval(),
            (torch.zeros(1, 3, SIZE, SIZE),),
            path,
            opset_version=17,
            dynamo=False,
        )
        return _layout_changes(path)


@pytest.mark.parametrize("name, fmt", EXPORT_CASES)
def test_every_block_kind_exports_to_every_format_within_1e_4(models, name, fmt, tmp_path):
    model, kwargs = models[name], BLOCK_KINDS[name]
    path = tmp_path / f"{name}{SUFFIX[fmt]}"
    with warnings.catch_warnings():  # export's own check must see outputs that vary
        warnings.filterwarnings("error", message=".*outputs are the same for every")
        result = keras_zoo.export(model, path, fmt, verbose=False)
    assert result.max_error <= deploy.TOLERANCE and result.quantize is None
    # independently of export's own check: the runtime against Keras on new images
    rng = np.random.default_rng(5)  # noise of two kinds, on which a wrong export must differ
    x = np.concatenate(
        [rng.normal(0, 1, (3, SIZE, SIZE, 3)), rng.uniform(-1, 1, (3, SIZE, SIZE, 3))]
    ).astype("float32")
    want = model.predict(x, verbose=0)
    assert np.ptp(want, axis=0).max() > 1e-3  # the outputs depend on the input
    exported = keras_zoo.load_exported(path)
    got = exported(x)
    assert got.shape == want.shape
    # what the model is travels with the file, in every format
    assert keras_zoo.describe(exported) == keras_zoo.describe(model)
    assert exported.preprocessing == keras_zoo.describe(model).preprocessing
    assert relative_error(got, want) <= 1e-4
    if fmt == "onnx":  # NCHW throughout: no transpose but the NHWC input's and one per
        # channel shuffle (tf2onnx alone leaves 3 per shuffle and one before each consumer,
        # and 102 in mobilenet_v3_small: keras_zoo.onnx_graph), and ONNX Runtime changes its
        # layout no more often than in torch's own export of the architecture
        ops = Counter(node.op_type for node in onnx.load(path).graph.node)
        layers = list(walk.layers(model))
        activations = Counter(
            getattr(layer.activation, "__name__", None)
            for layer in layers
            if isinstance(layer, keras.layers.Activation)
        )
        assert ops["Transpose"] == 1 + sum(isinstance(layer, ChannelShuffle) for layer in layers)
        assert ops["HardSwish"] == activations["hard_silu"]
        assert ops["HardSigmoid"] == activations["hard_sigmoid"]
        if name != "mobilenet_v1":  # timm has no MobileNet V1 of width 0.25 to export
            assert _layout_changes(path) <= _torch_layout_changes(name, **kwargs)
    record = json.loads((tmp_path / f"{name}{SUFFIX[fmt]}.json").read_text())
    assert record["format"] == fmt and record["input_shape"] == [SIZE, SIZE, 3]
    assert record["check"]["random"]["max_relative_error"] == result.max_error
    assert record["output_activation"] == "softmax"
    expected = {f"{name}{SUFFIX[fmt]}", f"{name}{SUFFIX[fmt]}.json"}
    if fmt == "openvino":
        expected.add(f"{name}.bin")
    assert set(os.listdir(tmp_path)) == expected  # and no temporary folder left


@pytest.mark.parametrize(
    "name, fmt", [("shufflenet_v1_g3_x0_5", "onnx"), ("mobilenet_v3_small", "openvino")]
)
def test_nchw_exports_take_torch_style_batches(models, images, name, fmt, tmp_path):
    model = models[name]
    path = tmp_path / f"{name}{SUFFIX[fmt]}"
    result = keras_zoo.export(model, path, fmt, layout="nchw", verbose=False)
    assert result.max_error <= deploy.TOLERANCE
    runtime = keras_zoo.load_exported(path)
    assert runtime.layout == "nchw" and runtime.input_shape == (SIZE, SIZE, 3)
    pixels = [np.asarray(Image.open(images / f"{i}.png").convert("RGB")) for i in range(3)]
    x = runtime.prepare(pixels)
    assert x.shape == (3, 3, SIZE, SIZE)
    want = model.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), verbose=0)
    assert relative_error(runtime(x), want) <= 1e-4
    if fmt == "onnx":  # no transpose but the channel shuffles'
        graph = onnx.load(path).graph
        shuffles = sum(isinstance(layer, ChannelShuffle) for layer in walk.layers(model))
        assert Counter(n.op_type for n in graph.node)["Transpose"] == shuffles
    assert json.loads((tmp_path / f"{name}{SUFFIX[fmt]}.json").read_text())["layout"] == "nchw"


@pytest.fixture(scope="module")
def small_convnext():
    """A ConvNeXt of torchvision's layer kinds at a small size (keras_zoo's convnext with fewer
    blocks and channels; convnext_tiny converts for a minute per format): LayerNorm over the
    channels, torch's erf GELU, layer scales (random, of order 1, so that every block
    counts), the 4x4 patchify stem and the 2x2 downsampling."""
    from keras_zoo.layers import LayerScale
    from keras_zoo.models.convnext import convnext

    keras.utils.set_random_seed(0)
    model = convnext(depths=(1, 1, 2, 1), dims=(16, 32, 48, 64), input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(1)
    for layer in walk.layers(model):
        if isinstance(layer, LayerScale):
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
    return model


@pytest.mark.parametrize("fmt", ["litert", "onnx", "openvino"])
def test_a_convnext_exports_to_every_format_within_1e_4(small_convnext, fmt, tmp_path):
    path = tmp_path / f"convnext{SUFFIX[fmt]}"
    result = keras_zoo.export(small_convnext, path, fmt, verbose=False)
    assert result.max_error <= deploy.TOLERANCE
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (4, SIZE, SIZE, 3)).astype("float32")
    want = small_convnext.predict(x, verbose=0)
    assert np.ptp(want, axis=0).max() > 1e-3
    assert relative_error(keras_zoo.load_exported(path)(x), want) <= 1e-4


def test_the_check_is_not_blind(models, tmp_path, monkeypatch):
    """A conversion that changes the function fails the check and leaves nothing behind."""
    model = models["mobilenet_v3_small"]
    original = exporting._fold

    def perturbed(m):
        folded = original(m)
        kernel = folded.get_layer("classifier.3")
        kernel.set_weights([w * 1.001 for w in kernel.get_weights()])
        return folded

    monkeypatch.setattr(exporting, "_fold", perturbed)
    (tmp_path / "m.tflite").write_bytes(b"an earlier export")
    with pytest.raises(deploy.ExportError, match="max relative error .* > tolerance 0.0001"):
        keras_zoo.export(model, tmp_path / "m.tflite", verbose=False)
    assert os.listdir(tmp_path) == ["m.tflite"]
    assert (tmp_path / "m.tflite").read_bytes() == b"an earlier export"


def test_int8_and_float16_report_agreement_and_accuracy(models, images, tmp_path):
    model = models["mobilenet_v3_small"]
    digits = tmp_path / "labelled"
    for c in range(10):  # a labelled folder in the model's 10 classes
        os.makedirs(digits / f"c{c}")
        Image.open(images / f"{c}.png").save(digits / f"c{c}" / "a.png")
    names = [f"c{c}" for c in range(10)]
    r8 = keras_zoo.export(
        model,
        tmp_path / "m8.tflite",
        quantize="int8",
        calibration=images,
        data=digits,
        class_names=names,
        verbose=False,
    )
    assert r8.quantize == "int8" and 0 <= r8.agreement <= 1
    # quantized: not exact, not broken, on images like those it was calibrated on
    assert 0 < r8.max_error_images < 0.3, r8
    assert r8.score["images"] == 10 and 0 <= r8.score["export"] <= 1
    assert r8.score["metric"] == "accuracy"
    record = json.loads((tmp_path / "m8.tflite.json").read_text())
    assert record["precision"] == "int8" and record["check"]["images"]["images"] == 12
    assert record["class_names"] == names
    float_bytes = 4 * model.count_params()  # what float32 weights alone take
    assert os.path.getsize(r8.path) < 0.5 * float_bytes  # int8 weights
    r16 = keras_zoo.export(model, tmp_path / "m16.xml", quantize="float16", verbose=False)
    assert r16.max_error < 1e-2 and keras_zoo.load_exported(r16.path).precision == "float16"
    rbf = keras_zoo.export(model, tmp_path / "mbf.xml", quantize="bf16", verbose=False)
    assert rbf.max_error < 0.1 and keras_zoo.load_exported(rbf.path).precision == "bf16"
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        r = keras_zoo.export(
            model, tmp_path / f"q{suffix}", fmt, quantize="int8", calibration=images, verbose=False
        )
        assert 0 < r.max_error_images < 0.3 and r.agreement >= 0.5, r


def test_exported_model_prepares_images_as_keras_zoo_preprocessing(tmp_path, images):
    model = keras_zoo.build("resnet18", input_shape=(64, 64, 3), classes=5)
    path = keras_zoo.export(model, tmp_path / "r.onnx", verbose=False).path
    runtime = keras_zoo.load_exported(path)
    assert runtime.input_shape == (64, 64, 3) and runtime.format == "onnx"
    pixels = np.asarray(Image.open(images / "3.png").convert("RGB"))
    want = keras_zoo.preprocessing("resnet18", image_size=64)(pixels[None])
    np.testing.assert_allclose(runtime.prepare([pixels]), want, atol=1e-5)


def test_include_preprocessing_exports_take_pixels(tmp_path):
    model = keras_zoo.build(
        "mobilenet_v3_small", input_shape=(48, 48, 3), include_preprocessing=True, classes=4
    )
    calibrate_batch_norms(
        model, np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 3)).astype("float32")
    )
    result = keras_zoo.export(model, tmp_path / "p.tflite", verbose=False)
    record = json.loads(open(result.record).read())
    assert record["normalized_in_model"] is True
    x = np.random.default_rng(1).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    assert (
        relative_error(keras_zoo.load_exported(result.path)(x), model.predict(x, verbose=0)) < 1e-4
    )


# ---------------------------------------------------------------------------------------------
# bad input: clear errors before any work, nothing left behind


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"format": "tflite"}, "format must be one of 'litert', 'onnx', 'openvino', 'saved_model'"),
        (
            {"format": "onnx", "quantize": "float16"},
            r"quantize \(format 'onnx'\) must be one of 'int8'; got 'float16'",
        ),
        ({"format": "saved_model", "quantize": "int8"}, "format 'saved_model' has no quantized"),
        ({"format": "litert", "quantize": "int8"}, "calibration: quantize='int8' is calibrated"),
        (
            {"format": "litert", "layout": "nchw"},
            "layout 'nchw': format 'litert' takes NHWC input only; nchw input: onnx, openvino",
        ),
        ({"format": "onnx", "layout": "NCHW"}, "layout must be one of 'nhwc', 'nchw'"),
    ],
)
def test_bad_format_or_quantization_lists_what_is_allowed(tmp_path, kwargs, message):
    model = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=2)
    suffix = SUFFIX.get(kwargs["format"], ".tflite")
    with pytest.raises(ValueError, match=message):
        keras_zoo.export(model, tmp_path / f"m{suffix}", verbose=False, **kwargs)
    assert os.listdir(tmp_path) == []


def test_bad_paths_and_folders_fail_before_any_work(tmp_path, monkeypatch):
    model = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=2)
    monkeypatch.setattr(exporting, "_convert", lambda *a: pytest.fail("work started"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    (tmp_path / "file").write_text("")
    (tmp_path / "bmp").mkdir()  # an image PIL opens and TensorFlow's decoder does not read
    from PIL import Image

    Image.new("1", (8, 8)).save(tmp_path / "bmp" / "1bit.bmp")
    cases = [
        (
            {"path": tmp_path / "m.tflite", "quantize": "int8", "calibration": tmp_path / "bmp"},
            "1bit.bmp is not a readable image: TensorFlow's decoder does not read this 1-bit BMP",
        ),
        (
            {"path": tmp_path / "m.onnx", "format": "litert"},
            "a litert export is written as a .tflite file",
        ),
        ({"path": tmp_path / "m.bin"}, "format: give one of litert"),
        (
            {"path": tmp_path / "m.tflite", "quantize": "int8", "calibration": tmp_path / "empty"},
            "calibration .* has no images",
        ),
        (
            {"path": tmp_path / "m.tflite", "calibration": tmp_path / "missing"},
            "calibration .* no such folder",
        ),
        ({"path": tmp_path / "file" / "m.tflite"}, "cannot create its folder"),
        ({"path": tmp_path / "m.tflite", "data": tmp_path / "empty"}, "no class sub-folders"),
    ]
    for kwargs, message in cases:
        path = kwargs.pop("path")
        with pytest.raises(ValueError, match=message):
            keras_zoo.export(model, path, verbose=False, **kwargs)
    assert sorted(os.listdir(tmp_path)) == ["bmp", "empty", "file"]
    with pytest.raises(ValueError, match="class_names: 3 names for a model of 2 outputs"):
        keras_zoo.export(model, tmp_path / "m.tflite", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="one output; 'resnet18' has 4"):
        keras_zoo.export(
            keras_zoo.build("resnet18", features_only=True, input_shape=(32, 32, 3)),
            tmp_path / "m.tflite",
        )
    with pytest.raises(ValueError, match="fixed size"):
        keras_zoo.export(
            keras_zoo.build("resnet18", include_top=False, input_shape=(None, None, 3)),
            tmp_path / "m.tflite",
        )


def test_a_missing_runtime_names_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    model = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=2)
    with pytest.raises(
        ImportError, match=r"'onnxruntime': pip install -e \"\.\[export\]\" in the keras_zoo clone"
    ):
        keras_zoo.export(model, tmp_path / "m.onnx")
    assert cli.main(["export", "resnet18", str(tmp_path / "m.onnx"), "--image-size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("keras-zoo export: error: format 'onnx' needs the Python package")
    assert os.listdir(tmp_path) == []


def test_an_unconvertible_layer_is_named(tmp_path):
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Lambda(
        lambda t: tf.ensure_shape(tf.numpy_function(np.sort, [t], tf.float32), (None, 6, 6, 4)),
        name="python_sort",
    )(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x), name="custom")
    with pytest.raises(deploy.ExportError, match="tf2onnx cannot convert 1 layer.*python_sort"):
        keras_zoo.export(model, tmp_path / "c.onnx", verbose=False)
    assert os.listdir(tmp_path) == []


def test_load_exported_refuses_what_is_not_an_export(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="x.onnx'?: onnx cannot load it"):
        keras_zoo.load_exported(tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="not an export"):
        keras_zoo.load_exported(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="no such file"):
        keras_zoo.load_exported(tmp_path / "y.tflite")


def test_the_export_command_writes_a_checked_file(tmp_path, capsys):
    assert (
        cli.main(
            [
                "export",
                "mobilenet_v3_small",
                str(tmp_path / "out" / "m.xml"),
                "--image-size",
                "48",
                "--classes",
                "7",
                "--layout",
                "nchw",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "max relative error" in printed and "record: m.xml.json" in printed
    assert sorted(os.listdir(tmp_path / "out")) == ["m.bin", "m.xml", "m.xml.json"]
    record = json.loads((tmp_path / "out" / "m.xml.json").read_text())
    assert record["metadata"]["model"] == "mobilenet_v3_small" and record["outputs"] == 7
    assert record["layout"] == "nchw" and record["input_shape"] == [48, 48, 3]
