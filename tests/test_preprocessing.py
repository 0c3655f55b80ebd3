"""keras_zoo.preprocessing against the evaluation transforms the weights were published with
(torchvision's Weights.transforms(), timm's create_transform) on the same photographs; the
ImageNet class names against torchvision's and timm's own lists; and the one image path:
make_dataset and predict prepare images with the same numbers."""

import json

import keras
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image

import keras_zoo
from keras_zoo.data import make_dataset, read_image
from keras_zoo.inference import predict
from keras_zoo.layers import ResizeAndCrop
from keras_zoo.preprocess import CLASS_INDEX
from tests.torch_models import import_timm, import_torchvision

# Measured against the references on these photographs (uint8 in, normalised values out): PIL
# resamples 8-bit images in two rounded passes, which ResizeAndCrop reproduces, so the outputs
# agree exactly but for a few pixels off by one 8-bit level, 1 / 255 / std: mean |diff| 3e-5 to
# 7e-5 and max 0.0175 for torchvision (bilinear, std 0.225), mean <= 4e-6 and max 0.0078 for
# timm (bicubic, std 0.5). One float pass without the rounding gives mean 5e-3; resizing to one
# pixel more (233 instead of 232) gives mean 0.05 to 0.19: the tolerance lies between.
MEAN_TOLERANCE = 1e-3
TORCHVISION_KEY = "torchvision:IMAGENET1K_V2"
TIMM_KEY = "timm:mobilenetv1_100.ra4_e3600_r224_in1k"


def photographs():
    """Natural photographs of several shapes: scikit-learn's bundled 427x640 samples and crops
    of them (portrait, and smaller than the resize so that it enlarges)."""
    china, flower = load_sample_image("china.jpg"), load_sample_image("flower.jpg")
    return {
        "landscape 427x640": china,
        "portrait 333x255": flower[10:343, 200:455],
        "small 150x211": china[100:250, 200:411],
    }


def as_nhwc(tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


def level(pre) -> float:
    """One 8-bit level after normalisation: the largest difference PIL's rounding leaves."""
    return 1 / 255 / min(pre.layers[1].std) + 1e-6


def off_by_one(pre, images) -> np.ndarray:
    """`pre` with the resize one pixel larger: what the test must be able to tell apart."""
    resize, normalize = pre.layers
    wrong = ResizeAndCrop(resize.size + 1, crop=resize.crop, interpolation=resize.interpolation)
    return np.asarray(normalize(wrong(images)))


@pytest.mark.parametrize("photo", list(photographs()))
def test_the_layers_reproduce_torchvisions_evaluation_transforms(photo):
    image = photographs()[photo]
    transform = import_torchvision().models.ResNet50_Weights.IMAGENET1K_V2.transforms()
    expected = as_nhwc(transform(Image.fromarray(image)))
    pre = keras_zoo.preprocessing("resnet50", weights=TORCHVISION_KEY)
    assert pre.layers[0].size == 232 and expected.shape == (224, 224, 3)
    got = np.asarray(pre(image[None]))
    assert got.shape == (1, 224, 224, 3)
    diff = np.abs(got[0] - expected)
    assert diff.mean() < MEAN_TOLERANCE and diff.max() <= level(pre), (diff.mean(), diff.max())
    # not blind: a resize to 233 (math.ceil of 224 / (224 / 232)) is far outside the tolerance
    assert np.abs(off_by_one(pre, image[None])[0] - expected).mean() > 20 * MEAN_TOLERANCE


@pytest.mark.parametrize("photo", list(photographs())[:2])
def test_the_layers_reproduce_timms_evaluation_transforms(photo):
    timm = import_timm()
    image = photographs()[photo]
    reference = timm.create_model(TIMM_KEY.partition(":")[2], pretrained=False)
    config = timm.data.resolve_data_config({}, model=reference)
    assert (config["interpolation"], config["mean"], config["crop_pct"]) == (
        "bicubic",
        (0.5, 0.5, 0.5),
        0.875,
    )
    expected = as_nhwc(timm.data.create_transform(**config)(Image.fromarray(image)))
    pre = keras_zoo.preprocessing("mobilenet_v1", weights=TIMM_KEY)
    got = np.asarray(pre(image[None]))
    assert got.shape == (1, 224, 224, 3)
    diff = np.abs(got[0] - expected)
    assert diff.mean() < MEAN_TOLERANCE and diff.max() <= level(pre), (diff.mean(), diff.max())
    assert np.abs(off_by_one(pre, image[None])[0] - expected).mean() > 20 * MEAN_TOLERANCE


def test_megvii_weights_take_the_bgr_crop_of_the_raw_values():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 303, 3), dtype=np.uint8)  # shorter side already 256
    pre = keras_zoo.preprocessing("shufflenet_v1_g3_x1_0", weights="imagenet")
    got = np.asarray(pre(image[None]))[0]
    # (303 - 224) / 2 = 39.5 rounds half to even as in torchvision's CenterCrop: from 40
    np.testing.assert_allclose(got, image[16:240, 40:264, ::-1], atol=1e-4)


