"""Grouped convolutions on TensorFlow, lowered several ways, against torch eager's
torch.nn.Conv2d(groups=g): single layers at the shapes of ResNeXt-50 (3x3, 32 groups) and
ShuffleNet V1 g3 (1x1, 3 groups), and the two whole models, in inference at batch 1 and 16.

Lowerings of one Conv2D(groups=g), kernel (kh, kw, in / g, out) in every case:

- keras:       keras.layers.Conv2D(groups=g), which Keras 3 runs as an XLA-compiled function of
               its own (jit_compile on that one op), called from the model's graph;
- keras_zoo:   keras_zoo.layers.Conv2D: one TensorFlow Conv2D op on the whole tensor;
- split:       the input and kernel split in g, g convolutions, the outputs concatenated;
- depthwise:   a depthwise convolution with multiplier out / g, then a sum over each group's
               inputs;
- matmul:      (1x1 only) a batched matrix product over the groups (einsum "mgc,gco->mgo");
- block-diag:  (1x1 only) one plain convolution with the block-diagonal (in, out) kernel.

In whole models the batch norm after a grouped convolution is keras_zoo.layers.
BatchNormalization (TensorFlow's fused kernel, which it merges into a Conv2D op before it) for
"keras_zoo", as keras_zoo builds it, and Keras' own for the others ("keras_zoo, Keras BN" tells
the two effects apart). Whole models also run with XLA over the whole model ("keras, XLA":
Keras' layers, the model in one tf.function(jit_compile=True)). Everything is measured in one
process, alternating round by round (keras_zoo.bench.alternate); torch runs with 2 threads.
Other processes on the machine slow torch's threads much more than TensorFlow's: the load
averages are printed before and after.

    python scripts/bench_grouped_conv.py [--batch 1 16] [--rounds 5] [--seconds 1.0]

Prints Markdown tables: milliseconds per call (layers) or images/s (models), median
(min..max) over the rounds, and speed relative to torch (> 1: faster than torch), per round.
"""

import argparse
import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

# (input height, width, channels), output channels, kernel size, stride, groups
RESNEXT_SHAPES = [
    ((56, 56, 128), 128, 3, 1, 32),
    ((58, 58, 256), 256, 3, 2, 32),
    ((28, 28, 256), 256, 3, 1, 32),
    ((30, 30, 512), 512, 3, 2, 32),
    ((14, 14, 512), 512, 3, 1, 32),
    ((16, 16, 1024), 1024, 3, 2, 32),
    ((7, 7, 1024), 1024, 3, 1, 32),
]
SHUFFLENET_SHAPES = [
    ((28, 28, 240), 60, 1, 1, 3),
    ((28, 28, 60), 240, 1, 1, 3),
    ((14, 14, 480), 120, 1, 1, 3),
    ((14, 14, 120), 480, 1, 1, 3),
    ((7, 7, 960), 240, 1, 1, 3),
    ((7, 7, 240), 960, 1, 1, 3),
]
MODELS = ("resnext50_32x4d", "shufflenet_v1_g3_x1_0")


def _split(x, kernel, strides, padding, groups):
    import tensorflow as tf

    pairs = zip(tf.split(x, groups, axis=-1), tf.split(kernel, groups, axis=-1))
    return tf.concat([tf.nn.conv2d(a, k, strides, padding) for a, k in pairs], axis=-1)


