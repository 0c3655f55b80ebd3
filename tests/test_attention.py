"""Attention maps (keras_zoo.viz.attention, AttentionMapLogger, analyze-features on a ViT).

The attention probabilities are checked against torch's own nn.MultiheadAttention in
torchvision's VisionTransformer with the same weights (need_weights=True,
average_attn_weights=False, on its ln_1 output), in float64; the rollout against a plain numpy
product of those torch weights and against properties a wrong rollout fails. Small ViTs keep
it quick: 64x64 images of 16-pixel patches (a 4x4 grid and a class token), 3 blocks.
"""

import io
import os
import urllib.parse

import keras
import numpy as np
import pytest
import torch
from conftest import TensorBoardServer
from PIL import Image

from keras_zoo import cli
from keras_zoo.callbacks import AttentionMapLogger
from keras_zoo.commands.analyze_features import prepare_image
from keras_zoo.models.vit import vision_transformer
from keras_zoo.port import load_state_dict
from keras_zoo.viz import attention
from keras_zoo.viz.images import grid_shape
from tests.torch_models import import_torchvision, randomize_transformer, state_dict_numpy

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# heads 16 wide, as ViT-B's and ViT-L's are 64: Keras scales the attention logits by
# 1 / sqrt(head width) cast through float32, exact only for such widths, so that in float64 a
# width of 8 differs from torch by ~1e-8 in the model's own forward pass
SIZE, PATCH, LAYERS, HEADS, WIDTH, MLP = 64, 16, 3, 4, 64, 128
GRID = SIZE // PATCH
TOKENS = 1 + GRID * GRID
BLOCKS = [f"encoder.layers.encoder_layer_{i}.self_attention" for i in range(LAYERS)]


def load_events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def images_of(acc, tag, index=-1):
    """(width, height, [PNG bytes, ...]) of one image summary event."""
    from tensorboard.util import tensor_util

    value = tensor_util.make_ndarray(acc.Tensors(tag)[index].tensor_proto)
    return int(value[0]), int(value[1]), list(value[2:])


def decode_png(data: bytes) -> np.ndarray:
    assert data.startswith(PNG_SIGNATURE)
    return np.asarray(Image.open(io.BytesIO(data)))


def small_vit(name="small_vit"):
    return vision_transformer(
        patch_size=PATCH,
        num_layers=LAYERS,
        num_heads=HEADS,
        hidden_dim=WIDTH,
        mlp_dim=MLP,
        input_shape=(SIZE, SIZE, 3),
        classes=3,
        name=name,
    )


def torch_vit(dtype):
    vision_transformer_module = import_torchvision().models.vision_transformer
    ref = vision_transformer_module.VisionTransformer(
        SIZE, PATCH, LAYERS, HEADS, WIDTH, MLP, num_classes=3
    )
    return randomize_transformer(ref, seed=3).to(dtype)


