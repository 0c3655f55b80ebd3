"""keras-zoo predict NAME --weights W IMAGE ...: the top classes of images."""

from __future__ import annotations

import argparse

from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo predict`."""
    p = subparsers.add_parser("predict", help="the top classes of images")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--weights",
        required=True,
        help="the weights train wrote, or an export of them (.tflite, .onnx, .xml)",
    )
    p.add_argument("--top-k", type=options.positive_int, default=5)
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="softmax temperature: > 1 smooths the probabilities (default 1)",
    )
    options.add_trained_run_flags(p)
    options.add_runtime_flag(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the top classes of each image with their probabilities."""
    from keras_zoo.inference import predict

    results = predict(
        args.name,
        args.weights,
        args.images,
        top_k=args.top_k,
        temperature=args.temperature,
        model_args=options.model_args(args, args.name),
        image_size=args.image_size,
        runtime=args.runtime,
    )
    for path, top in zip(args.images, results):
        print(f"{path}: " + ", ".join(f"{c} {p:.4f}" for c, p in top))
    return 0
