"""Optimizers, learning-rate schedules and parameter groups that compute what torch.optim and
timm compute, step for step, so that a recipe of torchvision's or timm's reference scripts
trains a keras_zoo model as it trains the torch module.

- `SGD`: torch.optim.SGD with momentum, Nesterov and coupled weight decay (the decay is added
  to the gradient before the momentum). Keras' own SGD keeps `lr * gradient` in its momentum
  buffer, which differs from torch's as soon as the learning rate changes.
- `AdamW`: torch.optim.AdamW: decoupled decay `p *= 1 - lr * weight_decay`, then Adam with
  torch's epsilon, added to sqrt(v_hat) (Keras' Adam adds it to sqrt(v), before the bias
  correction).
- Parameter groups become per-variable settings, named by Keras' variable paths
  (`variable.path`): `no_decay` lists the variables left without weight decay
  (`no_decay_variables(model)` gives timm's and torchvision's choice) and `lr_multipliers`
  scales the learning rate of single variables (`layer_decay_multipliers(model, decay)`: timm's
  layer-wise decay for a ViT).
- `warmup_cosine`, `warmup_step`: torch's LinearLR warm-up followed by CosineAnnealingLR or
  StepLR (SequentialLR), as Keras learning-rate schedules.

Step convention: a schedule's value at step k is the learning rate of optimizer step k,
counted from 0 (Keras evaluates the schedule at `optimizer.iterations` before it counts the
step). That is the rate torch's optimizer uses in its (k + 1)-th step when its scheduler steps
once after every optimizer step: schedule(0) is LinearLR's first rate, base_lr * start factor.

Every update is computed in the variable's own dtype (float64, float32, or the float32
variables of a mixed-precision model); the scalars of a step (the learning rate, the bias
corrections) are computed in float64 first, as torch computes them in Python floats.

>>> import keras_zoo
>>> model = keras_zoo.build("resnet18", input_shape=(32, 32, 3), classes=10)
>>> no_decay = no_decay_variables(model)
>>> no_decay[:2]
['bn1/gamma', 'bn1/beta']
>>> optimizer = SGD(warmup_cosine(0.1, total_steps=1000, warmup_steps=50), no_decay=no_decay)
"""

from __future__ import annotations

import collections
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import keras
from keras import ops

from keras_zoo import checks, walk
from keras_zoo.layers import ClassToken, PositionEmbedding

# torchvision's references warm up from lr * --lr-warmup-decay, 0.01 by default
WARMUP_START_FACTOR = 0.01
# the layers of keras_zoo's ViT whose weights are timm's no_weight_decay() (cls_token and
# pos_embed) and torchvision's class token and position embedding
EMBEDDING_LAYERS = (ClassToken, PositionEmbedding)
# torchvision's ViT module paths: the stem (timm's layer 0), the final norm and the blocks
VIT_STEM = ("conv_proj", "class_token", "encoder.pos_embedding")
VIT_FINAL_NORM = "encoder.ln"
VIT_BLOCK = re.compile(r"^encoder\.layers\.encoder_layer_(\d+)(?:\.|$)")


def no_decay_variables(model: keras.Model) -> list[str]:
    """The paths of the trainable variables of `model` that timm's and torchvision's recipes
    leave without weight decay: every variable of one dimension or less (batch-norm and
    layer-norm gamma and beta, biases), every bias (Keras keeps an attention's query, key and
    value biases as (heads, head size), torch as one vector), and a ViT's class token and
    position embedding (timm's `param_groups_weight_decay` with the model's
    `no_weight_decay()`). In the order of `model.trainable_variables`, printable.

    >>> import keras_zoo
    >>> no_decay_variables(keras_zoo.build("resnet18", input_shape=(32, 32, 3)))[-3:]
    ['layer4.1.bn2/gamma', 'layer4.1.bn2/beta', 'fc/bias']
    """
    embeddings = {
        id(variable)
        for layer in walk.layers(model)
        if isinstance(layer, EMBEDDING_LAYERS)
        for variable in layer.weights
    }
    return [
        v.path
        for v in model.trainable_variables
        if len(v.shape) <= 1 or v.name == "bias" or id(v) in embeddings
    ]


