"""The README's Python examples run as written (those that download are left out), and what
they show as printed is what they print."""

import ast
import contextlib
import io
import pathlib
import re
import shlex
import tokenize

import torch

from tests.conftest import make_tree
from tests.torch_models import torch_model

ROOT = pathlib.Path(__file__).resolve().parents[1]

OPENING = {"(": ")", "[": "]", "{": "}"}


def _comments(source: str) -> dict[int, tuple[str, bool]]:
    """The comments of `source` by line: their text after "# ", and whether the line holds
    nothing else."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            alone = not token.line[: token.start[1]].strip()
            found[token.start[0]] = (token.string[1:].strip(), alone)
    return found


def _shown_part(comment: str) -> str:
    """What a comment shows of the output: where it opens with a bracket, up to the bracket
    that closes it (what follows is a note: "three times", ": rows x columns"); else all of it."""
    if comment[:1] not in OPENING:
        return comment
    depth = 0
    for i, c in enumerate(comment):
        depth += c in OPENING
        depth -= c in OPENING.values()
        if depth == 0:
            return comment[: i + 1]
    return comment


def _matches(shown: str, output: str) -> bool:
    """Whether `output` is what `shown` shows: equal, or, where `shown` has "...", each "..."
    standing for any text and the pieces between them found in order, the first at the start
    of the output and the last at its end. Runs of white space compare as one space."""
    shown, output = " ".join(shown.split()), " ".join(output.split())
    pieces = [re.escape(piece) for piece in shown.split("...")]
    return re.fullmatch(".*".join(pieces), output, flags=re.S) is not None


def _run_block(block: str, first_line: int, namespace: dict) -> list[str]:
    """Runs a README python block statement by statement in `namespace`; returns a line for
    each output it shows that the code does not print (none where all agree)."""
    tree = ast.parse(block)
    ast.increment_lineno(tree, first_line - 1)  # README.md's line numbers in tracebacks
    comments = {first_line + n - 1: c for n, c in _comments(block).items()}
    wrong = []
    for statement in tree.body:
        end = statement.end_lineno
        comment, alone = comments.get(end, (None, True))
        if comment is None or alone:
            comment, alone = comments.get(end + 1, (None, False))
            comment = comment if alone else None
        if not isinstance(statement, ast.Expr) or comment is None:
            exec(compile(ast.Module([statement], []), "README.md", "exec"), namespace)
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            value = eval(compile(ast.Expression(statement.value), "README.md", "eval"), namespace)
        call = statement.value
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "print":
            output = printed.getvalue().removesuffix("\n")
        elif value is not None:
            output = repr(value)
        else:  # a call made for what it does: the prompt shows nothing, the comment tells
            continue
        if not _matches(_shown_part(comment), output):
            wrong.append(f"README.md:{end}: shows {comment!r}, the code gives {output!r}")
    return wrong


def test_readme_python_examples_run_and_print_what_they_show(tmp_path, monkeypatch):
    """Each ```python block that downloads nothing runs as written. A `print(...)` or a bare
    expression followed by a comment (at the end of its last line, or alone on the line below)
    shows its output there, as Python's prompt would (a bare expression: its repr; None: no
    output, the comment says what the call does), and the output must be what it shows:

    - the comment, or where it opens with a bracket the part up to the bracket that closes it
      (what follows is a note, not compared: "[(None, 7, 7, 768), ...] three times"), equals
      the output, runs of white space compared as one space;
    - where it holds "...", each "..." stands for any text and the pieces between them must
      be found in that order, the first at the start of the output and the last at its end:
      "[(None, 7, 7, 768), ...]" is any list whose first item is (None, 7, 7, 768)."""
    text = (ROOT / "README.md").read_text()
    blocks = [
        (m.group(1), text.count("\n", 0, m.start(1)) + 1)
        for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S)
    ]
    runnable = [(b, line) for b, line in blocks if 'weights="imagenet"' not in b]
    assert len(runnable) >= 2, "README.md lost its python examples"
    # the porting example reads torchvision's resnet50 file name from the working folder
    monkeypatch.chdir(tmp_path)
    torch.save(torch_model("resnet50").state_dict(), tmp_path / "resnet50-0676ba61.pth")
    wrong = []
    for block, first_line in runnable:
        wrong += _run_block(block, first_line, {})
    assert not wrong, "\n".join(wrong)
    assert (tmp_path / "resnet50.weights.h5").is_file()


def test_the_readme_examples_outputs_are_compared_by_the_rule():
    """The rule of the README test can fail: an output that differs from the comment, or whose
    pieces around "..." are not where the comment shows them, is reported."""
    block = (
        "print(1 + 1)  # 2\n"
        "[1, 2, 3]  # [1, ...] three times\n"
        "print(round(0.5, 3))  # 17.564\n"
        "(7, 7)\n"
        "# (7, 8)\n"
        "[2, 1]  # [1, ...]\n"
        "print('mobilenet_v2 0.5 bicubic')  # mobilenet_v2 0.5 bilinear\n"
        "sorted([])  # ['resnext101_32x8d', ...]\n"
        "print(None)  # None: an output before a note\n"
    )
    wrong = _run_block(block, 10, {})
    assert [line.split(":")[1] for line in wrong] == ["12", "13", "15", "16", "17", "18"], wrong
    assert wrong[0] == "README.md:12: shows '17.564', the code gives '0.5'"


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
