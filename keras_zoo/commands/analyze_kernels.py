"""keras-zoo analyze-kernels NAME --out DIR: statistics and histograms of the weights."""

from __future__ import annotations

import argparse
import os

from keras_zoo import console
from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo analyze-kernels`."""
    p = subparsers.add_parser(
        "analyze-kernels", help="mean, std, min, max of every weight (CSV) and kernel histograms"
    )
    options.add_model_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Writes the weights' statistics, the kernel histograms and the first filters."""
    import keras

    from keras_zoo import viz
    from keras_zoo.files import staged_dir
    from keras_zoo.viz.kernels import histogram_figure

    model, _ = options.load_model(args)
    rows = viz.kernel_stats(model)
    kernels = [w for w in viz.named_weights(model) if w.kernel_tag is not None]
    with staged_dir(args.out) as tmp:
        options.write_csv(
            os.path.join(tmp, "kernel_stats.csv"),
            ["name", "shape", "mean", "std", "min", "max"],
            [[r.name, "x".join(map(str, r.shape)), r.mean, r.std, r.min, r.max] for r in rows],
        )
        first = viz.first_conv(model)
        if first is not None:
            import matplotlib.image

            tiles = viz.filter_tiles(keras.ops.convert_to_numpy(first.layer.kernel))
            matplotlib.image.imsave(os.path.join(tmp, "first_conv_filters.png"), tiles)
        os.makedirs(os.path.join(tmp, "histograms"))
        progress = keras.utils.Progbar(
            len(kernels), unit_name="histogram", verbose=console.progress_verbosity()
        )
        for i, weight in enumerate(kernels):
            figure = histogram_figure([weight])
            tag = weight.kernel_tag
            assert tag is not None  # kernels holds only the weights that have one
            path = os.path.join(tmp, "histograms", f"{options.layer_file_name(tag)}.png")
            figure.savefig(path, dpi=80)
            progress.update(i + 1)
    print(
        f"{model.name}: statistics of {len(rows)} weights -> {args.out}/kernel_stats.csv, "
        f"{len(kernels)} kernel histograms -> {args.out}/histograms/"
        + (
            f", first convolution's filters -> {args.out}/first_conv_filters.png"
            if first is not None
            else ""
        )
    )
    return 0
