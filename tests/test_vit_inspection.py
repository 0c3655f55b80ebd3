"""The inspection tools and the training workflow on Vision Transformers.

Grad-CAM on the token grid is checked against torch autograd on torchvision's own
VisionTransformer with the same weights (float64); the TensorBoard callbacks run in a fit of a
small ViT; `keras-zoo train`, `evaluate` and `predict` run on a small ViT id registered for the
tests (the vit family's builder, at 64x64 with 16-pixel patches), from a torchvision
checkpoint the tests write.
"""

import json
import math

import keras
import numpy as np
import pytest
import torch
from test_callbacks import check_feature_maps
from test_training import make_tree

import keras_zoo
from keras_zoo import cli, viz
from keras_zoo.callbacks import (
    ConfusionMatrixLogger,
    FeatureMapLogger,
    GradCAMLogger,
    KernelStatsLogger,
)
from keras_zoo.inference import load_trained
from keras_zoo.models.vit import vision_transformer
from keras_zoo.port import load_state_dict
from keras_zoo.registry import _REGISTRY, register_model
from keras_zoo.training import train
from keras_zoo.viz.images import enlarge, overlay_heatmaps
from tests.torch_models import import_torchvision, randomize_transformer, state_dict_numpy

# small enough to fit in seconds: 4x4 patches of 8 pixels at 32x32
SMALL = dict(patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)
LAST_LN_1 = "encoder.layers.encoder_layer_1.ln_1"


def torchvision_vit(image_size, seed, num_classes=3, **config):
    tv = import_torchvision()
    ref = tv.models.vision_transformer.VisionTransformer(
        image_size=image_size, num_classes=num_classes, **config
    )
    return randomize_transformer(ref, seed=seed)


def small_pair(dtype=torch.float64, seed=1):
    """torchvision's ViT with random weights and the Keras one with the same weights."""
    ref = torchvision_vit(32, seed, **SMALL).to(dtype)
    model = vision_transformer(
        **SMALL, input_shape=(32, 32, 3), classes=3, classifier_activation=None
    )
    load_state_dict(model, state_dict_numpy(ref))
    if dtype == torch.float64:
        _round_attention_scale_as_keras(ref)
    return ref, model


@torch.no_grad()
def _round_attention_scale_as_keras(ref):
    """Keras' MultiHeadAttention scales its queries by 1 / sqrt(head width) rounded to float32
    (a Python float through ops.cast) even in a float64 model, which alone puts its outputs
    some 1e-8 from torch's in float64: the reference's query projections (the first third of
    each packed in_proj) take the same rounding, so that both compute one function."""
    for block in ref.encoder.layers:
        attention = block.self_attention
        exact = 1 / math.sqrt(attention.head_dim)
        ratio = float(np.float32(exact)) / exact
        width = attention.embed_dim
        attention.in_proj_weight[:width] *= ratio
        attention.in_proj_bias[:width] *= ratio


def torch_grad_cam(ref, images, classes, module):
    """Grad-CAM by torch autograd at `module`'s output tokens: the class logit's gradient
    averaged over the patch tokens weights their channels; ReLU, then scaled to a maximum of
    1. (N, rows, columns) as float64."""
    taken = {}

    def hook(_module, _inputs, output):
        output.retain_grad()
        taken["tokens"] = output

    handle = module.register_forward_hook(hook)
    try:
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        logits = ref(x.to(next(ref.parameters()).dtype))
        logits[torch.arange(len(images)), torch.as_tensor(classes)].sum().backward()
    finally:
        handle.remove()
    tokens, grads = taken["tokens"], taken["tokens"].grad
    side = math.isqrt(tokens.shape[1] - 1)
    act = tokens[:, 1:].detach().reshape(len(images), side, side, -1)
    grad = grads[:, 1:].reshape(len(images), side, side, -1)
    cam = torch.relu((grad.mean(dim=(1, 2), keepdim=True) * act).sum(-1))
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak, torch.zeros_like(cam)).double()


# ---------------------------------------------------------------------------------------------
# Grad-CAM on the token grid


