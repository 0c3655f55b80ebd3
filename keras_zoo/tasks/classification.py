"""Image classification: one class label per image, the model's outputs one score per class.

Data is a class-per-folder tree, or one that comes split into train/ and val/ (validation/,
test/) trees of the same classes (`keras_zoo.data.scan_dataset`): the labels are the sorted folder
names' indices, written into a run folder as class_indices.json. The model is trained on its
logits with cross-entropy and judged by accuracy; predict prints the top classes with their
softmax probabilities (at a temperature), evaluate adds each class's precision and recall and
the confusion matrix, and TensorBoard shows Grad-CAM of one validation image per class and the
confusion matrix with per-class precision and recall. Two runtimes agree on an image when their
top-1 classes are the same.

>>> task = Classification()
>>> task.agree(np.array([[0.1, 0.9], [0.6, 0.4]]), np.array([[0.2, 0.8], [0.3, 0.7]])).tolist()
[True, False]
>>> top = task.decode(np.array([[2.0, 0.0]]), ("cat", "dog"), None, {})[0]
>>> [(c, round(p, 4)) for c, p in top]
[('cat', 0.8808), ('dog', 0.1192)]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keras_zoo import checks
from keras_zoo.tasks import Monitor, Task, register
from keras_zoo.weight_sets import Preprocessing

CLASS_INDICES = "class_indices.json"
PREDICT_OPTIONS = {"top_k": 5, "temperature": 1.0}


def read_class_indices(path: str) -> tuple[str, ...]:
    """Class names by index from class_indices.json ({"0": "daisy", ...}, or {"daisy": 0})."""
    from keras_zoo.run_state import read_json_object

    raw = read_json_object(path, "class indices")
    if not raw:
        raise ValueError(f"{path}: expected a JSON object of class indices")
    try:
        pairs = (
            [(int(k), str(v)) for k, v in raw.items()]
            if all(isinstance(v, str) for v in raw.values())
            else [(int(v), str(k)) for k, v in raw.items()]
        )
    except (ValueError, TypeError):
        raise ValueError(
            f"{path}: expected class indices 0, 1, ... with their class names, "
            f'such as {{"0": "daisy", "1": "tulips"}}'
        ) from None
    pairs.sort()
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"{path}: class indices must be 0..{len(pairs) - 1}")
    return tuple(name for _, name in pairs)


@dataclasses.dataclass
class ClassEvaluation:
    """What evaluate measured on `images` images: the accuracy, per class (in the order of
    `class_names`) the precision and recall, and the confusion matrix (rows: true classes)."""

    accuracy: float
    class_names: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    matrix: np.ndarray
    images: int

    @property
    def score(self) -> float:
        """The accuracy."""
        return self.accuracy

    def lines(self) -> list[str]:
        """A table of each class's precision, recall and image count."""
        width = max(len(c) for c in self.class_names)
        rows = [f"  {'class':<{width}} {'precision':>9} {'recall':>7} {'images':>7}"]
        for c, p, r, n in zip(self.class_names, self.precision, self.recall, self.matrix.sum(1)):
            rows.append(f"  {c:<{width}} {p:9.4f} {r:7.4f} {n:7d}")
        return rows

    def figures(self, title: str) -> dict[str, Any]:
        """The confusion matrix, as "confusion_matrix"."""
        from keras_zoo import viz

        return {
            "confusion_matrix": viz.plot_confusion_matrix(
                self.matrix, self.class_names, title=title
            )
        }