@torch.no_grad()
def torch_attention(ref, x):
    """torch's own per-head attention probabilities of each encoder block for NHWC `x`: the
    block's nn.MultiheadAttention called on its ln_1 output, as the block calls it, but with
    need_weights=True and average_attn_weights=False."""
    found = []

    def hook(block):
        def on_ln_1(module, inputs, output):
            _, weights = block.self_attention(
                output, output, output, need_weights=True, average_attn_weights=False
            )
            found.append(weights.numpy())

        return on_ln_1

    handles = [
        block.ln_1.register_forward_hook(hook(block)) for block in ref.encoder.layers.children()
    ]
    try:
        ref(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    finally:
        for handle in handles:
            handle.remove()
    return found


@pytest.fixture
def ported64(float64, rng):
    ref = torch_vit(torch.float64)
    model = small_vit()
    load_state_dict(model, state_dict_numpy(ref))
    x = rng.normal(size=(2, SIZE, SIZE, 3))
    return model, ref, x


# ---------------------------------------------------------------------------------------------
# the attention probabilities, against torch


def test_attention_probabilities_equal_torchs_per_head(ported64):
    model, ref, x = ported64
    want = torch_attention(ref, x)
    got = attention.attention_weights(model, x)
    assert list(got) == BLOCKS
    for value, expected in zip(got.values(), want):
        assert value.shape == expected.shape == (2, HEADS, TOKENS, TOKENS)
        assert value.dtype == np.float64
        np.testing.assert_allclose(value, expected, rtol=0, atol=1e-12)
    # far from uniform, so that the comparison says something
    assert max(float(np.abs(w - 1 / TOKENS).max()) for w in want) > 5 / TOKENS
    # the heads differ
    assert all(float(np.abs(w[:, 0] - w[:, 1]).max()) > 1e-3 for w in want)


def test_rollout_and_head_maps_equal_numpy_from_torchs_weights(ported64):
    model, ref, x = ported64
    weights = torch_attention(ref, x)
    maps = attention.attention_maps(model, x, blocks=[0, -1])
    assert maps.grid == (GRID, GRID, 1, PATCH)
    for sample in range(len(x)):
        # Abnar & Zuidema: (heads' mean + I) / 2 per block, multiplied last block first
        product = np.eye(TOKENS)
        for block in weights:
            fused = 0.5 * block[sample].mean(axis=0) + 0.5 * np.eye(TOKENS)
            product = fused @ product
        expected = product[0, 1:].reshape(GRID, GRID)
        np.testing.assert_allclose(maps.rollout[sample], expected, rtol=0, atol=1e-12)
    assert list(maps.heads) == [BLOCKS[0], BLOCKS[-1]]
    for name, block in zip(maps.heads, (weights[0], weights[-1])):
        assert maps.heads[name].shape == (2, HEADS, GRID, GRID)
        for head in range(HEADS):
            np.testing.assert_allclose(
                maps.heads[name][:, head],
                block[:, head, 0, 1:].reshape(2, GRID, GRID),
                rtol=0,
                atol=1e-12,
            )


# ---------------------------------------------------------------------------------------------
# rollout's properties


def _random_attention(rng, batch=2, heads=3, tokens=6):
    logits = rng.normal(0, 2, size=(batch, heads, tokens, tokens))
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_rollout_rows_are_distributions(rng):
    rollout = attention.attention_rollout([_random_attention(rng) for _ in range(4)])
    assert rollout.shape == (2, 6, 6)
    assert rollout.min() >= 0
    np.testing.assert_allclose(rollout.sum(-1), 1, atol=1e-12)


def test_uniform_attention_rolls_out_to_its_closed_form():
    # A = (U + I) / 2 with U = J / T idempotent, so A^L = 2^-L I + (1 - 2^-L) U
    tokens, blocks = 5, 3
    uniform = np.full((1, 4, tokens, tokens), 1 / tokens)
    rollout = attention.attention_rollout([uniform] * blocks)[0]
    expected = 2.0**-blocks * np.eye(tokens) + (1 - 2.0**-blocks) / tokens
    np.testing.assert_allclose(rollout, expected, atol=1e-12)


def test_attention_to_itself_rolls_out_to_the_identity():
    rollout = attention.attention_rollout([np.eye(4)[None, None].repeat(2, axis=1)] * 3)
    np.testing.assert_allclose(rollout[0], np.eye(4), atol=1e-15)


def test_rollout_multiplies_from_the_first_block_to_the_last():
    # block 1: every token reads token 1; block 2: every token reads token 2. Through both,
    # token 0 is 1/2 itself after block 2, of which 1/2 itself and 1/2 token 1 after block 1,
    # and 1/2 token 2, which was 1/2 itself and 1/2 token 1: (1/4, 1/2, 1/4, 0)
    reads = [np.zeros((1, 1, 4, 4)) for _ in range(2)]
    reads[0][..., 1] = 1
    reads[1][..., 2] = 1
    np.testing.assert_allclose(
        attention.attention_rollout(reads)[0, 0], [0.25, 0.5, 0.25, 0], atol=1e-15
    )


def test_rollout_averages_the_heads(rng):
    a, b = _random_attention(rng, heads=1), _random_attention(rng, heads=1)
    both = np.concatenate([a, b], axis=1)
    mean = (a + b) / 2
    np.testing.assert_allclose(
        attention.attention_rollout([both]), attention.attention_rollout([mean]), atol=1e-15
    )
    assert not np.allclose(attention.attention_rollout([both]), attention.attention_rollout([a]))


def test_rollout_refuses_what_is_not_self_attention(rng):
    with pytest.raises(ValueError, match=r"^attentions: expected the attention of at least"):
        attention.attention_rollout([])
    with pytest.raises(ValueError, match=r"^attentions\[0\]: expected self-attention"):
        attention.attention_rollout([np.ones((1, 2, 3, 4))])
    with pytest.raises(ValueError, match=r"^attentions\[1\]: shape .* does not follow"):
        attention.attention_rollout([_random_attention(rng), _random_attention(rng, tokens=5)])


# ---------------------------------------------------------------------------------------------
# any model with MultiHeadAttention layers


def test_attention_of_any_keras_model_nested_and_masked(rng):
    """A nested Functional model with a causal self-attention and a cross-attention (key
    apart): the probabilities are the layers' own, causal mask included."""
    tokens, width = 6, 8
    inner_in = keras.Input((tokens, width))
    causal = keras.layers.MultiHeadAttention(2, 4, name="causal")
    inner = keras.Model(
        inner_in, causal(inner_in, inner_in, use_causal_mask=True) + inner_in, name="inner"
    )
    x_in = keras.Input((tokens, width))
    y = keras.layers.Dense(width, name="project")(x_in)
    cross = keras.layers.MultiHeadAttention(3, 4, name="cross")
    z = cross(inner(y), y, key=x_in)
    model = keras.Model(x_in, z)
    x = rng.normal(size=(2, tokens, width)).astype("float32")

    assert [ref.name for ref in attention.attention_layers(model)] == ["causal", "cross"]
    got = attention.attention_weights(model, x)
    y_value = model.get_layer("project")(x)
    _, want_causal = causal(y_value, y_value, use_causal_mask=True, return_attention_scores=True)
    inner_out = inner(y_value)
    _, want_cross = cross(inner_out, y_value, key=x, return_attention_scores=True)
    np.testing.assert_allclose(got["causal"], want_causal, atol=1e-6)
    np.testing.assert_allclose(got["cross"], want_cross, atol=1e-6)
    assert np.all(np.triu(got["causal"][0, 0], k=1) == 0)  # the mask carried through
    assert got["cross"].shape == (2, 3, tokens, tokens)
    with pytest.raises(ValueError, match="^model: expected a transformer whose tokens lie"):
        attention.attention_maps(model, x)


def test_a_model_without_attention_is_refused(rng):
    import keras_zoo

    cnn = keras_zoo.build("resnet18", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="^model: expected a model with MultiHeadAttention"):
        attention.attention_weights(cnn, rng.random((1, 32, 32, 3)))


def test_blocks_by_name_index_and_string_index():
    model = small_vit()
    names = [r.name for r in attention.resolve_blocks(model, [BLOCKS[1], -1, "0", "-3"])]
    assert names == [BLOCKS[1], BLOCKS[2], BLOCKS[0]]  # each once, in the order given
    assert [r.name for r in attention.resolve_blocks(model, None)] == BLOCKS  # first, mid, last
    with pytest.raises(ValueError, match=r"^blocks: expected MultiHeadAttention layer names"):
        attention.resolve_blocks(model, ["encoder.layers.encoder_layer_0.ln_1"])
    with pytest.raises(ValueError, match=r"Did you mean .*encoder_layer_1.self_attention"):
        attention.resolve_blocks(model, ["encoder.layers.encoder_layer_1.self_atention"])
    with pytest.raises(ValueError, match=r"^blocks: expected attention block indices from -3 to 2"):
        attention.resolve_blocks(model, [3])


# ---------------------------------------------------------------------------------------------
# pictures


def test_overlay_colours_each_patch_by_its_map():
    images = np.full((1, 8, 8, 3), 0.5, np.float32)
    images[0, :, :4] = 0.0  # two halves, so the gray base is not flat
    maps = np.array([[[0.0, 1.0], [0.2, 0.5]]])
    picture = attention.overlay_maps(images, maps, min_side=32).astype(int)
    assert picture.shape == (1, 32, 32, 3)
    hot, cold = picture[0, :16, 16:], picture[0, :16, :16]
    # jet: the map's maximum red, its minimum blue; one colour a patch
    assert hot[..., 0].min() > hot[..., 2].max() and cold[..., 2].min() > cold[..., 0].max()
    assert len(np.unique(hot.reshape(-1, 3), axis=0)) == 1
    with pytest.raises(ValueError, match=r"^maps: expected \(N, rows, columns\) for 1 images"):
        attention.overlay_maps(images, maps[0])


def test_head_grid_tiles_every_head_readably(rng):
    image = rng.random((SIZE, SIZE, 3)).astype("float32")
    maps = rng.random((HEADS + 1, GRID, GRID))
    grid = attention.head_grid(image, maps)
    rows, cols = grid_shape(HEADS + 1)
    tile = SIZE * 2  # enlarged to at least 96 pixels a side
    assert grid.shape == (rows * tile + (rows - 1) * 2, cols * tile + (cols - 1) * 2, 3)
    assert grid.dtype == np.uint8
    # each head its own tile: head 1 (top, second) shows head 1's hottest patch in red
    r, c = np.unravel_index(np.argmax(maps[1]), maps[1].shape)
    patch = grid[r * 32 + 4 : r * 32 + 28, tile + 2 + c * 32 + 4 : tile + 2 + c * 32 + 28]
    # jet(1) is (0.5, 0, 0), blended at 0.45 over gray: red exceeds blue by 0.45 * 127.5
    assert np.all(patch[..., 0].astype(int) - patch[..., 2] > 50)


# ---------------------------------------------------------------------------------------------
# AttentionMapLogger


SAMPLES = 3


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("attention_logs")
    model = small_vit()
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(5)
    x, y = rng.random((6, SIZE, SIZE, 3)).astype("float32"), np.arange(6) % 3
    model.fit(
        x, y, epochs=2, batch_size=6, verbose=0, callbacks=[AttentionMapLogger(log_dir, x[:3])]
    )
    return log_dir, model, x[:SAMPLES]


def test_the_logger_writes_rollout_and_heads_of_the_default_blocks(attention_run):
    log_dir, model, samples = attention_run
    acc = load_events(log_dir)
    assert set(acc.Tags()["tensors"]) == {"attention/rollout", *(f"attention/{b}" for b in BLOCKS)}
    maps = attention.attention_maps(model, samples)  # the weights of the last logged epoch
    width, height, pngs = images_of(acc, "attention/rollout")
    assert len(pngs) == SAMPLES and (width, height) == (128, 128)
    for png, picture in zip(pngs, attention.overlay_maps(samples, maps.rollout)):
        np.testing.assert_array_equal(decode_png(png), picture)
    _, _, pngs = images_of(acc, f"attention/{BLOCKS[-1]}")
    for png, image, heads in zip(pngs, samples, maps.heads[BLOCKS[-1]]):
        np.testing.assert_array_equal(decode_png(png), attention.head_grid(image, heads))
    assert [e.step for e in acc.Tensors("attention/rollout")] == [0, 1]


def test_the_logger_refuses_a_cnn_and_unknown_blocks_before_writing(tmp_path, rng):
    import keras_zoo

    x = rng.random((2, 32, 32, 3)).astype("float32")
    cnn = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=2)
    cnn.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    with pytest.raises(ValueError, match="^model: expected a model with MultiHeadAttention"):
        cnn.fit(x, np.arange(2), verbose=0, callbacks=[AttentionMapLogger(tmp_path / "a", x)])
    vit = small_vit()
    vit.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    x = rng.random((2, SIZE, SIZE, 3)).astype("float32")
    logger = AttentionMapLogger(tmp_path / "b", x, blocks=["encoder.layers.encoder_layer_9"])
    with pytest.raises(ValueError, match="^blocks: expected MultiHeadAttention layer names"):
        vit.fit(x, np.arange(2), verbose=0, callbacks=[logger])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(TypeError, match=r"^blocks: expected MultiHeadAttention layer names"):
        AttentionMapLogger(tmp_path / "c", x, blocks=[0.5])