def layer_decay_multipliers(model: keras.Model, decay: float) -> dict[str, float]:
    """{variable path: learning-rate multiplier} of a keras_zoo ViT's trainable variables, as
    timm's `param_groups_layer_decay` gives its groups' lr_scale: the patch embedding, class
    token and position embedding are layer 0, encoder block i is layer i + 1, the final
    LayerNorm goes with the last block (timm's group matcher merges `norm` into it), and the
    rest (the head) is layer num_layers + 1; a variable of layer l learns at
    decay ** (num_layers + 1 - l) of the rate. For `lr_multipliers` of `SGD` or `AdamW`.

    >>> from keras_zoo.models.vit import vision_transformer
    >>> vit = vision_transformer(patch_size=16, num_layers=2, num_heads=2, hidden_dim=8,
    ...                          mlp_dim=16, input_shape=(32, 32, 3), classes=10)
    >>> scales = layer_decay_multipliers(vit, 0.5)
    >>> scales["conv_proj/kernel"], scales["encoder.ln/gamma"], scales["heads.head/kernel"]
    (0.125, 0.5, 1.0)
    """
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0 < float(decay) <= 1:
        raise ValueError(
            f"decay must be a number in (0, 1] (0.65 to 0.75 are usual), got {decay!r}"
        )
    found = []
    for layer in walk.layers(model):
        if layer.trainable_weights:
            block = VIT_BLOCK.match(layer.name)
            found.append((layer, None if block is None else int(block.group(1))))
    blocks = [i for _, i in found if i is not None]
    if not blocks:
        raise ValueError(
            f"model: {model.name!r} has no encoder blocks (layers named "
            "encoder.layers.encoder_layer_N): layer-wise learning-rate decay is for ViTs"
        )
    num_layers = max(blocks) + 1
    scale = {}
    for layer, block in found:
        if layer.name in VIT_STEM:
            layer_id = 0
        elif layer.name == VIT_FINAL_NORM:
            layer_id = num_layers
        else:
            layer_id = num_layers + 1 if block is None else block + 1
        for variable in layer.trainable_weights:
            scale[id(variable)] = float(decay) ** (num_layers + 1 - layer_id)
    return {v.path: scale[id(v)] for v in model.trainable_variables}


def _constant(value: float, dtype: Any) -> Any:
    """A Python float as a tensor of `dtype`, rounded once: Keras' ops.cast(0.9, "float64")
    passes through float32 (0.8999999762)."""
    return ops.convert_to_tensor(value, dtype=dtype)


def _non_negative(value: Any, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) >= 0:
        raise ValueError(f"{arg} must be a number >= 0, got {value!r}")
    return float(value)


