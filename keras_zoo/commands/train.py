"""keras-zoo train NAME --data DIR: train or fine-tune on a class-per-folder tree (or one split
into train/ and val/)."""

from __future__ import annotations

import argparse
import os
import sys

from keras_zoo import console
from keras_zoo.commands import options

# every epoch's images, where TensorBoard keeps 10 per tag; images=0, which its help calls
# "keep all", serves none in TensorBoard 2.21 (tests/test_training.py asks a real server)
TENSORBOARD_FLAGS = "--samples_per_plugin images=1000"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo train`."""
    p = subparsers.add_parser("train", help="train or fine-tune a model on a class-per-folder tree")
    p.add_argument("name", help="model id, e.g. mobilenet_v2")
    p.add_argument(
        "--data",
        required=True,
        help="folder with one sub-folder of images per class, or with train/ beside val/, "
        "validation/ or test/ (the first found), each holding the same class folders",
    )
    p.add_argument("--epochs", type=options.positive_int, default=10, help="epochs to train")
    p.add_argument(
        "--batch-size", type=options.positive_int, default=32, help="images per training step"
    )
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine decay)")
    p.add_argument(
        "--image-size",
        type=options.image_size,
        help="input size (default: the id's, 224 for most; a ViT's: a multiple of its patch size)",
    )
    p.add_argument("--alpha", type=float, help=options.ALPHA_HELP)
    options.add_model_arg(p, options.MODEL_ARG_HELP + "; recorded in run.json")
    p.add_argument(
        "--weights",
        help="'imagenet', a weight set ('torchvision:IMAGENET1K_V2'), a "
        "PyTorch checkpoint or a Keras weights file to start from (its "
        "classifier is replaced)",
    )
    p.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="train only the layers after the last stage (the head; a ViT's heads.head)",
    )
    p.add_argument("--log-dir", help="TensorBoard folder (default: --out)")
    p.add_argument(
        "--out",
        help="folder for the weights, class_indices.json and run.json "
        "(default logs/NAME_DATAFOLDER); a finished run there is refused, an unfinished one "
        "resumes",
    )
    p.add_argument(
        "--new-run",
        action="store_true",
        help="where --out holds a run, train afresh into the first free OUT-2, OUT-3, ... (and "
        "LOG_DIR-N for a --log-dir given)",
    )
    p.add_argument(
        "--strategy",
        default="default",
        choices=["default", "mirrored", "multi-worker"],
        help="tf.distribute strategy; multi-worker reads TF_CONFIG",
    )
    p.add_argument(
        "--validation-split",
        type=float,
        help="share of each class held out for validation (default 0.2); not for --data split "
        "into train/ and val/",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the shuffling")
    p.add_argument(
        "--augment",
        help="random changes of the training images, comma-separated, or 'none' (default: all "
        "that the task allows; a classifier's: 'flip,crop')",
    )
    p.add_argument(
        "--loss",
        help="the task's loss, where it has several: landmarks 'l2' (default), 'wing', or "
        "'pfld' (PFLD-pytorch's, with the auxiliary head-pose net; WFLW data)",
    )
    p.add_argument(
        "--no-inspect",
        action="store_true",
        help="no feature-map, kernel and confusion-matrix logging",
    )
    p.add_argument(
        "--verbose",
        type=int,
        choices=[0, 1, 2],
        help="Keras fit verbosity: 0 silent, 1 progress bars, 2 a line per epoch (default: 1 on "
        f"a terminal, 2 where stdout is a file or a pipe; {console.VERBOSE_ENV}=1 in the "
        "environment shows TensorFlow's log lines)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Trains, then prints the best validation accuracy and how to look at the run; 130 when
    Ctrl-C or SIGTERM stopped it."""
    from keras_zoo.files import Terminated
    from keras_zoo.run_state import TrainingInterrupted
    from keras_zoo.training import train

    model_args = options.model_args(args, args.name)
    augment = (
        None
        if args.augment is None
        else ()
        if args.augment == "none"
        else tuple(args.augment.split(","))
    )
    try:  # main turns a scheduler's SIGTERM into Terminated, so it stops the run as Ctrl-C does
        result = train(
            args.name,
            args.data,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            image_size=args.image_size,
            model_args=model_args,
            weights=args.weights,
            freeze_backbone=args.freeze_backbone,
            log_dir=args.log_dir,
            out=args.out,
            new_run=args.new_run,
            strategy=args.strategy,
            validation_split=args.validation_split,
            seed=args.seed,
            augment=augment,
            loss=args.loss,
            inspect=not args.no_inspect,
            verbose=console.progress_verbosity() if args.verbose is None else args.verbose,
        )
    except KeyboardInterrupt as stop:
        if sys.stdout.isatty():  # ends the progress bar's line
            print(flush=True)
        text = (
            str(stop)
            if isinstance(stop, TrainingInterrupted)
            else f"{'terminated' if isinstance(stop, Terminated) else 'interrupted'} "
            "before the first epoch or after the last; rerun the same command to train"
        )
        print(f"keras-zoo train: {text}", file=sys.stderr)
        return 130  # the shell's status for Ctrl-C
    epoch = "" if result.best_epoch is None else f" (epoch {result.best_epoch})"
    written = [result.weights, *result.files]
    print(
        f"best {result.monitor.words} {result.best:.4f}{epoch} in {result.seconds:.0f} s; "
        f"wrote {', '.join(written[:-1])} and {written[-1]} in {result.out}"
    )
    print(
        "to look at the run (every epoch's images): tensorboard --logdir "
        f"{os.path.dirname(result.log_dir) or '.'} {TENSORBOARD_FLAGS}"
    )
    return 0
