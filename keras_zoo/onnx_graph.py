"""ONNX export around tf2onnx: the Keras model rewritten before conversion, the graph after.

tf2onnx turns TensorFlow's NHWC graph into ONNX's NCHW one by wrapping every layout-bound op
in transposes and then cancelling the pairs it can push through the ops between them. Two
things in keras_zoo's models defeat that, and what is left runs at half the speed of torch's
own export of the same architecture in ONNX Runtime or OpenVINO:

- A channel shuffle is a reshape and a transpose of the NHWC tensor, which no transpose can
  pass: tf2onnx leaves three transposes per shuffle and one before each of its consumers.
- Keras' hard_silu and hard_sigmoid add a scalar 3, on which tf2onnx 1.17's transpose
  optimizer fails (`max() arg is an empty sequence`) and then leaves every transpose of the
  graph in place, two per layer.

A third is TensorFlow's: where its kernels do not differentiate grouped convolutions,
keras_zoo.layers.Conv2D wraps them in a Snapshot op, which tf2onnx cannot convert.

`for_tf2onnx(model)` therefore computes grouped convolutions as one plain Conv2D op, each
channel shuffle as a 1x1 convolution with a permutation kernel (which converts like any
convolution) and the hard activations with rank-1 constants; `rewrite(path)` then turns those
convolutions back into shuffles of the NCHW tensor and the hard activations into ONNX's
HardSwish and HardSigmoid ops, as torch's exporter writes them. The function is the same: a
permutation is exact, the activations agree to float32 rounding.

`rewrite` also removes two kinds of node that tf2onnx leaves and torch's exporter does not
write, each of which costs ONNX Runtime a change of its blocked NCHWc layout and back: the zero
Pad before a depthwise convolution or a pooling (keras_zoo's explicit form of torch's
symmetric padding), which becomes that node's own padding, and the Reshape to the shape a
tensor already has (two in each squeeze-and-excitation block). Without them ONNX Runtime's
optimized graph changes layout no more often than in torch's export of the same architecture
(tests/test_deploy.py counts both).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_zoo import walk
from keras_zoo.layers import ChannelShuffle, Conv2D

_HARD = ("hard_silu", "hard_sigmoid")  # Keras' activations that _HardActivation computes


class _GroupedConv(Conv2D):
    """keras_zoo's Conv2D as the one TensorFlow op it computes in inference."""

    def convolution_op(self, inputs, kernel):
        return self.tensorflow_convolution(inputs, kernel)


