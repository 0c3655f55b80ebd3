import pathlib

import keras
import pytest

import keras_zoo

RESNET_IDS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]


def test_list_models_has_every_resnet_id_sorted():
    ids = keras_zoo.list_models()
    assert ids == sorted(ids)
    assert set(RESNET_IDS) <= set(ids)


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("resnext*", ["resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d"]),
        ("wide_*", ["wide_resnet101_2", "wide_resnet50_2"]),
        ("resnet?8", ["resnet18"]),
        ("*50*", ["resnet50", "resnext50_32x4d", "wide_resnet50_2"]),
        ("nothing*", []),
    ],
)
def test_list_models_wildcards(pattern, expected):
    assert keras_zoo.list_models(pattern) == expected


def test_list_models_rejects_non_string():
    with pytest.raises(TypeError, match="pattern"):
        keras_zoo.list_models(3)


def test_model_info_carries_metadata():
    info = keras_zoo.model_info("resnet50")
    assert info.family == "resnet"
    assert info.input_size == (224, 224, 3)
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
    assert info.params == 25_557_032 and info.gmacs == pytest.approx(4.089)
    assert "alpha" not in info.keywords
    assert {"include_top", "weights", "input_shape", "features_only"} <= set(info.keywords)


def test_unknown_id_names_the_closest_ids():
    with pytest.raises(ValueError, match="resnet50"):
        keras_zoo.build("resnet05")
    with pytest.raises(ValueError, match="resnext50_32x4d"):
        keras_zoo.build("resnext50")


def test_keyword_the_family_does_not_take():
    with pytest.raises(TypeError, match="'alpha'.*include_top"):
        keras_zoo.build("resnet18", alpha=0.5)
    # the architecture an id fixes is not a keyword
    with pytest.raises(TypeError, match="'groups'"):
        keras_zoo.build("resnet50", groups=32)


def test_name_keyword_names_the_model():
    assert keras_zoo.build("resnet18", name="backbone", input_shape=(32, 32, 3)).name == "backbone"
    assert keras_zoo.build("resnet18", input_shape=(32, 32, 3)).name == "resnet18"


def test_default_input_size_is_the_weights_then_the_ids(tmp_path, monkeypatch):
    import dataclasses

    import torch

    from keras_zoo import registry
    from keras_zoo.pretrained import cache_path
    from keras_zoo.weight_sets import Preprocessing
    from tests.torch_models import torch_model

    # the id's metadata says 128; a second weight set was evaluated at 96
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    info = keras_zoo.model_info("resnet18")
    small = dataclasses.replace(
        info.default_weights,
        tag="AT_96",
        filename="resnet18-at96.pth",
        sha256=None,
        preprocessing=Preprocessing(input_size=(96, 96)),
    )
    monkeypatch.setitem(
        registry._REGISTRY,
        "resnet18",
        dataclasses.replace(
            info,
            preprocessing=Preprocessing(input_size=(128, 128)),
            weights=(info.default_weights, small),
        ),
    )
    path = pathlib.Path(cache_path(small))  # already fetched: nothing is downloaded
    path.parent.mkdir(parents=True)
    torch.save(torch_model("resnet18").state_dict(), path)

    assert keras_zoo.build("resnet18").input_shape == (None, 128, 128, 3)
    assert keras_zoo.build("resnet18", weights="torchvision:AT_96").input_shape == (None, 96, 96, 3)
    # a size given wins over both
    assert keras_zoo.build(
        "resnet18", weights="torchvision:AT_96", input_shape=(64, 64, 3)
    ).input_shape == (None, 64, 64, 3)
    tensor = keras.Input((72, 72, 3))
    assert keras_zoo.build("resnet18", input_tensor=tensor).input_shape == (None, 72, 72, 3)
    # the keyword is build's own, not the user's
    assert "default_input_size" not in keras_zoo.model_info("resnet18").keywords
    with pytest.raises(TypeError, match="'default_input_size'"):
        keras_zoo.build("resnet18", default_input_size=(96, 96))


def test_ids_whose_metadata_says_224_build_at_224():
    for name in ("resnet18", "mobilenet_v3_small", "shufflenet_v1"):
        assert keras_zoo.model_info(name).input_size == (224, 224, 3)
        assert keras_zoo.build(name, include_top=False).input_shape == (None, 224, 224, 3)


def test_every_family_module_is_imported_and_registers_its_table():
    import dataclasses
    import importlib

    from keras_zoo import models

    files = sorted(
        p.stem
        for p in pathlib.Path(models.__file__).parent.glob("*.py")
        if not p.name.startswith("_")
    )
    assert list(models.FAMILIES) == files and len(files) >= 3
    for family in files:
        module = importlib.import_module(f"keras_zoo.models.{family}")
        ids = {n for n in keras_zoo.list_models() if keras_zoo.model_info(n).family == family}
        assert ids, f"{family} registers no id"
        # the variant table: frozen dataclass rows, one per registered id
        rows = module.VARIANTS
        assert isinstance(rows, tuple) and len({type(r) for r in rows}) == 1
        assert all(
            dataclasses.is_dataclass(r) and type(r).__dataclass_params__.frozen for r in rows
        )
        assert sorted(r.name for r in rows) == sorted(ids)


FAMILY_FILE = '''"""A tiny family for the test: one file, no edit elsewhere."""
from keras import layers

from keras_zoo.blocks import activation, batch_norm, conv2d, se_block
from keras_zoo.builder import build_model
from keras_zoo.registry import register_model


def tinynet(*, name="tinynet", **kwargs):
    def features(x):
        x = conv2d(x, 16, 3, 2, name="stem.0")
        x = batch_norm(x, name="stem.1", fused=True)
        x = activation(x, "silu", name="stem.2")
        return se_block(x, 4, name="se", activation_kind="silu", gate="sigmoid")

    def head(x, classes):
        return layers.Dense(classes, name="fc")(x)

    return build_model(features, head, name=name, **kwargs)


register_model("tinynet_registry_test", "tinynet_registry_test", tinynet, params=680,
               gmacs=0.0)
'''


def test_a_new_family_file_registers_itself(tmp_path, monkeypatch):
    import sys

    from keras_zoo import models, registry

    (tmp_path / "tinynet_registry_test.py").write_text(FAMILY_FILE)
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    try:
        assert "tinynet_registry_test" in models.import_families()
        assert keras_zoo.list_models("tinynet*") == ["tinynet_registry_test"]
        model = keras_zoo.build("tinynet_registry_test", classes=4)
        assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 4)
        trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
        assert trainable == keras_zoo.model_info("tinynet_registry_test").params
    finally:
        sys.modules.pop("keras_zoo.models.tinynet_registry_test", None)
