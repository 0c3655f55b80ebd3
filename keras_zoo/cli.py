"""The `keras-zoo` command line.

    keras-zoo list [PATTERN]       model ids with parameters, GMACs and reference top-1
    keras-zoo info NAME            one id's metadata and the keywords build() takes
    keras-zoo demo [NAME ...]      build, print summary figures, run a batch of images
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_list(args) -> int:
    import keras_zoo

    names = keras_zoo.list_models(args.pattern)
    if not names:
        print(f"no model id matches {args.pattern!r}", file=sys.stderr)
        return 1
    print(f"{'id':<20} {'params':>13} {'GMACs':>7} {'top-1':>7}")
    for name in names:
        info = keras_zoo.model_info(name)
        top1 = f"{info.top1:.3f}" if info.top1 is not None else "-"
        print(f"{name:<20} {info.params:>13,} {info.gmacs:>7.3f} {top1:>7}")
    return 0


def _cmd_info(args) -> int:
    import keras_zoo

    info = keras_zoo.model_info(args.name)
    print(f"{info.name} ({info.family} family)")
    print(f"  parameters    {info.params:,}")
    print(f"  GMACs         {info.gmacs} at {info.input_size[0]}x{info.input_size[1]}")
    print(f"  top-1         {info.top1 if info.top1 is not None else '-'} (reference weights)")
    print(f"  input size    {info.input_size}, crop {info.crop_pct}, {info.interpolation}")
    print(f"  mean / std    {info.mean} / {info.std} (RGB in [0, 1])")
    print(f"  architecture  {', '.join(f'{k}={_short(v)}' for k, v in info.config.items())}")
    print(f"  keywords      {', '.join(info.keywords)}")
    return 0


def _short(value) -> str:
    return getattr(value, "__name__", repr(value))


def _cmd_demo(args) -> int:
    import numpy as np

    import keras_zoo

    size = args.image_size
    for name in args.names:
        keras_zoo.model_info(name)  # a clear error for an unknown id before any work
    print(f"{'id':<20} {'params':>13} {'ref. params':>13} {'GMACs':>7} {'stages (HxWxC)':<44} "
          f"{'ms/image':>9}")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(args.batch_size, size, size, 3)).astype("float32")
    for name in args.names:
        info = keras_zoo.model_info(name)
        model = keras_zoo.build(name, input_shape=(size, size, 3))
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        gmacs = keras_zoo.count_macs(model) / 1e9
        stages = keras_zoo.build(name, features_only=True, input_shape=(size, size, 3))
        shapes = " ".join("x".join(str(d) for d in o.shape[1:]) for o in stages.outputs)
        x = (images - np.array(info.mean, "float32")) / np.array(info.std, "float32")
        model.predict_on_batch(x)  # the first call traces the graph
        start = time.perf_counter()
        model.predict_on_batch(x)
        ms = (time.perf_counter() - start) * 1000 / len(x)
        print(f"{name:<20} {params:>13,} {info.params:>13,} {gmacs:>7.3f} {shapes:<44} {ms:>9.1f}")
    print(f"\nbatch of {args.batch_size} random {size}x{size} images, untrained weights; "
          "ms/image from the second batch")
    return 0


def _cmd_port(args) -> int:
    import importlib

    from keras_zoo.port import port

    reference = None
    if args.reference:
        module_name, _, attr = args.reference.partition(":")
        if not (module_name and attr):
            raise ValueError(f"--reference {args.reference!r}: expected MODULE:FUNCTION")
        reference = getattr(importlib.import_module(module_name), attr)
    print(f"porting {args.src} into {args.name} ...", flush=True)
    result = port(args.name, args.src, args.dst, check=args.check, reference=reference)
    print(f"wrote {result.path} ({os.path.getsize(result.path) / 2**20:.1f} MiB) in "
          f"{result.seconds:.2f} s; source sha256 {result.sha256[:16]}...")
    if result.error is not None:
        print(f"numeric check: max |keras - torch| / max |torch| = {result.error:.2e} "
              f"(tolerance 2e-05)")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-zoo", description="ResNet, ResNeXt, MobileNet and ShuffleNet for Keras 3."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list model ids")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("info", help="metadata and keywords of one model id")
    p.add_argument("name")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("demo", help="build models, print summary figures and run a batch")
    p.add_argument("names", nargs="*", default=["resnet18", "resnet50", "resnext50_32x4d"],
                   metavar="NAME", help="model ids (default: resnet18 resnet50 resnext50_32x4d)")
    p.add_argument("--batch-size", type=_positive_int, default=4)
    p.add_argument("--image-size", type=_image_size, default=224)
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("port", help="port a PyTorch checkpoint into a Keras weights file")
    p.add_argument("name", help="model id, e.g. resnet50")
    p.add_argument("src", help="PyTorch checkpoint (.pth, .pt, .bin, .ckpt, .safetensors)")
    p.add_argument("dst", help="Keras weights file to write (.weights.h5, or .h5 for legacy H5)")
    p.add_argument("--check", action="store_true",
                   help="compare logits with the PyTorch model on random images (needs torch)")
    p.add_argument("--reference", metavar="MODULE:FUNCTION",
                   help="with --check: FUNCTION(name, classes) returns the PyTorch module "
                        "(default: torchvision.models.get_model)")
    p.set_defaults(run=_cmd_port)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _image_size(text: str) -> int:
    value = _positive_int(text)
    if value < 32:
        raise argparse.ArgumentTypeError(f"expected an image size >= 32, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        print(f"keras-zoo {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
