"""The task seam (`keras_zoo.tasks`): image classification's task against numbers computed here
by other means, no branch on a task's name outside tasks/, and a second task (a regression of
each image's mean colour, defined in this file) trained, evaluated, predicted and exported
through the same commands with no other edit."""

import ast
import json
import os
import pathlib

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo import cli, registry, tasks
from keras_zoo.data import make_dataset, read_image
from keras_zoo.run_state import Monitor
from keras_zoo.tasks import Task, task_named, task_of
from keras_zoo.tasks.classification import Classification
from tests.conftest import make_tree

PACKAGE = pathlib.Path(keras_zoo.__file__).parent


def test_classification_is_the_task_of_an_id_by_default_and_of_a_plain_model():
    # PFLD's ids name theirs, facial landmarks
    assert {keras_zoo.model_info(n).task for n in keras_zoo.list_models()} == {
        "classification",
        "landmarks",
    }
    assert registry.ModelInfo.__dataclass_fields__["task"].default == "classification"
    assert isinstance(task_of(keras.Sequential([keras.layers.Dense(2)])), Classification)
    model = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=3)
    assert task_of(model) is task_named("classification") is task_of(keras_zoo.describe(model))


def test_an_unknown_task_is_named_with_the_tasks_there_are():
    with pytest.raises(ValueError, match=r"^task: unknown task 'pose'; the tasks are .*classif"):
        task_named("pose")


def test_classification_decodes_scores_and_agrees_as_numpy_says():
    task = task_named("classification")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4))
    names = ("a", "b", "c", "d")
    top = task.decode(logits, names, None, {"top_k": 2, "temperature": 2.0})
    probs = np.exp(logits / 2) / np.exp(logits / 2).sum(-1, keepdims=True)
    for row, p in zip(top, probs):
        order = np.argsort(-p)[:2]
        assert [c for c, _ in row] == [names[i] for i in order]
        assert [q for _, q in row] == pytest.approx(p[order].tolist(), abs=1e-6)
    # an export that outputs probabilities decodes to the same pairs as its logits
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    want = task.decode(logits, names, None, {})
    got = task.decode(softmax, names, "softmax", {})
    assert [[c for c, _ in r] for r in got] == [[c for c, _ in r] for r in want]
    labels = rng.integers(0, 4, size=6)
    assert task.score(logits, labels) == np.mean(logits.argmax(-1) == labels)
    other = logits.copy()
    other[0] = -other[0]
    agree = task.agree(logits, other)
    assert agree.tolist() == (logits.argmax(-1) == other.argmax(-1)).tolist()
    assert not agree[0] or logits[0].argmax() == (-logits[0]).argmax()


def test_classification_evaluation_matches_sklearn():
    from sklearn import metrics

    task = task_named("classification")
    rng = np.random.default_rng(1)
    outputs, labels = rng.normal(size=(40, 3)), rng.integers(0, 3, size=40)
    result = task.evaluate(outputs, labels, ("x", "y", "z"))
    predicted = outputs.argmax(-1)
    assert result.score == pytest.approx(metrics.accuracy_score(labels, predicted))
    assert result.precision == pytest.approx(
        metrics.precision_score(labels, predicted, average=None, zero_division=0)
    )
    assert result.recall == pytest.approx(metrics.recall_score(labels, predicted, average=None))
    assert result.lines()[0].split() == ["class", "precision", "recall", "images"]
    assert [line.split()[0] for line in result.lines()[1:]] == ["x", "y", "z"]
    assert list(result.figures("t")) == ["confusion_matrix"]


@pytest.mark.parametrize(
    "options, error",
    [
        ({"top_k": 0}, ValueError),
        ({"temperature": -1.0}, ValueError),
        ({"points": 3}, TypeError),
    ],
)
def test_classification_refuses_bad_predict_options_by_name(options, error):
    with pytest.raises(error, match=f"^{next(iter(options))}"):
        task_named("classification").prediction_options(options)


def _string_constants(path: pathlib.Path) -> list[tuple[int, str]]:
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_no_module_outside_tasks_names_a_task_except_as_the_default():
    """The workflow asks the model's task; only the defaults of a description and a registry
    entry, the task a model without a description has, and a family's models (their
    `ModelInfo.task`) name one."""
    defaults = {"registry.py", "description.py", "tasks/__init__.py"}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module.startswith(("tasks/", "models/")) and module != "tasks/__init__.py":
            continue
        for line, value in _string_constants(path):
            if value in tasks.tasks():
                assert module in defaults, f"keras_zoo/{module}:{line} names the task {value!r}"


# ---------------------------------------------------------------------------------------------
# a second task, defined here as a task module would define it


def mean_colour(path: str) -> np.ndarray:
    return read_image(path).reshape(-1, 3).mean(0).astype(np.float32) / 255