def test_grad_cam_on_the_token_grid_equals_torch_autograd(rng, float64):
    ref, model = small_pair()
    images = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")  # exact in float64 too
    assert viz.default_cam_layer(model).name == LAST_LN_1
    for layer, module in (
        (None, ref.encoder.layers[-1].ln_1),  # the default
        ("encoder.layers.encoder_layer_0", ref.encoder.layers[0]),  # a block's output
    ):
        peaks = []
        for classes in ([0, 0, 0], [1, 2, 0], [2, 1, 1], [0, 1, 2], 2):
            want = torch_grad_cam(ref, images, np.broadcast_to(classes, (3,)).copy(), module)
            got = viz.grad_cam(model, images, classes, layer, resize=False)
            assert got.dtype == np.float64 and got.shape == (3, 4, 4)
            np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-10, err_msg=layer)
            # resized to the image as torch resizes (bilinear, half-pixel centres)
            resized = torch.nn.functional.interpolate(
                want[:, None], size=(32, 32), mode="bilinear", align_corners=False
            )[:, 0].numpy()
            full = viz.grad_cam(model, images, classes, layer)
            assert full.dtype == np.float32 and full.shape == (3, 32, 32)
            np.testing.assert_allclose(full, resized, rtol=0, atol=1e-6, err_msg=layer)
            peaks.append(want.amax(dim=(1, 2)).numpy())
            # a map that is not zero is not uniform either: it says which patches count
            nonzero = want[want.amax(dim=(1, 2)) > 0]
            assert torch.all(nonzero.amin(dim=(1, 2)) < 0.9)
        # a heatmap is 0 where a class's evidence is negative on every patch, but not all are
        assert np.all(np.max(peaks, axis=0) == 1), (layer, peaks)


def test_the_last_blocks_output_gives_the_patch_tokens_no_gradient(rng):
    _, model = small_pair(torch.float32)
    images = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    with pytest.warns(UserWarning, match=r"do not depend on the patch tokens of layer "):
        zero = viz.grad_cam(model, images, 0, "encoder.layers.encoder_layer_1")
    assert not zero.any()
    # at the default, every image has a class whose heatmap is not zero: with a softmax,
    # sum_c p_c grad(log p_c) = 0, so the evidence of some class is positive somewhere
    softmax = keras.Model(model.inputs, keras.layers.Softmax()(model.outputs[0]))
    for image in images:
        peaks = [viz.grad_cam(softmax, image, c, resize=False).max() for c in range(3)]
        assert max(peaks) == pytest.approx(1.0)


def test_a_vits_default_layer_and_non_token_layers():
    vit = keras_zoo.build("vit_b_32", input_shape=(64, 64, 3), classes=3)
    assert viz.default_cam_layer(vit).name == "encoder.layers.encoder_layer_11.ln_1"
    x = np.zeros((1, 64, 64, 3), "float32")
    with pytest.raises(
        ValueError,
        match=r"^layer 'token_pool.crop' outputs shape \(1, 1, 768\), not a feature map "
        r"\(batch, height, width, channels\) or tokens \(batch, 5, width\) on its grid$",
    ):
        viz.grad_cam(vit, x, layer="token_pool.crop")
    cnn = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3)
    with pytest.raises(
        ValueError,
        match=r"^layer 'avgpool' outputs shape \(1, 512\), not a feature map "
        r"\(batch, height, width, channels\)$",
    ):
        viz.grad_cam(cnn, np.zeros((1, 32, 32, 3)), layer="avgpool")


# ---------------------------------------------------------------------------------------------
# the TensorBoard callbacks in a fit of a ViT


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def _value(acc, tag, index=-1):
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(acc.Tensors(tag)[index].tensor_proto)


def _pngs(acc, tag):
    import io

    from PIL import Image

    return [np.asarray(Image.open(io.BytesIO(png))) for png in _value(acc, tag)[2:]]


