"""The training workflow on a class-per-folder image tree: train, evaluate, predict.

`train` writes into its `out` folder:

    best.weights.h5      the weights of the epoch with the best validation accuracy
    class_indices.json   {"0": "daisy", "1": "dandelion", ...}
    run.json             the run configuration (model flags, data, split, schedule) and results

and logs to `log_dir`: Keras' epoch scalars, the run configuration as text, and the inspection
callbacks (`keras_zoo.callbacks`: one validation image per class with its feature maps and
Grad-CAM, kernel histograms and update ratios, the validation confusion matrix with each
class's precision and recall). `evaluate` and
`predict` read the model flags and class names back from the files beside the weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence

import keras
import numpy as np

from keras_zoo import checks

AUGMENTATIONS = ("flip", "crop")
BEST_WEIGHTS = "best.weights.h5"
CLASS_INDICES = "class_indices.json"
RUN_CONFIG = "run.json"
BACKUP = ".backup"
SAMPLE_IMAGES = 10  # sample images shown in TensorBoard: one per class, up to this many


@dataclasses.dataclass
class TrainResult:
    """What `train` did: where it wrote, the best validation accuracy and Keras' history."""

    out: str
    log_dir: str
    weights: str
    best_val_accuracy: float
    history: dict
    seconds: float


def _model_kwargs(name: str, alpha: float | None, image_size: int, classes: int) -> dict:
    from keras_zoo.builder import MIN_SIZE
    from keras_zoo.registry import model_info

    info = model_info(name)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_SIZE:
        raise ValueError(f"image size {image_size!r} is below {name}'s minimum of {MIN_SIZE}"
                         if isinstance(image_size, int) else
                         f"image size must be an integer, got {image_size!r}")
    kwargs = {"input_shape": (image_size, image_size, 3), "classes": classes,
              "classifier_activation": None}
    if alpha is not None:
        if "alpha" not in info.keywords:
            raise ValueError(f"alpha: {name} has no width multiplier; the MobileNets take one")
        kwargs["alpha"] = alpha
    return kwargs


def _check_start_weights(info, weights):
    """None, a weight set's spec ("imagenet", "source:tag") or the path of an existing weights
    file, checked without fetching anything; ValueError otherwise."""
    from keras_zoo.pretrained import check

    checked = check(info, weights)
    return None if checked is None else checked[0]


def _freeze_backbone(model) -> int:
    """Freezes every layer up to the last stage output (batch norm then runs in inference
    mode); returns how many layers stay trainable."""
    from keras_zoo.layers import StageOutput

    last = max(i for i, layer in enumerate(model.layers) if isinstance(layer, StageOutput))
    for layer in model.layers[:last + 1]:
        layer.trainable = False
    return sum(1 for layer in model.layers[last + 1:] if layer.weights)