class MeanColour(Task):
    """Regresses each image's mean colour (3 values in [0, 1]); scored by the mean absolute
    error; no named outputs; writes targets.json into a run folder."""

    name = "mean_colour"
    monitor = Monitor("val_mae", "min", "validation MAE")
    score_name = "mae"
    named_outputs = False
    agreement_name = "colour agreement"
    augmentations = ("flip",)
    drawn: list = []

    def read(self, root, *, argument="data", verify=True):
        from keras_zoo.data import scan_folder

        folder = scan_folder(root, argument=argument, verify=verify)

        class Data:
            files = folder.files
            targets = np.stack([mean_colour(f) for f in folder.files])
            names = None
            subsets = folder.subsets

            def split(self, validation_split, seed):
                return folder.split(validation_split, seed)

        Data.root = folder.root
        return Data()

    def head(self, names):
        return {"classes": 3, "classifier_activation": None}

    def loss(self, name=None):
        return "mse"

    def metrics(self):
        return ["mae"]

    def dataset(self, files, targets, **prepare):
        prepare["augment"] = tuple(a for a in prepare.get("augment", ()) if a != "crop")
        return make_dataset(files, np.asarray(targets, np.float32), **prepare)

    def samples(self, data, indices, count, seed):
        return indices[:count]

    def callbacks(self, log_dir, samples, validation, data):
        self.drawn.append(len(samples))
        return []

    def write_names(self, out, names):
        with open(os.path.join(out, "targets.json"), "w") as f:
            json.dump({"targets": ["red", "green", "blue"]}, f)
        return ("targets.json",)

    def read_names(self, folder, weights):
        if not os.path.isfile(os.path.join(folder, "targets.json")):
            raise ValueError(f"weights {weights!r}: no targets.json beside them")
        return None

    def prediction_options(self, options):
        if set(options) - {"digits"}:
            raise TypeError(f"{sorted(set(options) - {'digits'})[0]}: not an option")
        return {"digits": 3, **options}

    def decode(self, outputs, names, activation, options, regions=None):
        return [np.round(np.asarray(row), options["digits"]).tolist() for row in outputs]

    def prediction_text(self, result):
        return "rgb " + " ".join(f"{v:.3f}" for v in result)

    def evaluate(self, outputs, targets, names):
        error = np.abs(np.asarray(outputs) - targets)

        class Result:
            images = len(targets)
            score = float(error.mean())

            def lines(self):
                return [f"  {c} {e:.4f}" for c, e in zip("rgb", error.mean(0))]

            def figures(self, title):
                return {}

        return Result()

    def agree(self, reference, outputs):
        return np.abs(np.asarray(reference) - np.asarray(outputs)).max(-1) < 0.05

    def score(self, outputs, targets):
        return float(np.abs(np.asarray(outputs) - targets).mean())


@pytest.fixture
def mean_colour_id(monkeypatch):
    """The task registered and an id whose outputs it means: mobilenet_v3_small's network."""
    monkeypatch.setattr(tasks, "_TASKS", dict(tasks._TASKS))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    tasks.register(MeanColour())
    small = keras_zoo.model_info("mobilenet_v3_small")
    registry.register_model(
        "colour_net",
        "mobilenet",
        small.builder,
        params=small.params,
        gmacs=small.gmacs,
        classifier=small.classifier,
        task="mean_colour",
    )
    MeanColour.drawn = []
    return "colour_net"


def test_a_second_task_trains_evaluates_predicts_and_exports_through_the_commands(
    mean_colour_id, tmp_path, capsys
):
    tree = make_tree(tmp_path / "colours", per_class=6, size=32)
    out = tmp_path / "run"
    common = ["--image-size", "32", "--model-arg", "alpha=0.75"]
    assert (
        cli.main(
            ["train", mean_colour_id, "--data", str(tree), "--epochs", "2", "--batch-size", "8"]
            + common
            + ["--out", str(out), "--verbose", "0"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "best validation MAE" in printed and "targets.json and run.json" in printed
    written = set(os.listdir(out))
    assert {"best.weights.h5", "run.json", "targets.json"} <= written
    assert "class_indices.json" not in written
    record = json.loads((out / "run.json").read_text())
    assert record["description"]["task"] == "mean_colour" and record["classes"] is None
    history = record["results"]["history"]["val_mae"]
    assert record["results"]["best_val_mae"] == min(history)
    validation = MeanColour().read(tree).split(0.2, 0)[1]
    assert MeanColour.drawn == [min(10, len(validation))]  # the samples the task chose, drawn

    # evaluate's number is the MAE of the trained model, computed here from its own outputs
    weights = str(out / "best.weights.h5")
    assert cli.main(["evaluate", mean_colour_id, "--weights", weights, "--data", str(tree)]) == 0
    printed = capsys.readouterr().out
    trained = keras_zoo.inference.load_trained(mean_colour_id, weights)
    data = MeanColour().read(tree)
    x = np.concatenate(
        [
            b.numpy()
            for b, _ in make_dataset(
                data.files,
                np.zeros(len(data.files)),
                image_size=32,
                preprocessing=trained.preprocessing,
                batch_size=64,
            )
        ]
    )
    mae = float(np.abs(trained.model.predict(x, verbose=0) - data.targets).mean())
    assert f"images of {tree} (all): mae {mae:.4f}" in printed
    assert printed.count("\n  ") == 3  # the task's lines: one per channel

    assert cli.main(["predict", mean_colour_id, "--weights", weights, data.files[0]]) == 0
    want = np.round(trained.model.predict(x[:1], verbose=0)[0], 3)
    assert capsys.readouterr().out.strip() == (
        f"{data.files[0]}: rgb " + " ".join(f"{v:.3f}" for v in want)
    )
    with pytest.raises(TypeError, match="^top_k: not an option"):
        keras_zoo.inference.predict(mean_colour_id, weights, [data.files[0]], top_k=1)

    onnx = tmp_path / "colour.onnx"
    args = ["export", mean_colour_id, str(onnx), "--weights", weights, "--data", str(tree)]
    assert cli.main(args) == 0
    assert "mae " in capsys.readouterr().out
    check = json.loads((tmp_path / "colour.onnx.json").read_text())["check"]
    assert check["mae"]["images"] == len(data.files)
    assert check["mae"]["export"] == pytest.approx(mae, abs=1e-4)
    assert "accuracy" not in check