def _learning_rate(value: Any) -> Any:
    """A positive number (as a float) or a schedule or callable, as Keras takes them."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return value
    return checks.check_positive_number(value, "learning_rate", "0.1 for SGD, 1e-3 for AdamW")


def _paths(value: Iterable[str] | None, arg: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{arg} must be a list of variable paths, got {value!r}")
    paths = tuple(value)
    for path in paths:
        if not isinstance(path, str):
            raise ValueError(
                f"{arg} must hold variable paths (strings such as 'bn1/gamma'), got {path!r}"
            )
    return paths


def _multipliers(value: Mapping[str, float] | None) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"lr_multipliers must map variable paths to factors, got {value!r}")
    out = {}
    for path, factor in value.items():
        if not isinstance(path, str):
            raise ValueError(f"lr_multipliers: keys must be variable paths, got {path!r}")
        out[path] = _non_negative(factor, f"lr_multipliers[{path!r}]")
    return out


class _Grouped(keras.optimizers.Optimizer):
    """torch's parameter groups as per-variable settings: weight decay but for the variables
    in `no_decay`, and the learning rate times `lr_multipliers[path]` (1 for the others).

    Keras' own weight decay is left off (its `weight_decay` attribute is None): it would decay
    every variable by lr * wd before the step, in neither torch's SGD's nor its AdamW's place.
    The coefficient given as `weight_decay` is `decay_coefficient`, applied in `update_step`.
    """

    def __init__(
        self,
        learning_rate: Any,
        *,
        weight_decay: float,
        no_decay: Iterable[str] | None,
        lr_multipliers: Mapping[str, float] | None,
        name: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=_learning_rate(learning_rate), weight_decay=None, name=name, **kwargs
        )
        self.decay_coefficient = _non_negative(weight_decay, "weight_decay")
        self.no_decay = _paths(no_decay, "no_decay")
        self.lr_multipliers = _multipliers(lr_multipliers)

    def build(self, variables: Sequence[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        paths = [getattr(v, "path", v.name) for v in variables]
        counts = collections.Counter(paths)
        for arg, named in (("no_decay", self.no_decay), ("lr_multipliers", self.lr_multipliers)):
            unknown = [p for p in named if p not in counts]
            twice = [p for p in named if counts[p] > 1]
            if unknown:
                raise ValueError(
                    f"{arg}: {unknown[:3]} name no variable this optimizer trains "
                    f"({len(paths)} variables, such as {paths[:2]})"
                )
            if twice:
                raise ValueError(f"{arg}: {twice[:3]} name more than one variable")
        no_decay = set(self.no_decay)
        # indexed as Keras indexes the variables (`_get_variable_index`): TensorFlow's update
        # step sees the backend variable, which has no path
        self._decays = tuple(0.0 if p in no_decay else self.decay_coefficient for p in paths)
        self._lr_scales = tuple(self.lr_multipliers.get(p, 1.0) for p in paths)

    def exclude_from_weight_decay(self, var_list: Any = None, var_names: Any = None) -> None:
        """Refused: Keras' exclusions act on its own decay, which these optimizers leave off."""
        raise ValueError(
            "exclude_from_weight_decay: give the variables to leave undecayed as no_decay "
            "(their paths; no_decay_variables(model) for timm's choice)"
        )

    def _step_settings(self, variable: Any, learning_rate: Any) -> tuple[int, Any, float]:
        """The variable's index, its learning rate (float64) and its weight decay."""
        index = self._get_variable_index(variable)
        lr = ops.multiply(ops.cast(learning_rate, "float64"), self._lr_scales[index])
        return index, lr, self._decays[index]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "weight_decay": self.decay_coefficient,
            "no_decay": list(self.no_decay),
            "lr_multipliers": dict(self.lr_multipliers),
        }


