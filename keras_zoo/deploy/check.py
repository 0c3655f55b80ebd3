"""The check of an export in its runtime, beside the Keras model: a float export must agree
within `TOLERANCE` (max |runtime - keras| / max |keras|, `relative_error`); a quantized one
reports how often it agrees with the float model as the model's task judges (`Task.agree`: a
classifier's top-1 class) and, given labelled data, both models' scores (`Task.score`: a
classifier's accuracy).

>>> outputs_vary(np.array([[0.1, 0.9], [0.8, 0.2]]), 1e-6)
True
>>> outputs_vary(np.array([[0.5, 0.5], [0.5, 0.5]]), 1e-6)
False
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_zoo.deploy.errors import ExportError
from keras_zoo.deploy.images import Images
from keras_zoo.port.compare import relative_error

if TYPE_CHECKING:
    import keras

    from keras_zoo.deploy.exported import ExportedModel
    from keras_zoo.tasks import Task

TOLERANCE = 1e-4
CHECK_IMAGES = 8  # random images of the parity check


def outputs_vary(outputs: np.ndarray, fraction: float) -> bool:
    """Whether a batch's outputs differ from image to image by more than `fraction` of their
    largest magnitude somewhere: an output check on outputs that do not is blind."""
    flat = np.asarray(outputs).reshape(len(outputs), -1)
    return bool(np.ptp(flat, axis=0).max() > fraction * np.abs(flat).max())


def check_in_runtime(
    model: keras.Model,
    runtime: ExportedModel,
    prepare: Images,
    calib: np.ndarray | None,
    task: Task,
    folder: Any,
    tolerance: float,
    quantize: str | None,
) -> dict:
    """The export's outputs against the model's on CHECK_IMAGES random pictures, on `calib`
    (real images, or None) and on the `task`'s labelled data `folder` (or None), as the
    record's "check" (the scores under the task's `score_name`);
    ExportError when a float export's error exceeds `tolerance` or a quantized one's outputs
    are not finite. Warns when the outputs do not vary, as the check is then blind."""

    def keras_out(x):
        return np.asarray(model(x, training=False))

    run: Callable[[np.ndarray], np.ndarray] = runtime
    if runtime.layout == "nchw":  # the check's batches are NHWC, as the Keras model's
        run = functools.partial(_transposed, runtime)

    x = prepare.random(CHECK_IMAGES)
    want, got = _batches(keras_out, x), _batches(run, x)
    random = {"images": len(x), "max_relative_error": relative_error(got, want)}
    images = None
    agree = [task.agree(want, got)]
    if calib is not None:
        want_i, got_i = _batches(keras_out, calib), _batches(run, calib)
        images = {"images": len(calib), "max_relative_error": relative_error(got_i, want_i)}
        agree = [task.agree(want_i, got_i)]
    score = None
    if folder is not None:
        targets = folder.targets
        regions = task.regions(list(folder.files), targets=targets)  # a face's square, say
        k_batches: list[np.ndarray] = []
        e_batches: list[np.ndarray] = []
        for i in range(0, len(folder.files), 32):
            batch = (
                prepare.files(folder.files[i : i + 32])
                if regions is None
                else prepare.regions(task, folder.files[i : i + 32], regions[i : i + 32])
            )
            k_batches.append(keras_out(batch))
            e_batches.append(np.asarray(run(batch)))
        k_out, e_out = np.concatenate(k_batches), np.concatenate(e_batches)
        score = {
            "keras": task.score(k_out, targets),
            "export": task.score(e_out, targets),
            "images": int(len(targets)),
        }
        agree.append(task.agree(k_out, e_out))
    check = {
        "tolerance": None if quantize else tolerance,
        "random": random,
        "images": images,
        "agreement": float(np.mean(np.concatenate(agree))),
        task.score_name: score,
    }
    if not outputs_vary(want, 1e-6):
        warnings.warn(
            f"{model.name}: the outputs are the same for every random image, so the "
            "check cannot tell a faithful export from a wrong one (untrained "
            "weights?)",
            stacklevel=3,
        )
    errors = [random["max_relative_error"]] + ([images["max_relative_error"]] if images else [])
    if quantize is None and not max(errors) <= tolerance:
        raise ExportError(
            f"the export disagrees with the Keras model: max relative error "
            f"{max(errors):.2e} > tolerance {tolerance:g}; nothing was written"
        )
    if quantize is not None and not all(np.isfinite(errors)):
        raise ExportError("the quantized export gives non-finite outputs; nothing was written")
    return check


def _transposed(run: Callable, x: np.ndarray) -> np.ndarray:
    return run(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _batches(run: Callable, x: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([np.asarray(run(x[i : i + batch])) for i in range(0, len(x), batch)])
