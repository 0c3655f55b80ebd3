"""Walking a Keras model's layers through its nested models: the one walker every tool uses.

A path is the nested models from the outermost one down, then the layer (a top-level layer's
path is the layer alone). Input layers are never listed.
"""

from __future__ import annotations

from typing import Any, Literal

import keras

from keras_zoo import compat

Subclassed = Literal["open", "leaf", "error"]


def is_graph_model(layer: object) -> bool:
    """Whether `layer` is a Functional model, or a Sequential one with a graph (an input)."""
    if isinstance(layer, keras.Sequential):
        try:
            layer.inputs  # noqa: B018  (Keras raises AttributeError before the first input)
        except AttributeError:
            return False
        return True
    return compat.graph_nodes(layer) is not None


def walk(
    model: keras.Model, *, subclassed: Subclassed = "open", models: bool = False
) -> list[tuple[keras.layers.Layer, ...]]:
    """The paths of the layers of `model`, depth first in the order of each model's `layers`.

    subclassed: what a nested model without a graph (subclassed, or a Sequential never given
    an input) is: "open" (its `layers` are walked like any nested model's), "leaf" (listed as a
    layer) or "error" (TypeError). models: whether nested models that are opened are listed
    themselves, before their layers.

    >>> import keras_zoo
    >>> [path[-1].name for path in walk(keras_zoo.build("resnet18"))][:3]
    ['conv1.pad', 'conv1', 'bn1']
    """
    paths: list[tuple[keras.layers.Layer, ...]] = []

    def visit(parent: keras.Model, prefix: tuple) -> None:
        for layer in parent.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            path = prefix + (layer,)
            opened = isinstance(layer, keras.Model) and (
                subclassed == "open" or is_graph_model(layer)
            )
            if isinstance(layer, keras.Model) and not opened and subclassed == "error":
                raise TypeError(
                    f"nested model {layer.name!r} is a {type(layer).__name__}, not "
                    "a Functional or Sequential model with a graph"
                )
            if models or not opened:
                paths.append(path)
            if opened:
                visit(layer, path)

    visit(model, ())
    return paths


def layers(
    model: keras.Model, *, subclassed: Subclassed = "open", models: bool = False
) -> list[keras.layers.Layer]:
    """The layers `walk` reaches, without their paths."""
    return [path[-1] for path in walk(model, subclassed=subclassed, models=models)]


def graph_of(model: keras.Model) -> keras.Model:
    """The Functional graph of a Functional or Sequential model; TypeError for others."""
    if isinstance(model, keras.Sequential):
        if not is_graph_model(model):
            raise ValueError(
                f"Sequential model {model.name!r} has no graph yet: start it with "
                "keras.Input(shape) or build it before inspecting it"
            )
        inputs, outputs = model.inputs, model.outputs
        return keras.Model(
            inputs[0] if len(inputs) == 1 else inputs,
            outputs[0] if len(outputs) == 1 else outputs,
            name=model.name,
        )
    if compat.graph_nodes(model) is None:
        raise TypeError(
            f"inspection needs a Functional or Sequential model; {getattr(model, 'name', model)!r} "
            f"is a {type(model).__name__}"
        )
    return model


def calls_in(model: keras.Model) -> list:
    """The call nodes of the graph of `model` (see `compat.graph_nodes`)."""
    nodes = compat.graph_nodes(graph_of(model))
    assert nodes is not None  # graph_of returns a Functional model
    return nodes


def call_of(model: keras.Model, layer: keras.layers.Layer) -> Any:
    """The one call of `layer` in `model`'s graph; ValueError when it is called more often."""
    nodes = [node for node in calls_in(model) if node.operation is layer]
    if len(nodes) != 1:
        raise ValueError(
            f"layer {layer.name!r} is called {len(nodes)} times in {model.name!r}; "
            "inspection needs a layer called once"
        )
    return nodes[0]


def producer(model: keras.Model, tensor: Any) -> keras.layers.Layer | None:
    """The layer whose call in `model`'s graph outputs `tensor` (None when none does)."""
    for node in calls_in(model):
        if any(t is tensor for t in node.output_tensors):
            return node.operation
    return None
