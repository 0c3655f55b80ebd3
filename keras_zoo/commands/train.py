"""keras-zoo train NAME --data DIR: train or fine-tune on a class-per-folder tree (or one split
into train/ and val/)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

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
    p.add_argument(
        "--lr",
        type=float,
        help="peak learning rate for this batch size (default: the recipe's; 'default': 1e-3)",
    )
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
        "LOG_DIR-N for a --log-dir given), claimed so that runs started at once get one "
        "each; not with --strategy multi-worker (give its workers the same new --out)",
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
    _add_recipe_flags(p)
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


def _number(low: float, high: float, *, high_open: bool = False):
    """An argparse type: a number in [low, high] (or [low, high))."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (low <= value < high if high_open else low <= value <= high):
            right = ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"expected a number in [{low:g}, {high:g}{right}")
        return value

    return parse


def _ema(text: str) -> float | None:
    """--ema: a decay in [0, 1), or 'off'."""
    if text == "off":
        return None
    return _number(0.0, 1.0, high_open=True)(text)


def _add_recipe_flags(p: argparse.ArgumentParser) -> None:
    """The recipe and the settings that override its values (recorded in run.json)."""
    from keras_zoo.recipes.recipe import AUTO_AUGMENTS, OPTIMIZERS, RECIPES, SCHEDULES

    g = p.add_argument_group(
        "recipe",
        "hyperparameters as torchvision's and timm's training scripts set them; each flag "
        "overrides the recipe's value",
    )
    g.add_argument(
        "--recipe",
        default="default",
        choices=list(RECIPES),
        help="default: Adam, cosine decay, crops and flips; finetune: AdamW (weight decay 0.05 "
        "off norms and biases), 1 warmup epoch, label smoothing 0.1, TrivialAugmentWide, "
        "random erasing 0.1; torchvision-v2: torchvision's IMAGENET1K_V2 recipe (SGD, lr 0.5 "
        "per 1024 images, 5 warmup epochs, label smoothing, mixup 0.2, cutmix 1.0, "
        "TrivialAugmentWide, random erasing, EMA)",
    )
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd and sgd_nesterov: momentum 0.9")
    g.add_argument("--weight-decay", type=_number(0, 1), help="kept off norms and biases")
    g.add_argument("--schedule", choices=SCHEDULES, help="learning rate after the warmup")
    g.add_argument("--warmup-epochs", type=_number(0, 1e6), help="linear warmup, in epochs")
    g.add_argument(
        "--label-smoothing", type=_number(0, 1, high_open=True), help="e.g. 0.1 (0: off)"
    )
    g.add_argument("--mixup", type=_number(0, 1e3), help="mixup's Beta alpha (0: off)")
    g.add_argument("--cutmix", type=_number(0, 1e3), help="cutmix's Beta alpha (0: off)")
    g.add_argument(
        "--auto-augment",
        choices=[*AUTO_AUGMENTS, "none"],
        help="ta_wide: TrivialAugmentWide; ra: RandAugment (2 ops, magnitude 9)",
    )
    g.add_argument(
        "--random-erase", type=_number(0, 1, high_open=True), help="probability (0: off)"
    )
    g.add_argument(
        "--ema",
        type=_ema,
        default=argparse.SUPPRESS,  # absent unless given: 'off' is None
        metavar="DECAY|off",
        help="a moving average of the weights every 32 steps, evaluated each epoch and saved "
        "as ema.weights.h5 (torchvision-v2: 0.99998)",
    )
    g.add_argument(
        "--drop-path-rate",
        type=_number(0, 1, high_open=True),
        help="stochastic depth of the ResNets and ViTs (e.g. 0.1)",
    )
    g.add_argument(
        "--layer-decay", type=_number(0, 1), help="a ViT's layer-wise learning-rate decay"
    )
    d = p.add_argument_group("distillation", "learn from a trained teacher's softened outputs")
    d.add_argument("--teacher", metavar="ID", help="the teacher's model id, e.g. resnet50")
    d.add_argument(
        "--teacher-weights",
        metavar="W",
        help="its weights: a trained run's weights file, a weight set or a checkpoint whose "
        "classes are the data's",
    )
    d.add_argument(
        "--temperature", type=_number(1e-3, 1e3), default=4.0, help="softmax temperature"
    )
    d.add_argument(
        "--distill-weight",
        type=_number(0, 1),
        default=0.5,
        help="the weight of the teacher's term (the labels' is 1 minus it)",
    )


# the recipe's settings by flag: those given override the recipe's
RECIPE_FLAGS = {
    "optimizer": "optimizer",
    "weight_decay": "weight_decay",
    "schedule": "schedule",
    "warmup_epochs": "warmup_epochs",
    "label_smoothing": "label_smoothing",
    "mixup": "mixup_alpha",
    "cutmix": "cutmix_alpha",
    "random_erase": "random_erase",
    "drop_path_rate": "drop_path_rate",
    "layer_decay": "layer_decay",
}


def _recipe(args: argparse.Namespace) -> Any:
    """The recipe named by --recipe with the values of the flags given."""
    from keras_zoo.recipes.recipe import recipe

    overrides = {
        field: getattr(args, flag)
        for flag, field in RECIPE_FLAGS.items()
        if getattr(args, flag) is not None
    }
    if args.auto_augment is not None:
        overrides["auto_augment"] = None if args.auto_augment == "none" else args.auto_augment
    if hasattr(args, "ema"):
        overrides["ema_decay"] = args.ema
    return recipe(args.recipe, **overrides)


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
            recipe=_recipe(args),
            teacher=args.teacher,
            teacher_weights=args.teacher_weights,
            temperature=args.temperature,
            distill_weight=args.distill_weight,
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
