"""keras-zoo demo [NAME ...]: build, print summary figures, run a batch of images."""

from __future__ import annotations

import argparse
import time

from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo demo`."""
    p = subparsers.add_parser("demo", help="build models, print summary figures and run a batch")
    p.add_argument(
        "names",
        nargs="*",
        default=["resnet18", "resnet50", "resnext50_32x4d"],
        metavar="NAME",
        help="model ids (default: resnet18 resnet50 resnext50_32x4d)",
    )
    p.add_argument(
        "--batch-size", type=options.positive_int, default=4, help="random images per batch"
    )
    p.add_argument(
        "--image-size", type=options.image_size, default=224, help="input height and width"
    )
    options.add_model_arg(p, options.MODEL_ARG_HELP + "; every NAME must take it")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Builds each id, prints its figures and times a batch of random images."""
    import numpy as np

    import keras_zoo

    size = args.image_size
    # a clear error for an unknown id or keyword before any work
    kwargs = {name: options.model_args(args, name) for name in args.names}
    print(
        f"{'id':<20} {'params':>13} {'ref. params':>13} {'GMACs':>7} {'stages (HxWxC)':<44} "
        f"{'ms/image':>9}"
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(args.batch_size, size, size, 3)).astype("float32")
    for name in args.names:
        info = keras_zoo.model_info(name)
        model = keras_zoo.build(name, input_shape=(size, size, 3), **kwargs[name])
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        gmacs = keras_zoo.count_macs(model) / 1e9
        stages = keras_zoo.build(
            name, features_only=True, input_shape=(size, size, 3), **kwargs[name]
        )
        shapes = " ".join("x".join(str(d) for d in o.shape[1:]) for o in stages.outputs)
        x = (images - np.array(info.mean, "float32")) / np.array(info.std, "float32")
        model.predict_on_batch(x)  # the first call traces the graph
        start = time.perf_counter()
        model.predict_on_batch(x)
        ms = (time.perf_counter() - start) * 1000 / len(x)
        print(f"{name:<20} {params:>13,} {info.params:>13,} {gmacs:>7.3f} {shapes:<44} {ms:>9.1f}")
    print(
        f"\nbatch of {args.batch_size} random {size}x{size} images, untrained weights; "
        "ms/image from the second batch"
    )
    return 0
