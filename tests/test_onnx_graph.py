"""keras_zoo.onnx_graph: the rewrites around tf2onnx keep the function and touch nothing else.

The outputs compared come from ONNX Runtime running the written file, against Keras."""

from collections import Counter

import keras
import numpy as np
import onnx
from conftest import relative_error

import keras_zoo
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


def test_zero_pads_become_the_padding_of_the_node_that_reads_them(tmp_path):
    # keras_zoo pads explicitly where torch's symmetric padding is not Keras' "same"; tf2onnx
    # folds such a Pad into a plain convolution but leaves it before a depthwise one and a
    # pooling, where ONNX Runtime pays a layout change (NCHWc and back) for each
    layers = keras.layers
    inputs = keras.Input((9, 9, 3))
    x = layers.Conv2D(4, 1, name="stem")(inputs)
    x = layers.DepthwiseConv2D(3, 2, name="depthwise")(layers.ZeroPadding2D(1)(x))
    relu = layers.ReLU()(x)
    x = layers.MaxPooling2D(3, 1)(layers.ZeroPadding2D(1)(relu))  # of a ReLU: a zero is no max
    x = layers.AveragePooling2D(3, 1)(layers.ZeroPadding2D(1)(x))  # counting the zeros
    linear = layers.Conv2D(4, 1, name="linear")(x)
    # of a linear output a zero can be the max of a window: this Pad stays
    x = layers.MaxPooling2D(3, 1)(layers.ZeroPadding2D(1)(linear))
    model = keras.Model(inputs, layers.GlobalAveragePooling2D()(x))
    _, ops = _exported_ops(model, tmp_path)  # the same outputs: a wrong fold changes borders
    assert ops["Pad"] == 1 and ops["Conv"] == 3 and ops["MaxPool"] == 2


def test_reshapes_to_the_shape_they_have_are_dropped(tmp_path):
    from keras_zoo.blocks import se_block

    inputs = keras.Input((6, 6, 3))
    x = se_block(keras.layers.Conv2D(8, 1)(inputs), 4, name="se")  # tf2onnx leaves 2 there
    x = keras.layers.Reshape((36, 8))(x)  # one that changes the shape stays
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(x))
    _, ops = _exported_ops(model, tmp_path)
    assert ops["Reshape"] == 1 and ops["GlobalAveragePool"] == 1


def _nchw_exported(model, tmp_path):
    """`model` exported with an NCHW input, its outputs checked against Keras' on NHWC
    batches; returns the graph."""
    path = tmp_path / "m.onnx"
    keras_zoo.export(model, path, layout="nchw", verbose=False)
    x = np.random.default_rng(3).uniform(0, 1, (4, *model.inputs[0].shape[1:]))
    x = x.astype("float32")
    runtime = keras_zoo.load_exported(path)
    assert runtime.layout == "nchw"
    got = runtime(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert relative_error(got, model.predict(x, verbose=0)) < 1e-6
    return onnx.load(path).graph


def test_an_nchw_input_starts_at_the_first_convolution(tmp_path):
    # the normalisation of an input of pixels (build's include_preprocessing: a per-channel
    # scale and shift, then a scalar one) becomes NCHW with it: no transpose is left
    from keras_zoo.layers import Normalize

    inputs = keras.Input((7, 9, 3))
    x = Normalize((0.4, 0.5, 0.6), (0.2, 0.25, 0.3))(inputs)
    x = keras.layers.Rescaling(2.0, offset=-1.0)(x)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    graph = _nchw_exported(model, tmp_path)
    ops = Counter(node.op_type for node in graph.node)
    assert ops["Transpose"] == 0 and ops["Conv"] == 1
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 7, 9]


def test_an_nchw_input_read_in_nhwc_order_gets_a_transpose_back(tmp_path):
    inputs = keras.Input((5, 6, 3))
    conv = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 1)(inputs))
    flat = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))  # reads H, W, C in order
    model = keras.Model(inputs, keras.layers.Add()([conv, flat]))
    graph = _nchw_exported(model, tmp_path)
    transposes = [n for n in graph.node if n.op_type == "Transpose"]
    assert len(transposes) == 1 and transposes[0].input[0] == graph.input[0].name
