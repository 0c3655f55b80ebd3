"""Mapping a PyTorch state_dict onto a keras_zoo model by name.

Every weighted Keras layer is named after the PyTorch module path of its weights, so the mapping
is a lookup: layer "layer1.0.conv1" takes "layer1.0.conv1.weight". Every checkpoint tensor must
be used exactly once and every Keras weight set exactly once; anything left over on either side
is an error listing the names, and no weight is changed unless the whole mapping fits.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping

import keras
import numpy as np

from keras_zoo import walk
from keras_zoo.port.tensors import (
    IGNORED_KEYS,
    PARAMETER,
    keras_weights_from_torch,
    shape_hint,
    torch_keys,
)


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of `model` (searched through nested models) that own weights."""
    return [layer for layer in walk.layers(model) if layer.weights]


def group_by_module(state_dict: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{module path: {parameter name: tensor}}, without bookkeeping buffers."""
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if param in IGNORED_KEYS:
            continue
        modules.setdefault(module, {})[param] = value
    return modules


def torch_name(layer_name: str, key: str) -> str:
    """The full checkpoint name of `key` (torch_keys' name relative to the layer)."""
    return layer_name if key == PARAMETER else f"{layer_name}.{key}"


def _take(
    modules: dict[str, dict[str, np.ndarray]], layer_name: str, keys: tuple[str, ...]
) -> dict[str, np.ndarray] | None:
    """Removes and returns {key: tensor} for a layer whose keys reach outside its own module
    (a submodule's "out_proj.weight", or a bare parameter); None when any is absent."""
    where = [torch_name(layer_name, k).rpartition(".")[::2] for k in keys]
    if not all(param in modules.get(module, {}) for module, param in where):
        return None
    tensors = {}
    for key, (module, param) in zip(keys, where):
        tensors[key] = modules[module].pop(param)
        if not modules[module]:
            del modules[module]
    return tensors


@dataclasses.dataclass
class Plan:
    """What a state_dict would set in a model, and what does not fit."""

    assignments: list = dataclasses.field(default_factory=list)
    mismatched: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not (self.mismatched or self.missing or self.unexpected)

    def report(self, limit: int = 20) -> str:
        parts = []
        for title, rows in (
            ("shape mismatches", self.mismatched),
            ("Keras layers with no checkpoint tensors", self.missing),
            ("checkpoint tensors no Keras layer uses", self.unexpected),
        ):
            if rows:
                more = f"\n  ... and {len(rows) - limit} more" if len(rows) > limit else ""
                parts.append(f"{title} ({len(rows)}):\n  " + "\n  ".join(rows[:limit]) + more)
        return "\n".join(parts)


def _hint(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (closest: {close[0]!r})" if close else ""


def plan_state_dict(
    model: keras.Model,
    state_dict: Mapping[str, np.ndarray],
    *,
    optional_modules: Iterable[str] = (),
) -> Plan:
    """Matches `state_dict` to `model` by name without changing the model.

    Modules in `optional_modules` (a classifier) are skipped, on both sides, when the model has
    no such layer or its shapes differ; every other tensor and weight must match.
    """
    optional = set(optional_modules)
    modules = group_by_module(state_dict)
    layers = weighted_layers(model)
    plan = Plan()
    for layer in layers:
        keys = torch_keys(layer)
        if all(k and "." not in k for k in keys):
            tensors = modules.pop(layer.name, None)
        else:
            tensors = _take(modules, layer.name, keys)
        if tensors is None or set(tensors) != set(keys):
            if tensors is None and layer.name in optional:
                plan.skipped.append(layer.name)
                continue
            have = sorted(tensors or ())
            plan.missing.append(
                f"{layer.name}: needs {', '.join(torch_name(layer.name, k) for k in keys)}"
                + (f"; checkpoint has {', '.join(have)}" if have else _hint(layer.name, modules))
            )
            continue
        values = keras_weights_from_torch(layer, tensors)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [v.shape for v in values]
        if got != expected:
            if layer.name in optional:
                plan.skipped.append(layer.name)
                continue
            shapes = ", ".join(f"{k or layer.name} {tuple(np.shape(tensors[k]))}" for k in keys)
            plan.mismatched.append(
                f"{layer.name}: checkpoint {shapes} gives Keras shapes {got}, "
                f"the model needs {expected}{shape_hint(layer, tensors)}"
            )
            continue
        plan.assignments.append((layer, values))
    for module, tensors in modules.items():
        if module in optional:
            plan.skipped.append(module)
            continue
        plan.unexpected.extend(
            f"{torch_name(module, param) if module else param}"
            f"{_hint(module, (layer.name for layer in layers))}"
            for param in sorted(tensors)
        )
    return plan


def load_state_dict(
    model: keras.Model,
    state_dict: Mapping[str, np.ndarray],
    *,
    optional_modules: Iterable[str] = (),
) -> Plan:
    """Sets every weight of `model` from a PyTorch `state_dict` of numpy arrays.

    Raises ValueError listing shape mismatches, missing and unexpected keys; the model is
    unchanged then. Returns the plan carried out (its `skipped` lists classifier modules left
    out through `optional_modules`).
    """
    plan = plan_state_dict(model, state_dict, optional_modules=optional_modules)
    if not plan.fits:
        raise ValueError(f"the checkpoint does not fit model {model.name!r}:\n{plan.report()}")
    for layer, values in plan.assignments:
        layer.set_weights(values)
    return plan
