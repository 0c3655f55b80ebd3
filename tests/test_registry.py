import pytest

import keras_zoo

RESNET_IDS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
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
