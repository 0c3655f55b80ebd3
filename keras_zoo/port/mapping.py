"""Mapping a PyTorch state_dict onto a keras_zoo model by name.

Every weighted Keras layer is named after the PyTorch module path of its weights, so the mapping
is a lookup: layer "layer1.0.conv1" takes "layer1.0.conv1.weight". Every checkpoint tensor must
be used exactly once and every Keras weight set exactly once; anything left over on either side
is an error listing the names, and no weight is changed unless the whole mapping fits.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

import keras
import numpy as np

from keras_zoo.port.layout import IGNORED_KEYS, keras_weights_from_torch, torch_keys


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of `model` (searched through nested models) that own weights."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found


def _group_by_module(state_dict: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if param in IGNORED_KEYS:
            continue
        modules.setdefault(module, {})[param] = value
    return modules


def _hint(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (closest: {close[0]!r})" if close else ""


def _listing(title: str, rows: list[str], limit: int = 20) -> str:
    more = f"\n  ... and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{title} ({len(rows)}):\n  " + "\n  ".join(rows[:limit]) + more


def load_state_dict(
    model: keras.Model,
    state_dict: Mapping[str, np.ndarray],
    *,
    skip_modules: Iterable[str] = (),
) -> None:
    """Sets every weight of `model` from a PyTorch `state_dict` of numpy arrays.

    `skip_modules` names module paths to leave out on both sides (a classifier that the
    Keras model lacks or has with another number of classes). Raises ValueError listing missing
    and unexpected keys and shape mismatches; the model is unchanged then.
    """
    skip = set(skip_modules)
    modules = _group_by_module(state_dict)
    for module in skip:
        modules.pop(module, None)
    layers = [layer for layer in weighted_layers(model) if layer.name not in skip]

    assignments, missing, mismatched = [], [], []
    for layer in layers:
        tensors = modules.pop(layer.name, None)
        keys = torch_keys(layer)
        if tensors is None or set(tensors) != set(keys):
            have = sorted(tensors or ())
            missing.append(
                f"{layer.name}: needs {', '.join(f'{layer.name}.{k}' for k in keys)}"
                + (f"; checkpoint has {', '.join(have)}" if have else _hint(layer.name, modules))
            )
            continue
        values = keras_weights_from_torch(layer, tensors)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [v.shape for v in values]
        if got != expected:
            shapes = ", ".join(f"{k} {tuple(np.shape(tensors[k]))}" for k in keys)
            mismatched.append(
                f"{layer.name}: checkpoint {shapes} gives Keras shapes {got}, "
                f"the model needs {expected}"
            )
            continue
        assignments.append((layer, values))

    unexpected = [
        f"{module}.{param}{_hint(module, (layer.name for layer in layers))}"
        for module, tensors in modules.items()
        for param in sorted(tensors)
    ]
    problems = [
        _listing(title, rows)
        for title, rows in (
            ("shape mismatches", mismatched),
            ("Keras layers with no checkpoint tensors", missing),
            ("checkpoint tensors no Keras layer uses", unexpected),
        )
        if rows
    ]
    if problems:
        raise ValueError(
            f"the checkpoint does not fit model {model.name!r}:\n" + "\n".join(problems)
        )
    for layer, values in assignments:
        layer.set_weights(values)
