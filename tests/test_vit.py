"""The Vision Transformer family: parameter counts, pooling, bad input, weights, save/load."""

import keras
import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo import profile, walk
from keras_zoo.models.vit import vision_transformer
from keras_zoo.port import load_state_dict, resample_position_embedding
from tests.conftest import assert_save_load_round_trip
from tests.torch_models import (
    import_torchvision,
    randomize_transformer,
    state_dict_numpy,
    torch_model,
)

VIT_IDS = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32"]
# torchvision's ViT_*_Weights.IMAGENET1K_V1.meta["num_params"]
PUBLISHED_PARAMS = {
    "vit_b_16": 86_567_656,
    "vit_b_32": 88_224_232,
    "vit_l_16": 304_326_632,
    "vit_l_32": 306_535_400,
}
SMALL = dict(patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64)


# Keras' TensorFlow attention rounds its scale 1 / sqrt(head width) to float32: exact in
# float64 for head widths 16, 64 (every published ViT's), 256
SMALL_F64 = dict(SMALL, num_heads=2)


def _small_reference(image_size=32, seed=0, config=SMALL):
    tv = import_torchvision()
    ref = tv.models.VisionTransformer(image_size=image_size, num_classes=10, **config)
    return randomize_transformer(ref, seed)


def test_list_models():
    assert keras_zoo.list_models("vit*") == VIT_IDS


@pytest.mark.parametrize("name", VIT_IDS)
def test_parameter_counts_and_macs_are_torchvisions(name):
    model = keras_zoo.build(name)
    ours = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    with torch.device("meta"):
        theirs = sum(p.numel() for p in torch_model(name).parameters())
    assert ours == theirs == PUBLISHED_PARAMS[name] == keras_zoo.model_info(name).params
    # torchvision's GFLOPS count the attention's two products too
    assert keras_zoo.count_macs(model) / 1e9 == pytest.approx(
        keras_zoo.model_info(name).gmacs, abs=5e-4
    )


def test_count_macs_counts_an_attention_in_a_nested_model():
    inner = vision_transformer(**SMALL, input_shape=(32, 32, 3), classes=10)
    outer = keras.Sequential([keras.Input((32, 32, 3)), inner])
    # 16 patches + a class token, 32 wide, 4 heads of 8: projections 4 * 17 * 32 * 32, the two
    # products 2 * 17 * 17 * 32, per block
    attention = 2 * (4 * 17 * 32 * 32 + 2 * 17 * 17 * 32)
    without = sum(
        profile._macs(layer)
        for layer in walk.layers(inner)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    )
    assert keras_zoo.count_macs(outer) == keras_zoo.count_macs(inner) == without + attention


def test_torch_reference_is_torchvisions_module():
    tv = import_torchvision()
    with torch.device("meta"):
        ref = torch_model("vit_b_16", image_size=160)
    assert isinstance(ref, tv.models.VisionTransformer) and ref.image_size == 160
    with pytest.raises(ValueError, match="image_size applies to vit_"):
        torch_model("resnet18", image_size=160)


def test_weight_sets_are_torchvisions_own():
    tv = import_torchvision()
    for name in VIT_IDS:
        enum = tv.models.get_model_weights(name)
        ours = keras_zoo.list_weights(name)
        assert ours[0].tag == enum.DEFAULT.name
        assert sorted(ws.tag for ws in ours) == sorted(w.name for w in enum)
        for ws in ours:
            theirs, transforms = enum[ws.tag], enum[ws.tag].transforms()
            assert ws.url == theirs.url
            assert ws.top1 == pytest.approx(theirs.meta["_metrics"]["ImageNet-1K"]["acc@1"])
            assert list(ws.preprocessing.input_size) == transforms.crop_size * 2
            assert list(ws.preprocessing.input_size) == list(theirs.meta["min_size"])
            assert [ws.preprocessing.resize_size] == transforms.resize_size
            assert ws.preprocessing.interpolation == transforms.interpolation.value
        assert keras_zoo.model_info(name).gmacs == pytest.approx(enum.DEFAULT.meta["_ops"])


