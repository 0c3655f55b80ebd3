"""The benchmark's cases: each architecture's keras_zoo id and keywords, and the constructors
of its peers (keras.applications here; torch through a `TorchFn`).

>>> [case.label for case in CASES][:3]
['mobilenet_v1', 'mobilenet_v2', 'mobilenet_v2 a0.75']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

# FUNCTION(name, num_classes, alpha) -> torch.nn.Module: the torch reference of an id
TorchFn = Callable[[str, int, float], Any]
PFLD_WHY = "keras.applications has no facial landmark model"


@dataclasses.dataclass(frozen=True)
class Case:
    """One architecture: the keras_zoo id and keywords, and its peers' constructors."""

    label: str
    name: str
    kwargs: dict
    keras_app: str | None  # keras.applications constructor
    keras_kwargs: dict
    torch_alpha: float = 1.0
    # why keras.applications has no peer (printed in its place): None for a case that has one
    no_keras_app: str | None = None
    # the only input size the model takes (PFLD's 112): it runs at that size whatever the
    # run's size; None for a model that takes any
    input_size: int | None = None
    outputs: int = 1000  # the head's outputs, which the torch reference is built with

    def __post_init__(self):
        if (self.keras_app is None) == (self.no_keras_app is None):
            raise ValueError(
                f"{self.label}: give keras_app or, without one, no_keras_app (why there is none)"
            )


CASES = (
    Case("mobilenet_v1", "mobilenet_v1", {}, "MobileNet", {}),
    Case("mobilenet_v2", "mobilenet_v2", {}, "MobileNetV2", {}),
    Case(
        "mobilenet_v2 a0.75", "mobilenet_v2", {"alpha": 0.75}, "MobileNetV2", {"alpha": 0.75}, 0.75
    ),
    Case(
        "mobilenet_v3_small",
        "mobilenet_v3_small",
        {},
        "MobileNetV3Small",
        {"include_preprocessing": False},
    ),
    Case(
        "mobilenet_v3_large",
        "mobilenet_v3_large",
        {},
        "MobileNetV3Large",
        {"include_preprocessing": False},
    ),
    Case(
        "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_0",
        {},
        None,
        {},
        no_keras_app="keras.applications has no ShuffleNet",
    ),
    Case(
        "shufflenet_v1_g3_x1_0",
        "shufflenet_v1_g3_x1_0",
        {},
        None,
        {},
        no_keras_app="keras.applications has no ShuffleNet",
    ),
    # keras.applications' EfficientNet (B0-B7) normalises inside the model, always
    Case("efficientnet_b0", "efficientnet_b0", {}, "EfficientNetB0", {}),
    Case(
        "efficientnet_v2_s",
        "efficientnet_v2_s",
        {},
        "EfficientNetV2S",
        {"include_preprocessing": False},
    ),
    Case("convnext_tiny", "convnext_tiny", {}, "ConvNeXtTiny", {"include_preprocessing": False}),
    Case("resnet50", "resnet50", {}, "ResNet50", {}),
    Case(
        "resnext50_32x4d",
        "resnext50_32x4d",
        {},
        None,
        {},
        no_keras_app="keras.applications has no ResNeXt",
    ),
    Case(
        "vit_b_16",
        "vit_b_16",
        {},
        None,
        {},
        no_keras_app="keras.applications has no Vision Transformer",
    ),
    # PFLD-pytorch's landmark backbone: 98 points (x, y), 112x112 crops only
    Case("pfld", "pfld", {}, None, {}, no_keras_app=PFLD_WHY, input_size=112, outputs=196),
    Case(
        "pfld_0_25", "pfld_0_25", {}, None, {}, no_keras_app=PFLD_WHY, input_size=112, outputs=196
    ),
)
TRAIN_CASES = ("mobilenet_v2", "resnet50")


def case_size(case: Case, size: int) -> int:
    """The input size `case` runs at in a run at `size`: its own fixed size where it has one."""
    return case.input_size or size


def size_note(case: Case, size: int) -> str | None:
    """The line a table prints when `case` runs at another size than the run's, else None."""
    own = case_size(case, size)
    if own == size:
        return None
    return f"{case.label}: {own}x{own}, the only input size it takes (the run's is {size}x{size})"


def zoo_model(case: Case, size: int) -> keras.Model:
    """The keras_zoo model of `case` at size x size (its own size where it has a fixed one,
    see `case_size`), with logits (a classifier's) and random weights."""
    import keras_zoo

    size = case_size(case, size)
    return keras_zoo.build(
        case.name, input_shape=(size, size, 3), classifier_activation=None, **case.kwargs
    )


def keras_app_model(case: Case, size: int) -> keras.Model:
    """The keras.applications peer of `case` at size x size, with logits and random weights."""
    import keras

    if case.keras_app is None:
        raise ValueError(f"{case.label} has no keras.applications peer")
    size = case_size(case, size)
    return getattr(keras.applications, case.keras_app)(
        weights=None, input_shape=(size, size, 3), classifier_activation=None, **case.keras_kwargs
    )


def torch_module(case: Case, torch_fn: TorchFn) -> Any:
    """The torch reference of `case` from `torch_fn`, with the case's outputs and width."""
    return torch_fn(case.name, case.outputs, case.torch_alpha)
