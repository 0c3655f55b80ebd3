"""Where XLA's training steps lose time on this CPU: one layer's forward and backward pass
(a training step's gradient of the sum of its outputs) compiled by tf.function alone and with
XLA (jit_compile), alternating, as a ratio:

    python scripts/bench_xla_training.py [--batch 32] [--rounds 5] [--seconds 1]

The layers are those the training table's models spend their time in, at the sizes of their
first stages: resnet50's 3x3 and 1x1 convolutions, mobilenet_v2's depthwise 3x3, a batch norm
in training mode, and a dense layer. docs/BENCHMARKS.md's training section is its output.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def layers():
    """(label, input shape without the batch, layer constructor)."""
    import keras

    from keras_zoo.layers import BatchNormalization

    return [
        (
            "conv 3x3, 64->64 at 56x56",
            (56, 56, 64),
            lambda: keras.layers.Conv2D(64, 3, padding="same", use_bias=False),
        ),
        (
            "conv 1x1, 256->64 at 56x56",
            (56, 56, 256),
            lambda: keras.layers.Conv2D(64, 1, use_bias=False),
        ),
        (
            "depthwise 3x3, 96 at 56x56",
            (56, 56, 96),
            lambda: keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        ),
        (
            "depthwise 3x3 s2, 144 at 56x56",
            (56, 56, 144),
            lambda: keras.layers.DepthwiseConv2D(3, 2, padding="same", use_bias=False),
        ),
        (
            "batch norm (training), 64 at 56x56",
            (56, 56, 64),
            lambda: BatchNormalization(fused=True),
        ),
        ("dense 2048->1000", (2048,), lambda: keras.layers.Dense(1000)),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    for name in ("batch", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    import numpy as np
    import tensorflow as tf

    from keras_zoo.bench.timing import alternate, fmt, summary

    print(
        f"forward + backward, batch {args.batch}, images/s median (min..max) over "
        f"{args.rounds} rounds"
    )
    print(f"{'layer':<36} {'tf.function':>22} {'XLA':>22} {'XLA / tf.function':>20}")
    rng = np.random.default_rng(0)
    for label, shape, make in layers():
        layer = make()
        layer.build((None, *shape))
        x = rng.normal(size=(args.batch, *shape)).astype("float32")

        def step(v, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(v)
                loss = tf.reduce_sum(layer(v, training=True))
            return tape.gradient(loss, [v, *layer.trainable_variables])

        runners = {}
        for name, jit in (("tf.function", False), ("XLA", True)):
            fn = tf.function(step, jit_compile=jit)
            runners[name] = lambda v, fn=fn: [g.numpy() for g in fn(tf.constant(v))]
        ips = alternate(runners, x, args.rounds, args.seconds)
        ratio = summary([a / b for a, b in zip(ips["XLA"], ips["tf.function"])])
        print(
            f"{label:<36} {fmt(summary(ips['tf.function']), 1):>22} "
            f"{fmt(summary(ips['XLA']), 1):>22} {fmt(ratio):>20}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
