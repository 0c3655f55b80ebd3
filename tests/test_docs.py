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
