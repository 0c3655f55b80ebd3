"""Stochastic depth (`drop_path_rate`) of the ResNet family and the Vision Transformers, against
timm's: keras_zoo.layers.DropPath computes timm.layers.DropPath's function for the same keep
mask; the rate of every block is the rate timm's resnet18, resnet50 and vit_base_patch16_224
give the same block (timm's models built on the meta device: only their modules are read); at
inference the model is the one built without it, and without it the model is layer for layer
the one built before stochastic depth existed (so no parity test and no weights file changes).
"""

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo import walk
from keras_zoo.layers import DropPath, drop_path_rates
from keras_zoo.model_args import check_model_args, family_keywords
from keras_zoo.models.vit import vision_transformer
from keras_zoo.torch_reference import import_timm

RATE = 0.1
SIZE = (32, 32, 3)  # the smallest input keras_zoo builds: cheap models of both families


@pytest.fixture(scope="module")
def timm(torch):
    return import_timm()


def _timm_rates(torch, timm, name, **kwargs):
    """{module path: drop_prob} of the DropPath modules of timm's `name` at RATE."""
    with torch.device("meta"):  # no parameters initialised: only the modules are read
        model = timm.create_model(name, pretrained=False, drop_path_rate=RATE, **kwargs)
    return {n: m.drop_prob for n, m in model.named_modules() if isinstance(m, timm.layers.DropPath)}


def _rates(model):
    """{layer name: rate} of the DropPath layers of `model`."""
    return {layer.name: layer.rate for layer in walk.layers(model) if isinstance(layer, DropPath)}


def _layout(model):
    """Every layer's type and name, and every weight's path and shape, in order."""
    return (
        [(type(layer).__name__, layer.name) for layer in walk.layers(model)],
        [(w.path, tuple(w.shape)) for w in model.weights],
    )


def _copy_weights(source, target):
    """`source`'s weights into `target`, layer by name: a DropPath in a ResNet's branch puts
    the block's downsample convolution after its last batch norm in the weights' order."""
    for layer in walk.layers(source):
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())


@pytest.fixture(scope="module")
def resnets():
    """resnet18 without stochastic depth and with it at RATE, with the same weights."""
    plain = keras_zoo.build("resnet18", input_shape=SIZE)
    dropping = keras_zoo.build("resnet18", input_shape=SIZE, drop_path_rate=RATE)
    _copy_weights(plain, dropping)
    return plain, dropping


def _small_vit(**kwargs):
    # the family's function at a size that builds in a moment; 3 blocks, rates 0, r/2, r
    return vision_transformer(
        patch_size=16,
        num_layers=3,
        num_heads=2,
        hidden_dim=8,
        mlp_dim=16,
        input_shape=SIZE,
        classes=5,
        classifier_activation=None,
        **kwargs,
    )


@pytest.fixture(scope="module")
def vits():
    """A small ViT without stochastic depth and with it at 0.5, with the same weights."""
    plain, dropping = _small_vit(), _small_vit(drop_path_rate=0.5)
    _copy_weights(plain, dropping)
    return plain, dropping


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_drop_path_equals_timms_for_the_same_mask(torch, timm, rng, monkeypatch, dtype):
    rate, mask = 0.3, np.array([1, 0, 1, 1, 0, 1], "float32")
    x = rng.normal(size=(6, 3, 4, 5)).astype(dtype)  # torch's (N, C, H, W)

    def torch_mask(tensor, p):  # timm's draw: x.new_empty((N, 1, 1, 1)).bernoulli_(keep)
        assert p == 1 - rate and tuple(tensor.shape) == (6, 1, 1, 1)
        return tensor.copy_(torch.from_numpy(mask).reshape(tensor.shape))

    def keras_mask(layer, batch_size):
        assert int(batch_size) == 6
        return keras.ops.convert_to_tensor(mask)

    monkeypatch.setattr(torch.Tensor, "bernoulli_", torch_mask)
    monkeypatch.setattr(DropPath, "keep_mask", keras_mask)
    theirs = timm.layers.DropPath(rate).train()
    want = theirs(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(DropPath(rate, dtype=dtype)(x.transpose(0, 2, 3, 1), training=True))
    assert got.dtype == dtype
    # the same operations in the same order (the mask over the keep probability, times x)
    np.testing.assert_array_equal(got, want)
    assert not got[[1, 4]].any() and got[[0, 2, 3, 5]].all()
    # inference, and rate 0 in training, are the identity in both
    np.testing.assert_array_equal(DropPath(rate, dtype=dtype)(x, training=False), x)
    np.testing.assert_array_equal(DropPath(0.0, dtype=dtype)(x, training=True), x)
    np.testing.assert_array_equal(theirs.eval()(torch.from_numpy(x)).numpy(), x)


def test_the_expected_branch_is_unchanged(rng):
    # each example is dropped whole with probability rate, else scaled by 1 / (1 - rate)
    rate, n = 0.3, 20_000
    x = np.broadcast_to(rng.normal(size=(1, 4, 5)), (n, 4, 5)).astype("float32")
    y = np.asarray(DropPath(rate, seed=3)(x, training=True))
    kept = y.reshape(n, -1).any(axis=1)
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)
    assert not y[~kept].any()
    sigma = np.sqrt(rate * (1 - rate) / n)  # of the kept fraction
    assert abs(kept.mean() - (1 - rate)) < 5 * sigma
    np.testing.assert_allclose(y.mean(axis=0), x[0], rtol=5 * sigma / (1 - rate))


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_block_rates_equal_timms(name, torch, timm, resnets):
    if name == "resnet18":
        model = resnets[1]
    else:
        model = keras_zoo.build(name, input_shape=SIZE, drop_path_rate=RATE)
    want = _timm_rates(torch, timm, name)
    # timm's resnet: block i of n at rate * i / (n - 1), the first block without a DropPath;
    # its module paths are keras_zoo's layer names (layer1.1.drop_path)
    blocks = sum(keras_zoo.model_info(name).config["layers_per_stage"])
    assert len(want) == blocks - 1 and "layer1.0.drop_path" not in want
    assert _rates(model) == want


