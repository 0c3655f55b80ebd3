"""The README's Python examples run as written (those that download are left out)."""

import pathlib
import re
import shlex

import torch

from tests.conftest import make_tree
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
    found = re.findall(r"`((?:keras_zoo/)?(?:[a-z_]+/)*[a-z_<>]+\.py|(?:[a-z_]+/)+)`", text)
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


# the synopsis' placeholders, as values of their type
PLACEHOLDERS = {"NAME": "resnet18", "F": "onnx", "Q": "int8", "R": "onnx", "B": "2", "S": "64"}
PLACEHOLDERS |= {"N": "2", "K": "2", "T": "2", "...": None}


def _readme_commands() -> list[tuple[list[str], list[str]]]:
    """Each `keras-zoo ...` command of the README's shell blocks (continuation lines joined,
    comments and the brackets of optional arguments dropped, placeholders given values) as its
    arguments, with the comment lines that follow it where they show what it prints
    ("# keras-zoo train: error: ...")."""
    text = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, flags=re.S):
        lines = re.sub(r"\\\n|\n(?=\s)", " ", block).splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("keras-zoo "):
                continue
            command = re.sub(r"\s#\s.*$", "", line).replace("[", " ").replace("]", " ")
            words = [
                PLACEHOLDERS.get(w, "x" if re.fullmatch(r"[A-Z|]+", w) else w)
                for w in shlex.split(command)[1:]
            ]
            shown = []
            for after in lines[i + 1 :]:
                if not after.startswith("# ") or (not shown and "keras-zoo" not in after):
                    break
                shown.append(after[2:])
            # "..." after an option is its value, elsewhere more of the same
            words = [
                "x" if w is None and words[j - 1].startswith("--") else w
                for j, w in enumerate(words)
            ]
            found.append(([w for w in words if w is not None], shown))
    return found


def test_readme_command_lines_parse_as_written(tmp_path, monkeypatch, capsys):
    """Every command line of the README is one the command line takes (its options exist,
    their values have the right types, its model ids are registered), and a command shown with
    what it prints prints that."""
    import keras_zoo
    from keras_zoo import cli

    commands = _readme_commands()
    assert len(commands) >= 20, "README.md lost its command lines"
    ids = set(keras_zoo.list_models())
    for argv, _ in commands:
        try:
            args = cli._parser().parse_args(argv)
        except SystemExit as done:
            assert done.code == 0 and argv == ["--version"], argv  # --version exits at once
            continue
        name = getattr(args, "name", None)
        if name is not None and name.islower() and not name.endswith(".keras"):
            assert name in ids, argv
    shown = [(argv, lines) for argv, lines in commands if lines]
    assert shown, "README.md lost its example of an error"
    monkeypatch.chdir(tmp_path)
    make_tree(tmp_path / "flower_photos", per_class=2, size=32)
    for argv, lines in shown:
        assert cli.main(argv) == 2
        assert " ".join(capsys.readouterr().err.split()) == " ".join(" ".join(lines).split())
