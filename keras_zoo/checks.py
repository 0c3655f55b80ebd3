"""Argument checks shared by every family, the porter and the command line.

Each check raises ValueError or TypeError naming the argument and what is allowed, so that bad
input never reaches TensorFlow as an internal error. Keras is imported only by the checks that
need it: the registry and the command line's parser use this module without TensorFlow.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Sequence
from typing import Any, Literal, overload

KERAS_WEIGHT_SUFFIXES = (".weights.h5", ".h5")
# .pth.tar: the name PyTorch's ImageNet example and PFLD-pytorch give their training checkpoints
TORCH_WEIGHT_SUFFIXES = (".pth", ".pth.tar", ".pt", ".bin", ".ckpt", ".safetensors")
# the smallest input height and width: every family halves it five times (strides 2 to 32)
MIN_IMAGE_SIZE = 32


def check_bool(value: Any, arg: str) -> bool:
    """True or False, nothing else (not 0 or 1)."""
    if not isinstance(value, bool):
        raise TypeError(f"{arg} must be True or False, got {value!r}")
    return value


def check_positive_int(value: Any, arg: str) -> int:
    """An int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    return value


def check_positive_number(value: Any, arg: str, usual: str = "") -> float:
    """A real number > 0 (not a bool, not NaN); `usual` names typical values for the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        hint = f" ({usual} are usual)" if usual else ""
        raise ValueError(f"{arg} must be a positive number{hint}, got {value!r}")
    return float(value)


def check_fraction(value: Any, arg: str) -> float:
    """A number in [0, 1) (a dropout rate)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) < 1:
        raise ValueError(f"{arg} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_number_in(
    value: Any,
    arg: str,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A finite int or float (not a bool) in [low, high], either end open where said."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{arg} must be a number in {left}{low:g}, {high:g}{right}, got {value!r}")


def check_int_at_least(value: Any, arg: str, least: int) -> None:
    """An int (not a bool) >= `least`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{arg} must be an integer >= {least}, got {value!r}")


def check_choice(value: Any, arg: str, choices: Sequence[Any]) -> Any:
    """One of `choices` (a bool only where the choices hold that very bool)."""
    if value not in choices or (isinstance(value, bool) and not any(c is value for c in choices)):
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{arg} must be one of {allowed}; got {value!r}")
    return value


@overload
def check_image_size(
    value: Any, arg: str = ..., *, min_size: int = ..., allow_none: Literal[False] = ...
) -> int: ...
@overload
def check_image_size(
    value: Any, arg: str = ..., *, min_size: int = ..., allow_none: bool
) -> int | None: ...
def check_image_size(
    value: Any, arg: str = "image_size", *, min_size: int = MIN_IMAGE_SIZE, allow_none: bool = False
) -> int | None:
    """The height or width of a model's input: an integer >= min_size (not a bool), or None
    where `allow_none` (a size left open). Every image-size argument is checked here.

    >>> check_image_size(64)
    64
    >>> check_image_size(16)
    Traceback (most recent call last):
    ValueError: image_size must be an integer >= 32, got 16
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < min_size:
        expected = f"{'None or ' if allow_none else ''}an integer >= {min_size}"
        raise ValueError(f"{arg} must be {expected}, got {value!r}")
    return value


