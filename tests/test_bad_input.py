"""Bad keywords raise ValueError or TypeError naming the argument, never a TensorFlow error."""

import keras
import pytest

import keras_zoo


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(classes=-1), ValueError, "classes must be a positive integer"),
        (dict(classes=0), ValueError, "classes"),
        (dict(classes=2.5), ValueError, "classes"),
        (dict(classes=True), ValueError, "classes"),
        (dict(include_top=False, pooling="mean"), ValueError, "pooling must be one of None, 'avg', 'max'"),
        (dict(pooling="max"), ValueError, "pooling='max' applies only with include_top=False"),
        (dict(input_shape=(16, 16, 3)), ValueError, "input_shape.*>= 32"),
        (dict(input_shape=(224, 224)), ValueError, r"input_shape must be \(height, width, channels\)"),
        (dict(input_shape=(3, 224, 224)), ValueError, r"channels-first.*\(224, 224, 3\)"),
        (dict(input_shape=(224, 224, 0)), ValueError, "channel count"),
        (dict(input_shape=(224, 224, None)), ValueError, "channel count"),
        (dict(input_shape="224"), ValueError, "input_shape"),
        (dict(weights="/no/such/file.weights.h5"), ValueError, "no such file"),
        (dict(weights="model.pkl"), ValueError, "weights='model.pkl'"),
        (dict(weights=3), TypeError, "weights must be None, 'imagenet', a weight set key"),
        (dict(include_top="yes"), TypeError, "include_top must be True or False"),
        (dict(classifier_activation="softmaxx"), ValueError, "classifier_activation"),
        (dict(input_tensor=[1, 2, 3]), TypeError, "input_tensor must be a symbolic Keras tensor"),
        (dict(out_indices=(0,)), ValueError, "out_indices applies only with features_only"),
        (dict(features_only=True, out_indices=(4,)), ValueError, "out_indices must be"),
        (dict(features_only=True, out_indices=(1, 1)), ValueError, "out_indices must be"),
        (dict(features_only=True, pooling="avg"), ValueError, "pooling does not apply"),
        (dict(name=""), TypeError, "name must be"),
    ],
)
def test_bad_keywords(kwargs, error, match):
    with pytest.raises(error, match=match):
        keras_zoo.build("resnet18", **kwargs)


def test_input_tensor_and_input_shape_must_agree():
    with pytest.raises(ValueError, match="disagrees with input_tensor"):
        keras_zoo.build("resnet18", input_tensor=keras.Input((64, 64, 3)), input_shape=(96, 96, 3))


def test_input_tensor_too_small():
    with pytest.raises(ValueError, match="input_tensor shape"):
        keras_zoo.build("resnet18", input_tensor=keras.Input((16, 16, 3)))


def test_weights_that_do_not_fit(tmp_path):
    small = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3)
    path = tmp_path / "r18.weights.h5"
    small.save_weights(path)
    with pytest.raises(ValueError, match="do not fit resnet50"):
        keras_zoo.build("resnet50", input_shape=(32, 32, 3), classes=3, weights=str(path))


def test_a_keras_file_that_does_not_fit_leaves_the_model_unchanged(tmp_path):
    from keras_zoo.port.loading import load_keras_file

    keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3).save_weights(
        tmp_path / "r18.weights.h5")
    model = keras_zoo.build("resnet34", input_shape=(32, 32, 3), classes=3)
    before = model.get_weights()
    with pytest.raises(ValueError, match="do not fit resnet34"):
        load_keras_file(model, str(tmp_path / "r18.weights.h5"), ("fc",), full_model=None)
    assert all((a == b).all() for a, b in zip(before, model.get_weights()))
