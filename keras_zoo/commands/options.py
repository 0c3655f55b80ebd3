"""What several commands share: the argparse types of counts and image sizes, the flags of a
model to build and the files the analysis commands write, --runtime, and a model's family
keywords (--model-arg KEY=VALUE, and --alpha, its shorthand for the MobileNets' width)."""

from __future__ import annotations

import argparse
import ast
from typing import Any

MODEL_ARG_HELP = (
    "a keyword of the model's family, such as alpha=0.75, dropout=0.1 or groups=4 "
    "(repeatable; an unknown KEY's error lists the id's): VALUE is a Python literal, a bare "
    "word a string"
)
RUN_MODEL_ARG_HELP = MODEL_ARG_HELP + " (default: the trained run's)"
ALPHA_HELP = "width multiplier of the MobileNets: --model-arg alpha=ALPHA"


def positive_int(text: str) -> int:
    """The argparse type of counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def image_size(text: str) -> int:
    """The argparse type of --image-size: an integer that `checks.check_image_size` accepts."""
    from keras_zoo import checks

    try:
        value: int | str = int(text)
    except ValueError:
        value = text
    try:
        return checks.check_image_size(value, "image size")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def model_arg(text: str) -> tuple[str, Any]:
    """The argparse type of --model-arg: KEY=VALUE as (KEY, VALUE read as a Python literal, or
    the text itself where it is none: a bare word).

    >>> model_arg("alpha=0.75"), model_arg("groups=4"), model_arg("mode=fast")
    (('alpha', 0.75), ('groups', 4), ('mode', 'fast'))
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as alpha=0.75, got {text!r}")
    try:
        return key, ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return key, value.strip()


def add_model_arg(p: argparse.ArgumentParser, help_text: str = MODEL_ARG_HELP) -> None:
    """--model-arg KEY=VALUE, repeatable (`model_args` reads it back)."""
    p.add_argument(
        "--model-arg",
        type=model_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help_text,
    )


def model_args(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The family keywords that --model-arg (and --alpha, where the command has it) give for
    model id `name`, checked against the id's (`keras_zoo.model_args.check_model_args`);
    ValueError whose message starts with the argument at fault."""
    from keras_zoo.model_args import check_model_args, family_keywords

    pairs = list(args.model_arg)
    alpha = getattr(args, "alpha", None)
    if alpha is not None:
        if "alpha" not in family_keywords(name):
            raise ValueError(
                f"argument --alpha: {name} has no width multiplier; the MobileNets take one"
            )
        pairs.insert(0, ("alpha", alpha))
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            both = " (--alpha ALPHA is --model-arg alpha=ALPHA)" if key == "alpha" else ""
            raise ValueError(f"argument --model-arg: {key} is given twice{both}")
        values[key] = value
    return check_model_args(name, values, argument="argument --model-arg")


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The model the analysis commands look at: NAME (an id or a saved .keras model), its
    weights, family keywords, classes and input size; and --out."""
    p.add_argument("name", help="model id (e.g. mobilenet_v2) or a saved Keras model (.keras)")
    p.add_argument(
        "--weights",
        help="'imagenet', a weight set ('torchvision:IMAGENET1K_V2', see "
        "'keras-zoo list --weights'), a PyTorch checkpoint or a Keras weights file "
        "(default: initial weights)",
    )
    p.add_argument("--alpha", type=float, help=ALPHA_HELP)
    add_model_arg(p)
    p.add_argument(
        "--classes",
        type=positive_int,
        help="classes of the model's classifier (default: the weights' classifier's, 1000 "
        "without weights; the run's for the weights train wrote)",
    )
    p.add_argument(
        "--image-size", type=image_size, help="input size (default: the id's, 224 for most)"
    )
    p.add_argument("--out", required=True, help="folder to write into")


def load_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model the analysis commands look at (`add_model_flags`), and the ModelInfo of its
    id: a registered id built with the given flags and weights (the weights train wrote built
    as their run.json says, as evaluate and predict build them: `load_trained`), or a saved
    Keras model (.keras), whose ModelInfo is None."""
    import os
    import sys

    import keras

    import keras_zoo

    if args.name.endswith(".keras"):
        if args.model_arg:
            raise ValueError(f"{args.name}: a saved model has its own keywords; drop --model-arg")
        if args.weights or args.alpha is not None:
            raise ValueError(
                f"{args.name}: a saved model has its own weights and width; "
                "drop --weights and --alpha"
            )
        if not os.path.isfile(args.name):
            raise ValueError(f"model file {args.name!r}: no such file")
        keras_zoo.register_keras_objects()  # its layers, for load_model
        return keras.models.load_model(args.name), None
    info = keras_zoo.model_info(args.name)
    kwargs = model_args(args, args.name)
    from keras_zoo.inference import load_trained, trained_weights

    if trained_weights(args.name, args.weights):
        # as evaluate and predict build it: the run's keywords, input size and classes

        run = load_trained(args.name, args.weights, model_args=kwargs, image_size=args.image_size)
        classes = run.model.outputs[0].shape[-1]
        if args.classes is not None and args.classes != classes:
            raise ValueError(
                f"--classes {args.classes}: the weights train wrote have {classes} classes "
                "(the run's files beside them say so); drop --classes"
            )
        return run.model, info
    size = args.image_size or info.input_size[0]
    if args.classes is not None:  # else the weights' classifier's, 1000 without weights
        kwargs["classes"] = args.classes
    model = keras_zoo.build(args.name, weights=args.weights, input_shape=(size, size, 3), **kwargs)
    if not args.weights:
        print(
            f"note: no --weights, so {args.name} has its initial (random) weights", file=sys.stderr
        )
    return model, info


def add_trained_run_flags(p: argparse.ArgumentParser) -> None:
    """--alpha, --model-arg and --image-size of the commands that take the weights a run wrote,
    each defaulting to the run's."""
    p.add_argument("--alpha", type=float, help=ALPHA_HELP + " (default: the trained run's)")
    add_model_arg(p, RUN_MODEL_ARG_HELP)
    p.add_argument(
        "--image-size",
        type=image_size,
        help="input size (default: the trained run's, else the id's)",
    )


def add_runtime_flag(p: argparse.ArgumentParser) -> None:
    """--runtime: where evaluate and predict run the model."""
    p.add_argument(
        "--runtime",
        default="keras",
        choices=["keras", "litert", "onnx", "openvino"],
        help="run the model in this runtime (exported and checked first); --weights "
        "may also be an export, which runs in its own",
    )


def layer_file_name(layer_name: str) -> str:
    """The file name the analysis commands give a layer's picture (a nested model's path
    `backbone/conv1` as `backbone__conv1`)."""
    return layer_name.replace("/", "__")


def write_csv(path: str, header: list[str], rows: Any) -> None:
    """A CSV file of `header` and `rows`."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