class _BestSoFar(keras.callbacks.Callback):
    """Records the run's best validation accuracy in the backup folder, for a resumed run."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.value = None
        if os.path.isfile(path):
            with open(path) as f:
                self.value = json.load(f)["val_accuracy"]

    def on_epoch_end(self, epoch, logs=None):
        value = float(np.ravel((logs or {}).get("val_accuracy", np.nan))[0])
        if value == value and (self.value is None or value > self.value):
            self.value = value
            if os.path.isdir(os.path.dirname(self.path)):  # BackupAndRestore's, made before
                _write_json(self.path, {"val_accuracy": value, "epoch": epoch})


def _write_json(path: str, value) -> None:
    tmp = f"{path}.partial"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def train(name: str, data: str, *, epochs: int = 10, batch_size: int = 32, lr: float = 1e-3,
          image_size: int | None = None, alpha: float | None = None, weights: str | None = None,
          freeze_backbone: bool = False, log_dir: str | None = None, out: str | None = None,
          strategy: str | None = None, validation_split: float = 0.2, seed: int = 0,
          augment: Sequence[str] = AUGMENTATIONS, inspect: bool = True, verbose: int | str = 1,
          callbacks: Sequence = ()) -> TrainResult:
    """Trains model id `name` on the class-per-folder tree `data` with Keras fit.

    weights: "imagenet", a weight set's key ("torchvision:IMAGENET1K_V2"), a PyTorch checkpoint
    or a Keras weights file to start from; its classifier is left out (a new head for this
    data's classes). Images are prepared as that weight set was evaluated
    (`keras_zoo.preprocessing(name, weights, image_size=image_size)`: the id's default for a
    file or None), before the random crops and flips of `augment`. freeze_backbone trains only
    the layers after the last stage output. log_dir and out default to logs/<name>_<data
    folder name>. A run interrupted after some epochs resumes from the last finished epoch when
    started again with the same out (keras.callbacks.BackupAndRestore). Everything is checked
    before anything is written.
    """

    from keras_zoo import callbacks as inspection
    from keras_zoo.data import make_dataset, scan_folder, verify_images
    from keras_zoo.distribute import is_chief, make_strategy, prepare_model
    from keras_zoo.api import build
    from keras_zoo.registry import model_info

    start = time.perf_counter()
    info = model_info(name)
    epochs = checks.check_positive_int(epochs, "epochs")
    batch_size = checks.check_positive_int(batch_size, "batch_size")
    lr = checks.check_positive_number(lr, "lr", "1e-3 to 1e-4")
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    augment = tuple(augment)
    for kind in augment:
        checks.check_choice(kind, "augment", AUGMENTATIONS)
    weights = _check_start_weights(info, weights)
    image_size = info.input_size[0] if image_size is None else image_size
    folder = scan_folder(data, verify=False)
    classes = len(folder.class_names)
    kwargs = _model_kwargs(name, alpha, image_size, classes)
    run_name = f"{name}_{os.path.basename(os.path.normpath(data))}"
    out = os.path.join("logs", run_name) if out is None else os.fspath(out)
    log_dir = out if log_dir is None else os.fspath(log_dir)
    dist = make_strategy(strategy)  # before any TensorFlow op: collectives are set up here
    verify_images(folder.files)
    train_idx, val_idx = folder.split(validation_split, seed)
    files, labels = np.array(folder.files), folder.labels
    common = dict(image_size=image_size, info=info, batch_size=batch_size, seed=seed,
                  weights=weights)
    train_ds = make_dataset(files[train_idx], labels[train_idx], training=True, augment=augment,
                            **common)
    val_ds = make_dataset(files[val_idx], labels[val_idx], **common)
    with dist.scope():
        model = build(name, weights=weights, **kwargs)
        if freeze_backbone:
            _freeze_backbone(model)
        steps = epochs * -(-len(train_idx) // batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    prepare_model(model, dist, train_ds)

    # everything is checked: from here on the run writes
    os.makedirs(out, exist_ok=True)
    class_indices = {str(i): c for i, c in enumerate(folder.class_names)}
    config = {
        "model": name,
        "alpha": alpha,
        "image_size": image_size,
        "classes": classes,
        "data": os.path.abspath(data),
        "validation_split": validation_split,
        "seed": seed,
        "train_images": int(len(train_idx)),
        "validation_images": int(len(val_idx)),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "schedule": "cosine decay, Adam",
        "weights": weights,
        "freeze_backbone": freeze_backbone,
        "augment": list(augment),
        "strategy": strategy or "default",
        "log_dir": os.path.abspath(log_dir),
    }
    _write_json(os.path.join(out, CLASS_INDICES), class_indices)
    _write_json(os.path.join(out, RUN_CONFIG), config)
    best = os.path.join(out, BEST_WEIGHTS)
    best_so_far = _BestSoFar(os.path.join(out, BACKUP, "best.json"))
    cbs = [
        keras.callbacks.BackupAndRestore(os.path.join(out, BACKUP)),
        # a resumed run keeps the best weights of the epochs before the interruption
        keras.callbacks.ModelCheckpoint(best, monitor="val_accuracy", mode="max",
                                        save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=best_so_far.value),
        best_so_far,
    ]
    if inspect and is_chief():
        chosen = folder.one_per_class(val_idx, SAMPLE_IMAGES, seed)
        samples = np.concatenate([x for x, _ in make_dataset(
            files[chosen], labels[chosen], **{**common, "batch_size": len(chosen)})])
        inspection.log_text(log_dir, "run",  # a markdown code block
                            "    " + json.dumps(config, indent=2).replace("\n", "\n    "))
        cbs += [
            # Keras 3 writes no op graph, only one that the Graphs tab cannot read
            keras.callbacks.TensorBoard(log_dir, write_graph=False),
            inspection.FeatureMapLogger(log_dir, samples),
            inspection.GradCAMLogger(log_dir, samples),
            inspection.KernelStatsLogger(log_dir, gray=folder.looks_gray()),
            inspection.ConfusionMatrixLogger(log_dir, val_ds, folder.class_names),
        ]
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose,
                        callbacks=[*cbs, *callbacks], shuffle=False)  # train_ds shuffles
    val_acc = [float(np.ravel(v)[0]) for v in history.history.get("val_accuracy", [])]
    result = TrainResult(out=out, log_dir=log_dir, weights=best,
                         best_val_accuracy=max(val_acc) if val_acc else float("nan"),
                         history={k: [float(np.ravel(v)[0]) for v in vs]
                                  for k, vs in history.history.items()},
                         seconds=time.perf_counter() - start)
    config["results"] = {"best_val_accuracy": result.best_val_accuracy,
                         "epochs_run_now": len(val_acc), "history": result.history,
                         "seconds": round(result.seconds, 1)}
    _write_json(os.path.join(out, RUN_CONFIG), config)
    return result


# ---------------------------------------------------------------------------------------------
# the trained model back: evaluate and predict


@dataclasses.dataclass
class TrainedModel:
    """A model with the weights `train` wrote and what it knows from the files beside them."""

    model: object
    name: str
    class_names: tuple[str, ...]
    image_size: int
    config: dict

    @property
    def start_weights(self) -> str | None:
        """The weights the run started from (run.json): their preprocessing prepares images."""
        return self.config.get("weights")


def _read_json_object(path: str, what: str) -> dict:
    """The JSON object in the file at `path`; ValueError naming the file, as `what` it should
    hold, where it is not JSON or not an object."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: expected a JSON object of {what}, not valid JSON ({err})"
                         ) from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of {what}")
    return raw


