"""The Vision Transformer family: parameter counts, pooling, bad input, weights, save/load."""

import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo.models.vit import vision_transformer
from keras_zoo.port import load_state_dict
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


def _small_reference(image_size=32, seed=0):
    tv = import_torchvision()
    ref = tv.models.VisionTransformer(image_size=image_size, num_classes=10, **SMALL)
    return randomize_transformer(ref, seed)


def test_list_models():
    assert keras_zoo.list_models("vit*") == VIT_IDS


@pytest.mark.parametrize("name", VIT_IDS)
def test_parameter_counts_are_torchvisions(name):
    model = keras_zoo.build(name)
    ours = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    with torch.device("meta"):
        theirs = sum(p.numel() for p in torch_model(name).parameters())
    assert ours == theirs == PUBLISHED_PARAMS[name] == keras_zoo.model_info(name).params


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


def test_features_only_and_pooling_errors():
    with pytest.raises(ValueError, match="features_only is not supported for vit_b_32"):
        keras_zoo.build("vit_b_32", features_only=True)
    with pytest.raises(ValueError, match=r"pooling='avg' applies only with include_top=False"):
        keras_zoo.build("vit_b_32", pooling="avg")
    with pytest.raises(ValueError, match="pooling"):
        keras_zoo.build("vit_b_32", include_top=False, pooling="max")


def test_checkpoint_of_another_grid_is_a_clear_error():
    state = state_dict_numpy(_small_reference(image_size=32))
    model = vision_transformer(**SMALL, input_shape=(48, 48, 3), classes=10)
    with pytest.raises(ValueError, match=r"position embedding has 17 tokens, the model 37"):
        load_state_dict(model, state)


def test_weight_set_builds_at_its_size():
    assert keras_zoo.model_info("vit_b_16").input_size == (224, 224, 3)
    e2e = keras_zoo.model_info("vit_b_16").weight_set("IMAGENET1K_SWAG_E2E_V1")
    assert e2e.preprocessing.input_size == (384, 384)
