"""keras-zoo digits DIR: the bundled handwritten digits as a class-per-folder tree."""

from __future__ import annotations

import argparse

from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo digits`."""
    p = subparsers.add_parser(
        "digits", help="write the bundled handwritten digits as class folders"
    )
    p.add_argument("dir", help="folder to write (DIR/0 .. DIR/9)")
    p.add_argument("--size", type=options.positive_int, default=32, help="image size (default 32)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Writes the digits as PNG files in the class folders 0..9."""
    from keras_zoo.datasets import write_digits

    root = write_digits(args.dir, size=args.size)
    print(
        f"{root}: 1797 handwritten digits (scikit-learn's bundled 8x8 scans) as "
        f"{args.size}x{args.size} PNG files in the class folders 0..9"
    )
    return 0
