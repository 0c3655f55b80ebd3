"""keras_zoo.describe: what a built model is, kept through save/load, training runs and exports."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.description import DescribedModel, ModelDescription
from keras_zoo.inference import load_trained
from keras_zoo.training import train
from keras_zoo.weight_sets import Preprocessing
from tests.conftest import TEST_EXTRA, make_tree, require_module, use_weight_set
from tests.torch_models import import_timm


def test_build_attaches_the_id_family_keywords_and_preprocessing():
    model = keras_zoo.build("mobilenet_v2", alpha=0.5, input_shape=(64, 64, 3), classes=7)
    assert isinstance(model, DescribedModel)
    d = keras_zoo.describe(model)
    assert (d.id, d.family, d.task) == ("mobilenet_v2", "mobilenet", "classification")
    assert d.keywords["alpha"] == 0.5
    assert d.keywords["classes"] == 7
    assert tuple(d.keywords["input_shape"]) == (64, 64, 3)
    assert "weights" not in d.keywords
    assert d.weights is None and d.weights_layout is None
    assert d.preprocessing == keras_zoo.model_info("mobilenet_v2").preprocessing
    # the keywords rebuild the same architecture
    again = keras_zoo.build(d.id, **d.keywords)
    assert [w.shape for w in again.weights] == [w.shape for w in model.weights]


def test_the_description_survives_save_and_load(tmp_path, rng):
    model = keras_zoo.build("shufflenet_v2_x0_5", input_shape=(32, 32, 3), classes=3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert keras_zoo.describe(loaded) == keras_zoo.describe(model)
    x = rng.uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("first", ["import keras_zoo", "import keras"])
def test_a_new_process_loads_a_saved_model_whichever_it_imports_first(first, tmp_path):
    # keras_zoo loads Keras lazily (its command line's help starts without it); Keras must still
    # know keras_zoo's layers and described model when it loads a file, in either order, and
    # where TensorFlow (which imports Keras itself) comes in between
    model = keras_zoo.build("shufflenet_v2_x0_5", input_shape=(32, 32, 3), classes=3)
    model.save(tmp_path / "m.keras")
    imports = "import keras_zoo; import tensorflow; import keras"
    if first == "import keras":
        imports = "import keras; import keras_zoo"
    script = f"{imports}; print(keras_zoo.describe(keras.models.load_model('m.keras')).id)"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["shufflenet_v2_x0_5"]


def test_the_folded_copy_keeps_the_description_through_save_and_load(tmp_path):
    model = keras_zoo.build("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3), classes=4)
    folded = keras_zoo.fold_batchnorm(model)
    assert keras_zoo.describe(folded) == keras_zoo.describe(model)
    folded.save(tmp_path / "folded.keras")
    loaded = keras.models.load_model(tmp_path / "folded.keras")
    assert keras_zoo.describe(loaded) == keras_zoo.describe(model)


def test_a_model_keras_zoo_did_not_build_is_refused_by_name():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="mine")
    with pytest.raises(ValueError, match="model 'mine' carries no keras_zoo description"):
        keras_zoo.describe(plain)


def test_to_dict_round_trips_through_json():
    d = ModelDescription(
        id="resnet50",
        family="resnet",
        keywords={"classes": 10, "input_shape": (None, None, 3), "out_indices": (1, 2)},
        weights="timm:resnet50.a1_in1k",
        weights_layout="timm",
        preprocessing=Preprocessing(input_size=(288, 288), crop_pct=1.0, interpolation="bicubic"),
        class_names=("cat", "dog"),
    )
    assert ModelDescription.from_dict(json.loads(d.to_json())) == d


@pytest.mark.parametrize(
    "change, message",
    [
        ({"extra": 1}, "unknown model description field"),
        ({"id": 3}, "'id' must be text"),
        ({"class_names": ["a"] * 100_001}, "'class_names' must be a list of at most"),
        ({"keywords": {"alpha": float("inf")}}, "keyword 'alpha' has a value"),
        ({"keywords": {"alpha": {"nested": 1}}}, "keyword 'alpha' has a value"),
        ({"preprocessing": {"crop_pct": 7}}, "'preprocessing': crop_pct must be in"),
        ({"preprocessing": {"evil": 1}}, "'preprocessing' must be an object"),
        ({"preprocessing": {"input_size": ["a", 2]}}, "'preprocessing': input_size must be 2"),
        ({"preprocessing": {"mean": [0, 0, "nan"]}}, "'preprocessing': mean must be 3"),
    ],
)
def test_a_bad_description_is_refused_naming_its_source_and_field(change, message):
    good = ModelDescription(id="resnet18", family="resnet").to_dict()
    with pytest.raises(ValueError, match=f"^run.json: {message}"):
        ModelDescription.from_dict({**good, **change}, "run.json")


def test_a_timm_weighted_resnet50_exports_with_timms_preprocessing(tmp_path, monkeypatch):
    # the weight set decides the preprocessing, not the id: timm's a1 weights were evaluated
    # at 288 with bicubic resizing and crop 0.95, torchvision's default at 224, bilinear, 232
    torch = require_module("torch", TEST_EXTRA)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    staged = tmp_path / "staged.pth"
    torch.save(import_timm().create_model("resnet50").state_dict(), staged)
    ws = use_weight_set(monkeypatch, "resnet50", "timm:resnet50.a1_in1k", staged)
    model = keras_zoo.build("resnet50", weights=ws.key, input_shape=(64, 64, 3))
    d = keras_zoo.describe(model)
    assert (d.weights, d.weights_layout) == ("timm:resnet50.a1_in1k", "timm")
    assert d.preprocessing == ws.preprocessing
    assert d.preprocessing != keras_zoo.model_info("resnet50").preprocessing
    assert d.class_names is not None
    assert d.class_names[:2] == ("n01440764 tench", "n01443537 goldfish")

    result = keras_zoo.export(model, tmp_path / "resnet50.tflite", verbose=False)
    record = json.loads((tmp_path / "resnet50.tflite.json").read_text())
    assert record["preprocessing"]["interpolation"] == "bicubic"
    assert record["preprocessing"]["crop_pct"] == ws.preprocessing.crop_pct
    exported = keras_zoo.load_exported(result.path)
    assert exported.preprocessing == ws.preprocessing
    assert keras_zoo.describe(exported) == d
    assert exported.class_names == d.class_names


def test_a_run_records_its_description_and_its_weights_load_as_it_was_trained(
    tmp_path, monkeypatch
):
    # timm's MobileNetV3 weights fix bn_epsilon=1e-5 and bicubic preprocessing: the weights a
    # run writes load with both, though neither the run's flags nor the weights file say so
    torch = require_module("torch", TEST_EXTRA)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    staged = tmp_path / "staged.pth"
    torch.save(import_timm().create_model("mobilenetv3_small_100").state_dict(), staged)
    ws_key = "timm:mobilenetv3_small_100.lamb_in1k"
    ws = use_weight_set(monkeypatch, "mobilenet_v3_small", ws_key, staged)
    tree = make_tree(tmp_path / "colours", per_class=4, size=32)
    out = tmp_path / "out"
    result = train(
        "mobilenet_v3_small",
        str(tree),
        epochs=1,
        batch_size=8,
        image_size=32,
        weights=ws_key,
        out=str(out),
        inspect=False,
        verbose=0,
    )
    recorded = ModelDescription.from_dict(json.loads((out / "run.json").read_text())["description"])
    assert recorded.weights == ws_key and recorded.weights_layout == "timm"
    assert recorded.keywords["bn_epsilon"] == 1e-5
    assert recorded.preprocessing == ws.preprocessing
    assert recorded.class_names == ("blue", "green", "red")

    trained = load_trained("mobilenet_v3_small", result.weights)
    d = keras_zoo.describe(trained.model)
    assert d.preprocessing == ws.preprocessing and d.class_names == recorded.class_names
    assert trained.model.get_layer("features.0.1").epsilon == 1e-5
    # the export of the run's weights carries the run's preprocessing and class names
    exported = keras_zoo.export(trained.model, tmp_path / "run.onnx", verbose=False)
    assert keras_zoo.load_exported(exported.path).description == d
