"""The training recipe's pieces on the bundled handwritten digits (keras_zoo.bench.recipes):

    python scripts/bench_recipes.py ablation [--model resnet18] [--seeds 0 1 2] [--epochs 15]
        [--validation-split 0.8]
    python scripts/bench_recipes.py distillation [--teacher resnet50]
        [--student mobilenet_v3_small] [--temperature 4] [--seeds 0 1 2] [--epochs 15]

prints a line per run and then a Markdown table (mean ± standard deviation of the last epoch's
validation accuracy over the seeds); docs/BENCHMARKS.md's recipe section is its output.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_zoo.bench import recipes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("ablation", "distillation"))
    parser.add_argument("--model", default="resnet18", help="the ablation's model")
    parser.add_argument(
        "--rows",
        nargs="+",
        metavar="TEXT",
        help="the ablation's rows whose labels contain one of these (default: all)",
    )
    parser.add_argument("--teacher", default="resnet50")
    parser.add_argument("--student", default="mobilenet_v3_small")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--distill-weight", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument(
        "--validation-split",
        type=float,
        default=recipes.VALIDATION_SPLIT,
        help="the share of each class held out (default %(default)s: training on the rest)",
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "image_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.validation_split < 1:
        parser.error("--validation-split must be between 0 and 1")
    rows = [
        row
        for row in recipes.ABLATION
        if not args.rows or any(text in row[0] for text in args.rows)
    ]
    if not rows:
        parser.error(f"--rows: no row's label contains any of {args.rows}")
    from keras_zoo.datasets import write_digits

    with tempfile.TemporaryDirectory() as tmp:
        data = write_digits(os.path.join(tmp, "digits"), size=args.image_size)
        common = dict(
            seeds=args.seeds,
            epochs=args.epochs,
            batch_size=args.batch_size,
            image_size=args.image_size,
            validation_split=args.validation_split,
            progress=lambda line: print(line, flush=True),
        )
        if args.what == "ablation":
            print(
                f"ablation: {args.model} on the digits at {args.image_size}x{args.image_size}, "
                f"{args.epochs} epochs, batch {args.batch_size}, seeds {args.seeds}, "
                f"{args.validation_split:.0%} of each class held out"
            )
            outcomes = recipes.ablation(data, model=args.model, rows=rows, **common)
        else:
            print(
                f"distillation: {args.student} from {args.teacher} at T={args.temperature}, "
                f"weight {args.distill_weight}, on the digits, {args.epochs} epochs each, "
                f"{args.validation_split:.0%} of each class held out"
            )
            outcomes = recipes.distillation(
                data,
                teacher=args.teacher,
                student=args.student,
                teacher_epochs=args.epochs,
                temperature=args.temperature,
                distill_weight=args.distill_weight,
                **common,
            )
        recipes.report(outcomes, baseline=0 if args.what == "ablation" else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