def test_the_callbacks_log_a_vit(tmp_path, rng):
    keras.utils.set_random_seed(0)
    _, model = small_pair(torch.float32, seed=2)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    x = rng.uniform(0, 1, (6, 32, 32, 3)).astype("float32")
    y = np.arange(6) % 3
    kernels = KernelStatsLogger(tmp_path, scalars=True)
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=3,
        verbose=0,
        callbacks=[
            FeatureMapLogger(tmp_path, x[:2]),
            kernels,
            GradCAMLogger(tmp_path, x[:2]),
            ConfusionMatrixLogger(tmp_path, (x, y), ["a", "b", "c"]),
        ],
    )
    acc = _events(tmp_path)
    tags = set(acc.Tags()["tensors"])
    # the ViT's feature outputs, its blocks, as the maps of their patch tokens (4x4), the
    # last epoch's equal to what viz.feature_maps gives now
    blocks = [f"encoder.layers.encoder_layer_{i}" for i in range(2)]
    assert [ref.name for ref in viz.default_feature_layers(model)] == blocks
    check_feature_maps(acc, model, x[:2], blocks, steps=[0, 1])
    assert {f"features/{block}/{stat}" for block in blocks for stat in ("mean", "std")} <= tags
    # every kernel under its own tag: an attention layer's four projections apart
    attention = "encoder.layers.encoder_layer_0.self_attention"
    projections = [f"{attention}/{p}/kernel" for p in ("query", "key", "value", "attention_output")]
    expected = {
        "conv_proj",
        *projections,
        "encoder.layers.encoder_layer_0.mlp.0",
        "encoder.layers.encoder_layer_0.mlp.3",
        "heads.head",
    }
    assert expected <= {t[len("kernels/") :] for t in tags if t.startswith("kernels/")}
    sizes = {w.kernel_tag: int(np.prod(w.variable.shape)) for w in viz.named_weights(model)}
    for name in projections:
        hist = _value(acc, f"kernels/{name}")  # (bins, [left, right, count])
        assert hist.shape[1] == 3 and hist[:, 2].sum() == sizes[name]
    (epoch, ratios), *_ = kernels.update_ratios[-1:]
    assert epoch == 1 and len(ratios) == len(set(ratios)) == 2 * 6 + 2
    assert all(ratios[name] > 0 for name in projections)  # they trained
    assert {"update_ratio", "filters/conv_proj", "confusion_matrix"} <= tags
    # Grad-CAM at the last block's ln_1, the heatmaps of the final weights
    assert {t for t in tags if t.startswith("grad_cam/")} == {f"grad_cam/{LAST_LN_1}"}
    pictures = _pngs(acc, f"grad_cam/{LAST_LN_1}")
    heatmaps = viz.grad_cam(model, x[:2])
    assert heatmaps.max() > 0.5  # not all zero (a class's may be, where its evidence is < 0)
    expected_pictures = enlarge(overlay_heatmaps(x[:2], heatmaps))
    for png, picture in zip(pictures, expected_pictures, strict=True):
        np.testing.assert_allclose(png.astype(float), picture.astype(float), atol=1)
        assert png.std(axis=(0, 1)).max() > 10  # not one colour


# ---------------------------------------------------------------------------------------------
# training, evaluation and prediction on the family

TINY = dict(patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)