def test_weights_choose_the_preprocessing_and_image_size_keeps_crop_pct(tmp_path):
    def geometry(*args, **kwargs):
        resize, normalize = keras_zoo.preprocessing(*args, **kwargs).layers
        return resize.size, resize.crop, resize.interpolation, normalize.mean

    assert geometry("resnet50") == (232, (224, 224), "bilinear", (0.485, 0.456, 0.406))
    assert geometry("resnet50", "torchvision:IMAGENET1K_V1")[:2] == (256, (224, 224))
    assert geometry("resnet50", "timm:resnet50.a1_in1k")[:3] == (288, (288, 288), "bicubic")
    assert geometry("resnet50", str(tmp_path / "mine.weights.h5")) == geometry("resnet50")
    assert geometry("resnet50", image_size=112)[:2] == (116, (112, 112))  # floor(112 * 232/224)
    with pytest.raises(ValueError, match="no such weight set"):
        keras_zoo.preprocessing("resnet50", "timm:nope")


def test_the_preprocessing_layers_take_one_image_and_survive_save_and_load(tmp_path):
    image = photographs()["portrait 333x255"]
    pre = keras_zoo.preprocessing("mobilenet_v1", weights=TIMM_KEY, image_size=160)
    batch = np.asarray(pre(image[None]))
    single = image
    for layer in pre.layers:
        single = layer(single)
    np.testing.assert_array_equal(np.asarray(single), batch[0])
    pre.save(tmp_path / "pre.keras")
    loaded = keras.models.load_model(tmp_path / "pre.keras")
    np.testing.assert_array_equal(np.asarray(loaded(image[None].astype("float32"))), batch)


def test_decode_predictions_lists_the_top_classes_by_score():
    rng = np.random.default_rng(0)
    preds = rng.uniform(0, 0.1, (2, 1000))
    preds[0, [0, 1, 999]] = [0.9, 0.5, 0.7]
    decoded = keras_zoo.decode_predictions(preds, top=3)
    assert decoded[0] == [
        ("n01440764", "tench", 0.9),
        ("n15075141", "toilet tissue", 0.7),
        ("n01443537", "goldfish", 0.5),
    ]
    assert len(decoded) == 2 and [len(d) for d in decoded] == [3, 3]
    scores = [s for _, _, s in decoded[1]]
    assert scores == sorted(scores, reverse=True) and scores[0] == preds[1].max()
    assert len(keras_zoo.decode_predictions(preds)[1]) == 5
    for bad in (np.zeros((2, 10)), np.zeros(1000), np.zeros((1, 1000, 1))):
        with pytest.raises(ValueError, match=r"preds must be .* \(N, 1000\), got shape"):
            keras_zoo.decode_predictions(bad)


def test_the_shipped_class_index_equals_timms_wordnet_ids_and_torchvisions_names():
    with open(CLASS_INDEX, encoding="utf-8") as f:
        shipped = json.load(f)
    wnids = import_timm().data.ImageNetInfo().label_names()
    names = import_torchvision().models._meta._IMAGENET_CATEGORIES
    assert shipped == {str(i): [w, n] for i, (w, n) in enumerate(zip(wnids, names, strict=True))}


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "china.png"  # PNG: decoded identically everywhere
    Image.fromarray(photographs()["landscape 427x640"][:300, :401]).save(path)
    return str(path)


def test_make_dataset_prepares_images_with_the_same_numbers(photo_file):
    image = read_image(photo_file)
    info = keras_zoo.model_info("mobilenet_v3_small")
    timm_key = "timm:mobilenetv3_small_100.lamb_in1k"  # bicubic, where the default is bilinear
    for weights in (None, timm_key):
        pre = keras_zoo.preprocess.preprocessing_of(info, weights)
        ((x, _),) = make_dataset([photo_file], [0], image_size=96, preprocessing=pre, batch_size=1)
        expected = keras_zoo.preprocessing(info.name, weights, image_size=96)(image[None])
        np.testing.assert_allclose(x, expected, atol=1e-5, err_msg=str(weights))
    assert np.abs(x - keras_zoo.preprocessing(info.name, image_size=96)(image[None])).mean() > 0.01
    # and those numbers are torchvision's evaluation transforms' (resize 256, crop 224)
    ((x, _),) = make_dataset(
        [photo_file], [0], image_size=224, preprocessing=info.preprocessing, batch_size=1
    )
    transform = import_torchvision().models.MobileNet_V3_Small_Weights.IMAGENET1K_V1.transforms()
    expected = as_nhwc(transform(Image.open(photo_file)))
    assert np.abs(np.asarray(x)[0] - expected).mean() < MEAN_TOLERANCE


def test_predict_prepares_images_as_the_weights_the_run_started_from(photo_file, tmp_path):
    name, key = "mobilenet_v3_small", "timm:mobilenetv3_small_100.lamb_in1k"
    model = keras_zoo.build(name, input_shape=(64, 64, 3), classes=3, classifier_activation=None)
    model.save_weights(tmp_path / "best.weights.h5")
    (tmp_path / "class_indices.json").write_text(json.dumps({"0": "a", "1": "b", "2": "c"}))
    (tmp_path / "run.json").write_text(
        json.dumps({"model": name, "image_size": 64, "weights": key})
    )
    top = predict(name, str(tmp_path / "best.weights.h5"), [photo_file], top_k=3)[0]
    x = keras_zoo.preprocessing(name, key, image_size=64)(read_image(photo_file)[None])
    probs = np.asarray(keras.ops.softmax(model(x)))[0]
    assert dict(top) == pytest.approx(dict(zip("abc", probs.tolist())), abs=1e-5)