def read_class_indices(path: str) -> tuple[str, ...]:
    """Class names by index from class_indices.json ({"0": "daisy", ...}, or {"daisy": 0})."""
    raw = _read_json_object(path, "class indices")
    if not raw:
        raise ValueError(f"{path}: expected a JSON object of class indices")
    try:
        pairs = ([(int(k), str(v)) for k, v in raw.items()] if all(
            isinstance(v, str) for v in raw.values()) else [(int(v), str(k))
                                                            for k, v in raw.items()])
    except (ValueError, TypeError):
        raise ValueError(f"{path}: expected class indices 0, 1, ... with their class names, "
                         f'such as {{"0": "daisy", "1": "tulips"}}') from None
    pairs.sort()
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"{path}: class indices must be 0..{len(pairs) - 1}")
    return tuple(name for _, name in pairs)


def load_trained(name: str, weights: str, *, alpha: float | None = None,
                 image_size: int | None = None) -> TrainedModel:
    """Builds `name` with the flags of the run that wrote `weights` (run.json beside them;
    alpha and image_size given here take precedence) and loads the weights, whose classifier
    must match class_indices.json beside them."""
    from keras_zoo.port.loading import keras_file_classes
    from keras_zoo.api import build
    from keras_zoo.registry import model_info

    info = model_info(name)
    weights = os.fspath(weights)
    if not os.path.isfile(weights):
        raise ValueError(f"weights {weights!r}: no such file")
    if not weights.endswith(checks.KERAS_WEIGHT_SUFFIXES):
        raise ValueError(f"weights {weights!r}: expected the Keras weights file train wrote "
                         f"({', '.join(checks.KERAS_WEIGHT_SUFFIXES)})")
    folder = os.path.dirname(os.path.abspath(weights))
    config = {}
    if os.path.isfile(os.path.join(folder, RUN_CONFIG)):
        config = _read_json_object(os.path.join(folder, RUN_CONFIG), "the run's configuration")
        if config.get("model") not in (None, name):
            raise ValueError(f"weights {weights!r} were trained as {config['model']}, not {name}")
    indices = os.path.join(folder, CLASS_INDICES)
    if not os.path.isfile(indices):
        raise ValueError(f"weights {weights!r}: no {CLASS_INDICES} beside them to name the "
                         "classes")
    class_names = read_class_indices(indices)
    try:
        file_classes = keras_file_classes(weights, "")
    except OSError as err:
        raise ValueError(f"weights {weights!r} is not a readable weights file: {err}") from None
    if file_classes != len(class_names):
        raise ValueError(f"weights {weights!r} hold a classifier of {file_classes} classes but "
                         f"{indices} lists {len(class_names)}")
    alpha = config.get("alpha") if alpha is None else alpha
    image_size = image_size or config.get("image_size") or info.input_size[0]
    kwargs = _model_kwargs(name, alpha, image_size, len(class_names))
    model = build(name, weights=weights, **kwargs)
    return TrainedModel(model, name, class_names, image_size, config)


