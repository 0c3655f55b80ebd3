"""Distillation's loss against the same formula computed by torch (kl_div with batchmean, cross
entropy with label smoothing), a Distiller fit that moves the student towards its teacher, and
the weight average against torch's AveragedModel with an EMA update over parameters and
buffers."""

import numpy as np
import pytest

from keras_zoo.recipes.distill import Distiller, TeacherInput, distillation_loss
from keras_zoo.recipes.ema import WeightAverage, torchvision_decay
from tests.conftest import TEST_EXTRA, require_module


@pytest.mark.parametrize("temperature, weight, smoothing", [(4.0, 0.5, 0.0), (2.0, 0.9, 0.1)])
def test_distillation_loss_is_torchs_computation_of_the_formula(temperature, weight, smoothing):
    torch = require_module("torch", TEST_EXTRA)
    rng = np.random.default_rng(0)
    student = rng.normal(0, 3, (8, 5))
    teacher = rng.normal(0, 3, (8, 5))
    labels = rng.integers(0, 5, 8)
    ours = distillation_loss(
        labels,
        student,
        teacher,
        temperature=temperature,
        distill_weight=weight,
        label_smoothing=smoothing,
    )
    s, t = torch.tensor(student), torch.tensor(teacher)
    soft = torch.nn.functional.kl_div(
        torch.log_softmax(s / temperature, dim=1),
        torch.softmax(t / temperature, dim=1),
        reduction="batchmean",
    )
    hard = torch.nn.functional.cross_entropy(s, torch.tensor(labels), label_smoothing=smoothing)
    expected = (1 - weight) * hard + weight * temperature**2 * soft
    np.testing.assert_allclose(float(ours), float(expected), rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"temperature": 0, "distill_weight": 0.5}, "temperature must be a positive number"),
        ({"temperature": 4, "distill_weight": 1.5}, "distill_weight must be a number from 0 to 1"),
    ],
)
def test_bad_distillation_settings_name_the_argument(kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        distillation_loss([0], [[1.0, 0.0]], [[1.0, 0.0]], **kwargs)


def _classifier(shape, classes, seed):
    import keras

    inputs = keras.Input(shape)
    dense = keras.layers.Dense(classes, kernel_initializer=keras.initializers.GlorotUniform(seed))
    return keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))


def test_a_distilled_student_moves_towards_its_teacher_and_a_wrong_teacher_is_refused():
    import keras

    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4, 4, 3)).astype("float32")
    y = rng.integers(0, 3, 64)
    teacher = _classifier((8, 8, 3), 3, seed=2)  # another input size: its input is resized
    student = _classifier((4, 4, 3), 3, seed=3)
    adapt = TeacherInput([0, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1], (8, 8))
    taught = teacher(adapt(x)).numpy()

    def distance():
        s = keras.ops.softmax(student(x) / 4.0).numpy()
        t = keras.ops.softmax(taught / 4.0).numpy()
        return float(np.sum(t * (np.log(t) - np.log(s))) / len(x))

    before = distance()
    frozen = [w.numpy().copy() for w in teacher.weights]
    distiller = Distiller(
        student, teacher, temperature=4.0, distill_weight=1.0, teacher_input=adapt
    )
    distiller.compile(keras.optimizers.Adam(0.05), metrics=["accuracy"])
    history = distiller.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert distance() < 0.25 * before  # only the teacher's soft targets teach (weight 1)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(frozen, teacher.weights))
    assert "accuracy" in history.history
    with pytest.raises(ValueError, match="teacher: has 4 classes where the student has 3"):
        Distiller(student, _classifier((4, 4, 3), 4, seed=4), temperature=2, distill_weight=0.5)


def test_the_teacher_input_undoes_the_students_normalisation_and_applies_the_teachers():
    pixels = np.random.default_rng(2).uniform(0, 255, (2, 6, 6, 3)).astype("float32")
    s_mean, s_std = np.array([120.0, 110, 100]), np.array([60.0, 55, 50])
    t_mean, t_std = np.array([127.5] * 3), np.array([127.5] * 3)
    layer = TeacherInput(s_mean, s_std, t_mean, t_std, (6, 6))
    got = layer((pixels - s_mean) / s_std).numpy()
    np.testing.assert_allclose(got, (pixels - t_mean) / t_std, rtol=1e-5, atol=1e-5)


def test_the_weight_average_is_torchs_averaged_model_with_buffers():
    torch = require_module("torch", TEST_EXTRA)
    import keras

    decay = 0.9
    model = keras.Sequential(  # float64, as the reference: the averages to the last bits
        [
            keras.Input((3,), dtype="float64"),
            keras.layers.Dense(2, dtype="float64"),
            keras.layers.BatchNormalization(dtype="float64"),
        ]
    )
    reference = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).double()
    swa = torch.optim.swa_utils
    averaged = swa.AveragedModel(
        reference, multi_avg_fn=swa.get_ema_multi_avg_fn(decay), use_buffers=True
    )
    ema = WeightAverage(decay=decay, every=2)
    ema.set_model(model)
    rng = np.random.default_rng(3)
    for step in range(10):
        kernel, bias, gamma, beta, mean, var = (
            rng.normal(size=s) for s in [(3, 2), (2,), (2,), (2,), (2,), (2,)]
        )
        for w, v in zip(model.weights, (kernel, bias, gamma, beta, mean, var)):
            w.assign(v)
        ema.on_train_batch_end(step)
        if (step + 1) % 2 == 0:  # torch's script updates every `every` steps too
            with torch.no_grad():
                reference[0].weight.copy_(torch.tensor(kernel.T))
                reference[0].bias.copy_(torch.tensor(bias))
                reference[1].weight.copy_(torch.tensor(gamma))
                reference[1].bias.copy_(torch.tensor(beta))
                reference[1].running_mean.copy_(torch.tensor(mean))
                reference[1].running_var.copy_(torch.tensor(var))
            averaged.update_parameters(reference)
    got = ema.averages()
    ref = averaged.module
    expected = [
        ref[0].weight.detach().numpy().T,
        ref[0].bias.detach().numpy(),
        ref[1].weight.detach().numpy(),
        ref[1].bias.detach().numpy(),
        ref[1].running_mean.numpy(),
        ref[1].running_var.numpy(),
    ]
    assert ema.updates == 5
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    own = [w.numpy().copy() for w in model.weights]
    with ema.swapped():
        np.testing.assert_allclose(model.weights[0].numpy(), expected[0], rtol=1e-6)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(own, model.weights))


def test_warmup_updates_copy_and_torchvisions_decay_adjustment():
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    ema = WeightAverage(decay=0.5, every=1, warmup_steps=2)
    ema.set_model(model)
    for step, value in enumerate([1.0, 2.0, 4.0]):
        model.weights[0].assign([[value]])
        ema.on_train_batch_end(step)
    # steps 1 and 2 copy (2.0), step 3 averages: 0.5 * 2 + 0.5 * 4
    assert float(ema.averages()[0][0, 0]) == 3.0
    # torchvision: alpha = (1 - 0.99998) * 1 * 128 * 32 / 600, at most 1
    assert torchvision_decay(0.99998, batch_size=128, every=32, epochs=600) == pytest.approx(
        1 - 2e-5 * 128 * 32 / 600
    )
    assert torchvision_decay(0.9, batch_size=512, every=32, epochs=1) == 0.0
    with pytest.raises(ValueError, match="ema_decay must be a number in"):
        WeightAverage(decay=1.0)
