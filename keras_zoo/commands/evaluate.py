"""keras-zoo evaluate NAME --weights W --data DIR: accuracy, precision, recall and a confusion
matrix."""

from __future__ import annotations

import argparse
import os

from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo evaluate`."""
    p = subparsers.add_parser("evaluate", help="accuracy, precision, recall and a confusion matrix")
    p.add_argument("name")
    p.add_argument(
        "--weights",
        required=True,
        help="the weights train wrote, or an export of them (.tflite, .onnx, .xml)",
    )
    p.add_argument("--data", required=True, help="a class-per-folder tree with the same classes")
    p.add_argument(
        "--subset",
        default="all",
        choices=["all", "training", "validation"],
        help="images of the training run's split (default: all)",
    )
    options.add_trained_run_flags(p)
    p.add_argument(
        "--out", help="folder for the confusion-matrix PNG (default: beside the weights)"
    )
    options.add_runtime_flag(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the accuracy and each class's precision and recall; writes the confusion matrix."""
    from keras_zoo import viz
    from keras_zoo.files import staged_dir
    from keras_zoo.inference import evaluate

    result = evaluate(
        args.name,
        args.weights,
        args.data,
        subset=args.subset,
        model_args=options.model_args(args, args.name),
        image_size=args.image_size,
        runtime=args.runtime,
    )
    print(
        f"{args.name} on {result.images} images of {args.data} ({args.subset}): accuracy "
        f"{result.accuracy:.4f}"
    )
    width = max(len(c) for c in result.class_names)
    print(f"  {'class':<{width}} {'precision':>9} {'recall':>7} {'images':>7}")
    for c, p, r, n in zip(
        result.class_names, result.precision, result.recall, result.matrix.sum(axis=1)
    ):
        print(f"  {c:<{width}} {p:9.4f} {r:7.4f} {n:7d}")
    out = args.out or os.path.dirname(os.path.abspath(args.weights))
    figure = viz.plot_confusion_matrix(
        result.matrix,
        result.class_names,
        title=f"{args.name}, {args.subset}: accuracy {result.accuracy:.4f}",
    )
    with staged_dir(out) as tmp:
        figure.savefig(os.path.join(tmp, f"confusion_matrix_{args.subset}.png"), dpi=100)
    print(f"wrote {os.path.join(out, f'confusion_matrix_{args.subset}.png')}")
    return 0