def test_tensorboard_server_shows_the_attention_maps(attention_run, tmp_path):
    log_dir, _, _ = attention_run
    expected = {"attention/rollout", f"attention/{BLOCKS[1]}"}
    with TensorBoardServer(log_dir, tmp_path / "tensorboard.log") as server:
        tags = server.wait_for(
            "/data/plugin/images/tags", lambda answer: expected <= set(answer.get(".", {}))
        )
        assert tags["."]["attention/rollout"]["samples"] == SAMPLES
        query = urllib.parse.urlencode(
            {"tag": f"attention/{BLOCKS[1]}", "run": ".", "sample": SAMPLES - 1}
        )
        entries = server.json(f"/data/plugin/images/images?{query}")
        assert [entry["step"] for entry in entries] == [0, 1]
        png = server.get(f"/data/plugin/images/individualImage?{entries[-1]['query']}")
        _, _, pngs = images_of(load_events(log_dir), f"attention/{BLOCKS[1]}")
        np.testing.assert_array_equal(decode_png(png), decode_png(pngs[-1]))


# ---------------------------------------------------------------------------------------------
# keras-zoo analyze-features on a ViT


@pytest.fixture(scope="module")
def saved_vit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit")
    model = small_vit()
    rng = np.random.default_rng(7)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.weights])
    model.save(folder / "vit.keras")
    image = folder / "photo.png"
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(image)
    return str(folder / "vit.keras"), str(image)