RUNTIMES = ("keras", "litert", "onnx", "openvino")


@dataclasses.dataclass
class _Inference:
    """How predict and evaluate run a trained model: `run` maps a prepared batch to outputs
    (probabilities when `probabilities`, logits otherwise); `batches(files)` prepares images."""

    run: object
    batches: object
    class_names: tuple[str, ...]
    config: dict
    probabilities: bool
    keep: object = None  # what must outlive the runs (a temporary export's folder)


def _inference(name: str, weights: str, runtime: str, alpha, image_size) -> _Inference:
    """The trained model behind `weights` (the Keras weights train wrote, or an export of them,
    which runs in its own runtime) in `runtime`: "keras", or an export format, into which the
    Keras model is exported (and checked) first."""
    import tempfile

    from keras_zoo.data import make_dataset, read_image
    from keras_zoo.deploy import SUFFIXES, export, format_of, load_exported
    from keras_zoo.registry import model_info

    checks.check_choice(runtime, "runtime", RUNTIMES)
    fmt = format_of(weights)
    if fmt is not None:
        if runtime not in ("keras", fmt):
            raise ValueError(f"runtime {runtime!r}: weights {weights!r} is a {fmt} export, "
                             f"which runs in {fmt}; drop --runtime")
        exported = load_exported(weights)
        meta = exported.record.get("metadata", {})
        if meta.get("model") not in (None, name):
            raise ValueError(f"weights {weights!r} are an export of {meta['model']}, not {name}")
        if exported.class_names is None:
            raise ValueError(f"weights {weights!r}: its export record names no classes "
                             "(export the weights train wrote)")

        def exported_batches(files):
            for i in range(0, len(files), 32):
                yield exported.prepare([read_image(f) for f in files[i:i + 32]])

        return _Inference(exported, exported_batches, exported.class_names,
                          meta.get("run", {}),
                          exported.record.get("output_activation") == "softmax")
    trained = load_trained(name, weights, alpha=alpha, image_size=image_size)

    def batches(files):
        ds = make_dataset(list(files), np.zeros(len(files), np.int32),
                          image_size=trained.image_size, info=model_info(name), batch_size=32,
                          weights=trained.start_weights)
        for x, _ in ds:
            yield x.numpy()

    run, keep = trained.model.predict_on_batch, None
    if runtime != "keras":
        keep = tempfile.TemporaryDirectory(prefix="keras_zoo-")
        path = os.path.join(keep.name, f"{name}{SUFFIXES[runtime]}")
        export(trained.model, path, runtime, class_names=trained.class_names, verbose=False)
        run = load_exported(path)
    return _Inference(run, batches, trained.class_names, trained.config, False, keep)


