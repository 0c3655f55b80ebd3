"""What the inspection callbacks add to training: one-epoch fits with and without them, run
alternately in one process so that machine drift hits every setting alike.

    python scripts/time_callbacks.py [--model mobilenet_v2] [--images 1000] [--size 128]
                                     [--samples 8] [--rounds 3]

Prints, for no callback, each callback alone and all four: the median (min..max) seconds of
a one-epoch fit, and the seconds spent in the callbacks themselves (their set-up at the start
of the fit and their logging at the epoch's end, timed around their hooks). The callbacks' own
time over the median fit without callbacks is their overhead; the difference of the fit
medians says the same, within the machine's run-to-run noise. Every fit starts the callbacks
afresh; the first, untimed fit traces the training step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=8, help="sample images the loggers show")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import keras
    import numpy as np

    import keras_zoo
    from keras_zoo import callbacks

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.images, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, args.classes, args.images)
    sample = x[: args.samples]
    model = keras_zoo.build(
        args.model,
        input_shape=(args.size, args.size, 3),
        classes=args.classes,
        classifier_activation=None,
    )
    model.compile(
        optimizer="adam",
        metrics=["accuracy"],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    log_root = tempfile.mkdtemp(prefix="time_callbacks-")
    names = [f"class_{i}" for i in range(args.classes)]
    settings = {
        "none": lambda d: [],
        "FeatureMapLogger": lambda d: [callbacks.FeatureMapLogger(d, sample)],
        "KernelStatsLogger": lambda d: [callbacks.KernelStatsLogger(d)],
        "GradCAMLogger": lambda d: [callbacks.GradCAMLogger(d, sample)],
        "ConfusionMatrixLogger": lambda d: [
            callbacks.ConfusionMatrixLogger(d, (x[:200], y[:200]), names)
        ],
    }
    settings["all four"] = lambda d: [cb for key in list(settings)[1:5] for cb in settings[key](d)]
    print(
        f"{args.model} at {args.size}x{args.size}, {args.images} images, batch "
        f"{args.batch_size}, {args.samples} sample images; {args.rounds} rounds",
        flush=True,
    )
    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)  # traces the train step
    times: dict[str, list[float]] = {key: [] for key in settings}
    own: dict[str, list[float]] = {key: [] for key in settings}
    for r in range(args.rounds):
        for key, make in settings.items():
            log_dir = os.path.join(log_root, f"{key.replace(' ', '_')}-{r}")
            spent = [0.0]
            cbs = [_timed(cb, spent) for cb in make(log_dir)]
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=cbs)
            times[key].append(time.perf_counter() - start)
            own[key].append(spent[0])
            print(
                f"  round {r + 1} {key:<22} fit {times[key][-1]:7.2f} s, in the callbacks "
                f"{spent[0]:6.2f} s",
                flush=True,
            )
    base = statistics.median(times["none"])
    print(
        f"\n{'callbacks':<22} {'fit s, median':>13} {'min..max':>14} {'callbacks s':>12} "
        f"{'overhead':>9} {'fit difference':>15}"
    )
    for key, values in times.items():
        median, spent = statistics.median(values), statistics.median(own[key])
        overhead = "" if key == "none" else f"{spent / base:8.1%}"
        diff = "" if key == "none" else f"{(median - base) / base:+8.1%}"
        print(
            f"{key:<22} {median:13.2f} {min(values):6.2f}..{max(values):<6.2f} {spent:12.2f} "
            f"{overhead:>9} {diff:>15}"
        )


def _timed(callback, spent: list):
    """Adds the wall time of `callback`'s hooks to spent[0]."""
    for hook in ("on_train_begin", "on_epoch_end", "on_train_end"):
        original = getattr(callback, hook)

        def timed(*args, _original=original, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(callback, hook, timed)
    return callback


if __name__ == "__main__":
    main()