@pytest.fixture(scope="module")
def tiny_vit():
    """A ViT id with the family's builder and torchvision's layout, small enough to train in
    seconds; unregistered afterwards."""
    name = "vit_tiny_16_test"
    register_model(
        name,
        "vit",
        vision_transformer,
        config=TINY,
        params=0,
        gmacs=0.0,
        classifier=("heads.head",),
    )
    try:
        yield name
    finally:
        _REGISTRY.pop(name, None)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A torchvision ViT of the tiny id's architecture at 64x64 with 1000 classes, random
    weights, as a .pth state dict; with the state dict as NumPy arrays."""
    ref = torchvision_vit(64, seed=5, num_classes=1000, **TINY)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny_vit.pth"
    torch.save(ref.state_dict(), path)
    return path, state_dict_numpy(ref)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("data") / "colours", per_class=4, size=40)


def _fails(capsys, argv, expected):
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"keras-zoo {argv[0]}: error: {expected}"], err


def test_train_evaluate_and_predict_a_vit_from_the_command_line(
    tiny_vit, checkpoint, tree, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["train", tiny_vit, "--data", str(tree), "--out", str(out), "--verbose", "0"]
    _fails(
        capsys,
        [*argv, "--image-size", "72"],
        f"input_shape (72, 72, 3): {tiny_vit} needs height and width that are multiples of "
        "its patch size 16; nearest: 64 or 80",
    )
    assert not out.exists()
    code = cli.main(
        [*argv, "--image-size", "64", "--epochs", "1", "--batch-size", "4"]
        + ["--weights", str(checkpoint[0]), "--lr", "1e-4"]
    )
    assert code == 0, capsys.readouterr().err
    assert "best validation accuracy" in capsys.readouterr().out
    config = json.loads((out / "run.json").read_text())
    assert (config["model"], config["image_size"], config["freeze_backbone"]) == (
        tiny_vit,
        64,
        False,
    )
    trained = load_trained(tiny_vit, str(out / "best.weights.h5")).model
    assert trained.get_layer("heads.head").kernel.shape == (32, 3)  # a new head, 3 classes
    # unfrozen, the backbone trained away from the checkpoint's
    conv = keras.ops.convert_to_numpy(trained.get_layer("conv_proj").kernel)
    source = checkpoint[1]["conv_proj.weight"].transpose(2, 3, 1, 0)
    assert conv.shape == source.shape and not np.allclose(conv, source, atol=1e-7)
    # the inspection logs of the run: Grad-CAM on the 4x4 token grid, the blocks' token maps
    tags = set(_events(out).Tags()["tensors"])
    assert {t for t in tags if t.startswith(("grad_cam/", "feature_maps/"))} == {
        "grad_cam/encoder.layers.encoder_layer_1.ln_1",
        "feature_maps/encoder.layers.encoder_layer_0",
        "feature_maps/encoder.layers.encoder_layer_1",
    }

    assert (
        cli.main(
            ["evaluate", tiny_vit, "--weights", str(out / "best.weights.h5")]
            + ["--data", str(tree), "--out", str(tmp_path / "eval")]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"{tiny_vit} on 12 images of {tree} (all): accuracy " in printed
    assert (tmp_path / "eval" / "confusion_matrix_all.png").is_file()
    image = str(tree / "red" / "00.png")
    assert (
        cli.main(
            ["predict", tiny_vit, "--weights", str(out / "best.weights.h5"), image, "--top-k", "3"]
        )
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ")
    probabilities = [float(p.split()[1]) for p in line.split(": ", 1)[1].split(", ")]
    assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1, abs=1e-3)
    _fails(
        capsys,
        ["predict", tiny_vit, "--weights", str(out / "best.weights.h5"), image]
        + ["--image-size", "72"],
        f"input_shape (72, 72, 3): {tiny_vit} needs height and width that are multiples of "
        "its patch size 16; nearest: 64 or 80",
    )


def test_transfer_learning_freezes_a_vits_backbone_and_trains_its_new_head(
    tiny_vit, checkpoint, tree, tmp_path
):
    snapshots = {}

    class Snapshot(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            snapshots["begin"] = {layer.name: layer.get_weights() for layer in self.model.layers}

        def on_train_end(self, logs=None):
            snapshots["end"] = {layer.name: layer.get_weights() for layer in self.model.layers}

    train(
        tiny_vit,
        str(tree),
        epochs=1,
        batch_size=4,
        image_size=64,
        weights=str(checkpoint[0]),
        freeze_backbone=True,
        out=str(tmp_path / "out"),
        inspect=False,
        verbose=0,
        callbacks=[Snapshot()],
    )
    begin, end = snapshots["begin"], snapshots["end"]
    source = checkpoint[1]
    np.testing.assert_array_equal(
        begin["conv_proj"][0], source["conv_proj.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(begin["class_token"][0], source["class_token"])
    frozen = [n for n in begin if n != "heads.head" and begin[n]]
    assert {"conv_proj", "encoder.layers.encoder_layer_1.self_attention", "encoder.ln"} <= set(
        frozen
    )
    for name in frozen:
        for a, b in zip(begin[name], end[name], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert begin["heads.head"][0].shape == (32, 3)
    assert not np.array_equal(begin["heads.head"][0], end["heads.head"][0])


def test_large_patch_filters_are_not_enlarged_past_a_readable_size():
    from keras_zoo.viz.images import MAX_FILTER_SIDE, filter_tiles

    small = filter_tiles(np.random.default_rng(0).random((3, 3, 3, 4)))
    large = filter_tiles(np.random.default_rng(0).random((32, 32, 3, 4)))
    assert small.shape == (2 * 24 + 1, 2 * 24 + 1, 3)  # 3x3 filters still 8 times
    assert large.shape == (2 * MAX_FILTER_SIDE + 1, 2 * MAX_FILTER_SIDE + 1, 3)