def test_analyze_features_draws_the_attention_of_a_vit(saved_vit, tmp_path, capsys):
    path, image = saved_vit
    out = tmp_path / "features"
    argv = ["analyze-features", path, "--image", image, "--out", str(out)]
    assert cli.main([*argv, "--attention-blocks", "0", BLOCKS[2]]) == 0
    files = sorted(os.listdir(out))
    assert files == [
        "attention.npz",
        f"attention_{BLOCKS[0]}.png",
        f"attention_{BLOCKS[2]}.png",
        "attention_rollout.png",
        # the blocks, a ViT's feature outputs, as the 4x4 maps of their patch tokens
        *(f"encoder.layers.encoder_layer_{i}.png" for i in range(LAYERS)),
        "feature_stats.csv",
    ]
    rows = (out / "feature_stats.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:2] for row in rows] == [
        [f"encoder.layers.encoder_layer_{i}", f"{GRID}x{GRID}x{WIDTH}"] for i in range(LAYERS)
    ]
    model = keras.models.load_model(path)
    x = prepare_image(image, model)
    maps = attention.attention_maps(model, x, [0, 2])
    with np.load(out / "attention.npz") as saved:
        assert sorted(saved) == sorted(["rollout", BLOCKS[0], BLOCKS[2]])
        np.testing.assert_allclose(saved["rollout"], maps.rollout[0], rtol=1e-6)
        np.testing.assert_allclose(saved[BLOCKS[2]], maps.heads[BLOCKS[2]][0], rtol=1e-6)
    for name in files:
        if name.endswith(".png"):
            with Image.open(out / name) as png:
                picture = np.asarray(png.convert("RGB"))
            assert picture.shape[1] >= 500 and picture.std() > 20, name
    assert "attention rollout" in capsys.readouterr().out


