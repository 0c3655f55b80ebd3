"""`keras-zoo predict` and `evaluate` with what `build(weights=...)` takes: a cached weight set
("imagenet"), whose ImageNet classes are named as torchvision and timm name them, a ported
Keras weights file, a fine-tuned checkpoint; folders of images; the offline error.

The weight set's checkpoint is torchvision's resnet18 with random (calibrated) weights, saved
in a temporary $KERAS_HOME under its cache name: the predictions are compared with torchvision's
own model and evaluation transforms on the same photographs."""

import os
import pathlib
import shutil

import numpy as np
import pytest
import sklearn.datasets
import torch
from PIL import Image

import keras_zoo
from keras_zoo import cli, pretrained
from keras_zoo.data import read_image
from tests.conftest import make_tree, use_weight_set
from tests.torch_models import import_timm, import_torchvision, random_reference

NAME, KEY = "resnet18", "torchvision:IMAGENET1K_V1"  # resnet18's only weight set: "imagenet"
SAMPLES = pathlib.Path(sklearn.datasets.__file__).parent / "images"  # china.jpg, flower.jpg


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """resnet18's "imagenet" weight set in the cache of a temporary $KERAS_HOME (no mirror to
    download from), and the torch model whose state dict it is."""
    tmp = tmp_path_factory.mktemp("cached")
    reference = random_reference(NAME, seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(tmp / "keras_home"))
        staged = tmp / "staged.pth"
        torch.save(reference.state_dict(), staged)
        ws = use_weight_set(mp, NAME, KEY, staged)  # the published hash is this file's
        path = pathlib.Path(pretrained.cache_path(ws))
        path.parent.mkdir(parents=True)
        (tmp / "mirror" / ws.filename).rename(path)
        mp.delenv("KERAS_ZOO_WEIGHTS_URL")
        yield ws, reference


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A JPEG photograph as a user has one, and a folder of two photographs and a note."""
    tmp = tmp_path_factory.mktemp("photos")
    photo = tmp / "photo.jpg"
    shutil.copy(SAMPLES / "china.jpg", photo)
    folder = tmp / "holiday"
    folder.mkdir()
    shutil.copy(SAMPLES / "flower.jpg", folder / "b_flower.jpg")
    shutil.copy(SAMPLES / "china.jpg", folder / "a_temple.JPG")
    (folder / "notes.txt").write_text("not an image\n")
    return photo, folder


@torch.no_grad()
def torchvision_top(model, image, k=5):
    """torchvision's own top-k (index, probability) of `model` on the image file, prepared by
    the weight set's evaluation transforms (resize 256, centre crop 224, normalise). The pixels
    are TensorFlow's decoding of the file, as predict's (PIL's JPEG decoder differs by a few
    levels, which random weights amplify)."""
    transform = import_torchvision().models.ResNet18_Weights.IMAGENET1K_V1.transforms()
    x = transform(Image.fromarray(read_image(image)))[None]
    probs = torch.softmax(model(x), -1)[0].numpy()
    top = np.argsort(-probs)[:k]
    assert probs[top[0]] - probs[top[1]] > 0.02, "a near tie: the comparison would be noise"
    return [(int(i), float(probs[i])) for i in top]


def imagenet_label(index):
    """ "WNID NAME" of an ImageNet-1k class: timm's WordNet id and torchvision's name."""
    wnid = import_timm().data.ImageNetInfo().label_names()[index]
    meta = import_torchvision().models.ResNet18_Weights.IMAGENET1K_V1.meta
    return f"{wnid} {meta['categories'][index]}"


def printed_top(line):
    """The top class and its probability of a printed line "PATH: NAME P, NAME P, ..."."""
    _, _, classes = line.partition(": ")
    first = classes.split(", ")[0]
    label, _, probability = first.rpartition(" ")
    return label, float(probability)


def test_predict_names_the_imagenet_classes_of_a_cached_weight_set_as_torchvision_does(
    cached, photos, capsys
):
    _, reference = cached
    photo, folder = photos
    with pytest.warns(UserWarning, match=r"left out 1 file.*notes\.txt"):
        status = cli.main(["predict", NAME, "--weights", "imagenet", str(photo), str(folder)])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    images = [photo, folder / "a_temple.JPG", folder / "b_flower.jpg"]  # the folder's, sorted
    assert [line.partition(": ")[0] for line in lines] == [str(p) for p in images]
    for image, line in zip(images, lines):
        assert len(line.split(", ")) == 5, line
        (index, probability), *_ = torchvision_top(reference, image)
        label, printed = printed_top(line)
        assert label == imagenet_label(index), line
        assert printed == pytest.approx(probability, abs=2e-3), line
    assert lines[0].partition(": ")[2] == lines[1].partition(": ")[2]  # the same photograph


def test_a_ported_imagenet_weights_file_predicts_with_imagenet_names(
    cached, photos, tmp_path, capsys
):
    # the Keras weights file that `port` writes has no class_indices.json beside it
    _, reference = cached
    photo, _ = photos
    ported = tmp_path / "resnet18.weights.h5"
    keras_zoo.build(NAME, weights="imagenet").save_weights(ported)
    assert cli.main(["predict", NAME, "--weights", str(ported), "--top-k", "2", str(photo)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    (index, probability), _ = torchvision_top(reference, photo, k=2)
    assert printed_top(line) == (imagenet_label(index), pytest.approx(probability, abs=2e-3))
    assert len(line.split(", ")) == 2


def test_a_fine_tuned_checkpoint_predicts_its_own_classes_by_index(photos, tmp_path, capsys):
    # a checkpoint of 3 classes: built with its classifier (not the default 1000), and with
    # nothing to name its classes, they are shown by index with a warning
    photo, _ = photos
    model = random_reference(NAME, seed=1, num_classes=3)
    checkpoint = tmp_path / "finetuned.pth"
    torch.save(model.state_dict(), checkpoint)
    with pytest.warns(UserWarning, match="nothing names their classes.*shown by index"):
        assert cli.main(["predict", NAME, "--weights", str(checkpoint), str(photo)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    top = torchvision_top(model, photo, k=3)
    assert [c.rpartition(" ")[0] for c in line.partition(": ")[2].split(", ")] == [
        str(i) for i, _ in top
    ]
    assert printed_top(line)[1] == pytest.approx(top[0][1], abs=2e-3)


def test_evaluate_takes_a_weight_set_and_says_whose_classes_differ(cached, tmp_path, capsys):
    tree = make_tree(tmp_path / "colours", per_class=1, size=32)
    status = cli.main(["evaluate", NAME, "--weights", "imagenet", "--data", str(tree)])
    assert status == 2
    assert capsys.readouterr().err.splitlines() == [
        f"keras-zoo evaluate: error: data {str(tree)!r}: class folder 'blue' (and 2 more) is not "
        "one of the weights' ImageNet-1k classes: expected its WordNet id ('n01440764') or its "
        "whole name ('n01440764 tench')"
    ]


def test_evaluate_takes_imagenet_class_folders_named_by_wordnet_id(tmp_path, capsys):
    """ImageNet's validation folders as users have them (val/n01440764/*.JPEG), three of the
    1000 classes, with a Keras weights file of an ImageNet-1k top: each folder is its ImageNet
    class (whose index is not its folder's: cock is 7th), the images whose top class is none of
    them are "(other classes)"; a folder that is no ImageNet-1k class is named."""
    import keras

    model = keras_zoo.build("mobilenet_v3_small", input_shape=(32, 32, 3))  # 1000 classes
    classifier = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = classifier.get_weights()
    bias[7] = 1e3  # every image's top class: 7, n01514668 cock
    classifier.set_weights([kernel, bias])
    weights = tmp_path / "mobilenet_v3_small.weights.h5"
    model.save_weights(weights)
    wnids = {"n01440764": 0, "n01443537": 1, "n01514668": 2}  # tench, goldfish, cock
    val = make_tree(tmp_path / "val", per_class=2, size=32, classes=wnids)
    argv = ["evaluate", "mobilenet_v3_small", "--weights", str(weights), "--data", str(val)]
    assert cli.main([*argv, "--image-size", "32"]) == 0
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert printed[0][-2:] == ["accuracy", "0.3333"], printed
    assert printed[2:6] == [
        ["n01440764", "tench", "0.0000", "0.0000", "2"],
        ["n01443537", "goldfish", "0.0000", "0.0000", "2"],
        ["n01514668", "cock", "0.3333", "1.0000", "2"],
        ["(other", "classes)", "0.0000", "0.0000", "0"],
    ]
    assert (tmp_path / "confusion_matrix_all.png").is_file()
    # a folder that names no ImageNet-1k class
    (val / "n01440764").rename(val / "tench")
    assert cli.main([*argv, "--image-size", "32"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"keras-zoo evaluate: error: data {str(val)!r}: class folder 'tench' is not one of the "
        "weights' ImageNet-1k classes: expected its WordNet id ('n01440764') or its whole name "
        "('n01440764 tench')"
    ]


def test_offline_predict_says_in_one_line_where_to_put_the_weights(
    photos, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # an empty cache
    monkeypatch.setenv("KERAS_ZOO_WEIGHTS_URL", (tmp_path / "offline").as_uri())  # no network
    photo, _ = photos
    assert cli.main(["predict", "resnet50", "--weights", "imagenet", str(photo)]) == 2
    out, err = capsys.readouterr()
    cache = pretrained.cache_path(keras_zoo.model_info("resnet50").default_weights)
    assert cache == os.path.join(
        tmp_path, "keras_home", "keras_zoo", "torch", "resnet50-11ad3fa6.pth"
    )
    (line,) = err.splitlines()
    assert line.startswith("keras-zoo predict: error: weights='torchvision:IMAGENET1K_V2'")
    assert cache in line and "Traceback" not in out + err
    assert not os.path.exists(cache)