def _depthwise(x, kernel, strides, padding, groups):
    import tensorflow as tf

    kh, kw, per_group, out = kernel.shape
    # input channel g * per_group + i, multiplier o <- kernel[..., i, g * (out / groups) + o]
    k = tf.reshape(kernel, (kh, kw, per_group, groups, out // groups))
    k = tf.reshape(tf.transpose(k, (0, 1, 3, 2, 4)), (kh, kw, groups * per_group, out // groups))
    y = tf.nn.depthwise_conv2d(x, k, (1, *strides, 1), padding)
    shape = tf.shape(y)
    y = tf.reshape(y, tf.concat([shape[:3], [groups, per_group, out // groups]], 0))
    return tf.reshape(tf.reduce_sum(y, axis=4), tf.concat([shape[:3], [out]], 0))


def _matmul(x, kernel, strides, padding, groups):
    import tensorflow as tf

    _, _, per_group, out = kernel.shape
    shape = tf.shape(x)
    k = tf.transpose(tf.reshape(kernel, (per_group, groups, out // groups)), (1, 0, 2))
    y = tf.einsum("mgc,gco->mgo", tf.reshape(x, (-1, groups, per_group)), k)
    return tf.reshape(y, tf.concat([shape[:3], [out]], 0))


def _block_diagonal(x, kernel, strides, padding, groups):
    import tensorflow as tf

    _, _, per_group, out = kernel.shape
    blocks = tf.reshape(kernel, (per_group, groups, out // groups))
    full = tf.einsum("cgo,hg->hcgo", blocks, tf.eye(groups, dtype=kernel.dtype))
    return tf.nn.conv2d(x, tf.reshape(full, (1, 1, groups * per_group, out)), 1, "VALID")


# name -> (function(x, kernel, strides, padding, groups), does it apply to this kernel size)
LOWERINGS = {
    "split": (_split, lambda k: True),
    "depthwise": (_depthwise, lambda k: True),
    "matmul": (_matmul, lambda k: k == 1),
    "block-diag": (_block_diagonal, lambda k: k == 1),
}


def lowered_conv2d(lowering: str):
    """A Conv2D class whose grouped convolutions compute with LOWERINGS[lowering]."""
    import keras

    function = LOWERINGS[lowering][0]

    class Lowered(keras.layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            return function(inputs, kernel, self.strides, self.padding.upper(), self.groups)

    return Lowered


def with_grouped_conv(model, conv_class, batch_norm_class):
    """A copy of `model` (same weights) whose grouped Conv2D layers are `conv_class` and the
    batch norms right after them `batch_norm_class`."""
    import keras

    def grouped(layer):
        return isinstance(layer, keras.layers.Conv2D) and layer.groups > 1

    def clone(layer):
        cls = layer.__class__
        if grouped(layer):
            cls = conv_class
        elif isinstance(layer, keras.layers.BatchNormalization) and grouped(
            layer.input._keras_history.operation
        ):
            # keras_zoo's class fused there (its default), Keras' without that setting
            config = {k: v for k, v in layer.get_config().items() if k != "fused"}
            return batch_norm_class.from_config(config)
        return cls.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def layer_runners(shape, filters, kernel_size, stride, groups, batch, rng):
    """{lowering: run(x)} for one grouped convolution of `shape`, and the torch reference."""
    import keras
    import tensorflow as tf
    import torch

    from keras_zoo.layers import Conv2D

    x = rng.uniform(-1, 1, (batch, *shape)).astype("float32")
    padding = "same" if kernel_size > 1 and stride == 1 else "valid"
    classes = {"keras": keras.layers.Conv2D, "keras_zoo": Conv2D}
    classes.update(
        {
            name: lowered_conv2d(name)
            for name, (_, applies) in LOWERINGS.items()
            if applies(kernel_size)
        }
    )
    kernel = None
    runners = {}
    tx = tf.constant(x)

    def runner(layer):
        fn = tf.function(layer.__call__)
        return lambda _: fn(tx).numpy()

    for name, cls in classes.items():
        layer = cls(filters, kernel_size, stride, padding=padding, groups=groups, use_bias=False)
        layer.build(x.shape)
        kernel = layer.get_weights()[0] if kernel is None else kernel
        layer.set_weights([kernel])
        runners[name] = runner(layer)
    conv = torch.nn.Conv2d(
        shape[-1],
        filters,
        kernel_size,
        stride,
        padding=kernel_size // 2 if padding == "same" else 0,
        groups=groups,
        bias=False,
    ).eval()
    conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    def run_torch(_):
        with torch.inference_mode():
            return conv(t).numpy()

    want = run_torch(x).transpose(0, 2, 3, 1)
    for name, run in runners.items():  # every lowering computes torch's function
        error = np.max(np.abs(run(x) - want)) / np.max(np.abs(want))
        assert error < 1e-5, f"{name} at {shape}: relative error {error:.1e}"
    runners["torch"] = run_torch
    return runners, x


def model_runners(name):
    """{contender: run(x)} for a whole model, and the torch reference."""
    import keras

    import keras_zoo
    from keras_zoo import bench
    from keras_zoo.layers import BatchNormalization, Conv2D
    from keras_zoo.torch_reference import torch_model

    model = keras_zoo.build(name, classifier_activation=None)
    kernel_sizes = {
        layer.kernel_size[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1
    }
    keras_bn = keras.layers.BatchNormalization
    keras_model = with_grouped_conv(model, keras.layers.Conv2D, keras_bn)
    runners = {
        "keras": bench.keras_runner(keras_model),
        "keras_zoo": bench.keras_runner(with_grouped_conv(model, Conv2D, BatchNormalization)),
        "keras_zoo, Keras BN": bench.keras_runner(with_grouped_conv(model, Conv2D, keras_bn)),
    }
    for lowering, (_, applies) in LOWERINGS.items():
        if all(applies(k) for k in kernel_sizes):
            runners[lowering] = bench.keras_runner(
                with_grouped_conv(model, lowered_conv2d(lowering), keras_bn)
            )
    runners["keras, XLA"] = bench.keras_runner(keras_model, jit_compile=True)
    runners["torch"] = bench.torch_runner(torch_model(name))
    return runners


def table(title, unit, rows, out=sys.stdout):
    """Markdown: one line per (case, batch, contender); `rows` holds per-round speeds."""
    from keras_zoo import bench

    print(f"\n{title}\n", file=out)
    print(f"| case | batch | lowering | {unit} | x torch |", file=out)
    print("|---|---:|---|---:|---:|", file=out)
    for case, batch, speeds, to_unit in rows:
        for name, values in speeds.items():
            ratio = (
                ""
                if name == "torch"
                else bench.fmt(bench.summary([a / b for a, b in zip(values, speeds["torch"])]))
            )
            shown = bench.fmt(bench.summary([to_unit(v) for v in values]), 2 if unit == "ms" else 1)
            print(f"| {case} | {batch} | {name} | {shown} | {ratio} |", file=out, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--seconds",
        type=float,
        default=1.0,
        help="seconds per contender per round (layers: half of it)",
    )
    parser.add_argument("--skip-layers", action="store_true")
    parser.add_argument("--skip-models", action="store_true")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf
    import torch

    from keras_zoo import bench

    torch.set_num_threads(2)
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {os.cpu_count()} CPUs; float32, inference "
        f"(model(x, training=False) in one tf.function); {args.rounds} rounds"
    )
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(0)
    if not args.skip_layers:
        rows = []
        for shape, filters, k, stride, groups in RESNEXT_SHAPES + SHUFFLENET_SHAPES:
            case = f"{'x'.join(map(str, shape))} -> {filters}, {k}x{k}/{stride}, g{groups}"
            for batch in args.batch:
                runners, x = layer_runners(shape, filters, k, stride, groups, batch, rng)
                ips = bench.alternate(runners, x, args.rounds, args.seconds / 2)
                rows.append((case, batch, ips, lambda v, b=batch: 1000 * b / v))
                del runners
            gc.collect()
        table("single grouped convolutions: ms per call, median (min..max)", "ms", rows)
    if not args.skip_models:
        rows = []
        for name in MODELS:
            runners = model_runners(name)
            for batch in args.batch:
                x = rng.uniform(-1, 1, (batch, 224, 224, 3)).astype("float32")
                ips = bench.alternate(runners, x, args.rounds, args.seconds)
                rows.append((name, batch, ips, lambda v: v))
            del runners
            gc.collect()
        table("whole models at 224x224: images/s, median (min..max)", "images/s", rows)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
