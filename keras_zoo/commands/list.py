"""keras-zoo list [PATTERN] [--weights]: model ids with parameters, GMACs and top-1, or
their weight sets with each one's preprocessing."""

from __future__ import annotations

import argparse
from collections.abc import Iterable


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo list`."""
    p = subparsers.add_parser("list", help="list model ids")
    p.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="fnmatch pattern, e.g. 'resnet*' (quoted, so that the shell leaves it alone)",
    )
    p.add_argument(
        "--weights",
        action="store_true",
        help="list the ids' weight sets with their preprocessing (a Markdown table)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the ids matching the pattern, or their weight sets; a pattern that matches none is
    bad input (status 2)."""
    import keras_zoo

    names = keras_zoo.list_models(args.pattern)
    if not names:
        raise ValueError(
            f"no model id matches {args.pattern!r}; 'keras-zoo list' lists all "
            f"{len(keras_zoo.list_models())}"
        )
    if args.weights:
        print(weights_table(names))
        return 0
    print(f"{'id':<20} {'params':>13} {'GMACs':>7} {'top-1':>7}")
    for name in names:
        info = keras_zoo.model_info(name)
        top1 = f"{info.top1:.3f}" if info.top1 is not None else "-"
        print(f"{name:<20} {info.params:>13,} {info.gmacs:>7.3f} {top1:>7}")
    return 0


def weights_table(names: Iterable[str]) -> str:
    """A Markdown table of the weight sets of model ids `names` (the first of each id is its
    default), with the preprocessing each was evaluated with."""
    import keras_zoo

    rows = [
        "| id | weights | top-1 | layout | size | resize | interpolation | mean / std |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for name in names:
        for i, ws in enumerate(keras_zoo.list_weights(name)):
            pre = ws.preprocessing
            top1 = f"{ws.top1:.3f}" if ws.top1 is not None else "-"
            stats = f"{_fmt(pre.mean)} / {_fmt(pre.std)}"
            if pre.channel_order == "BGR":  # megvii's values 0..255, PFLD-pytorch's 0..1
                plain = not any(pre.mean) and len(set(pre.std)) == 1
                stats = f"BGR 0..{1 / pre.std[0]:g}" if plain else f"BGR {stats}"
            key = f"{ws.key} (default)" if i == 0 else ws.key
            rows.append(
                f"| {name} | {key} | {top1} | {ws.layout} | {pre.input_size[0]} | "
                f"{pre.resize_size} | {pre.interpolation} | {stats} |"
            )
    return "\n".join(rows)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"
