"""keras-zoo port NAME SRC DST: port a PyTorch checkpoint into a Keras weights file."""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo port`."""
    p = subparsers.add_parser("port", help="port a PyTorch checkpoint into a Keras weights file")
    p.add_argument("name", help="model id, e.g. resnet50")
    p.add_argument(
        "src", help="PyTorch checkpoint (.pth, .pth.tar, .pt, .bin, .ckpt, .safetensors)"
    )
    p.add_argument("dst", help="Keras weights file to write (.weights.h5, or .h5 for legacy H5)")
    p.add_argument(
        "--check",
        action="store_true",
        help="compare logits with the PyTorch model on random images (needs torch)",
    )
    p.add_argument(
        "--reference",
        metavar="MODULE:FUNCTION",
        help="with --check: FUNCTION(name, classes) returns the PyTorch module "
        "(default: keras_zoo.torch_reference.torch_model, the id's torchvision, timm or "
        "megvii model)",
    )
    p.add_argument(
        "--allow-unknown-globals",
        action="store_true",
        help="read a checkpoint that pickles other objects beside its tensors "
        "(argparse.Namespace, numpy scalars, torch.device): each unknown global "
        "becomes an inert placeholder; nothing from the file is run",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Ports the checkpoint, checked against the torch module with --check."""
    import importlib

    from keras_zoo.checks import check_checkpoint
    from keras_zoo.pretrained import port

    check_checkpoint(args.src, "src")  # before the first line of output
    reference = None
    if args.reference:
        module_name, _, attr = args.reference.partition(":")
        if not (module_name and attr):
            raise ValueError(f"--reference {args.reference!r}: expected MODULE:FUNCTION")
        reference = getattr(importlib.import_module(module_name), attr, None)
        if not callable(reference):
            raise ValueError(
                f"--reference {args.reference!r}: {module_name} has no function {attr}"
            )
    print(f"porting {args.src} into {args.name} ...", flush=True)
    result = port(
        args.name,
        args.src,
        args.dst,
        check=args.check,
        reference=reference,
        allow_unknown=args.allow_unknown_globals,
    )
    print(
        f"wrote {result.path} ({os.path.getsize(result.path) / 2**20:.1f} MiB) in "
        f"{result.seconds:.2f} s; source sha256 {result.sha256[:16]}..."
    )
    if result.error is not None:
        print(
            f"numeric check: max |keras - torch| / max |torch| = {result.error:.2e} "
            f"(tolerance 2e-05)"
        )
    return 0