def _logits(inference: _Inference, x) -> np.ndarray:
    out = np.asarray(inference.run(x))
    # log-probabilities differ from the logits by a constant per image: the same softmax
    return np.log(np.maximum(out, 1e-30)) if inference.probabilities else out


def predict(name: str, weights: str, images: Sequence[str], *, top_k: int = 5,
            temperature: float = 1.0, alpha: float | None = None,
            image_size: int | None = None, runtime: str = "keras"
            ) -> list[list[tuple[str, float]]]:
    """For each image file, the top_k (class name, probability) pairs, with probabilities
    softmax(logits / temperature) (`keras_zoo.layers.TemperatureSoftmax`). Images are prepared
    as in the training run's validation (`keras_zoo.data.make_dataset`). `weights` is the
    Keras weights file train wrote or an export of it (`keras_zoo.export`); runtime "litert",
    "onnx" or "openvino" runs the Keras weights exported to that runtime."""
    from keras_zoo.data import verify_images
    from keras_zoo.layers import TemperatureSoftmax

    top_k = checks.check_positive_int(top_k, "top_k")
    softmax = TemperatureSoftmax(temperature)
    if not images:
        raise ValueError("images: give at least one image file")
    images = [os.fspath(path) for path in images]
    for path in images:
        if not os.path.isfile(path):
            raise ValueError(f"image {path!r}: no such file")
    # before the model is built or exported, so that a damaged file costs nothing
    verify_images(images, [f"image {path!r}" for path in images])
    inference = _inference(name, weights, runtime, alpha, image_size)
    logits = np.concatenate([_logits(inference, x) for x in inference.batches(list(images))])
    probs = np.asarray(softmax(logits))
    k = min(top_k, len(inference.class_names))
    return [[(inference.class_names[i], float(p[i])) for i in np.argsort(-p)[:k]]
            for p in probs]


@dataclasses.dataclass
class Evaluation:
    accuracy: float
    class_names: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    matrix: np.ndarray
    images: int


def evaluate(name: str, weights: str, data: str, *, subset: str = "all",
             alpha: float | None = None, image_size: int | None = None,
             runtime: str = "keras") -> Evaluation:
    """Accuracy, per-class precision and recall and the confusion matrix on `data` (all of
    it, or the training or validation subset of the run's split), with images prepared as in
    the run's validation (the preprocessing of the weights it started from, centre crops).
    `weights` and `runtime` as for `predict`."""
    from keras_zoo.data import scan_folder
    from keras_zoo.viz.confusion import confusion_matrix, precision_recall

    checks.check_choice(subset, "subset", ("all", "training", "validation"))
    folder = scan_folder(data)
    inference = _inference(name, weights, runtime, alpha, image_size)
    if folder.class_names != inference.class_names:
        raise ValueError(f"data {data!r} has the classes {list(folder.class_names)} but the "
                         f"weights' {CLASS_INDICES} lists {list(inference.class_names)}")
    indices = np.arange(len(folder.files))
    if subset != "all":
        if "validation_split" not in inference.config:
            raise ValueError(f"subset {subset!r} needs the {RUN_CONFIG} of the training run "
                             "beside the weights")
        train_idx, val_idx = folder.split(inference.config["validation_split"],
                                          inference.config["seed"])
        indices = val_idx if subset == "validation" else train_idx
    files, labels = np.array(folder.files)[indices], folder.labels[indices]
    predicted = np.concatenate([_logits(inference, x).argmax(-1)
                                for x in inference.batches(list(files))])
    matrix = confusion_matrix(labels, predicted, len(folder.class_names))
    precision, recall = precision_recall(matrix)
    return Evaluation(float(np.mean(predicted == labels)), folder.class_names, precision, recall,
                      matrix, len(labels))
