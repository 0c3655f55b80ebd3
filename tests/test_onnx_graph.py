"""keras_zoo.onnx_graph: the rewrites around tf2onnx keep the function and touch nothing else.

The outputs compared come from ONNX Runtime running the written file, against Keras."""

from collections import Counter

import keras
import numpy as np
import onnx

import keras_zoo
from conftest import relative_error
from keras_zoo import onnx_graph
from keras_zoo.layers import ChannelShuffle


def _exported_ops(model, tmp_path):
    path = tmp_path / "m.onnx"
    result = keras_zoo.export(model, path, verbose=False)
    x = np.random.default_rng(3).normal(0, 2, (4, *model.inputs[0].shape[1:]))
    x = x.astype("float32")
    assert relative_error(keras_zoo.load_exported(path)(x), model.predict(x, verbose=0)) < 1e-6
    return result, Counter(node.op_type for node in onnx.load(path).graph.node)


def _conv(channels, kernel, name):
    layer = keras.layers.Conv2D(channels, 1, use_bias=False, name=name)
    layer.build((None, 5, 5, channels))
    layer.set_weights([kernel.reshape(1, 1, channels, channels).astype("float32")])
    return layer


def test_only_shuffle_permutations_become_shuffles(tmp_path):
    rng = np.random.default_rng(0)
    shuffle = np.eye(6)[:, ChannelShuffle(3).permutation(6)]  # out[c] = in[permutation[c]]
    assert not np.array_equal(shuffle, np.eye(6))
    inputs = keras.Input((5, 5, 3))  # export checks on RGB pictures
    x = keras.layers.Conv2D(6, 1, name="widen")(inputs)
    x = _conv(6, shuffle, "shuffle")(x)
    x = _conv(6, np.eye(6)[:, [1, 0, 3, 2, 5, 4]], "swap")(x)  # a permutation, not a shuffle
    x = _conv(6, 2 * shuffle, "scaled")(x)  # a shuffle times 2: a real convolution
    x = _conv(6, np.eye(6)[:, [0, 0, 2, 3, 4, 5]], "copies")(x)  # not one-to-one
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    _, ops = _exported_ops(model, tmp_path)
    assert ops["Conv"] == 4 and ops["Transpose"] == 2  # the input's and the shuffle's
    assert ops["Reshape"] >= 2


def test_hard_activations_become_onnx_ops_and_relu6_stays(tmp_path):
    inputs = keras.Input((5, 5, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    swish = keras.layers.Activation("hard_silu", name="swish")(x)
    gate = keras.layers.Activation("hard_sigmoid", name="gate")(swish)
    # x * hard_sigmoid(x) would be a hard-swish of x: the gate scales another tensor
    x = keras.layers.ReLU(6.0, name="relu6")(keras.layers.Multiply()([x, gate]))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    model.get_layer("conv").set_weights([w * 5 for w in model.get_layer("conv").get_weights()])
    _, ops = _exported_ops(model, tmp_path)  # inputs of std 2 times 5: every linear piece
    assert ops["HardSwish"] == 1 and ops["HardSigmoid"] == 1 and ops["Clip"] == 1
    assert ops["Transpose"] == 1  # the NHWC input's


def test_models_without_those_layers_are_exported_as_they_are():
    model = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3)
    assert onnx_graph.for_tf2onnx(model, (32, 32, 3)) is model
