"""keras-zoo evaluate NAME --weights W --data DIR: accuracy, precision, recall and a confusion
matrix, or a landmark model's NME, failure rate, AUC and error distribution."""

from __future__ import annotations

import argparse
import os

from keras_zoo.commands import options
from keras_zoo.commands.predict import WEIGHTS_HELP


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo evaluate`."""
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy, precision, recall and a confusion matrix (landmarks: NME, FR, AUC, CED)",
    )
    p.add_argument("name", help="model id the weights were trained for, e.g. mobilenet_v2")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument(
        "--data",
        required=True,
        help="a class-per-folder tree with the same classes (landmarks: a WFLW folder or "
        "annotation file, or images with .pts files)",
    )
    p.add_argument(
        "--subset",
        default="all",
        choices=["all", "training", "validation"],
        help="images of the training run's split, or of --data's train/ and val/ folders where "
        "it is split so (default: all)",
    )
    options.add_trained_run_flags(p)
    p.add_argument(
        "--out",
        help="folder for the confusion matrix's (landmarks: the error distribution's) PNG "
        "(default: beside the weights file, else the current folder)",
    )
    options.add_runtime_flag(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the task's score and its details (a classifier's accuracy and each class's
    precision and recall); writes its figures (a classifier's confusion matrix)."""
    from keras_zoo.files import staged_dir
    from keras_zoo.inference import evaluate
    from keras_zoo.registry import model_info
    from keras_zoo.tasks import task_named

    result = evaluate(
        args.name,
        args.weights,
        args.data,
        subset=args.subset,
        model_args=options.model_args(args, args.name),
        image_size=args.image_size,
        runtime=args.runtime,
    )
    score = f"{task_named(model_info(args.name).task).score_name} {result.score:.4f}"
    print(f"{args.name} on {result.images} images of {args.data} ({args.subset}): {score}")
    for line in result.lines():
        print(line)
    out = args.out or os.path.dirname(os.path.abspath(args.weights))
    figures = result.figures(f"{args.name}, {args.subset}: {score}")
    with staged_dir(out) as tmp:
        for stem, figure in figures.items():
            figure.savefig(os.path.join(tmp, f"{stem}_{args.subset}.png"), dpi=100)
    for stem in figures:
        print(f"wrote {os.path.join(out, f'{stem}_{args.subset}.png')}")
    return 0
