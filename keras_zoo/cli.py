"""The `keras-zoo` command line.

keras-zoo list [PATTERN] [--weights]   model ids with parameters, GMACs and top-1, or
                               their weight sets with each one's preprocessing
keras-zoo info NAME            one id's metadata and the keywords build() takes
keras-zoo demo [NAME ...]      build, print summary figures, run a batch of images
keras-zoo port NAME SRC DST    port a PyTorch checkpoint into a Keras weights file
keras-zoo analyze-features NAME --image IMG --out DIR    feature maps of chosen layers (and
                               a Vision Transformer's attention maps)
keras-zoo analyze-kernels NAME --out DIR                 statistics and histograms of weights
keras-zoo digits DIR           write the bundled handwritten digits as a class-per-folder tree
keras-zoo train NAME --data DIR                          train or fine-tune on a folder
keras-zoo evaluate NAME --weights W --data DIR           accuracy, precision, recall
keras-zoo predict NAME --weights W IMAGE ...             top classes of images
keras-zoo export NAME OUT [--weights W] [--quantize int8 --calibration DIR]
                               LiteRT, ONNX, OpenVINO or SavedModel, checked in its runtime
keras-zoo bench                against keras.applications and PyTorch, side by side
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from typing import NoReturn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_list(args) -> int:
    import keras_zoo

    names = keras_zoo.list_models(args.pattern)
    if not names:
        print(f"no model id matches {args.pattern!r}", file=sys.stderr)
        return 1
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
            stats = (
                "BGR 0..255"
                if pre.channel_order == "BGR"
                else f"{_fmt(pre.mean)} / {_fmt(pre.std)}"
            )
            key = f"{ws.key} (default)" if i == 0 else ws.key
            rows.append(
                f"| {name} | {key} | {top1} | {ws.layout} | {pre.input_size[0]} | "
                f"{pre.resize_size} | {pre.interpolation} | {stats} |"
            )
    return "\n".join(rows)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _cmd_info(args) -> int:
    import keras_zoo

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
        print(f"  {label:<13} {ws.key} ({note}top-1 {ws.top1}, {ws.layout} layout)")
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
    print(
        f"{'id':<20} {'params':>13} {'ref. params':>13} {'GMACs':>7} {'stages (HxWxC)':<44} "
        f"{'ms/image':>9}"
    )
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
    print(
        f"\nbatch of {args.batch_size} random {size}x{size} images, untrained weights; "
        "ms/image from the second batch"
    )
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


def _load_model(args, **kwargs):
    """The model the analysis commands look at: a registered id built with the given flags and
    weights, or a saved Keras model (.keras)."""
    import keras

    import keras_zoo

    if args.name.endswith(".keras"):
        if args.weights or args.alpha is not None:
            raise ValueError(
                f"{args.name}: a saved model has its own weights and width; "
                "drop --weights and --alpha"
            )
        if not os.path.isfile(args.name):
            raise ValueError(f"model file {args.name!r}: no such file")
        return keras.models.load_model(args.name), None
    info = keras_zoo.model_info(args.name)
    if args.alpha is not None:
        kwargs["alpha"] = args.alpha
    size = args.image_size or info.input_size[0]
    model = keras_zoo.build(
        args.name, weights=args.weights, classes=args.classes, input_shape=(size, size, 3), **kwargs
    )
    if not args.weights:
        print(
            f"note: no --weights, so {args.name} has its initial (random) weights", file=sys.stderr
        )
    return model, info


def _file_name(layer_name: str) -> str:
    return layer_name.replace("/", "__")


def _write_csv(path: str, header: list[str], rows) -> None:
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _prepare_image(path: str, model, info, weights):
    """The image file at `path` as a batch of one, prepared as `keras_zoo.preprocessing(id,
    weights)` prepares it (resized, centre-cropped to the model's input size, normalised). For
    a saved model, whose preprocessing is not known: resized and cropped the same way (bilinear,
    crop_pct 0.875) and scaled to [0, 1]."""
    import numpy as np

    from keras_zoo.data import read_image
    from keras_zoo.preprocess import preprocessing, resize_layer
    from keras_zoo.weight_sets import Preprocessing

    size = tuple(model.inputs[0].shape[1:3])
    size = (224, 224) if None in size else size
    image = read_image(path)[None]
    if info is None:
        return np.asarray(resize_layer(Preprocessing(input_size=size))(image)) / 255.0
    return np.asarray(preprocessing(info.name, weights, image_size=size[0])(image))


def _cmd_analyze_features(args) -> int:
    from keras_zoo import viz
    from keras_zoo.files import staged_dir
    from keras_zoo.viz.features import channel_figure
    from keras_zoo.viz.graph import large_enough

    model, info = _load_model(args)
    x = _prepare_image(args.image, model, info, args.weights)
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
                figure.savefig(os.path.join(tmp, f"{_file_name(name)}.png"), dpi=100)
        _write_csv(
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
        figure.savefig(os.path.join(folder, f"attention_{_file_name(name)}.png"), dpi=100)
    arrays = {"rollout": maps.rollout[0], **{name: h[0] for name, h in maps.heads.items()}}
    np.savez(os.path.join(folder, "attention.npz"), **arrays)


def _cmd_analyze_kernels(args) -> int:
    import keras

    from keras_zoo import viz
    from keras_zoo.files import staged_dir
    from keras_zoo.viz.kernels import histogram_figure

    model, _ = _load_model(args)
    rows = viz.kernel_stats(model)
    kernels = [w for w in viz.named_weights(model) if w.kernel_tag is not None]
    with staged_dir(args.out) as tmp:
        _write_csv(
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
        progress = keras.utils.Progbar(len(kernels), unit_name="histogram")
        for i, weight in enumerate(kernels):
            figure = histogram_figure([weight])
            tag = weight.kernel_tag
            assert tag is not None  # kernels holds only the weights that have one
            figure.savefig(os.path.join(tmp, "histograms", f"{_file_name(tag)}.png"), dpi=80)
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


def _cmd_digits(args) -> int:
    from keras_zoo.datasets import write_digits

    root = write_digits(args.dir, size=args.size)
    print(
        f"{root}: 1797 handwritten digits (scikit-learn's bundled 8x8 scans) as "
        f"{args.size}x{args.size} PNG files in the class folders 0..9"
    )
    return 0


# every epoch's images, where TensorBoard keeps 10 per tag; images=0, which its help calls
# "keep all", serves none in TensorBoard 2.21 (tests/test_training.py asks a real server)
TENSORBOARD_FLAGS = "--samples_per_plugin images=1000"


def _cmd_train(args) -> int:
    from keras_zoo.files import Terminated
    from keras_zoo.training import TrainingInterrupted, train

    augment = () if args.augment == "none" else tuple(args.augment.split(","))
    try:  # main turns a scheduler's SIGTERM into Terminated, so it stops the run as Ctrl-C does
        result = train(
            args.name,
            args.data,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            image_size=args.image_size,
            alpha=args.alpha,
            weights=args.weights,
            freeze_backbone=args.freeze_backbone,
            log_dir=args.log_dir,
            out=args.out,
            strategy=args.strategy,
            validation_split=args.validation_split,
            seed=args.seed,
            augment=augment,
            inspect=not args.no_inspect,
            verbose=args.verbose,
        )
    except KeyboardInterrupt as stop:
        if sys.stdout.isatty():  # ends the progress bar's line
            print(flush=True)
        text = (
            str(stop)
            if isinstance(stop, TrainingInterrupted)
            else f"{'terminated' if isinstance(stop, Terminated) else 'interrupted'} "
            "before the first epoch or after the last; rerun the same command to train"
        )
        print(f"keras-zoo train: {text}", file=sys.stderr)
        return 130  # the shell's status for Ctrl-C
    epoch = "" if result.best_epoch is None else f" (epoch {result.best_epoch})"
    print(
        f"best validation accuracy {result.best_val_accuracy:.4f}{epoch} in "
        f"{result.seconds:.0f} s; wrote {result.weights}, class_indices.json and run.json in "
        f"{result.out}"
    )
    print(
        "to look at the run (every epoch's images): tensorboard --logdir "
        f"{os.path.dirname(result.log_dir) or '.'} {TENSORBOARD_FLAGS}"
    )
    return 0


def _cmd_evaluate(args) -> int:
    from keras_zoo import viz
    from keras_zoo.files import staged_dir
    from keras_zoo.training import evaluate

    result = evaluate(
        args.name,
        args.weights,
        args.data,
        subset=args.subset,
        alpha=args.alpha,
        image_size=args.image_size,
        runtime=args.runtime,
    )
    print(
        f"{args.name} on {result.images} images of {args.data} ({args.subset}): accuracy "
        f"{result.accuracy:.4f}"
    )
    width = max(len(c) for c in result.class_names)
    print(f"  {'class':<{width}} {'precision':>9} {'recall':>7} {'images':>7}")
    for c, p, r, n in zip(
        result.class_names, result.precision, result.recall, result.matrix.sum(axis=1)
    ):
        print(f"  {c:<{width}} {p:9.4f} {r:7.4f} {n:7d}")
    out = args.out or os.path.dirname(os.path.abspath(args.weights))
    figure = viz.plot_confusion_matrix(
        result.matrix,
        result.class_names,
        title=f"{args.name}, {args.subset}: accuracy {result.accuracy:.4f}",
    )
    with staged_dir(out) as tmp:
        figure.savefig(os.path.join(tmp, f"confusion_matrix_{args.subset}.png"), dpi=100)
    print(f"wrote {os.path.join(out, f'confusion_matrix_{args.subset}.png')}")
    return 0


def _cmd_predict(args) -> int:
    from keras_zoo.training import predict

    results = predict(
        args.name,
        args.weights,
        args.images,
        top_k=args.top_k,
        temperature=args.temperature,
        alpha=args.alpha,
        image_size=args.image_size,
        runtime=args.runtime,
    )
    for path, top in zip(args.images, results):
        print(f"{path}: " + ", ".join(f"{c} {p:.4f}" for c, p in top))
    return 0


def _cmd_export(args) -> int:
    from keras_zoo.deploy import export

    model, kwargs = _export_model(args)
    export(
        model,
        args.out,
        args.format,
        quantize=args.quantize,
        calibration=args.calibration,
        data=args.data,
        layout=args.layout,
        **kwargs,
    )
    return 0


def _export_model(args):
    """The model `keras-zoo export` writes, and export's preprocessing, class_names and
    metadata keywords: a saved Keras model; the weights train wrote, with the classes, size and
    preprocessing of their run; or an id built with --weights."""
    import dataclasses

    import keras

    import keras_zoo
    from keras_zoo.preprocess import imagenet_classes, preprocessing_of
    from keras_zoo.training import CLASS_INDICES, load_trained

    meta = {"model": args.name, "weights": args.weights}
    if args.name.endswith(".keras"):
        if args.weights or args.alpha is not None or args.classes or args.image_size:
            raise ValueError(
                f"{args.name}: a saved model has its own weights, width, classes "
                "and input size; drop --weights, --alpha, --classes and "
                "--image-size"
            )
        if not os.path.isfile(args.name):
            raise ValueError(f"model file {args.name!r}: no such file")
        return keras.models.load_model(args.name), {"metadata": meta}
    info = keras_zoo.model_info(args.name)
    weights = args.weights
    trained = (
        weights is not None
        and os.path.isfile(weights)
        and os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(weights)), CLASS_INDICES))
    )
    if trained:
        if args.include_preprocessing or args.classes:
            raise ValueError(
                "--include-preprocessing and --classes do not apply to the weights "
                "train wrote (their classes come from class_indices.json)"
            )
        run = load_trained(args.name, weights, alpha=args.alpha, image_size=args.image_size)
        size = run.image_size
        pre = preprocessing_of(info, run.start_weights)
        model, names = run.model, run.class_names
        meta["run"] = run.config
    else:
        size = args.image_size or info.input_size[0]
        kwargs = {"alpha": args.alpha} if args.alpha is not None else {}
        model = keras_zoo.build(
            args.name,
            weights=weights,
            input_shape=(size, size, 3),
            classes=args.classes or 1000,
            include_preprocessing=args.include_preprocessing,
            **kwargs,
        )
        pre = preprocessing_of(info, weights)
        names = (
            [name for _, name in imagenet_classes()]
            if (args.classes or 1000) == 1000 and weights
            else None
        )
        if not weights:
            print(
                f"note: no --weights, so {args.name} has its initial (random) weights",
                file=sys.stderr,
            )
    pre = dataclasses.replace(pre, input_size=(size, size))
    return model, {"preprocessing": pre, "class_names": names, "metadata": meta}


def _add_runtime_flag(p) -> None:
    p.add_argument(
        "--runtime",
        default="keras",
        choices=["keras", "litert", "onnx", "openvino"],
        help="run the model in this runtime (exported and checked first); --weights "
        "may also be an export, which runs in its own",
    )


def _cmd_bench(args) -> int:
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


def _add_model_flags(p) -> None:
    p.add_argument("name", help="model id (e.g. mobilenet_v2) or a saved Keras model (.keras)")
    p.add_argument(
        "--weights",
        help="'imagenet', a weight set ('torchvision:IMAGENET1K_V2', see "
        "'keras-zoo list --weights'), a PyTorch checkpoint or a Keras weights file "
        "(default: initial weights)",
    )
    p.add_argument("--alpha", type=float, help="width multiplier of the MobileNets")
    p.add_argument(
        "--classes",
        type=_positive_int,
        default=1000,
        help="classes of the weights' classifier (default 1000)",
    )
    p.add_argument(
        "--image-size", type=_image_size, help="input size (default: the id's, 224 for most)"
    )
    p.add_argument("--out", required=True, help="folder to write into")


class _Parser(argparse.ArgumentParser):
    """argparse's parser with the error first: `keras-zoo train: error: argument --image-size:
    ...`, then the usage (argparse prints the usage first). Subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n{self.format_usage()}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keras-zoo", description="ResNet, ResNeXt, MobileNet and ShuffleNet for Keras 3."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list model ids")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument(
        "--weights",
        action="store_true",
        help="list the ids' weight sets with their preprocessing (a Markdown table)",
    )
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("info", help="metadata and keywords of one model id")
    p.add_argument("name")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("demo", help="build models, print summary figures and run a batch")
    p.add_argument(
        "names",
        nargs="*",
        default=["resnet18", "resnet50", "resnext50_32x4d"],
        metavar="NAME",
        help="model ids (default: resnet18 resnet50 resnext50_32x4d)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=4)
    p.add_argument("--image-size", type=_image_size, default=224)
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("port", help="port a PyTorch checkpoint into a Keras weights file")
    p.add_argument("name", help="model id, e.g. resnet50")
    p.add_argument("src", help="PyTorch checkpoint (.pth, .pt, .bin, .ckpt, .safetensors)")
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
        "(default: torchvision.models.get_model)",
    )
    p.add_argument(
        "--allow-unknown-globals",
        action="store_true",
        help="read a checkpoint that pickles other objects beside its tensors "
        "(argparse.Namespace, numpy scalars, torch.device): each unknown global "
        "becomes an inert placeholder; nothing from the file is run",
    )
    p.set_defaults(run=_cmd_port)

    p = sub.add_parser(
        "analyze-features",
        help="feature maps of chosen layers for one image: PNG grids and a CSV; of a Vision "
        "Transformer also its attention maps",
    )
    _add_model_flags(p)
    p.add_argument("--image", required=True, help="image file (JPEG, PNG, ...)")
    p.add_argument(
        "--layers", nargs="+", metavar="LAYER", help="layer names (default: the stage outputs)"
    )
    p.add_argument(
        "-n",
        type=_positive_int,
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
    p.set_defaults(run=_cmd_analyze_features)

    p = sub.add_parser(
        "analyze-kernels", help="mean, std, min, max of every weight (CSV) and kernel histograms"
    )
    _add_model_flags(p)
    p.set_defaults(run=_cmd_analyze_kernels)

    p = sub.add_parser("digits", help="write the bundled handwritten digits as class folders")
    p.add_argument("dir", help="folder to write (DIR/0 .. DIR/9)")
    p.add_argument("--size", type=_positive_int, default=32, help="image size (default 32)")
    p.set_defaults(run=_cmd_digits)

    p = sub.add_parser("train", help="train or fine-tune a model on a class-per-folder tree")
    p.add_argument("name", help="model id, e.g. mobilenet_v2")
    p.add_argument("--data", required=True, help="folder with one sub-folder of images per class")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine decay)")
    p.add_argument(
        "--image-size",
        type=_image_size,
        help="input size (default: the id's, 224 for most; a ViT's: a multiple of its patch size)",
    )
    p.add_argument("--alpha", type=float, help="width multiplier of the MobileNets")
    p.add_argument(
        "--weights",
        help="'imagenet', a weight set ('torchvision:IMAGENET1K_V2'), a "
        "PyTorch checkpoint or a Keras weights file to start from (its "
        "classifier is replaced)",
    )
    p.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="train only the layers after the last stage (the head; a ViT's heads.head)",
    )
    p.add_argument("--log-dir", help="TensorBoard folder (default: --out)")
    p.add_argument(
        "--out",
        help="folder for the weights, class_indices.json and run.json "
        "(default logs/NAME_DATAFOLDER)",
    )
    p.add_argument(
        "--strategy",
        default="default",
        choices=["default", "mirrored", "multi-worker"],
        help="tf.distribute strategy; multi-worker reads TF_CONFIG",
    )
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the shuffling")
    p.add_argument(
        "--augment", default="flip,crop", help="'flip', 'crop', 'flip,crop' (default) or 'none'"
    )
    p.add_argument(
        "--no-inspect",
        action="store_true",
        help="no feature-map, kernel and confusion-matrix logging",
    )
    p.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=[0, 1, 2],
        help="Keras fit verbosity: 1 progress bars (default), 2 a line per epoch",
    )
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, precision, recall and a confusion matrix")
    p.add_argument("name")
    p.add_argument(
        "--weights",
        required=True,
        help="the weights train wrote, or an export of them (.tflite, .onnx, .xml)",
    )
    p.add_argument("--data", required=True, help="a class-per-folder tree with the same classes")
    p.add_argument(
        "--subset",
        default="all",
        choices=["all", "training", "validation"],
        help="images of the training run's split (default: all)",
    )
    p.add_argument("--alpha", type=float)
    p.add_argument(
        "--image-size",
        type=_image_size,
        help="input size (default: the trained run's, else the id's)",
    )
    p.add_argument(
        "--out", help="folder for the confusion-matrix PNG (default: beside the weights)"
    )
    _add_runtime_flag(p)
    p.set_defaults(run=_cmd_evaluate)

    p = sub.add_parser("predict", help="the top classes of images")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--weights",
        required=True,
        help="the weights train wrote, or an export of them (.tflite, .onnx, .xml)",
    )
    p.add_argument("--top-k", type=_positive_int, default=5)
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="softmax temperature: > 1 smooths the probabilities (default 1)",
    )
    p.add_argument("--alpha", type=float)
    p.add_argument(
        "--image-size",
        type=_image_size,
        help="input size (default: the trained run's, else the id's)",
    )
    _add_runtime_flag(p)
    p.set_defaults(run=_cmd_predict)

    p = sub.add_parser(
        "export",
        help="export a model to LiteRT, ONNX, OpenVINO or a SavedModel, checked in its runtime",
    )
    p.add_argument("name", help="model id, e.g. mobilenet_v2, or a saved Keras model (.keras)")
    p.add_argument(
        "out",
        help="file to write: .tflite (litert), .onnx, .xml (openvino, with its "
        ".bin), or a folder (saved_model); the check's record goes "
        "beside it as OUT.json",
    )
    p.add_argument(
        "--weights",
        help="'imagenet', a weight set, a PyTorch checkpoint, or the "
        "weights train wrote (their classes and preprocessing "
        "come along)",
    )
    p.add_argument(
        "--format", help="litert, onnx, openvino or saved_model (default: from OUT's suffix)"
    )
    p.add_argument(
        "--quantize",
        help="int8 (litert, onnx, openvino; needs --calibration), "
        "float16 (litert, openvino), bf16 (openvino)",
    )
    p.add_argument(
        "--calibration",
        metavar="DIR",
        help="images to calibrate int8 on; float exports are checked on them too",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="a class-per-folder tree to measure the "
        "export's accuracy on, beside the Keras model's",
    )
    p.add_argument(
        "--image-size",
        type=_image_size,
        help="input size (default: the trained run's, else the id's)",
    )
    p.add_argument("--alpha", type=float, help="width multiplier of the MobileNets")
    p.add_argument(
        "--classes", type=_positive_int, help="classes of the weights' classifier (default 1000)"
    )
    p.add_argument(
        "--include-preprocessing",
        action="store_true",
        help="the export takes RGB values in [0, 255] and normalises them itself",
    )
    p.add_argument(
        "--layout",
        default="nhwc",
        choices=["nhwc", "nchw"],
        help="the input's axis order: nhwc (Keras', the default) or, for onnx and "
        "openvino, nchw (torch's)",
    )
    p.set_defaults(run=_cmd_export)

    from keras_zoo import bench as bench_module

    p = sub.add_parser("bench", help="keras_zoo against keras.applications and PyTorch")
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
    p.add_argument("--image-size", type=_image_size, default=224)
    p.add_argument("--batch-sizes", type=_positive_int, nargs="+", default=[1, 16])
    p.add_argument("--rounds", type=_positive_int, default=5)
    p.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="seconds of calls per contender per round (default 2)",
    )
    p.add_argument("--train-batch", type=_positive_int, default=16)
    p.add_argument("--xla", action="store_true", help="compile every Keras contender with XLA")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument(
        "--torch-reference",
        default=bench_module.TORCH_REFERENCE,
        metavar="MODULE:FUNCTION",
        help="FUNCTION(name, num_classes, alpha) -> torch module for the torch "
        "column (default: torchvision's, timm's and megvii's own models, "
        f"{bench_module.TORCH_REFERENCE})",
    )
    p.set_defaults(run=_cmd_bench)
    return parser


def _positive_int(text: str) -> int:
    """The argparse type of counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _image_size(text: str) -> int:
    """The argparse type of --image-size: an integer that `checks.check_image_size` accepts."""
    from keras_zoo import checks

    try:
        value: int | str = int(text)
    except ValueError:
        value = text
    try:
        return checks.check_image_size(value, "image size")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _input_errors() -> tuple[type[BaseException], ...]:
    """The errors main reports in a line rather than a traceback: those of bad arguments and
    files, and, once TensorFlow is loaded, its ops' errors about the values they were given (an
    image that fails to decode, a batch too large for memory)."""
    errors = (ValueError, TypeError, OSError, RuntimeError, ImportError)
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return errors
    return errors + (
        tf.errors.InvalidArgumentError,
        tf.errors.NotFoundError,
        tf.errors.DataLossError,
        tf.errors.UnimplementedError,
        tf.errors.ResourceExhaustedError,
    )


def _error_text(err: BaseException) -> str:
    """The message main prints: the error's own, whose first line says what is wrong, or a
    TensorFlow op's reason in one line."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(err, tf.errors.OpError):
        from keras_zoo.checks import op_error_text

        return f"TensorFlow could not run on this input: {op_error_text(err)}"
    return str(err).strip() or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Runs `keras-zoo ARGV...` and returns its exit status: 0, 2 for bad input (a one-line
    error on stderr), 130 for an interrupted training run."""
    from keras_zoo.files import terminate_as_interrupt

    args = _parser().parse_args(argv)
    try:
        with terminate_as_interrupt():  # SIGTERM runs the command's cleanups, as Ctrl-C does
            return args.run(args)
    except _input_errors() as err:
        print(f"keras-zoo {args.command}: error: {_error_text(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
