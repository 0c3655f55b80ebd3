"""The `keras-zoo` commands, one module each. A command module declares its arguments in
`add_parser(subparsers)`, beside the `run(args)` that carries the command out and returns its
exit status; `options` holds what several commands share. A new command is a new module here
and its name in `COMMANDS`."""

from __future__ import annotations

import importlib
from types import ModuleType

# in the order `keras-zoo --help` lists them
COMMANDS = (
    "list",
    "info",
    "demo",
    "port",
    "analyze_features",
    "analyze_kernels",
    "digits",
    "train",
    "evaluate",
    "predict",
    "export",
    "bench",
    "track",
)
# the commands that run without TensorFlow (as every command's parser does); `keras-zoo`
# imports TensorFlow, quietly, before it runs any other
WITHOUT_TENSORFLOW = ("list", "info", "digits", "track")


def modules() -> list[ModuleType]:
    """The command modules, in the order of `COMMANDS`."""
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMANDS]
