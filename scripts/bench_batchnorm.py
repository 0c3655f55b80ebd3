"""Which batch norm where: keras_zoo models in inference with three choices of batch-norm layer,
side by side (alternating, as scripts/bench.py does):

- keras:      Keras' BatchNormalization everywhere;
- fused:      keras_zoo.layers.BatchNormalization (TensorFlow's fused kernel) everywhere;
- keras_zoo:  fused after a Conv2D (grouped ones included), Keras' after depthwise ones
              (what keras_zoo.blocks.batch_norm builds).

    python scripts/bench_batchnorm.py [--models mobilenet_v2 resnet50 ...] [--batch 1]

Prints images/s of each choice and its ratio to "keras", median (min..max) over the rounds.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def with_batch_norm(model, choice: str):
    """A copy of `model` (same weights) whose batch norms are all of `choice`'s class."""
    import keras

    from keras_zoo.layers import BatchNormalization

    def clone(layer):
        if choice != "keras_zoo" and isinstance(layer, keras.layers.BatchNormalization):
            config = {k: v for k, v in layer.get_config().items() if k != "fused"}
            if choice == "fused":
                return BatchNormalization.from_config({**config, "fused": True})
            return keras.layers.BatchNormalization.from_config(config)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=[
            "mobilenet_v2",
            "mobilenet_v3_large",
            "resnet50",
            "resnext50_32x4d",
            "shufflenet_v1",
            "shufflenet_v2",
        ],
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args(argv)

    import keras_zoo
    from keras_zoo import bench

    print(
        f"inference images/s at batch {args.batch}, {args.image_size}x{args.image_size}, "
        f"median (min..max) over {args.rounds} rounds; ratio to keras"
    )
    print(
        f"{'model':<18} {'keras':>22} {'fused':>22} {'ratio':>18} {'keras_zoo':>22} {'ratio':>18}"
    )
    x = (
        np.random.default_rng(0)
        .uniform(-1, 1, (args.batch, args.image_size, args.image_size, 3))
        .astype("float32")
    )
    for name in args.models:
        model = keras_zoo.build(name, input_shape=(args.image_size,) * 2 + (3,))
        runners = {
            c: bench.keras_runner(with_batch_norm(model, c))
            for c in ("keras", "fused", "keras_zoo")
        }
        ips = bench.alternate(runners, x, args.rounds, args.seconds)
        line = f"{name:<18} {bench.fmt(bench.summary(ips['keras']), 1):>22}"
        for choice in ("fused", "keras_zoo"):
            ratio = bench.summary([a / b for a, b in zip(ips[choice], ips["keras"])])
            line += f" {bench.fmt(bench.summary(ips[choice]), 1):>22} {bench.fmt(ratio):>18}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