def test_vit_block_rates_equal_timms(torch, timm):
    # vit_b_16's own builder (its 12 blocks) at narrow widths, which the rates do not depend
    # on: 86M random weights would take longer to draw than the rest of this file
    info = keras_zoo.model_info("vit_b_16")
    model = info.builder(
        hidden_dim=16, mlp_dim=16, num_heads=2, input_shape=SIZE, drop_path_rate=RATE
    )
    assert info.config["num_layers"] == 12
    want = _timm_rates(torch, timm, "vit_base_patch16_224", img_size=SIZE[0])
    # timm's drop_path1 (attention) and drop_path2 (MLP) of blocks.i; its rates are
    # torch.linspace's, rounded to float32
    renamed = {
        name.replace("blocks.", "encoder.layers.encoder_layer_")
        .replace(".drop_path1", ".self_attention_drop_path")
        .replace(".drop_path2", ".mlp_drop_path"): rate
        for name, rate in want.items()
    }
    got = _rates(model)
    assert list(got) == list(renamed) and len(got) == 2 * 11
    assert got == pytest.approx(renamed, rel=1e-7)


def test_inference_is_the_model_without_drop_path(resnets, vits, rng):
    for plain, dropping in (resnets, vits):
        x = rng.normal(size=(3, *SIZE)).astype("float32")
        assert _rates(dropping) and not _rates(plain)
        np.testing.assert_array_equal(dropping(x, training=False), plain(x, training=False))
        np.testing.assert_array_equal(dropping(x), plain(x))  # inference by default


def test_training_drops_branches_per_example(vits, rng):
    # one image repeated: without stochastic depth every row is the same (no batch norm in a
    # ViT), with it the rows differ by which branches each example dropped (4 draws each)
    plain, dropping = vits
    x = np.repeat(rng.normal(size=(1, *SIZE)).astype("float32"), 32, axis=0)
    same = np.asarray(plain(x, training=True))
    assert np.all(same == same[0])
    rows = np.unique(np.asarray(dropping(x, training=True)), axis=0)
    assert 1 < len(rows) <= 2**4


def test_without_a_rate_the_model_is_unchanged(resnets, vits):
    plain, _ = resnets
    assert _layout(keras_zoo.build("resnet18", input_shape=SIZE, drop_path_rate=0)) == _layout(
        plain
    )
    assert _layout(_small_vit(drop_path_rate=0.0)) == _layout(vits[0])
    # the weights are the same with and without it (a ResNet's in another order)
    assert sorted(_layout(resnets[1])[1]) == sorted(_layout(plain)[1])
    assert _layout(vits[1])[1] == _layout(vits[0])[1]


def test_drop_path_rate_is_a_checked_family_keyword():
    for name in keras_zoo.list_models():
        if keras_zoo.model_info(name).family in ("resnet", "vit", "efficientnet", "convnext"):
            assert family_keywords(name)["drop_path_rate"] == 0.0, name
    assert check_model_args("wide_resnet50_2", {"drop_path_rate": 0.2}) == {"drop_path_rate": 0.2}
    with pytest.raises(ValueError, match="drop_path_rate takes a number"):
        check_model_args("vit_b_16", {"drop_path_rate": "0.1"})
    for name in ("resnext50_32x4d", "vit_b_32"):
        for bad in (1.0, -0.1, "0.1", True, None):
            with pytest.raises(ValueError, match=r"^drop_path_rate must be a number in \[0, 1\)"):
                keras_zoo.build(name, drop_path_rate=bad)
    with pytest.raises(ValueError, match=r"^rate must be a number in \[0, 1\)"):
        DropPath(1.0)
    assert drop_path_rates(0.2, 1) == [0.0] and drop_path_rates(0.2, 5)[-1] == 0.2


def test_a_saved_model_keeps_its_drop_path_and_description(resnets, rng, tmp_path):
    _, dropping = resnets
    assert keras_zoo.describe(dropping).keywords["drop_path_rate"] == RATE
    x = rng.normal(size=(2, *SIZE)).astype("float32")
    dropping.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x, training=False), dropping(x, training=False))
    assert _rates(loaded) == _rates(dropping)
    assert keras_zoo.describe(loaded).keywords["drop_path_rate"] == RATE
    layer = DropPath(0.25, seed=7, name="dp")
    assert DropPath.from_config(layer.get_config()).get_config() == layer.get_config()
