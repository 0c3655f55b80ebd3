"""keras-zoo predict NAME --weights W IMAGE ...: the top classes of images, or the points of
the faces in them (landmarks, drawn into --out)."""

from __future__ import annotations

import argparse

from keras_zoo.commands import options

WEIGHTS_HELP = (
    "the weights train wrote (their classes from the files beside them), an export of them "
    "(.tflite, .onnx, .xml), or what build takes: 'imagenet', a weight set "
    "('torchvision:IMAGENET1K_V2', see 'keras-zoo list --weights'), a PyTorch checkpoint or a "
    "Keras weights file (1000 classes: ImageNet's)"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo predict`."""
    p = subparsers.add_parser(
        "predict", help="the top classes of images, or the landmarks of the faces in them"
    )
    p.add_argument("name", help="model id the weights are for, e.g. resnet50")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders of images")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--top-k", type=options.positive_int, help="classes shown per image (default 5)")
    p.add_argument(
        "--temperature",
        type=float,
        help="softmax temperature: > 1 smooths the probabilities (default 1)",
    )
    p.add_argument(
        "--box",
        metavar="X,Y,W,H",
        help="landmarks: the face's box in every image (default: OpenCV's face detector "
        "finds it, pip install opencv-python-headless)",
    )
    p.add_argument(
        "--out",
        help="landmarks: folder for the images with the points drawn, IMAGE_landmarks.png "
        "(default: the current folder)",
    )
    options.add_trained_run_flags(p)
    options.add_runtime_flag(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints what the model's task says of each image (a classifier's top classes with their
    probabilities)."""
    from keras_zoo.data import image_files
    from keras_zoo.inference import predict
    from keras_zoo.registry import model_info
    from keras_zoo.tasks import task_named

    task = task_named(model_info(args.name).task)
    if args.out is not None and not task.draws:
        raise ValueError(f"out: {args.name}'s predict ({task.name}) draws nothing to write")
    given = {"top_k": args.top_k, "temperature": args.temperature, "box": args.box}
    model_args = options.model_args(args, args.name)  # the arguments first, then the files
    images = image_files(args.images)  # a folder's images, each printed by its path
    results = predict(  # the task checks its options; the others keep the task's defaults
        args.name,
        args.weights,
        images,
        model_args=model_args,
        image_size=args.image_size,
        runtime=args.runtime,
        **{k: v for k, v in given.items() if v is not None},
    )
    for path, result in zip(images, results):
        print(f"{path}: {task.prediction_text(result)}")
    if task.draws:
        _write_drawn(task, images, results, args.out or ".")
    return 0


def _write_drawn(task, images: list[str], results: list, out: str) -> None:
    """Each image with its result drawn, as OUT/STEM_TASK.png (all of them, or none)."""
    import os

    from PIL import Image

    from keras_zoo.data import read_image
    from keras_zoo.files import staged_dir

    names = [f"{os.path.splitext(os.path.basename(p))[0]}_{task.name}.png" for p in images]
    with staged_dir(out) as tmp:
        for path, name, result in zip(images, names, results):
            Image.fromarray(task.draw(read_image(path), result)).save(os.path.join(tmp, name))
    for name in names:
        print(f"wrote {os.path.join(out, name)}")
