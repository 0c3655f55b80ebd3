"""The README's Python examples run as written (those that download are left out)."""

import pathlib
import re

import torch

from tests.torch_models import torch_model

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    runnable = [b for b in blocks if 'weights="imagenet"' not in b]
    assert len(runnable) >= 2, "README.md lost its python examples"
    # the porting example reads torchvision's resnet50 file name from the working folder
    monkeypatch.chdir(tmp_path)
    torch.save(torch_model("resnet50").state_dict(), tmp_path / "resnet50-0676ba61.pth")
    for block in runnable:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "resnet50.weights.h5").is_file()


def test_the_design_map_names_every_module_and_only_modules_that_exist():
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    found = re.findall(r"`((?:keras_zoo/)?(?:[a-z_]+/)?[a-z_<>]+\.py|[a-z_]+/)`", text)
    named = {name.removeprefix("keras_zoo/") for name in found}
    package = ROOT / "keras_zoo"
    for name in named:
        path = ROOT / name if name.startswith(("tests/", "scripts/")) else package / name
        if "<" not in name:
            assert path.exists(), f"docs/DESIGN.md names {path.relative_to(ROOT)}"
    folders = {n for n in named if n.endswith("/")}
    for path in package.rglob("*.py"):
        module = path.relative_to(package).as_posix()
        if path.name.startswith("_") or module.startswith("models/"):
            continue  # private modules; the families are models/<family>.py
        assert module in named or f"{module.split('/')[0]}/" in folders, (
            f"docs/DESIGN.md does not place keras_zoo/{module}"
        )
    assert "models/<family>.py" in named
