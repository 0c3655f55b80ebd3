"""keras-zoo analyze-features NAME --image IMG --out DIR: feature maps of chosen layers for
one image, and a Vision Transformer's attention maps."""

from __future__ import annotations

import argparse
import os
from typing import Any

from keras_zoo.commands import options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo analyze-features`."""
    p = subparsers.add_parser(
        "analyze-features",
        help="feature maps of chosen layers for one image: PNG grids and a CSV; of a Vision "
        "Transformer also its attention maps",
    )
    options.add_model_flags(p)
    p.add_argument("--image", required=True, help="image file (JPEG, PNG, ...)")
    p.add_argument(
        "--layers", nargs="+", metavar="LAYER", help="layer names (default: the feature outputs)"
    )
    p.add_argument(
        "-n",
        type=options.positive_int,
        default=12,
        help="channels shown per layer (default 12, a 3x4 grid)",
    )
    p.add_argument(
        "--attention-blocks",
        nargs="+",
        metavar="BLOCK",
        help="of a Vision Transformer: the MultiHeadAttention layers (names, or indices among "
        "them, -1 the last) drawn per head beside the attention rollout (default: the first, "
        "middle and last)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Writes the feature maps (and attention maps) of the image and prints their statistics."""
    from keras_zoo import viz
    from keras_zoo.files import staged_dir
    from keras_zoo.viz.features import channel_figure
    from keras_zoo.viz.graph import large_enough

    model, _ = options.load_model(args)
    x = prepare_image(args.image, model)
    values = viz.feature_maps(model, x, args.layers)  # unknown layers fail before any writing
    maps = _attention_maps(model, x, args.attention_blocks)
    with staged_dir(args.out) as tmp:
        rows = []
        for name, value in values.items():
            stats = viz.activation_stats(value)
            rows.append(
                [
                    name,
                    "x".join(map(str, value.shape[1:])),
                    stats["mean"],
                    stats["std"],
                    float(value.min()),
                    float(value.max()),
                    stats["zero_fraction"],
                ]
            )
            # maps smaller than 4x4 of the default layers are numbers, not pictures
            if value.ndim == 4 and (args.layers or large_enough(value.shape)):
                figure = channel_figure(value[0], name, n=args.n)
                figure.savefig(os.path.join(tmp, f"{options.layer_file_name(name)}.png"), dpi=100)
        options.write_csv(
            os.path.join(tmp, "feature_stats.csv"),
            ["layer", "shape", "mean", "std", "min", "max", "zero_fraction"],
            rows,
        )
        if maps is not None:
            _write_attention(tmp, x[0], maps)
        files = sorted(os.listdir(tmp))
    print(f"{args.image}: {len(values)} layers of {model.name} -> {args.out}/")
    for row in rows:
        print(
            f"  {row[0]:<28} {row[1]:>14}  mean {row[2]:9.4f}  std {row[3]:9.4f}  "
            f"zeros {row[6]:6.1%}"
        )
    if maps is not None:
        print(
            f"  attention rollout over every block and the heads of {', '.join(maps.heads)}, "
            f"on {maps.grid.rows}x{maps.grid.columns} patches"
        )
    print(f"wrote {', '.join(files)}")
    return 0


def prepare_image(path: str, model: Any) -> Any:
    """The image file at `path` as a batch of one, prepared as the model's description says
    (`keras_zoo.describe(model).preprocessing`: resized, centre-cropped to the model's input
    size, normalised). For a model keras_zoo did not build (a .keras file saved from another
    model), whose preprocessing is not known: resized and cropped the same way (bilinear,
    crop_pct 0.875) and scaled to [0, 1]."""
    import numpy as np

    from keras_zoo.data import read_image
    from keras_zoo.description import DescribedModel
    from keras_zoo.preprocess import normalize_layer, resize_layer
    from keras_zoo.weight_sets import Preprocessing

    size = tuple(model.inputs[0].shape[1:3])
    size = (224, 224) if None in size else size
    image = read_image(path)[None]
    if not isinstance(model, DescribedModel) or model.description is None:
        return np.asarray(resize_layer(Preprocessing(input_size=size))(image)) / 255.0
    pre = model.description.preprocessing
    return np.asarray(normalize_layer(pre)(resize_layer(pre, size[0])(image)))


def _attention_maps(model, x, blocks):
    """A Vision Transformer's attention maps for the image `x` (`viz.attention.attention_maps`)
    at `blocks` (default the first, middle and last); None for a model without attention on a
    patch grid, unless blocks were asked for."""
    import keras

    from keras_zoo import walk
    from keras_zoo.layers import token_grid
    from keras_zoo.viz import attention

    kind = keras.layers.MultiHeadAttention
    attends = any(isinstance(layer, kind) for layer in walk.layers(model))
    if not attends or token_grid(model) is None:
        if blocks:
            raise ValueError(
                "--attention-blocks: expected a model with MultiHeadAttention layers over "
                f"image patches (a Vision Transformer); {model.name!r} has none"
            )
        return None
    refs = attention.resolve_blocks(model, blocks, argument="--attention-blocks")
    return attention.attention_maps(model, x, [ref.name for ref in refs])


def _write_attention(folder: str, image, maps) -> None:
    """attention_rollout.png, attention_<layer>.png per chosen block, and the maps themselves in
    attention.npz (rollout (rows, columns), per block (heads, rows, columns))."""
    import numpy as np

    from keras_zoo.viz import attention

    figure = attention.rollout_figure(image, maps.rollout[0])
    figure.savefig(os.path.join(folder, "attention_rollout.png"), dpi=100)
    for name, heads in maps.heads.items():
        figure = attention.head_figure(image, heads[0], name)
        path = os.path.join(folder, f"attention_{options.layer_file_name(name)}.png")
        figure.savefig(path, dpi=100)
    arrays = {"rollout": maps.rollout[0], **{name: h[0] for name, h in maps.heads.items()}}
    np.savez(os.path.join(folder, "attention.npz"), **arrays)
