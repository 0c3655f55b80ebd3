"""The installed package stands alone: it never imports the test suite, and every submodule
imports without the optional packages (torch and the export runtimes), which it imports only
when they are used."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import re
import subprocess
import sys

import pytest

import keras_zoo
from keras_zoo import bench, cli, torch_reference

PACKAGE = pathlib.Path(keras_zoo.__file__).parent
OPTIONAL = (
    "torch",
    "torchvision",
    "timm",
    "onnx",
    "onnxruntime",
    "openvino",
    "tf2onnx",
    "ai_edge_litert",
)

# In a fresh interpreter: `tests` and the optional packages cannot be imported (an attempt on
# `tests` is recorded); import keras_zoo and every submodule (keras_zoo.__main__ runs
# `keras-zoo list resnet18`), then try the torch reference.
IMPORT_EVERYTHING = """
import importlib, importlib.abc, json, pkgutil, sys

OPTIONAL = {optional!r}
tried_tests = []


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top == "tests":
            tried_tests.append(name)
        if top == "tests" or top in OPTIONAL:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Refuse())
import keras_zoo

modules = sorted(m.name for m in pkgutil.walk_packages(keras_zoo.__path__, "keras_zoo."))
for name in modules:
    if name == "keras_zoo.__main__":  # `python -m keras_zoo`: runs the command line it is given
        sys.argv = ["keras-zoo", "list", "resnet18"]
        try:
            importlib.import_module(name)
        except SystemExit as done:
            assert done.code == 0, done.code
    else:
        importlib.import_module(name)
from keras_zoo import bench, torch_reference

try:
    torch_reference.torch_model("resnet18")
    error = None
except ImportError as err:
    error = str(err)
print(json.dumps({{"modules": modules, "tried_tests": tried_tests, "error": error,
                  "torch_fn": bench.load_torch_reference(bench.TORCH_REFERENCE) is not None}}))
"""


def _package_modules() -> list[str]:
    names = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(n for n in names if n != "keras_zoo")


def test_every_submodule_imports_without_tests_or_the_optional_packages(tmp_path):
    script = IMPORT_EVERYTHING.format(optional=OPTIONAL)
    # run from an empty folder with no PYTHONPATH: only the installed package is importable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["modules"] == _package_modules()  # walk_packages left no submodule out
    assert "keras_zoo.torch_reference" in result["modules"]
    assert result["tried_tests"] == []
    # without torch: a one-line error naming the install step; the bench leaves its column out
    assert result["error"] == (
        f"the torch references need torch, which is not installed: {torch_reference.INSTALL}"
    )
    assert result["torch_fn"] is False


IMPORTS_TESTS = re.compile(r"^\s*(from|import)\s+tests\b|[\"']tests[.:]", re.MULTILINE)


def test_no_package_source_names_the_tests_module():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for text in [path.read_text()]
        for m in IMPORTS_TESTS.finditer(text)
    ]
    assert offenders == []
    assert IMPORTS_TESTS.search('run(torch_reference="tests.torch_models:torch_model")')
    assert IMPORTS_TESTS.search("    from tests.torch_models import torch_model\n")


def test_the_bench_defaults_to_the_package_references():
    assert bench.TORCH_REFERENCE == "keras_zoo.torch_reference:torch_model"
    assert cli._parser().parse_args(["bench"]).torch_reference == bench.TORCH_REFERENCE
    assert bench.load_torch_reference(bench.TORCH_REFERENCE) is torch_reference.torch_model


def test_the_megvii_reference_is_a_named_picklable_module():
    model = torch_reference.torch_model("shufflenet_v1_g8_x0_5", num_classes=7)
    assert isinstance(model, torch_reference.ShuffleNetV1)
    assert isinstance(model.features[0], torch_reference.ShuffleV1Block)
    assert type(pickle.loads(pickle.dumps(model))) is torch_reference.ShuffleNetV1
    assert model.classifier[0].weight.shape == (7, 768)
    with pytest.raises(
        ValueError,
        match=r"shufflenet_v1_g3_x3_0: megvii released ShuffleNet "
        r"V1 only for \(groups, scale\) in",
    ):
        torch_reference.torch_model("shufflenet_v1_g3_x3_0")
    with pytest.raises(ValueError, match="resnet18 has no width multiplier; got alpha=0.5"):
        torch_reference.torch_model("resnet18", alpha=0.5)
    with pytest.raises(AttributeError, match="has no attribute 'ShuffleNetV3'"):
        torch_reference.ShuffleNetV3  # noqa: B018
