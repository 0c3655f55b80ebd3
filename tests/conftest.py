import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def relative_error(a, b) -> float:
    """max |a - b| / max |b|: the measure of a port's error (see the porting notes)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def random_batch_norm_weights(layer, rng, spread: float):
    """Random statistics for a built batch norm, far from the initial ones: gamma and the
    variance uniform in [0.5, 1.5], beta and the mean normal with standard deviation `spread`."""
    return [(rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path or "gamma" in w.path
             else rng.normal(0, spread, w.shape)).astype("float32") for w in layer.weights]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def float64():
    """Builds Keras models in float64 for the duration of a test."""
    import keras

    # Keras caches the global dtype policy on first use: set it as well as floatx.
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def assert_save_load_round_trip(model, x, tmp_path):
    """model.save(.keras) -> load_model gives identical outputs on `x`."""
    import keras

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