def test_small_vit_matches_torchvision_and_pools(rng):
    ref = _small_reference()
    model = vision_transformer(
        **SMALL, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    load_state_dict(model, state_dict_numpy(ref))
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    with torch.no_grad():
        want = ref(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    got = model.predict(x, verbose=0)
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= 2e-5

    tokens = vision_transformer(**SMALL, input_shape=(32, 32, 3), include_top=False)
    token = vision_transformer(**SMALL, input_shape=(32, 32, 3), include_top=False, pooling="token")
    mean = vision_transformer(**SMALL, input_shape=(32, 32, 3), include_top=False, pooling="avg")
    for m in (tokens, token, mean):
        load_state_dict(m, state_dict_numpy(ref), optional_modules=("heads.head",))
    seq = tokens.predict(x, verbose=0)
    assert seq.shape == (2, 1 + 16, 32)
    np.testing.assert_allclose(token.predict(x, verbose=0), seq[:, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mean.predict(x, verbose=0), seq[:, 1:].mean(1), rtol=1e-5, atol=1e-6)


def test_a_swapped_query_and_key_is_caught_by_the_numbers(rng):
    ref = _small_reference()
    state = state_dict_numpy(ref)
    key = "encoder.layers.encoder_layer_0.self_attention.in_proj_weight"
    q, k, v = np.split(state[key], 3)
    state[key] = np.concatenate([k, q, v])
    model = vision_transformer(
        **SMALL, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    load_state_dict(model, state)
    x = rng.normal(size=(1, 32, 32, 3)).astype("float32")
    with torch.no_grad():
        want = ref(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert np.max(np.abs(model.predict(x, verbose=0) - want)) / np.max(np.abs(want)) > 1e-3


def test_save_load_round_trip(rng, tmp_path):
    model = vision_transformer(**SMALL, input_shape=(32, 32, 3), classes=10)
    assert_save_load_round_trip(model, rng.normal(size=(2, 32, 32, 3)).astype("float32"), tmp_path)


def test_input_size_not_a_multiple_of_the_patch():
    with pytest.raises(ValueError) as err:
        keras_zoo.build("vit_b_16", input_shape=(230, 230, 3))
    assert str(err.value).startswith(
        "input_shape (230, 230, 3): vit_b_16 needs height and width that are multiples of "
        "its patch size 16; nearest: 224 or 240"
    )
    with pytest.raises(ValueError, match=r"patch size 32; nearest: width 192 or 224"):
        keras_zoo.build("vit_b_32", input_shape=(224, 200, 3))
    with pytest.raises(ValueError, match=r"vit_b_16 needs a fixed height and width"):
        keras_zoo.build("vit_b_16", input_shape=(None, None, 3))


def test_other_sizes_build_with_their_grid():
    model = keras_zoo.build("vit_b_32", input_shape=(256, 192, 3), include_top=False)
    assert model.output.shape == (None, 1 + 8 * 6, 768)


def test_pooling_errors():
    with pytest.raises(ValueError, match=r"pooling='avg' applies only with include_top=False"):
        keras_zoo.build("vit_b_32", pooling="avg")
    with pytest.raises(ValueError, match="pooling"):
        keras_zoo.build("vit_b_32", include_top=False, pooling="max")


def _torch_block_outputs(ref, x, pos_embedding):
    """torchvision's encoder blocks on images of any size: its own patch projection, class
    token and blocks, with `pos_embedding` for the images' grid (torchvision's forward
    accepts only square images of its image_size)."""
    with torch.no_grad():
        t = ref.conv_proj(torch.from_numpy(x.transpose(0, 3, 1, 2)))
        t = t.reshape(t.shape[0], t.shape[1], -1).permute(0, 2, 1)
        t = torch.cat([ref.class_token.expand(t.shape[0], -1, -1), t], dim=1)
        t = t + torch.from_numpy(pos_embedding)
        outputs = []
        for block in ref.encoder.layers:
            t = block(t)
            outputs.append(t.numpy())
    return outputs


def test_features_only_returns_token_maps_of_chosen_blocks(rng, float64):
    ref = _small_reference(image_size=32, config=SMALL_F64).double()
    model = vision_transformer(
        **SMALL_F64, input_shape=(40, 32, 3), features_only=True, out_indices=(1, 0)
    )
    assert [tuple(o.shape) for o in model.outputs] == [(None, 5, 4, 32)] * 2
    assert model.output_names == ["encoder_layer_1_map", "encoder_layer_0_map"]
    state = state_dict_numpy(ref)
    state["encoder.pos_embedding"] = resample_position_embedding(
        state["encoder.pos_embedding"], (5, 4)
    )
    load_state_dict(model, state, optional_modules=("encoder.ln", "heads.head"))
    x = rng.normal(size=(2, 40, 32, 3))
    want = _torch_block_outputs(ref, x, state["encoder.pos_embedding"])
    got = model.predict(x, verbose=0)
    for g, i in zip(got, (1, 0)):
        # patch token r * 4 + c of block i is map cell (r, c)
        np.testing.assert_allclose(g, want[i][:, 1:].reshape(2, 5, 4, 32), rtol=0, atol=1e-10)


def test_features_only_defaults_to_the_last_three_blocks():
    model = keras_zoo.build("vit_b_32", features_only=True, input_shape=(64, 96, 3))
    assert model.output_names == [f"encoder_layer_{i}_map" for i in (9, 10, 11)]
    assert [tuple(o.shape) for o in model.outputs] == [(None, 2, 3, 768)] * 3


def test_features_only_block_out_of_range_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        vision_transformer(**SMALL, input_shape=(32, 32, 3), features_only=True, out_indices=(2,))
    assert str(err.value) == (
        "out_indices must be distinct block indices from [0, 1] (the model has 2 blocks), got (2,)"
    )
    with pytest.raises(ValueError, match=r"from 0 to 11 \(the model has 12 blocks\)"):
        keras_zoo.build("vit_b_32", features_only=True, out_indices=(0, 12))
    with pytest.raises(ValueError, match="pooling does not apply with features_only"):
        keras_zoo.build("vit_b_32", features_only=True, pooling="token")


def test_checkpoint_of_another_grid_names_the_way_to_resample():
    state = state_dict_numpy(_small_reference(image_size=32))
    model = vision_transformer(**SMALL, input_shape=(48, 48, 3), classes=10)
    with pytest.raises(
        ValueError,
        match=r"position embedding has 17 tokens, the model 37.*"
        r"resample_position_embedding",
    ):
        load_state_dict(model, state)


GRIDS = [((14, 14), (24, 24)), ((14, 14), (7, 9)), ((7, 7), (12, 10)), ((4, 4), (30, 5))]


@pytest.mark.parametrize("old, new", GRIDS, ids=lambda g: "x".join(map(str, g)))
def test_resampling_is_torchs_antialiased_bicubic(old, new, rng):
    e = rng.normal(size=(1, 1 + old[0] * old[1], 6))
    got = resample_position_embedding(e, new, old_grid=old)
    grid = torch.from_numpy(e[:, 1:].reshape(1, *old, 6)).permute(0, 3, 1, 2)
    want = torch.nn.functional.interpolate(grid, size=new, mode="bicubic", antialias=True)
    want = want.permute(0, 2, 3, 1).reshape(1, -1, 6).numpy()
    assert got.shape == (1, 1 + new[0] * new[1], 6) and got.dtype == e.dtype
    np.testing.assert_array_equal(got[:, :1], e[:, :1])
    np.testing.assert_allclose(got[:, 1:], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("new", [(24, 24), (12, 20)])
def test_resampling_matches_timm(new, rng):
    import_torchvision()
    from timm.layers import resample_abs_pos_embed

    e = rng.normal(size=(1, 1 + 14 * 14, 16)).astype("float32")
    got = resample_position_embedding(e, new)
    want = resample_abs_pos_embed(torch.from_numpy(e), list(new)).numpy()
    # timm interpolates in float32, we in float64: float32 rounding apart
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= 2e-6


def test_resampling_bad_input():
    with pytest.raises(ValueError, match=r"need.* \(1, tokens, d\), got \(197, 8\)"):
        resample_position_embedding(np.zeros((197, 8)), (24, 24))
    with pytest.raises(ValueError, match=r"20 tokens are not 1 prefix tokens and a 4x4 grid"):
        resample_position_embedding(np.zeros((1, 20, 8)), (24, 24))
    with pytest.raises(ValueError, match="grid"):
        resample_position_embedding(np.zeros((1, 17, 8)), (0, 4))


def test_weights_trained_at_224_load_at_384(tmp_path, rng, monkeypatch):
    """build(weights=<a checkpoint of another grid>) resamples the position embedding: the
    logits are torchvision's ViT at the new size carrying timm's resampled embedding."""
    import_torchvision()
    from timm.layers import resample_abs_pos_embed

    from keras_zoo import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_model(
        "vit_test_small",
        "vit",
        vision_transformer,
        config=SMALL,
        params=0,
        gmacs=0.0,
        classifier=("heads.head",),
    )
    ref = _small_reference(image_size=32)  # a 4 x 4 grid
    path = tmp_path / "small.pth"
    torch.save(ref.state_dict(), path)
    model = keras_zoo.build(
        "vit_test_small",
        weights=str(path),
        input_shape=(56, 56, 3),
        classes=10,
        classifier_activation=None,
    )
    tv = import_torchvision()
    big = tv.models.VisionTransformer(image_size=56, num_classes=10, **SMALL)
    state = ref.state_dict()
    state["encoder.pos_embedding"] = resample_abs_pos_embed(state["encoder.pos_embedding"], [7, 7])
    big.encoder.pos_embedding = torch.nn.Parameter(state["encoder.pos_embedding"])
    big.load_state_dict(state)
    x = rng.normal(size=(2, 56, 56, 3)).astype("float32")
    with torch.no_grad():
        want = big(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    got = model.predict(x, verbose=0)
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= 2e-5


def test_weight_set_builds_at_its_size():
    assert keras_zoo.model_info("vit_b_16").input_size == (224, 224, 3)
    e2e = keras_zoo.model_info("vit_b_16").weight_set("IMAGENET1K_SWAG_E2E_V1")
    assert e2e.preprocessing.input_size == (384, 384)