@keras.saving.register_keras_serializable(package="keras_zoo")
class SGD(_Grouped):
    """torch.optim.SGD (dampening 0): g = grad + weight_decay * p (only for variables not in
    `no_decay`), buf = momentum * buf + g (buf = g at the first step), g = g + momentum * buf
    with Nesterov else buf, p -= lr * g, lr times the variable's `lr_multipliers` factor.
    Other keywords are Keras' (clipnorm, use_ema, ...).

    >>> optimizer = SGD(0.1, weight_decay=1e-4, no_decay=["fc/bias"])
    >>> optimizer.get_config()["nesterov"]
    True
    """

    def __init__(
        self,
        learning_rate: Any = 0.1,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        no_decay: Iterable[str] | None = None,
        lr_multipliers: Mapping[str, float] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            no_decay=no_decay,
            lr_multipliers=lr_multipliers,
            name=name,
            **kwargs,
        )
        self.momentum = checks.check_fraction(momentum, "momentum")
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and not self.momentum:
            raise ValueError("nesterov: Nesterov momentum needs a momentum > 0, got 0")
        self.nesterov = nesterov

    def build(self, variables: Sequence[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentum_buffers = (
            self.add_optimizer_variables(variables, "momentum_buffer") if self.momentum else []
        )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index, lr, decay = self._step_settings(variable, learning_rate)
        dtype = variable.dtype
        g = ops.cast(gradient, dtype)
        if decay:  # coupled: the decay goes through the momentum, as in torch
            g = ops.add(g, ops.multiply(variable, _constant(decay, dtype)))
        if self.momentum:
            momentum = _constant(self.momentum, dtype)
            buffer = self.momentum_buffers[index]
            new_buffer = ops.add(ops.multiply(buffer, momentum), g)
            self.assign(buffer, new_buffer)
            g = ops.add(g, ops.multiply(new_buffer, momentum)) if self.nesterov else new_buffer
        self.assign_sub(variable, ops.multiply(g, ops.cast(lr, dtype)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@keras.saving.register_keras_serializable(package="keras_zoo")
class AdamW(_Grouped):
    """torch.optim.AdamW (amsgrad off): p *= 1 - lr * weight_decay (only for variables not in
    `no_decay`), m = beta_1 m + (1 - beta_1) g, v = beta_2 v + (1 - beta_2) g^2, and
    p -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon) at step t (from 1),
    lr times the variable's `lr_multipliers` factor. Other keywords are Keras' (clipnorm, ...).

    >>> AdamW(1e-3).get_config()["epsilon"]
    1e-08
    """

    def __init__(
        self,
        learning_rate: Any = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.05,
        no_decay: Iterable[str] | None = None,
        lr_multipliers: Mapping[str, float] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            no_decay=no_decay,
            lr_multipliers=lr_multipliers,
            name=name,
            **kwargs,
        )
        self.beta_1 = checks.check_fraction(beta_1, "beta_1")
        self.beta_2 = checks.check_fraction(beta_2, "beta_2")
        self.epsilon = checks.check_positive_number(epsilon, "epsilon", "1e-8")

    def build(self, variables: Sequence[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        # torch's names of Adam's state
        self.exp_avgs, self.exp_avg_sqs = self.add_optimizer_variables(
            variables, ["exp_avg", "exp_avg_sq"]
        )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index, lr, decay = self._step_settings(variable, learning_rate)
        dtype = variable.dtype
        g = ops.cast(gradient, dtype)
        if decay:  # decoupled, before the moments, as torch's AdamW
            shrink = ops.subtract(1.0, ops.multiply(lr, decay))
            self.assign(variable, ops.multiply(variable, ops.cast(shrink, dtype)))
        step = ops.cast(ops.add(self.iterations, 1), "float64")
        correction_1 = ops.subtract(1.0, ops.power(_constant(self.beta_1, "float64"), step))
        correction_2 = ops.subtract(1.0, ops.power(_constant(self.beta_2, "float64"), step))
        m, v = self.exp_avgs[index], self.exp_avg_sqs[index]
        # torch's exp_avg.lerp_(grad, 1 - beta_1)
        new_m = ops.add(m, ops.multiply(ops.subtract(g, m), _constant(1 - self.beta_1, dtype)))
        new_v = ops.add(
            ops.multiply(v, _constant(self.beta_2, dtype)),
            ops.multiply(ops.square(g), _constant(1 - self.beta_2, dtype)),
        )
        self.assign(m, new_m)
        self.assign(v, new_v)
        denominator = ops.add(
            ops.divide(ops.sqrt(new_v), ops.cast(ops.sqrt(correction_2), dtype)),
            _constant(self.epsilon, dtype),
        )
        step_size = ops.cast(ops.divide(lr, correction_1), dtype)
        self.assign_sub(variable, ops.multiply(step_size, ops.divide(new_m, denominator)))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


def _steps(value: Any, arg: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    return value


def _start_factor(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) <= 1:
        raise ValueError(f"warmup_start_factor must be a number in (0, 1], got {value!r}")
    return float(value)


class _Warmup(keras.optimizers.schedules.LearningRateSchedule):
    """torch's LinearLR(start_factor, end_factor=1, total_iters=warmup_steps): from
    base_lr * warmup_start_factor up by equal steps, reaching base_lr at step warmup_steps,
    where the schedule after the warm-up (`_after`, at its own step 0) takes over, as
    SequentialLR(milestones=[warmup_steps]) switches. Computed in float64."""

    def __init__(self, base_lr: float, warmup_steps: int, warmup_start_factor: float) -> None:
        self.base_lr = checks.check_positive_number(base_lr, "base_lr")
        self.warmup_steps = _steps(warmup_steps, "warmup_steps", 0)
        self.warmup_start_factor = _start_factor(warmup_start_factor)

    def _after(self, step: Any) -> Any:
        raise NotImplementedError

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float64")
        warm = self.warmup_steps
        after = self._after(ops.maximum(ops.subtract(step, warm), 0.0))
        if not warm:
            return after
        start = self.warmup_start_factor
        rising = ops.multiply(self.base_lr, ops.add(start, ops.multiply(1 - start, step / warm)))
        return ops.where(ops.less(step, warm), rising, after)

    def get_config(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
        }


@keras.saving.register_keras_serializable(package="keras_zoo")
class WarmupCosine(_Warmup):
    """The linear warm-up, then torch's CosineAnnealingLR(T_max=total_steps - warmup_steps,
    eta_min=min_lr): min_lr + (base_lr - min_lr) (1 + cos(pi j / T_max)) / 2 at step j of
    the cosine. From total_steps on it stays at min_lr (torch's would rise again)."""

    def __init__(
        self,
        base_lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_start_factor: float = WARMUP_START_FACTOR,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_start_factor)
        self.total_steps = _steps(total_steps, "total_steps", self.warmup_steps + 1)
        self.min_lr = _non_negative(min_lr, "min_lr")
        if self.min_lr > self.base_lr:
            raise ValueError(f"min_lr must be <= base_lr {self.base_lr}, got {min_lr!r}")

    def _after(self, step: Any) -> Any:
        length = self.total_steps - self.warmup_steps
        step = ops.minimum(step, length)
        # torch's closed form, in its order of operations
        wave = ops.add(1.0, ops.cos(ops.divide(ops.multiply(math.pi, step), length)))
        return ops.add(self.min_lr, ops.divide(ops.multiply(self.base_lr - self.min_lr, wave), 2))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "total_steps": self.total_steps, "min_lr": self.min_lr}


@keras.saving.register_keras_serializable(package="keras_zoo")
class WarmupStep(_Warmup):
    """The linear warm-up, then torch's StepLR(step_size, gamma): base_lr * gamma ** (j //
    step_size) at step j after the warm-up."""

    def __init__(
        self,
        base_lr: float,
        step_size: int,
        gamma: float = 0.1,
        warmup_steps: int = 0,
        warmup_start_factor: float = WARMUP_START_FACTOR,
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_start_factor)
        self.step_size = _steps(step_size, "step_size", 1)
        self.gamma = checks.check_positive_number(gamma, "gamma", "0.1")

    def _after(self, step: Any) -> Any:
        decays = ops.floor(ops.divide(step, self.step_size))
        return ops.multiply(self.base_lr, ops.power(_constant(self.gamma, "float64"), decays))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "step_size": self.step_size, "gamma": self.gamma}


def warmup_cosine(
    base_lr: float,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start_factor: float = WARMUP_START_FACTOR,
    min_lr: float = 0.0,
) -> WarmupCosine:
    """torchvision's --lr-scheduler cosineannealinglr with --lr-warmup-method linear, stepped
    once per optimizer step: the rate of step k (from 0) rises linearly from
    base_lr * warmup_start_factor over warmup_steps, then follows a cosine from base_lr at step
    warmup_steps down to min_lr at step total_steps.

    >>> [round(float(warmup_cosine(1.0, 4, warmup_steps=2, warmup_start_factor=0.5)(k)), 3)
    ...  for k in range(5)]
    [0.5, 0.75, 1.0, 0.5, 0.0]
    """
    return WarmupCosine(base_lr, total_steps, warmup_steps, warmup_start_factor, min_lr)


def warmup_step(
    base_lr: float,
    step_size: int,
    gamma: float = 0.1,
    warmup_steps: int = 0,
    warmup_start_factor: float = WARMUP_START_FACTOR,
) -> WarmupStep:
    """torchvision's --lr-scheduler steplr with --lr-warmup-method linear, stepped once per
    optimizer step: the linear warm-up of `warmup_cosine`, then base_lr times gamma after every
    step_size steps.

    >>> [float(warmup_step(1.0, 2, gamma=0.5)(k)) for k in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    return WarmupStep(base_lr, step_size, gamma, warmup_steps, warmup_start_factor)