class _HardActivation(keras.layers.Layer):
    """hard_silu or hard_sigmoid as Keras computes them, x * relu6(x + 3) / 6 and
    relu6(x + 3) / 6, with constants of shape (1,) in place of scalars."""

    def __init__(self, kind: str, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind

    def call(self, x):
        import tensorflow as tf

        gate = tf.nn.relu6(x + tf.constant([3.0], x.dtype)) * tf.constant([1 / 6], x.dtype)
        return x * gate if self.kind == "hard_silu" else gate


def for_tf2onnx(model: keras.Model, input_shape: tuple[int, ...]) -> keras.Model:
    """`model`, called once on `input_shape`, with each grouped keras_zoo Conv2D one that is
    one TensorFlow op, each ChannelShuffle a 1x1 Conv2D of the same name whose kernel is its
    permutation and each hard_silu / hard_sigmoid Activation a layer with rank-1 constants;
    every other layer is shared. `model` itself when it has none of them."""

    def grouped(layer):
        return isinstance(layer, Conv2D) and layer.groups > 1

    def hard(layer):
        return (
            isinstance(layer, keras.layers.Activation)
            and getattr(layer.activation, "__name__", None) in _HARD
        )

    def replaced(layer):
        if grouped(layer):
            conv = _GroupedConv.from_config(layer.get_config())
            conv.build(layer.input.shape)
            conv.set_weights(layer.get_weights())
            return conv
        if isinstance(layer, ChannelShuffle):
            channels = layer.input.shape[-1]
            kernel = np.zeros((1, 1, channels, channels), np.float32)
            kernel[0, 0, layer.permutation(channels), np.arange(channels)] = 1.0
            conv = keras.layers.Conv2D(channels, 1, use_bias=False, name=layer.name)
            conv.build(layer.input.shape)
            conv.set_weights([kernel])
            return conv
        if hard(layer):
            return _HardActivation(layer.activation.__name__, name=layer.name)
        return layer

    if not any(
        grouped(layer) or hard(layer) or isinstance(layer, ChannelShuffle)
        for layer in walk.layers(model)
    ):
        return model
    copy = keras.models.clone_model(model, clone_function=replaced, recursive=True)
    copy(np.zeros((1, *input_shape), np.float32), training=False)  # tf2onnx needs a call
    return copy


def rewrite(path: str) -> dict[str, int]:
    """Rewrites the ONNX file at `path` in place: 1x1 convolutions whose kernel is a channel
    shuffle's permutation matrix (no bias, stride, padding or groups) become that shuffle
    (reshape to groups, transpose, reshape back, as torch exports it); Add 3, Clip 0..6,
    Mul 1/6 (, Mul x) become HardSigmoid (HardSwish); a zero Pad of the spatial axes read
    only by a Conv or a pooling becomes that node's own padding where it computes the same
    (keras_zoo pads explicitly where torch's symmetric padding differs from Keras' "same");
    a Reshape to the shape its input already has (tf2onnx leaves two in each
    squeeze-and-excitation block) is dropped. Returns how many of each it rewrote."""
    import onnx

    model = onnx.load(path)
    graph = _Graph(model.graph)
    counts = {"ChannelShuffle": 0, "HardSwish": 0, "HardSigmoid": 0, "Pad": 0, "Reshape": 0}
    for node in list(graph.nodes):
        if node.op_type == "Conv":
            counts["ChannelShuffle"] += graph.permutation_to_shuffle(node)
        elif node.op_type == "Clip":
            kind = graph.hard_activation(node)
            if kind:
                counts[kind] += 1
        elif node.op_type == "Pad":
            counts["Pad"] += graph.pad_into_consumer(node)
    shapes = _static_shapes(model)
    for node in list(graph.nodes):
        if node.op_type == "Reshape":
            counts["Reshape"] += graph.drop_identity_reshape(node, shapes)
    if any(counts.values()):
        graph.drop_unused()
        onnx.save(model, path)
    return counts


def nchw_input(path: str) -> int:
    """Rewrites the ONNX file at `path` in place to take its 4-D image input in NCHW order,
    as torch's exports do, in place of Keras' NHWC: the Transpose to NCHW that tf2onnx puts
    after the input goes, and with it the one after a per-channel scale and shift of the
    input (a model that normalises its own input), whose constants are laid out for NCHW.
    Any other node that read the NHWC input reads it from a Transpose back. The input keeps
    its name. Returns how many nodes still read an NHWC copy (0 for keras_zoo's models);
    ValueError when the graph has no single 4-D input."""
    import onnx
    from onnx import helper

    model = onnx.load(path)
    graph = _Graph(model.graph)
    inputs = [i for i in model.graph.input if i.name not in graph.weights]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise ValueError(f"{path}: an NCHW input needs a graph with one 4-D input")
    dims = inputs[0].type.tensor_type.shape.dim
    name, nhwc = inputs[0].name, inputs[0].name + "/nhwc"
    for node in graph.nodes:
        node.input[:] = [nhwc if i == name else i for i in node.input]
    graph.nodes.insert(
        0, helper.make_node("Transpose", [name], [nhwc], name=nhwc, perm=[0, 2, 3, 1])
    )
    for node in graph.consumers(nhwc):
        graph.nchw_chain(node, nhwc, name, dims[3].dim_value)
    left = len(graph.consumers(nhwc))
    if not left:
        graph.nodes.remove(graph.nodes[0])
    graph.drop_unused()
    order = [onnx.TensorShapeProto.Dimension() for _ in range(4)]
    for new, old in zip(order, (dims[0], dims[3], dims[1], dims[2])):
        new.CopyFrom(old)
    del dims[:]
    dims.extend(order)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return left


def _static_shapes(model) -> dict[str, tuple]:
    """Each tensor's shape by ONNX's shape inference, -1 for an axis it cannot fix."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model).graph
    return {
        value.name: tuple(
            d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim
        )
        for value in [*inferred.value_info, *inferred.input, *inferred.output]
        if value.type.tensor_type.HasField("shape")
    }


def _attributes(node) -> dict:
    """An ONNX node's attributes as {name: Python value}."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Graph:
    """An ONNX GraphProto with the look-ups the rewrites need."""

    def __init__(self, graph):
        from onnx import numpy_helper

        self.graph = graph
        self.weights = {w.name: w for w in graph.initializer}
        self._array = numpy_helper.to_array

    @property
    def nodes(self):
        return self.graph.node

    def constant(self, name: str) -> np.ndarray | None:
        return self._array(self.weights[name]) if name in self.weights else None

    def consumers(self, output: str) -> list:
        used = [n for n in self.graph.node if output in n.input]
        return used if output not in {o.name for o in self.graph.output} else used + [None]

    def producer(self, output: str):
        return next((n for n in self.graph.node if output in n.output), None)

    def replace(self, first, last, *nodes) -> None:
        """Puts `nodes` where `first` was and removes every node from `first` to `last`
        (a chain whose inner outputs nothing else reads)."""
        chain, current = [first], first
        while current is not last:
            current = self.consumers(current.output[0])[0]
            chain.append(current)
        index = list(self.graph.node).index(first)
        for old in chain:
            self.graph.node.remove(old)
        for offset, node in enumerate(nodes):
            self.graph.node.insert(index + offset, node)

    def permutation_to_shuffle(self, conv) -> int:
        """Rewrites 1x1 convolution `conv` as a channel shuffle when its kernel is one's
        permutation matrix; returns 1 if it did, else 0."""
        from onnx import helper, numpy_helper

        attributes = _attributes(conv)
        plain = {"group": 1, "strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0]}
        kernel = self.constant(conv.input[1]) if len(conv.input) == 2 else None
        if (
            kernel is None
            or kernel.ndim != 4
            or kernel.shape[2:] != (1, 1)
            or kernel.shape[0] != kernel.shape[1]
            or any(attributes.get(k, v) != v for k, v in plain.items())
            or attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
        ):
            return 0
        matrix = kernel[:, :, 0, 0]  # (out, in)
        channels = len(matrix)
        if not (np.isin(matrix, (0, 1)).all() and (matrix.sum(1) == 1).all()):
            return 0
        source = matrix.argmax(1)
        groups = next(
            (
                g
                for g in range(2, channels + 1)
                if channels % g == 0
                and np.array_equal(ChannelShuffle(g).permutation(channels), source)
            ),
            None,
        )
        if groups is None:
            return 0
        # torch's exporter's form, which OpenVINO runs right (it computed a Gather of the
        # channels followed by the split of ShuffleNet V2 wrong)
        x, name = conv.input[0], conv.name
        shape = numpy_helper.from_array(
            np.array([0, groups, channels // groups, -1], np.int64), f"{name}/grouped_shape"
        )
        self.graph.initializer.append(shape)
        self.weights[shape.name] = shape
        nodes = [
            helper.make_node("Shape", [x], [f"{name}/shape"], name=f"{name}/shape"),
            helper.make_node(
                "Reshape", [x, shape.name], [f"{name}/grouped"], name=f"{name}/grouped"
            ),
            helper.make_node(
                "Transpose",
                [f"{name}/grouped"],
                [f"{name}/transposed"],
                name=f"{name}/transposed",
                perm=[0, 2, 1, 3],
            ),
            helper.make_node(
                "Reshape", [f"{name}/transposed", f"{name}/shape"], list(conv.output), name=name
            ),
        ]
        self.replace(conv, conv, *nodes)
        return 1

    def pad_into_consumer(self, pad) -> int:
        """Moves zero Pad node `pad` of the two spatial axes of an NCHW tensor into the
        padding of the one node that reads it, where that computes the same: a Conv; an
        AveragePool, told to count the padding (as a zero pad does); a MaxPool of a Relu's
        output, whose windows each hold a real element >= 0, so that ONNX's ignored padding
        and a zero are alike. Returns 1 if it did, else 0."""
        from onnx import helper

        attributes = _attributes(pad)
        pads = self.constant(pad.input[1]) if len(pad.input) >= 2 else None
        value = pad.input[2] if len(pad.input) >= 3 and pad.input[2] else None
        node = self._single_consumer(pad)
        if (
            pads is None
            or pads.shape != (8,)
            or (pads < 0).any()
            or pads[[0, 1, 4, 5]].any()
            or attributes.get("mode", b"constant") != b"constant"
            or (value is not None and not self._is(value, 0.0))
            or len(pad.input) > 3
            or node is None
            or node.input[0] != pad.output[0]
        ):
            return 0
        own = _attributes(node)
        before = list(own.get("pads", [0, 0, 0, 0]))
        added = [int(p) for p in pads[[2, 3, 6, 7]]]  # h and w: begin, then end
        source = self.producer(pad.input[0])
        if (
            own.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")  # VALID: no padding
            or node.op_type not in ("Conv", "AveragePool", "MaxPool")
            or (
                node.op_type == "AveragePool"
                and any(before)
                and not own.get("count_include_pad", 0)
            )
            or (
                node.op_type == "MaxPool"
                and (
                    source is None
                    or source.op_type != "Relu"
                    or any(p >= k for p, k in zip(added, 2 * own["kernel_shape"]))
                )
            )
        ):
            return 0
        kept = [
            a for a in node.attribute if a.name not in ("pads", "auto_pad", "count_include_pad")
        ]  # (AveragePool's)
        kept.append(helper.make_attribute("pads", [a + b for a, b in zip(before, added)]))
        if node.op_type == "AveragePool":
            kept.append(helper.make_attribute("count_include_pad", 1))
        del node.attribute[:]
        node.attribute.extend(kept)
        node.input[0] = pad.input[0]
        self.graph.node.remove(pad)
        return 1

    def drop_identity_reshape(self, reshape, shapes: dict[str, tuple]) -> int:
        """Drops Reshape node `reshape` when its constant target is its input's static shape
        (-1, 0 (copy) or the same size on the batch axis) and it is not a graph output;
        returns 1 if it did, else 0."""
        target = self.constant(reshape.input[1])
        source = shapes.get(reshape.input[0])
        output = reshape.output[0]
        literal_zeros = _attributes(reshape).get("allowzero", 0)  # 0 a size, not "copy"
        if (
            target is None
            or source is None
            or len(target) != len(source)
            or not len(source)
            or literal_zeros
            or -1 in source[1:]
            or tuple(target[1:]) != source[1:]
            or target[0] not in (-1, 0, source[0])
            or None in self.consumers(output)
        ):
            return 0
        for node in self.consumers(output):
            for i, name in enumerate(node.input):
                if name == output:
                    node.input[i] = reshape.input[0]
        self.graph.node.remove(reshape)
        return 1

    def nchw_chain(self, first, nhwc: str, nchw: str, channels: int) -> bool:
        """Where `first`, a reader of tensor `nhwc`, the NHWC copy of graph input `nchw`,
        starts a chain of Add, Sub, Mul or Div by constants of one value or one per channel
        that ends in a Transpose to NCHW (or is that Transpose), makes the chain compute on
        `nchw` itself and drops the Transpose; returns whether it did."""
        from onnx import numpy_helper

        chain, node, constants = [], first, {}
        while node is not None and node.op_type in ("Add", "Sub", "Mul", "Div"):
            constant = next((i for i in node.input if i in self.weights), None)
            value = self.constant(constant) if constant else None
            if (
                value is None
                or len(node.input) != 2
                or list(node.input).count(constant) != 1
                or value.ndim > 4
                or (value.size != 1 and (value.shape[-1:] != (channels,) or value.size != channels))
            ):
                return False
            constants[node.name] = (
                constant,
                value if value.size == 1 else value.reshape(channels, 1, 1),
            )
            chain.append(node)
            node = self._single_consumer(node)
        if (
            node is None
            or node.op_type != "Transpose"
            or list(_attributes(node)["perm"]) != [0, 3, 1, 2]
            or None in self.consumers(node.output[0])
        ):
            return False
        for step in chain:
            constant, value = constants[step.name]
            tensor = numpy_helper.from_array(value, f"{step.name}/{constant}/nchw")
            self.graph.initializer.append(tensor)
            self.weights[tensor.name] = tensor
            step.input[:] = [tensor.name if i == constant else i for i in step.input]
        first.input[:] = [nchw if i == nhwc else i for i in first.input]
        end = chain[-1].output[0] if chain else nchw
        for reader in self.consumers(node.output[0]):
            reader.input[:] = [end if i == node.output[0] else i for i in reader.input]
        self.graph.node.remove(node)
        return True

    def hard_activation(self, clip) -> str | None:
        """The kind of hard activation around Clip node `clip` that it rewrote, or None."""
        from onnx import helper

        add = self.producer(clip.input[0])
        scale = self._single_consumer(clip)
        if (
            add is None
            or add.op_type != "Add"
            or scale is None
            or scale.op_type != "Mul"
            or len(clip.input) != 3
            or not self._is(clip.input[1], 0.0)
            or not self._is(clip.input[2], 6.0)
            or self._single_consumer(add) is not clip
        ):
            return None
        x = self._other_input(add, 3.0)
        if x is None or self._other_input(scale, np.float32(1 / 6)) != clip.output[0]:
            return None
        gate = self._single_consumer(scale)
        if gate is not None and gate.op_type == "Mul" and set(gate.input) == {x, scale.output[0]}:
            self.replace(
                add, gate, helper.make_node("HardSwish", [x], list(gate.output), name=gate.name)
            )
            return "HardSwish"
        self.replace(
            add,
            scale,
            helper.make_node(
                "HardSigmoid", [x], list(scale.output), name=scale.name, alpha=1 / 6, beta=0.5
            ),
        )
        return "HardSigmoid"

    def _is(self, name: str, value: float) -> bool:
        array = self.constant(name)
        return array is not None and array.size >= 1 and bool(np.all(array == value))

    def _other_input(self, node, value: float) -> str | None:
        """The input of binary `node` that is not the constant `value` everywhere."""
        if len(node.input) != 2:
            return None
        a, b = node.input
        return a if self._is(b, value) else b if self._is(a, value) else None

    def _single_consumer(self, node):
        used = self.consumers(node.output[0])
        return used[0] if len(used) == 1 else None

    def drop_unused(self) -> None:
        used = {name for node in self.graph.node for name in node.input}
        kept = [w for w in self.graph.initializer if w.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