def check_input_shape(
    input_shape: Any, *, min_size: int = MIN_IMAGE_SIZE, arg: str = "input_shape"
) -> tuple:
    """(height, width, channels): sizes None or >= min_size, channels a positive integer."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            f"{arg} must be (height, width, channels) in channels-last order, got {input_shape!r}"
        )
    *spatial, channels = input_shape
    for size in spatial:
        check_image_size(
            size,
            f"{arg} {tuple(input_shape)}: each of height and width",
            min_size=min_size,
            allow_none=True,
        )
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(
            f"{arg} {tuple(input_shape)}: the channel count (last entry) must be a positive "
            f"integer, got {channels!r}"
        )
    return tuple(input_shape)


def check_fixed_input_size(
    shape: Any, size: tuple[int, int], *, name: str, why: str, arg: str = "input_shape"
) -> None:
    """ValueError unless the (height, width, channels) `shape` has the (height, width) `size`
    that model `name` is built for (`why` says what fixes it); a malformed shape is left to
    `check_input_shape`.

    >>> check_fixed_input_size((128, 128, 3), (112, 112), name="pfld", why="fixed pools")
    Traceback (most recent call last):
    ...
    ValueError: input_shape (128, 128, 3): pfld takes 112x112 inputs only (fixed pools)
    """
    if isinstance(shape, (tuple, list)) and len(shape) == 3 and tuple(shape[:2]) != tuple(size):
        raise ValueError(
            f"{arg} {tuple(shape)}: {name} takes {size[0]}x{size[1]} inputs only ({why})"
        )


def check_weights(weights: Any) -> str | None:
    """None, or the path of an existing weights file of a supported format."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be None, 'imagenet' or a file path, got {weights!r}")
    path = os.fspath(weights)
    if not path.endswith(KERAS_WEIGHT_SUFFIXES + TORCH_WEIGHT_SUFFIXES):
        raise ValueError(
            f"weights={path!r}: expected None, 'imagenet', a Keras weights file "
            f"({', '.join(KERAS_WEIGHT_SUFFIXES)}) or a PyTorch checkpoint "
            f"({', '.join(TORCH_WEIGHT_SUFFIXES)})"
        )
    if not os.path.isfile(path):
        raise ValueError(f"weights={path!r}: no such file")
    return path


def check_checkpoint(path: str | os.PathLike, arg: str) -> str:
    """The path of an existing PyTorch checkpoint file given as argument `arg`; ValueError in
    one line naming `arg` and the file otherwise."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{arg} {path!r}: no such file")
    if not os.path.isfile(path):
        raise ValueError(
            f"{arg} {path!r}: expected a PyTorch checkpoint file "
            f"({', '.join(TORCH_WEIGHT_SUFFIXES)}), got a folder"
        )
    return path


def check_input_tensor(input_tensor: Any) -> None:
    """None or a symbolic Keras tensor."""
    import keras

    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise TypeError(
            "input_tensor must be a symbolic Keras tensor such as keras.Input((224, 224, 3)), "
            f"got {type(input_tensor).__name__}"
        )


def check_activation(value: Any, arg: str = "classifier_activation") -> Any:
    """None, a callable or the name of a Keras activation."""
    if value is None or callable(value):
        return value
    import keras

    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"{arg} must be None (logits), a Keras activation name such as 'softmax', or a "
            f"callable; got {value!r}"
        ) from None
    return value


def check_out_indices(out_indices: Any, n_stages: int, *, kind: str = "stage") -> tuple[int, ...]:
    """Distinct `kind` indices in [0, n_stages), as a tuple; a CNN's stages are at strides
    4, 8, 16 and 32, a transformer's blocks are its encoder blocks."""
    valid = range(n_stages)
    if (
        not isinstance(out_indices, (tuple, list))
        or not out_indices
        or any(not isinstance(i, int) or isinstance(i, bool) or i not in valid for i in out_indices)
        or len(set(out_indices)) != len(out_indices)
    ):
        where = (
            f"(strides {[4 * 2**i for i in valid]})"
            if kind == "stage"
            else f"(the model has {n_stages} {kind}s)"
        )
        shown = list(valid) if n_stages <= 8 else f"0 to {n_stages - 1}"
        raise ValueError(
            f"out_indices must be distinct {kind} indices from {shown} {where}, got {out_indices!r}"
        )
    return tuple(out_indices)


def op_error_text(err: BaseException) -> str:
    """The reason in a TensorFlow op error's message, in one line: without the graph's node
    names, the op tags and the section on where the op was defined, which say nothing about
    the input that failed."""
    text = getattr(err, "message", None) or str(err)
    for line in text.splitlines():
        # indented lines are the definition's stack and the [[{{node ...}}]] trailers
        if (
            not line.strip()
            or line[0].isspace()
            or line.startswith(_OP_ERROR_HEADERS)
            or line.endswith(" (most recent call last):")
        ):
            continue
        line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line)
        line = re.sub(
            r"^Error in user-defined function passed to .*? with iterator: "
            r"(Iterator::\S+: )?",
            "",
            line,
        )
        return re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?$", "", line).strip()
    return text.strip()


_OP_ERROR_HEADERS = ("Graph execution error", "Detected at node", "<stack traces unavailable>")
