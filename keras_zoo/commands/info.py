"""keras-zoo info NAME: one id's metadata and the keywords build() takes."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo info`."""
    p = subparsers.add_parser("info", help="metadata and keywords of one model id")
    p.add_argument("name", help="model id, e.g. resnet50 ('keras-zoo list' lists them)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the id's metadata, weight sets, architecture and keywords."""
    import keras_zoo
    from keras_zoo.model_args import family_keywords

    info = keras_zoo.model_info(args.name)
    print(f"{info.name} ({info.family} family)")
    print(f"  parameters    {info.params:,}")
    print(f"  GMACs         {info.gmacs} at {info.input_size[0]}x{info.input_size[1]}")
    print(f"  top-1         {info.top1 if info.top1 is not None else '-'} (default weights)")
    print(f"  input size    {info.input_size}, crop {info.crop_pct:.4g}, {info.interpolation}")
    print(f"  mean / std    {info.mean} / {info.std} ({info.channel_order} in [0, 1])")
    for i, ws in enumerate(info.weights):
        label = "weights" if i == 0 else ""
        note = "default, " if i == 0 else ""
        top1 = ws.top1 if ws.top1 is not None else "-"  # a landmark detector's has none
        print(f"  {label:<13} {ws.key} ({note}top-1 {top1}, {ws.layout} layout)")
    # what the id fixes, then the family keywords it leaves open (shufflenet_v1's groups and
    # scale, the MobileNets' alpha), at their defaults
    fixed = ", ".join(f"{k}={_short(v)}" for k, v in info.config.items())
    defaults = ", ".join(f"{k}={_short(v)}" for k, v in family_keywords(info.name).items())
    lines = [fixed] if fixed else []
    if defaults:
        lines.append(f"{defaults} (keywords, at their defaults)")
    for i, line in enumerate(lines or ["-"]):
        print(f"  {'architecture' if i == 0 else '':<13} {line}")
    print(f"  keywords      {', '.join(info.keywords)}")
    return 0


def _short(value) -> str:
    return value if isinstance(value, str) else getattr(value, "__name__", repr(value))
