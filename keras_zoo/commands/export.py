"""keras-zoo export NAME OUT [--weights W] [--quantize int8 --calibration DIR]: LiteRT, ONNX,
OpenVINO or SavedModel, checked in its runtime."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo export`."""
    p = subparsers.add_parser(
        "export",
        help="export a model to LiteRT, ONNX, OpenVINO or a SavedModel, checked in its runtime",
    )
    p.add_argument("name", help="model id, e.g. mobilenet_v2, or a saved Keras model (.keras)")
    p.add_argument(
        "out",
        help="file to write: .tflite (litert), .onnx, .xml (openvino, with its "
        ".bin), or a folder (saved_model); the check's record goes "
        "beside it as OUT.json",
    )
    p.add_argument(
        "--weights",
        help="'imagenet', a weight set, a PyTorch checkpoint, or the "
        "weights train wrote (their classes and preprocessing "
        "come along)",
    )
    p.add_argument(
        "--format", help="litert, onnx, openvino or saved_model (default: from OUT's suffix)"
    )
    p.add_argument(
        "--quantize",
        help="int8 (litert, onnx, openvino; needs --calibration), "
        "float16 (litert, openvino), bf16 (openvino)",
    )
    p.add_argument(
        "--calibration",
        metavar="DIR",
        help="images to calibrate int8 on; float exports are checked on them too",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="a class-per-folder tree to measure the "
        "export's accuracy on, beside the Keras model's",
    )
    p.add_argument(
        "--image-size",
        type=options.image_size,
        help="input size (default: the trained run's, else the id's)",
    )
    p.add_argument("--alpha", type=float, help=options.ALPHA_HELP)
    options.add_model_arg(
        p, options.MODEL_ARG_HELP + " (default: the trained run's, for its weights)"
    )
    p.add_argument(
        "--classes",
        type=options.positive_int,
        help="classes of the classifier (default: as many as the weights' classifier has, 1000 "
        "without weights)",
    )
    p.add_argument(
        "--include-preprocessing",
        action="store_true",
        help="the export takes RGB values in [0, 255] and normalises them itself",
    )
    p.add_argument(
        "--layout",
        default="nhwc",
        choices=["nhwc", "nchw"],
        help="the input's axis order: nhwc (Keras', the default) or, for onnx and "
        "openvino, nchw (torch's)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exports the model, checks the file in its runtime and writes its record beside it."""
    from keras_zoo.deploy import export

    model, kwargs = _export_model(args)
    export(
        model,
        args.out,
        args.format,
        quantize=args.quantize,
        calibration=args.calibration,
        data=args.data,
        layout=args.layout,
        **kwargs,
    )
    return 0


def _export_model(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The model `keras-zoo export` writes, and export's preprocessing, class_names and
    metadata keywords: a saved Keras model; the weights train wrote, with the family keywords,
    classes, size and preprocessing of their run; or an id built with --weights. The
    preprocessing and class names are the model's description's (`keras_zoo.describe`)."""
    import dataclasses

    import keras

    import keras_zoo
    from keras_zoo.inference import load_trained, trained_weights

    meta: dict[str, Any] = {"model": args.name, "weights": args.weights}
    if args.name.endswith(".keras"):
        if args.model_arg:
            raise ValueError(f"{args.name}: a saved model has its own keywords; drop --model-arg")
        if args.weights or args.alpha is not None or args.classes or args.image_size:
            raise ValueError(
                f"{args.name}: a saved model has its own weights, width, classes "
                "and input size; drop --weights, --alpha, --classes and "
                "--image-size"
            )
        if not os.path.isfile(args.name):
            raise ValueError(f"model file {args.name!r}: no such file")
        keras_zoo.register_keras_objects()  # its layers, for load_model
        return keras.models.load_model(args.name), {"metadata": meta}
    info = keras_zoo.model_info(args.name)
    model_args = options.model_args(args, args.name)
    weights = args.weights
    if trained_weights(args.name, weights):
        if args.include_preprocessing or args.classes:
            raise ValueError(
                "--include-preprocessing and --classes do not apply to the weights "
                "train wrote (their classes come from the run's files beside them)"
            )
        run = load_trained(args.name, weights, model_args=model_args, image_size=args.image_size)
        size = run.image_size
        model = run.model
        meta["run"] = run.config
    else:
        size = args.image_size or info.input_size[0]
        if model_args:
            meta["model_args"] = model_args
        if args.classes is not None:  # else the weights' classifier's, 1000 without weights
            model_args = {**model_args, "classes": args.classes}
        model = keras_zoo.build(
            args.name,
            weights=weights,
            input_shape=(size, size, 3),
            include_preprocessing=args.include_preprocessing,
            **model_args,
        )
        if not weights:
            print(
                f"note: no --weights, so {args.name} has its initial (random) weights",
                file=sys.stderr,
            )
    description = keras_zoo.describe(model)
    pre = dataclasses.replace(description.preprocessing, input_size=(size, size))
    names: Sequence[str] | None = description.class_names
    return model, {"preprocessing": pre, "class_names": names, "metadata": meta}
