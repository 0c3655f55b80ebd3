"""A model's family keywords given by name: `--model-arg KEY=VALUE` on the command line,
`model_args=` in `keras_zoo.training.train` and `keras_zoo.inference`, and the run record.

The family keywords of an id are those of its family's function that the id does not fix:
`alpha` and `dropout` of the MobileNets, `bn_epsilon` of MobileNet V3, `groups` and `scale` of
`shufflenet_v1`. The input size, the classes and the weights have arguments of their own. A
value must have the type of the keyword's default in the family's function (an int serves for
a float), so that a wrong one is an error naming it before anything is built.

>>> family_keywords("mobilenet_v2")
{'alpha': 1.0, 'dropout': 0.2}
>>> check_model_args("mobilenet_v2", {"alpha": 0.75})
{'alpha': 0.75}
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from keras_zoo.builder import SHARED_KEYWORDS
from keras_zoo.registry import model_info


def family_keywords(name: str) -> dict[str, Any]:
    """The family keywords model id `name` takes, each with its default."""
    info = model_info(name)
    parameters = inspect.signature(info.builder).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name in info.keywords
        and p.name not in SHARED_KEYWORDS
    }


def check_model_args(
    name: str, values: Mapping[str, Any] | None, *, argument: str = "model_args"
) -> dict[str, Any]:
    """`values` as a dict, each key a family keyword of model id `name` and each value of the
    type of its default; ValueError starting with `argument` otherwise, listing the keywords
    the id takes for an unknown one.

    >>> check_model_args("resnet18", {"alpha": 0.5})
    Traceback (most recent call last):
    ...
    ValueError: model_args: resnet18 takes no keyword 'alpha'; it takes: drop_path_rate
    """
    accepted = family_keywords(name)
    takes = f"it takes: {', '.join(accepted)}" if accepted else "it takes none"
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{argument}: expected a dict of keywords, got {values!r}")
    for key, value in values.items():
        if key not in accepted and key in model_info(name).keywords:
            raise ValueError(
                f"{argument}: {key!r} is not a family keyword of {name} (the input, the "
                f"classifier and the weights have arguments of their own); {takes}"
            )
        if key not in accepted:
            raise ValueError(f"{argument}: {name} takes no keyword {key!r}; {takes}")
        default = accepted[key]
        if not _fits(value, default):
            raise ValueError(
                f"{argument}: {name}'s {key} takes {_kind(default)} (its default is "
                f"{default!r}), got {value!r}"
            )
    return dict(values)


def _fits(value: Any, default: Any) -> bool:
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _kind(default: Any) -> str:
    kinds = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}
    return kinds.get(type(default), f"a {type(default).__name__}")
