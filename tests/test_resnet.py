import keras
import numpy as np
import pytest

import keras_zoo
from tests.conftest import assert_save_load_round_trip
from tests.test_registry import RESNET_IDS


@pytest.mark.parametrize("name", RESNET_IDS)
def test_parameter_count_and_macs_equal_torchvision(name):
    # model_info carries torchvision's published figures; the model must reproduce both.
    info = keras_zoo.model_info(name)
    model = keras_zoo.build(name)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == info.params
    assert keras_zoo.count_macs(model) / 1e9 == pytest.approx(info.gmacs, abs=5e-4)


@pytest.mark.parametrize(
    "name, channels", [("resnet18", (64, 128, 256, 512)), ("resnet50", (256, 512, 1024, 2048))]
)
def test_shapes_with_and_without_the_top(name, channels):
    assert keras_zoo.build(name).output.shape == (None, 1000)
    assert keras_zoo.build(name, classes=7).output.shape == (None, 7)
    headless = keras_zoo.build(name, include_top=False)
    assert headless.output.shape == (None, 7, 7, channels[-1])
    for pooling in ("avg", "max"):
        pooled = keras_zoo.build(name, include_top=False, pooling=pooling)
        assert pooled.output.shape == (None, channels[-1])


def test_pooling_max_and_avg_compute_what_they_say(rng):
    x = rng.normal(size=(2, 64, 64, 3)).astype("float32")
    maps = keras_zoo.build("resnet18", include_top=False, input_shape=(64, 64, 3))
    feats = maps.predict(x, verbose=0)
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        pooled = keras_zoo.build(
            "resnet18", include_top=False, pooling=pooling, input_shape=(64, 64, 3)
        )
        pooled.set_weights(maps.get_weights())
        np.testing.assert_allclose(
            pooled.predict(x, verbose=0), reduce(feats, axis=(1, 2)), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_features_only_gives_stage_outputs_at_strides_4_to_32(name):
    model = keras_zoo.build(name, features_only=True, input_shape=(224, 160, 3))
    shapes = [tuple(o.shape[1:3]) for o in model.outputs]
    assert shapes == [(56, 40), (28, 20), (14, 10), (7, 5)]
    widths = [o.shape[-1] for o in model.outputs]
    assert widths == sorted(widths) and len(set(widths)) == 4
    picked = keras_zoo.build(
        name, features_only=True, out_indices=(1, 3), input_shape=(224, 160, 3)
    )
    assert [tuple(o.shape[1:]) for o in picked.outputs] == [
        tuple(model.outputs[1].shape[1:]),
        tuple(model.outputs[3].shape[1:]),
    ]


def test_stage_record_is_in_every_model_and_survives_save_load(tmp_path):
    model = keras_zoo.build("resnet18", input_shape=(64, 64, 3))
    stages = keras_zoo.stage_outputs(model)
    assert [(s.name, s.stride) for s in stages] == [
        ("stage1", 4),
        ("stage2", 8),
        ("stage3", 16),
        ("stage4", 32),
    ]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [(s.name, s.stride) for s in keras_zoo.stage_outputs(loaded)] == [
        (s.name, s.stride) for s in stages
    ]
    # nested in a user's model, the record is still found
    inputs = keras.Input((64, 64, 3))
    outer = keras.Model(inputs, keras.layers.Dense(2)(model(inputs)))
    assert [s.stride for s in keras_zoo.stage_outputs(outer)] == [4, 8, 16, 32]


@pytest.mark.parametrize("size", [(32, 32), (97, 131), (64, 200)])
def test_any_size_from_32_works_with_the_top(size, rng):
    model = keras_zoo.build("resnet18", input_shape=(*size, 3), classes=5)
    out = model.predict(rng.normal(size=(2, *size, 3)).astype("float32"), verbose=0)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_variable_input_size_without_the_top(rng):
    model = keras_zoo.build("resnet50", include_top=False, input_shape=(None, None, 3))
    for h, w in ((64, 64), (97, 131)):
        out = model(rng.normal(size=(1, h, w, 3)).astype("float32"))
        # torch's output size for the stride-2 stem, max pool and stages: floor((n - 1) / 2) + 1
        expect = [h, w]
        for _ in range(5):
            expect = [(n - 1) // 2 + 1 for n in expect]
        assert tuple(out.shape) == (1, *expect, 2048)


def test_classifier_activation():
    soft = keras_zoo.build("resnet18", input_shape=(32, 32, 3))
    assert soft.layers[-1].name == "predictions"
    assert soft.layers[-1].activation is keras.activations.softmax
    logits = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classifier_activation=None)
    assert logits.layers[-1].name == "fc"
    assert logits.layers[-1].activation is keras.activations.linear
    sig = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classifier_activation="sigmoid")
    assert sig.layers[-1].activation is keras.activations.sigmoid


def test_input_tensor_and_other_channel_counts(rng):
    tensor = keras.Input((96, 96, 3))
    model = keras_zoo.build("resnet18", input_tensor=tensor, include_top=False)
    assert model.inputs[0] is tensor
    assert model.output.shape == (None, 3, 3, 512)
    for channels in (1, 4):
        m = keras_zoo.build("resnet18", include_top=False, input_shape=(64, 64, channels))
        assert m(rng.normal(size=(1, 64, 64, channels)).astype("float32")).shape == (1, 2, 2, 512)


def test_layer_names_are_torchvision_module_paths():
    names = {layer.name for layer in keras_zoo.build("resnet50").layers if layer.weights}
    for expected in (
        "conv1",
        "bn1",
        "layer1.0.conv1",
        "layer1.0.bn3",
        "layer1.0.downsample.0",
        "layer1.0.downsample.1",
        "layer4.2.conv3",
        "fc",
    ):
        assert expected in names
    assert "layer1.1.downsample.0" not in names
    assert all(isinstance(n, str) and "/" not in n for n in names)


def test_batch_norm_settings_match_torch():
    bns = [
        layer
        for layer in keras_zoo.build("resnet18").layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert bns and all(bn.epsilon == 1e-5 and bn.momentum == pytest.approx(0.9) for bn in bns)


def test_save_load_round_trip_gives_identical_outputs(tmp_path, rng):
    model = keras_zoo.build("resnext50_32x4d", input_shape=(64, 64, 3), classes=10)
    x = rng.normal(size=(2, 64, 64, 3)).astype("float32")
    assert_save_load_round_trip(model, x, tmp_path)


def test_weights_file_round_trip_through_build(tmp_path, rng):
    model = keras_zoo.build("resnet18", input_shape=(64, 64, 3), classes=3)
    path = tmp_path / "r18.weights.h5"
    model.save_weights(path)
    again = keras_zoo.build("resnet18", input_shape=(64, 64, 3), classes=3, weights=str(path))
    x = rng.normal(size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_fits_in_an_ordinary_keras_workflow(rng):
    model = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, size=(8,))
    before = [w.numpy().copy() for w in model.trainable_weights[:1]]
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(before[0], model.trainable_weights[0].numpy())
    loss, acc = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
