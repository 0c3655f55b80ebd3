"""Recipes in `train` and `keras-zoo train`: every piece of a recipe reaches the fit (the
optimizer and its schedule step by step, weight decay kept off the norms and biases, mixed
batches, the moving average evaluated and saved, stochastic depth), run.json records it, a
teacher distils into a student, and bad settings are refused on the first line before
anything is written."""

import json
import os

import numpy as np
import pytest

from keras_zoo.cli import main
from keras_zoo.recipes.recipe import recipe
from tests.conftest import make_tree


def status(argv):
    """The command's exit status, argparse's errors (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("recipes") / "data", per_class=6, size=32)


class Rates:
    """Records the optimizer's learning rate at each training step."""

    def __new__(cls):
        import keras

        class Recorder(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.rates = []

            def on_train_batch_begin(self, batch, logs=None):
                opt = self.model.optimizer
                self.rates.append(float(opt.learning_rate))

        return Recorder()


@pytest.fixture(scope="module")
def run(tree, tmp_path_factory):
    """resnet18 trained 2 epochs by a recipe with every piece on (an average updated every
    step, so that a short run has one)."""
    from keras_zoo.training import train

    chosen = recipe(
        "finetune",
        mixup_alpha=0.2,
        cutmix_alpha=1.0,
        ema_decay=0.5,
        ema_every=1,
        drop_path_rate=0.1,
        warmup_epochs=1.0,
    )
    rates = Rates()
    out = tmp_path_factory.mktemp("run") / "resnet18"
    result = train(
        "resnet18",
        str(tree),
        epochs=2,
        batch_size=6,
        image_size=32,
        out=str(out),
        recipe=chosen,
        inspect=False,
        verbose=0,
        callbacks=[rates],
    )
    return result, chosen, rates.rates, out


def test_run_json_records_the_recipe_and_the_variables_without_weight_decay(run):
    import keras_zoo
    from keras_zoo.recipes.optim import no_decay_variables

    result, chosen, _, out = run
    config = json.loads((out / "run.json").read_text())
    assert config["recipe"] == chosen.to_dict()
    model = keras_zoo.build("resnet18", classes=3, input_shape=(32, 32, 3))
    assert config["no_weight_decay"] == no_decay_variables(model)
    norms = {w.path for layer in model.layers if "bn" in layer.name for w in layer.weights}
    norms = {p for p in norms if p.endswith(("gamma", "beta"))}
    assert norms <= set(config["no_weight_decay"])
    assert "fc/bias" in config["no_weight_decay"] and "fc/kernel" not in config["no_weight_decay"]


def test_the_learning_rate_is_the_recipes_warmup_then_cosine_step_by_step(run):
    from keras_zoo.recipes.optim import warmup_cosine

    _, chosen, rates, _ = run
    steps = len(rates) // 2  # 2 epochs of the same number of steps
    expected = warmup_cosine(chosen.lr, 2 * steps, steps, chosen.warmup_start)
    np.testing.assert_allclose(rates, [float(expected(k)) for k in range(2 * steps)], rtol=1e-6)
    assert rates[0] == pytest.approx(chosen.lr * chosen.warmup_start)


def test_the_average_is_evaluated_each_epoch_and_saved(run):
    import keras_zoo

    result, _, _, out = run
    assert len(result.history["ema_val_accuracy"]) == 2
    model = keras_zoo.build("resnet18", classes=3, input_shape=(32, 32, 3))
    model.load_weights(out / "ema.weights.h5")
    averaged = [w.numpy() for w in model.weights]
    model.load_weights(out / "best.weights.h5")
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(averaged, model.weights))


def test_mixed_batches_hold_class_probabilities(tree):
    from keras_zoo.tasks import task_named
    from keras_zoo.weight_sets import Preprocessing

    task = task_named("classification")
    folder = task.read(str(tree), verify=False)
    batches = task.dataset(
        np.array(folder.files),
        folder.targets,
        image_size=32,
        preprocessing=Preprocessing(input_size=(32, 32)),
        batch_size=6,
        training=True,
        augment=("flip",),
        recipe=recipe("default", mixup_alpha=1.0, random_erase=0.5, auto_augment="ta_wide"),
        classes=3,
    )
    images, targets = next(iter(batches))
    assert tuple(images.shape) == (6, 32, 32, 3) and tuple(targets.shape) == (6, 3)
    np.testing.assert_allclose(np.sum(targets, axis=1), 1.0, rtol=1e-6)
    assert np.any((targets > 0.01) & (targets < 0.99))  # mixed, not one-hot


def test_a_student_learns_from_a_teacher_run_and_run_json_names_it(run, tree, tmp_path):
    _, _, _, teacher_out = run
    out = tmp_path / "student"
    argv = ["train", "mobilenet_v3_small", "--data", str(tree), "--image-size", "32"]
    argv += ["--epochs", "1", "--batch-size", "6", "--out", str(out), "--no-inspect"]
    argv += ["--teacher", "resnet18", "--teacher-weights", str(teacher_out / "best.weights.h5")]
    argv += ["--temperature", "3", "--distill-weight", "0.7", "--verbose", "0"]
    assert main(argv) == 0
    config = json.loads((out / "run.json").read_text())
    assert config["teacher"]["model"] == "resnet18"
    assert config["teacher"]["temperature"] == 3.0 and config["teacher"]["distill_weight"] == 0.7
    assert os.path.isfile(out / "best.weights.h5")


def test_a_teacher_of_other_classes_is_refused_before_anything_is_written(tree, tmp_path, capsys):
    import keras_zoo

    other = tmp_path / "four.weights.h5"
    keras_zoo.build("resnet18", classes=4, input_shape=(32, 32, 3)).save_weights(other)
    out = tmp_path / "student"
    argv = ["train", "mobilenet_v3_small", "--data", str(tree), "--image-size", "32"]
    argv += ["--out", str(out), "--teacher", "resnet18", "--teacher-weights", str(other)]
    assert main(argv) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert "teacher: has 4 classes where the student has 3" in first
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--recipe", "fast"], "argument --recipe: invalid choice: 'fast'"),
        (["--mixup", "-1"], "argument --mixup: expected a number in [0, 1000]"),
        (["--ema", "1.5"], "argument --ema: expected a number in [0, 1)"),
        (["--label-smoothing", "1"], "argument --label-smoothing: expected a number in [0, 1)"),
        (["--drop-path-rate", "0.1"], "drop_path_rate: mobilenet_v3_small has no stochastic"),
        (["--teacher", "resnet18"], "teacher_weights: a teacher needs its trained weights"),
        (["--teacher", "resnet7", "--teacher-weights", "x"], "resnet7"),
        (["--optimizer", "adam", "--weight-decay", "0.1"], "weight_decay: Adam's would be"),
    ],
)
def test_bad_settings_are_refused_on_the_first_line(tree, tmp_path, capsys, extra, expected):
    out = tmp_path / "out"
    argv = ["train", "mobilenet_v3_small", "--data", str(tree), "--out", str(out), *extra]
    assert status(argv) == 2
    assert expected in capsys.readouterr().err.splitlines()[0]
    assert not out.exists()


def test_a_landmark_model_takes_the_optimizer_but_not_class_mixing(tmp_path, capsys):
    argv = ["train", "pfld_0_25", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert status([*argv, "--mixup", "0.2"]) == 2
    assert "mixup_alpha: the landmarks task's targets are not classes" in capsys.readouterr().err
    assert status([*argv, "--auto-augment", "ta_wide"]) == 2
    assert "auto_augment: not for the landmarks task's targets" in capsys.readouterr().err
