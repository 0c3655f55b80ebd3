"""A trained model back: `load_trained`, and `predict` and `evaluate` in Keras or in the
runtimes of the exports (LiteRT, ONNX Runtime, OpenVINO).

`load_trained` builds the model id with the run record beside the weights
(`keras_zoo.run_state`: the description of the model the run trained, with its keywords, input
size, classes and preprocessing), so that the weights of a run need none of its flags again,
and names the outputs from the files the run's task wrote (a classifier's class_indices.json).
`predict` and `evaluate` take those weights, or an export of them, which carries the same
description, or anything else `keras_zoo.build(name, weights=...)` takes (a weight set such as
"imagenet", a PyTorch checkpoint, a Keras weights file), built as `build` builds it: the
classes named by its description (ImageNet-1k's for a top of 1000 loaded from the weights).
Both prepare images as the description says, and leave what the outputs mean to the model's
task (`keras_zoo.tasks`: a classifier's top classes, accuracy and confusion matrix).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_zoo import checks
from keras_zoo.description import ModelDescription, describe
from keras_zoo.preprocess import preprocessing_of
from keras_zoo.run_state import (
    RUN_CONFIG,
    model_kwargs,
    read_json_object,
    recorded_model_args,
)
from keras_zoo.tasks import Evaluation, Task, task_named, task_of
from keras_zoo.weight_sets import Preprocessing

RUNTIMES = ("keras", "litert", "onnx", "openvino")


@dataclasses.dataclass
class TrainedModel:
    """A model with the weights `train` wrote and what it knows from the files beside them
    (`class_names`: the names of its outputs, None where its task names none), or with weights
    no run wrote (`config` empty; `class_names` its description's)."""

    model: keras.Model
    name: str
    class_names: tuple[str, ...] | None
    image_size: int
    config: dict

    @property
    def start_weights(self) -> str | None:
        """The weights the run started from (run.json)."""
        return self.config.get("weights")

    @property
    def preprocessing(self) -> Preprocessing:
        """How images are prepared for the model: its description's (the preprocessing of the
        weights the run started from)."""
        return describe(self.model).preprocessing

    @property
    def model_args(self) -> dict[str, Any]:
        """The family keywords the model was built with (`keras_zoo.model_args`)."""
        return recorded_model_args(self.config)


def load_trained(
    name: str,
    weights: str,
    *,
    model_args: Mapping[str, Any] | None = None,
    image_size: int | None = None,
) -> TrainedModel:
    """Builds `name` as the run that wrote `weights` built it (run.json beside them: its family
    keywords, the keywords its start weights fixed, and input size; `model_args` and
    `image_size` given here take precedence) and loads the weights, whose head must match the
    files that name the outputs beside them (the task's `read_names`: a classifier's
    class_indices.json). The model's description (`keras_zoo.describe`) is the run's: the
    preprocessing of its start weights and the names of the outputs."""
    from keras_zoo.api import build
    from keras_zoo.model_args import check_model_args
    from keras_zoo.registry import model_info

    info = model_info(name)
    task = task_named(info.task)
    model_args = check_model_args(name, model_args)
    weights = os.fspath(weights)
    if not os.path.isfile(weights):
        raise ValueError(f"weights {weights!r}: no such file")
    if not weights.endswith(checks.KERAS_WEIGHT_SUFFIXES):
        raise ValueError(
            f"weights {weights!r}: expected the Keras weights file train wrote "
            f"({', '.join(checks.KERAS_WEIGHT_SUFFIXES)})"
        )
    folder = os.path.dirname(os.path.abspath(weights))
    config: dict = {}
    record = os.path.join(folder, RUN_CONFIG)
    if os.path.isfile(record):
        config = read_json_object(record, "the run's configuration")
        if config.get("model") not in (None, name):
            raise ValueError(f"weights {weights!r} were trained as {config['model']}, not {name}")
    class_names = task.read_names(folder, weights)
    recorded = check_model_args(name, recorded_model_args(config), argument=f"{record}: model_args")
    model_args = {**recorded, **model_args}
    if image_size is None:
        image_size = config.get("image_size") or info.input_size[0]
    kwargs = model_kwargs(name, model_args, image_size, task.head(class_names))
    recorded_description = _run_description(config, record)
    if recorded_description is not None:
        kwargs = {**recorded_description.keywords, **kwargs}
    model = build(name, weights=weights, **kwargs)
    model.description = dataclasses.replace(
        describe(model),
        preprocessing=recorded_description.preprocessing
        if recorded_description is not None
        else preprocessing_of(info, config.get("weights")),
        class_names=class_names,
    )
    if config or model_args:  # the record says what was built, keywords given here included
        config = {**config, "model_args": model_args}
    return TrainedModel(model, name, class_names, image_size, config)


def _run_description(config: Mapping[str, Any], record: str) -> ModelDescription | None:
    """The description of the model a run trained (run.json's "description"), None in records
    of earlier releases, which kept none."""
    if config.get("description") is None:
        return None
    return ModelDescription.from_dict(config["description"], f"{record}: description")


def trained_weights(name: str, weights: str | os.PathLike | None) -> bool:
    """Whether `weights` are the weights of a training run of `name`: a Keras weights file
    with its run.json, or the files that name the outputs of the id's task, beside it. The one
    rule by which predict, evaluate, export and the analysis commands tell a run's weights
    (built by `load_trained`) from anything else `keras_zoo.build` takes."""
    from keras_zoo.registry import model_info

    if weights is None:
        return False
    weights = os.fspath(weights)
    if not (weights.endswith(checks.KERAS_WEIGHT_SUFFIXES) and os.path.isfile(weights)):
        return False
    folder = os.path.dirname(os.path.abspath(weights))
    beside = (RUN_CONFIG, *task_named(model_info(name).task).names_files)
    return any(os.path.isfile(os.path.join(folder, f)) for f in beside)


def _load_model(
    name: str,
    weights: str,
    *,
    model_args: Mapping[str, Any] | None = None,
    image_size: int | None = None,
) -> TrainedModel:
    """The model predict and evaluate run in Keras: the weights of a training run (a Keras
    weights file with its run.json or the files naming its outputs beside it) as
    `load_trained` builds them; anything else `keras_zoo.build(name, weights=weights)` takes,
    built by it with logits out (its classifier as many classes as the weights'), named as
    its description names them (None where nothing does)."""
    from keras_zoo.api import build

    weights = os.fspath(weights)
    missing = weights.endswith(checks.KERAS_WEIGHT_SUFFIXES) and not os.path.isfile(weights)
    if missing or trained_weights(name, weights):  # load_trained names a missing file
        return load_trained(name, weights, model_args=model_args, image_size=image_size)
    shape = {} if image_size is None else {"input_shape": (image_size, image_size, 3)}
    model = build(name, weights=weights, classifier_activation=None, **shape, **(model_args or {}))
    size = int(model.inputs[0].shape[1])
    return TrainedModel(model, name, describe(model).class_names, size, {})


@dataclasses.dataclass
class _Inference:
    """How predict and evaluate run a trained model of `task`: `run` maps a prepared batch to
    raw outputs (after the model's last `activation`: "softmax" for an export that outputs
    probabilities, None for none); `batches(files)` prepares images."""

    task: Task
    run: Callable[[Any], Any]
    batches: Callable[[Sequence[str], np.ndarray | None], Iterator[np.ndarray]]
    class_names: tuple[str, ...] | None
    config: dict
    activation: str | None
    keep: object = None  # what must outlive the runs (a temporary export's folder)

    def outputs(
        self, files: Sequence[str] | np.ndarray, regions: np.ndarray | None = None
    ) -> np.ndarray:
        """The raw outputs of the image `files`, in order: of the whole images, or of their
        `regions` where the task crops them (`Task.regions`)."""
        batches = self.batches(list(files), regions)
        return np.concatenate([np.asarray(self.run(x)) for x in batches])


def _inference(
    name: str,
    weights: str,
    runtime: str,
    model_args: Mapping[str, Any] | None,
    image_size: int | None,
) -> _Inference:
    """The model behind `weights` (the Keras weights train wrote, anything else `build` takes,
    or an export, which runs in its own runtime) in `runtime`: "keras", or an export format,
    into which the Keras model is exported (and checked) first."""
    import tempfile

    from keras_zoo.data import make_dataset, read_image
    from keras_zoo.deploy import FORMATS, export, format_of, load_exported
    from keras_zoo.preprocess import normalize_layer

    checks.check_choice(runtime, "runtime", RUNTIMES)
    fmt = format_of(weights)
    if fmt is not None:
        if runtime not in ("keras", fmt):
            raise ValueError(
                f"runtime {runtime!r}: weights {weights!r} is a {fmt} export, "
                f"which runs in {fmt}; drop --runtime"
            )
        exported = load_exported(weights)
        meta = exported.record.get("metadata", {})
        if meta.get("model") not in (None, name):
            raise ValueError(f"weights {weights!r} are an export of {meta['model']}, not {name}")
        task = task_of(exported)
        if exported.class_names is None and task.named_outputs:
            raise ValueError(
                f"weights {weights!r}: its export record names no classes "
                "(export the weights train wrote)"
            )

        def exported_batches(files, regions=None):
            for i in range(0, len(files), 32):
                images = [read_image(f) for f in files[i : i + 32]]
                if regions is not None:
                    size = int(exported.input_shape[0])
                    images = list(task.crops(images, regions[i : i + 32], size))
                yield exported.prepare(images)

        return _Inference(
            task,
            exported,
            exported_batches,
            exported.class_names,
            meta.get("run", {}),
            exported.record.get("output_activation"),
        )
    trained = _load_model(name, weights, model_args=model_args, image_size=image_size)

    def batches(files, regions=None):
        if regions is not None:
            normalize = normalize_layer(trained.preprocessing)
            for i in range(0, len(files), 32):
                images = [read_image(f) for f in files[i : i + 32]]
                crops = task.crops(images, regions[i : i + 32], trained.image_size)
                yield np.asarray(normalize(crops))
            return
        ds = make_dataset(  # the images alone: their targets are not read
            list(files),
            np.zeros(len(files), np.int32),
            image_size=trained.image_size,
            preprocessing=trained.preprocessing,
            batch_size=32,
        )
        for x, _ in ds:
            yield x.numpy()

    task = task_of(trained.model)
    run, keep = trained.model.predict_on_batch, None
    if runtime != "keras":
        keep = tempfile.TemporaryDirectory(prefix="keras_zoo-")
        path = os.path.join(keep.name, f"{name}{FORMATS[runtime].suffix}")
        export(trained.model, path, runtime, class_names=trained.class_names, verbose=False)
        run = load_exported(path)
    return _Inference(task, run, batches, trained.class_names, trained.config, None, keep)


def predict(
    name: str,
    weights: str,
    images: Sequence[str],
    *,
    model_args: Mapping[str, Any] | None = None,
    image_size: int | None = None,
    runtime: str = "keras",
    **options: Any,
) -> list:
    """For each image file (a folder stands for the images in it, in sorted order:
    `keras_zoo.data.image_files`), what the model's task says of it (`Task.decode`, with
    predict's `options`, checked first). A classifier's: the top_k (class name, probability)
    pairs (options top_k, default 5, and temperature, default 1: probabilities
    softmax(logits / temperature), `keras_zoo.layers.TemperatureSoftmax`). Images are
    prepared as the model's description says (as in a training run's validation:
    `keras_zoo.data.make_dataset`). `weights` is the Keras weights file train wrote, an export
    of it (`keras_zoo.export`), or anything else `keras_zoo.build` takes ("imagenet", a weight
    set's key, a PyTorch checkpoint, a Keras weights file), whose classes are named as its
    description names them: ImageNet-1k's ("n01440764 tench") for a classifier of 1000 classes,
    else by index, with a warning. Runtime "litert", "onnx" or "openvino" runs the Keras model
    exported to that runtime. A run's weights are built with the family keywords of the run
    (run.json); `model_args` and `image_size` replace them (`load_trained`).

    Example (the weight set fetched once into the cache)::

        predict("resnet50", "imagenet", ["photo.jpg", "holiday/"], top_k=3)
        # per image, three ("WNID NAME", probability) pairs, highest first
    """
    import warnings

    from keras_zoo.data import image_files, verify_images
    from keras_zoo.model_args import check_model_args
    from keras_zoo.registry import model_info

    model_args = check_model_args(name, model_args)
    task = task_named(model_info(name).task)
    options = task.prediction_options(options)
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if not images:
        raise ValueError("images: give at least one image file")
    images = image_files(images)
    # before the model is built or exported, so that a damaged file costs nothing
    verify_images(images, [f"image {path!r}" for path in images])
    regions = task.regions(images, options=options)  # a face found in each, or a clear error
    inference = _inference(name, weights, runtime, model_args, image_size)
    if inference.class_names is None and inference.task.named_outputs:
        beside = " or ".join(inference.task.names_files)
        warnings.warn(
            f"weights {weights!r}: nothing names their classes (no {beside} beside them, and "
            f"not ImageNet-1k's 1000): classes are shown by index",
            stacklevel=2,
        )
    return inference.task.decode(
        inference.outputs(images, regions),
        inference.class_names,
        inference.activation,
        options,
        regions,
    )


def evaluate(
    name: str,
    weights: str,
    data: str,
    *,
    subset: str = "all",
    model_args: Mapping[str, Any] | None = None,
    image_size: int | None = None,
    runtime: str = "keras",
) -> Evaluation:
    """The measures of the model's task (`Task.evaluate`; a classifier's accuracy, per-class
    precision and recall and confusion matrix) on `data`, read as the task reads a dataset (all
    of it, or the training or validation subset: of data split into train/ and val/, its
    folders; of other data, the run's split drawn again), with images prepared as
    in the run's validation (the preprocessing of the weights it started from, centre crops).
    `weights` and `runtime` as for `predict`. The data's class folders are the weights'
    classes; where those are ImageNet-1k's, they may be some of them, each named by its WordNet
    id (n01440764/, as ImageNet's validation folders are) or by its whole name ("n01440764
    tench"), and the evaluation lists those classes and the other classes as one."""
    from keras_zoo.model_args import check_model_args
    from keras_zoo.registry import model_info

    model_args = check_model_args(name, model_args)
    checks.check_choice(subset, "subset", ("all", "training", "validation"))
    folder = task_named(model_info(name).task).read(data)
    inference = _inference(name, weights, runtime, model_args, image_size)
    imagenet = None  # the output of each class folder, where the classes are ImageNet-1k's
    if inference.task.named_outputs and folder.names != inference.class_names:
        imagenet = _imagenet_outputs(data, folder.names, inference.class_names)
        if imagenet is None:
            theirs = (
                f"the weights' classes are {_listed(inference.class_names)}"
                if inference.class_names is not None
                else "nothing names the weights' classes (no "
                f"{' or '.join(inference.task.names_files)} beside them)"
            )
            raise ValueError(f"data {data!r} has the classes {_listed(folder.names)} but {theirs}")
    indices = np.arange(len(folder.files))
    if subset != "all":
        train_idx, val_idx = _subsets(folder, data, subset, inference.config)
        indices = val_idx if subset == "validation" else train_idx
    files, targets = np.array(folder.files)[indices], folder.targets[indices]
    regions = inference.task.regions(list(files), targets=targets)
    outputs, names = inference.outputs(files, regions), folder.names
    if imagenet is not None:
        outputs, names = _of_the_data_classes(outputs, imagenet, inference.class_names or ())
    return inference.task.evaluate(outputs, targets, names)


OTHER_CLASSES = "(other classes)"


def _imagenet_outputs(
    data: str, names: Sequence[str], class_names: Sequence[str] | None
) -> np.ndarray | None:
    """Where the weights' classes are ImageNet-1k's ("n01440764 tench", ...), the index of the
    output of each class folder `names` of `data`: a folder is named by its class's WordNet id
    (n01440764/, as ImageNet's own folders are) or by the class's whole name; ValueError naming
    a folder that is neither, or two that name one class. None for other weights."""
    from keras_zoo.preprocess import imagenet_classes

    classes = imagenet_classes()
    whole = tuple(f"{wnid} {name}" for wnid, name in classes)
    if class_names is None or tuple(class_names) != whole:
        return None
    index = {wnid: i for i, (wnid, _) in enumerate(classes)} | {n: i for i, n in enumerate(whole)}
    unknown = [n for n in names if n not in index]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ValueError(
            f"data {data!r}: class folder {unknown[0]!r}{more} is not one of the weights' "
            f"ImageNet-1k classes: expected its WordNet id ({classes[0][0]!r}) or its whole "
            f"name ({whole[0]!r})"
        )
    first: dict[int, str] = {}
    for n in names:
        if first.setdefault(index[n], n) != n:
            raise ValueError(
                f"data {data!r}: class folders {first[index[n]]!r} and {n!r} name the same "
                "ImageNet-1k class; keep one"
            )
    return np.array([index[n] for n in names])


def _of_the_data_classes(
    outputs: np.ndarray, indices: np.ndarray, class_names: Sequence[str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The outputs of the data's classes (`indices`, in the order of its class folders), and,
    where the data holds fewer classes than the weights, the highest of the other outputs as
    one more, `OTHER_CLASSES`: the top class is the same (an image whose top class is none of
    the data's is counted as the other classes'), and the evaluation lists the data's classes
    only. The names: the weights' names of the data's classes."""
    names = tuple(class_names[i] for i in indices)
    kept = outputs[:, indices]
    rest = np.delete(outputs, indices, axis=1)
    if rest.shape[1] == 0:
        return kept, names
    return np.concatenate([kept, rest.max(axis=1, keepdims=True)], axis=1), (*names, OTHER_CLASSES)


def _listed(names: Sequence[str] | None, count: int = 10) -> str:
    """`names` as a list in an error line: all of up to `count`, else the first three and how
    many there are (ImageNet-1k's 1000)."""
    names = list(names or ())
    if len(names) <= count:
        return str(names)
    return str(names[:3])[:-1] + f", ... ({len(names)} in all)]"


def _subsets(folder, data: str, subset: str, config: Mapping[str, Any]):
    """The training and validation indices of `folder` for evaluate's `subset`: its own
    folders' where the data comes split, else the run's split drawn again (run.json's
    validation_split and seed); ValueError where the run record has no split to draw or the
    run trained on split data and `data` is not."""
    if folder.subsets is not None:
        return folder.split(None, 0)
    if "validation_split" not in config:
        raise ValueError(
            f"subset {subset!r} needs the {RUN_CONFIG} of the training run beside the weights"
        )
    if config["validation_split"] is None:
        split = config.get("split") or {}
        named = " and ".join(f"{split[k]}/" for k in ("training", "validation") if k in split)
        raise ValueError(
            f"subset {subset!r}: the run trained on data split into {named or 'folders'}, and "
            f"data {data!r} is not split so; give --data the folder that holds them"
        )
    return folder.split(config["validation_split"], config["seed"])
