"""An exponential moving average of a model's weights, as torchvision's reference training script
keeps one (`--model-ema`: `torch.optim.swa_utils.AveragedModel` with an EMA update and
`use_buffers=True`).

Every `every` optimizer steps the average moves towards the model's current weights, the batch
norms' moving statistics included: average = decay * average + (1 - decay) * weights. Its first
update copies the weights, and so does every update during the warmup steps (torchvision resets
the average's count during the learning rate's warmup epochs). The averaged weights are
evaluated and saved beside the raw ones: `WeightAverage.swapped()` puts them in the model for
the time of a `with` block.

>>> import numpy as np, keras
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> ema = WeightAverage(decay=0.5, every=1)
>>> ema.set_model(model)
>>> ema.update()  # the first update copies
>>> _ = model.layers[0].bias.assign([4.0])
>>> ema.update()
>>> float(ema.averages()[1][0])  # 0.5 * 0 + 0.5 * 4
2.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from keras_zoo import checks

# torchvision's defaults (references/classification/train.py): --model-ema-decay and
# --model-ema-steps
TORCHVISION_DECAY = 0.99998
TORCHVISION_EVERY = 32


def torchvision_decay(
    decay: float, *, batch_size: int, every: int, epochs: int, replicas: int = 1
) -> float:
    """The decay torchvision's script actually uses for `--model-ema-decay decay`: it scales
    1 - decay by replicas * batch_size * every / epochs (at most to 1), so that the average's
    span in images stays the same whatever the batch and the update interval."""
    alpha = (1.0 - decay) * replicas * batch_size * every / epochs
    return 1.0 - min(1.0, alpha)


class WeightAverage(keras.callbacks.Callback):
    """The moving average of a model's floating-point weights (trainable and not: the batch
    norms' moving mean and variance too), updated every `every` training batches.

    Args:
        decay: the share of the average kept at each update, in [0, 1).
        every: training batches between updates (torchvision: 32).
        warmup_steps: updates made before this many batches copy the weights (torchvision:
            the steps of its learning rate's warmup).
    """

    def __init__(self, decay: float = 0.999, every: int = 1, warmup_steps: int = 0) -> None:
        super().__init__()
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise ValueError(f"ema_decay must be a number in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.every = checks.check_positive_int(every, "ema_every")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps
        self.steps = 0
        self.updates = 0
        self._average: list[np.ndarray] | None = None

    def _variables(self) -> list[Any]:
        """The model's floating-point variables, in `model.weights` order."""
        return [v for v in self.model.weights if np.issubdtype(np.dtype(v.dtype), np.floating)]

    def update(self) -> None:
        """Moves the average one update towards the model's weights (the first copies them)."""
        current = [np.array(v.numpy(), dtype=np.float64) for v in self._variables()]
        if self._average is None or 0 < self.steps <= self.warmup_steps:
            self._average = current
        else:
            d = self.decay
            self._average = [d * a + (1.0 - d) * w for a, w in zip(self._average, current)]
        self.updates += 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self.update()

    def averages(self) -> list[np.ndarray]:
        """The averaged values of the model's floating-point variables (float64)."""
        if self._average is None:
            raise ValueError("ema: no average yet: it is made after the first update")
        return self._average

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The averaged weights in the model for the block (evaluate or save them there), the
        model's own restored after it."""
        variables = self._variables()
        own = [v.numpy() for v in variables]
        for v, a in zip(variables, self.averages()):
            v.assign(a.astype(np.dtype(v.dtype)))
        try:
            yield
        finally:
            for v, w in zip(variables, own):
                v.assign(w)