class Classification(Task):
    """One class label per image (see the module's docstring)."""

    name = "classification"
    monitor = Monitor("val_accuracy", "max", "validation accuracy")
    score_name = "accuracy"
    named_outputs = True
    names_files = (CLASS_INDICES,)
    agreement_name = "top-1 agreement"
    augmentations = ("flip", "crop")
    class_targets = True

    def read(self, root: str | os.PathLike, *, argument: str = "data", verify: bool = True) -> Any:
        """The class-per-folder tree at `root`, or its train/ and val/ (validation/, test/)
        trees where it comes split (`keras_zoo.data.scan_dataset`)."""
        from keras_zoo.data import scan_dataset

        return scan_dataset(root, argument=argument, verify=verify)

    def head(self, names: Sequence[str] | None) -> dict[str, Any]:
        """A classifier of one logit per class."""
        return {"classes": len(names or ()), "classifier_activation": None}

    def loss(
        self, name: str | None = None, label_smoothing: float = 0.0, soft: bool = False
    ) -> Any:
        """Cross-entropy of the logits against class indices; with label smoothing or `soft`
        (training batches mixed into class probabilities), torch's label-smoothed cross
        entropy, which takes both (`keras_zoo.recipes.mixing.SmoothedCrossEntropy`)."""
        import keras

        if label_smoothing or soft:
            from keras_zoo.recipes.mixing import SmoothedCrossEntropy

            return SmoothedCrossEntropy(label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, soft: bool = False) -> list:
        """Accuracy (with `soft`, of training targets that may be class probabilities too)."""
        if soft:
            from keras_zoo.recipes.mixing import ClassAccuracy

            return [ClassAccuracy()]
        return ["accuracy"]

    def dataset(
        self,
        files: Sequence[str] | np.ndarray,
        targets: np.ndarray,
        *,
        image_size: int,
        preprocessing: Preprocessing,
        batch_size: int,
        training: bool = False,
        augment: tuple[str, ...] = (),
        seed: int = 0,
        recipe: Any = None,
        classes: int | None = None,
    ) -> Any:
        """`keras_zoo.data.make_dataset` of the images and their labels; for training with a
        `keras_zoo.recipes.Recipe`, its automatic augmentation per image, then its random
        erasing and mixing per batch into probabilities of `classes` classes
        (`keras_zoo.recipes.fit`)."""
        from keras_zoo.data import make_dataset

        auto = None
        if training and recipe is not None:
            from keras_zoo.recipes import fit

            auto = fit.image_augment(recipe)
        batches = make_dataset(
            files,
            targets,
            image_size=image_size,
            preprocessing=preprocessing,
            batch_size=batch_size,
            training=training,
            augment=augment,
            seed=seed,
            auto_augment=auto,
        )
        if training and recipe is not None:
            if classes is None:
                raise ValueError("classes: the number of classes is needed to mix batches")
            batches = fit.batch_augment(recipe, batches, classes=classes, seed=seed)
        return batches

    def samples(self, data: Any, indices: np.ndarray, count: int, seed: int) -> np.ndarray:
        """One image of each class, of the first `count` classes."""
        return data.one_per_class(indices, count, seed)

    def callbacks(self, log_dir: str, samples: np.ndarray, validation: Any, data: Any) -> list:
        """Grad-CAM of the samples' predicted classes, and the validation confusion matrix
        with each class's precision and recall."""
        from keras_zoo import callbacks as inspection

        return [
            inspection.GradCAMLogger(log_dir, samples),
            inspection.ConfusionMatrixLogger(log_dir, validation, data.class_names),
        ]

    def write_names(self, out: str, names: Sequence[str] | None) -> tuple[str, ...]:
        """class_indices.json: {"0": "daisy", ...}."""
        from keras_zoo.run_state import write_json

        write_json(os.path.join(out, CLASS_INDICES), {str(i): c for i, c in enumerate(names or ())})
        return (CLASS_INDICES,)

    def read_names(self, folder: str, weights: str) -> tuple[str, ...] | None:
        """The class names of class_indices.json in `folder`, as many as the classifier of
        `weights` has outputs."""
        from keras_zoo.port.loading import keras_file_classes

        indices = os.path.join(folder, CLASS_INDICES)
        if not os.path.isfile(indices):
            raise ValueError(
                f"weights {weights!r}: no {CLASS_INDICES} beside them to name the classes"
            )
        class_names = read_class_indices(indices)
        try:
            file_classes = keras_file_classes(weights, "")
        except OSError as err:
            raise ValueError(f"weights {weights!r} is not a readable weights file: {err}") from None
        if file_classes != len(class_names):
            raise ValueError(
                f"weights {weights!r} hold a classifier of {file_classes} classes but "
                f"{indices} lists {len(class_names)}"
            )
        return class_names

    def prediction_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """`top_k` (default 5) and the softmax `temperature` (default 1), checked."""
        from keras_zoo.layers import TemperatureSoftmax

        checked = self.with_defaults(options, PREDICT_OPTIONS)
        checked["top_k"] = checks.check_positive_int(checked["top_k"], "top_k")
        checked["temperature"] = TemperatureSoftmax(checked["temperature"]).temperature
        return checked

    def decode(
        self,
        outputs: np.ndarray,
        names: Sequence[str] | None,
        activation: str | None,
        options: Mapping[str, Any],
        regions: np.ndarray | None = None,
    ) -> list:
        """The top_k (class name, probability) pairs of each image, probabilities
        softmax(logits / temperature) (`keras_zoo.layers.TemperatureSoftmax`)."""
        from keras_zoo.layers import TemperatureSoftmax

        options = self.prediction_options(options)
        outputs = np.asarray(outputs)
        # log-probabilities differ from the logits by a constant per image: the same softmax
        logits = np.log(np.maximum(outputs, 1e-30)) if activation == "softmax" else outputs
        probs = np.asarray(TemperatureSoftmax(options["temperature"])(logits))
        names = tuple(names) if names else tuple(str(i) for i in range(probs.shape[-1]))
        k = min(options["top_k"], len(names))
        return [[(names[i], float(p[i])) for i in np.argsort(-p)[:k]] for p in probs]

    def prediction_text(self, result: Any) -> str:
        """ "daisy 0.9000, tulips 0.0500, ..."."""
        return ", ".join(f"{c} {p:.4f}" for c, p in result)

    def evaluate(
        self, outputs: np.ndarray, targets: np.ndarray, names: Sequence[str] | None
    ) -> ClassEvaluation:
        """Accuracy, per-class precision and recall and the confusion matrix."""
        from keras_zoo.viz.confusion import confusion_matrix, precision_recall

        names = tuple(names or ())
        predicted = np.asarray(outputs).argmax(-1)
        matrix = confusion_matrix(targets, predicted, len(names))
        precision, recall = precision_recall(matrix)
        return ClassEvaluation(
            float(np.mean(predicted == targets)), names, precision, recall, matrix, len(targets)
        )

    def agree(self, reference: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Whether the top-1 classes are the same."""
        n = len(reference)
        return np.asarray(reference).reshape(n, -1).argmax(-1) == np.asarray(outputs).reshape(
            n, -1
        ).argmax(-1)

    def score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The accuracy of the top-1 classes."""
        return float(np.mean(np.asarray(outputs).argmax(-1) == np.asarray(targets)))


register(Classification())