@pytest.mark.parametrize(
    "blocks, expected",
    [
        ("7", "--attention-blocks: expected attention block indices from -3 to 2"),
        ("ln_1", "--attention-blocks: expected MultiHeadAttention layer names"),
    ],
)
def test_analyze_features_refuses_unknown_attention_blocks_before_writing(
    saved_vit, tmp_path, capsys, blocks, expected
):
    path, image = saved_vit
    out = tmp_path / "none"
    argv = ["analyze-features", path, "--image", image, "--out", str(out)]
    assert cli.main([*argv, "--attention-blocks", blocks]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith(f"keras-zoo analyze-features: error: {expected}")
    assert not out.exists()


def test_analyze_features_refuses_attention_blocks_for_a_cnn(tmp_path, capsys):
    import keras_zoo

    path = tmp_path / "cnn.keras"
    keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=2).save(path)
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    out = tmp_path / "none"
    argv = ["analyze-features", str(path), "--image", str(image), "--out", str(out)]
    assert cli.main([*argv, "--attention-blocks", "0"]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: --attention-blocks: expected a model with MultiHeadAttention" in message
    assert not out.exists()
    assert cli.main(argv) == 0  # without the option a CNN writes its feature maps, no attention
    assert not any(name.startswith("attention") for name in os.listdir(out))
