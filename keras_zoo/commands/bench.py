"""keras-zoo bench: keras_zoo against keras.applications and PyTorch, side by side."""

from __future__ import annotations

import argparse

from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo bench`."""
    from keras_zoo import bench as bench_module

    p = subparsers.add_parser("bench", help="keras_zoo against keras.applications and PyTorch")
    p.add_argument(
        "--cases",
        nargs="+",
        metavar="MODEL",
        help="some of: "
        + " ".join(repr(c.label) if " " in c.label else c.label for c in bench_module.CASES)
        + " (default: all)",
    )
    p.add_argument(
        "--tables",
        nargs="+",
        choices=bench_module.TABLES,
        default=list(bench_module.TABLES),
        metavar="TABLE",
        help="the tables to run, some of: " + " ".join(bench_module.TABLES) + " (default: all)",
    )
    p.add_argument(
        "--no-runtimes",
        action="store_true",
        help="skip the runtimes table (keras_zoo's exports against torch's)",
    )
    p.add_argument(
        "--runtimes-cases",
        nargs="+",
        metavar="MODEL",
        help="the runtimes table's models (default: --cases when given, else "
        + " ".join(bench_module.RUNTIME_CASES)
        + ")",
    )
    p.add_argument(
        "--int8-cases",
        nargs="+",
        metavar="MODEL",
        help="models of the runtimes table that get int8 exports too (default: "
        + " ".join(bench_module.INT8_CASES)
        + " where the table has it)",
    )
    p.add_argument("--no-int8", action="store_true", help="skip the int8 exports")
    p.add_argument(
        "--image-size",
        type=options.image_size,
        default=224,
        help="input height and width (the PFLD cases run at 112x112, their only size)",
    )
    p.add_argument(
        "--batch-sizes",
        type=options.positive_int,
        nargs="+",
        default=[1, 16],
        metavar="N",
        help="the inference tables' batch sizes",
    )
    p.add_argument(
        "--rounds",
        type=options.positive_int,
        default=5,
        help="timing rounds, the contenders alternating within each",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="seconds of calls per contender per round (default 2)",
    )
    p.add_argument(
        "--train-batch",
        type=options.positive_int,
        default=16,
        help="the training table's batch size",
    )
    p.add_argument(
        "--xla",
        action="store_true",
        help="compile every Keras contender of inference with XLA (training measures both)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument(
        "--torch-reference",
        default=bench_module.TORCH_REFERENCE,
        metavar="MODULE:FUNCTION",
        help="FUNCTION(name, num_classes, alpha) -> torch module for the torch "
        "column (default: torchvision's, timm's and megvii's own models, "
        f"{bench_module.TORCH_REFERENCE})",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs the chosen tables of the benchmark and prints them."""
    from keras_zoo import bench

    tables = [t for t in args.tables if not (args.no_runtimes and t == "runtimes")]
    bench.run_all(
        size=args.image_size,
        batch_sizes=args.batch_sizes,
        rounds=args.rounds,
        seconds=args.seconds,
        train_batch=args.train_batch,
        cases=args.cases,
        torch_reference=args.torch_reference,
        jit_compile=args.xla,
        memory=not args.no_memory,
        tables=tables,
        runtimes_cases=args.runtimes_cases,
        int8_cases=() if args.no_int8 else args.int8_cases,
    )
    return 0
