"""What `keras-zoo` writes to the console and how fast it answers: help, list, info and argument
errors without TensorFlow; a run command without TensorFlow's log lines, with a line per epoch
where stdout is a pipe and its warnings in one line; every option with help and its default."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import pytest

from keras_zoo import _version, cli, console, models
from keras_zoo.commands import COMMANDS
from tests.conftest import make_tree

# what TensorFlow, absl and CUDA print, and Python's form of a warning (file:line: Category)
NOISE = re.compile(
    r"absl|InitializeLog|cuda|cuDNN|cuInit|oneDNN|tensorflow/|^[IWEF]\d{4} |"
    r"Warning: |warnings\.warn|\.py:\d+:",
    re.MULTILINE,
)

LIGHT = """
import contextlib, io, json, sys
from keras_zoo import cli

statuses = {}
for argv in %r:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as done:
            status = done.code
    statuses[" ".join(argv)] = (status, err.getvalue().strip())
heavy = sorted(m for m in ("tensorflow", "keras", "torch", "jax") if m in sys.modules)
print(json.dumps({"statuses": statuses, "heavy": heavy}))
"""


def _user_environment() -> dict[str, str]:
    """The environment of a user who set none of the log variables."""
    unset = ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY", console.VERBOSE_ENV)
    return {k: v for k, v in os.environ.items() if k not in unset}


def test_help_list_info_and_argument_errors_import_neither_keras_nor_tensorflow():
    argvs = [
        ["--help"],
        ["--version"],
        *([command.replace("_", "-"), "--help"] for command in COMMANDS),
        ["list"],
        ["list", "vit*", "--weights"],
        ["info", "shufflenet_v1"],
        ["list", "vgg*"],  # no match: bad input
        ["info", "resnet05"],  # unknown id
        ["train", "resnet18", "--epochs", "0"],  # argparse's error
        ["predict", "resnet18"],  # arguments missing
    ]
    done = subprocess.run(
        [sys.executable, "-c", LIGHT % (argvs,)],
        capture_output=True,
        text=True,
        env=_user_environment(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    statuses = {argv: status for argv, (status, _) in result["statuses"].items()}
    assert [argv for argv, status in statuses.items() if status != 0] == [
        "list vgg*",
        "info resnet05",
        "train resnet18 --epochs 0",
        "predict resnet18",
    ]
    assert all(statuses[argv] == 2 for argv in list(statuses)[-4:])
    errors = {argv: err for argv, (_, err) in result["statuses"].items()}
    assert errors["list vgg*"].startswith("keras-zoo list: error: no model id matches 'vgg*'")
    assert errors["train resnet18 --epochs 0"].startswith(
        "keras-zoo train: error: argument --epochs: expected a positive integer, got '0'"
    )


def test_a_run_command_prints_no_tensorflow_log_line_and_a_line_per_epoch_in_a_pipe(tmp_path):
    data = make_tree(tmp_path / "data", per_class=4, size=32)
    (data / "red" / "notes.txt").write_text("not an image\n")
    script = shutil.which("keras-zoo", path=os.path.dirname(sys.executable))
    assert script, "the console script keras-zoo is not installed beside this Python"
    argv = ["train", "resnet18", "--data", str(data), "--epochs", "1", "--batch-size", "4"]
    argv += ["--image-size", "32", "--no-inspect", "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [script, *argv],
        capture_output=True,  # stdout and stderr are pipes, not a terminal
        text=True,
        env=_user_environment(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the one warning, in one line, with the user's file; no TensorFlow, absl or CUDA line
    [line] = done.stderr.splitlines()
    assert line.startswith("warning: ") and line.endswith(str(data / "red" / "notes.txt")), line
    assert not NOISE.search(line) and not NOISE.search(done.stdout), done.stdout
    # Keras' line of the epoch, not a progress bar's backspaces and escape codes
    assert "\b" not in done.stdout and "\x1b[" not in done.stdout, repr(done.stdout)
    assert re.search(r"^3/3 - \d+s - .*val_accuracy: ", done.stdout, re.MULTILINE), done.stdout
    # predict with the run's weights: its lines only, nothing on stderr
    image = data / "blue" / sorted(os.listdir(data / "blue"))[0]
    weights = tmp_path / "out" / "best.weights.h5"
    done = subprocess.run(
        [script, "predict", "resnet18", "--weights", str(weights), str(image), "--top-k", "1"],
        capture_output=True,
        text=True,
        env=_user_environment(),
        timeout=600,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    assert re.fullmatch(rf"{re.escape(str(image))}: (blue|green|red) \S+\n", done.stdout), (
        done.stdout
    )


def test_a_quantized_litert_export_prints_none_of_the_converters_lines(tmp_path):
    """The LiteRT converter runs after TensorFlow's import, which the command line reads aside:
    its settings line ("fully_quantize: 0, inference_type: 6, ...") and log lines are not
    shown either."""
    calibration = tmp_path / "calibration"
    make_tree(calibration, per_class=2, size=32)
    script = shutil.which("keras-zoo", path=os.path.dirname(sys.executable))
    assert script, "the console script keras-zoo is not installed beside this Python"
    out = tmp_path / "m.tflite"
    argv = ["export", "mobilenet_v3_small", str(out), "--image-size", "32"]
    argv += ["--quantize", "int8", "--calibration", str(calibration)]
    done = subprocess.run(
        [script, *argv], capture_output=True, text=True, env=_user_environment(), timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.is_file()
    # keras-zoo's own lines: its note on the random weights and the check's warning on them
    assert all(line.startswith(("note: ", "warning: ")) for line in done.stderr.splitlines()), (
        done.stderr
    )
    for printed in (done.stdout, done.stderr):
        assert "fully_quantize" not in printed and "inference_type" not in printed, printed
        assert not NOISE.search(printed), printed


NATIVE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1714668459.875897  381002 cudart_stub.cc:31] Could not find cuda drivers on "
    b"your machine, GPU will not be used.\n"
    b"E0000 00:00:1714668460.123456  381002 cuda_dnn.cc:8310] Unable to register cuDNN factory: "
    b"Attempting to register factory for plugin cuDNN when one has already been registered\n"
    b"2024-01-23 12:34:56.789012: I tensorflow/core/util/port.cc:153] oneDNN custom operations "
    b"are on.\n"
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    b"fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, "
    b"output_inference_type: FLOAT32\n"
    b"Fatal Python error: a real problem\n"
)


@pytest.mark.parametrize("verbose", ["", "1"])
def test_native_log_lines_are_read_aside_and_other_lines_kept(verbose, capfd, monkeypatch):
    monkeypatch.setenv(console.VERBOSE_ENV, verbose)
    with console.native_stderr_filtered():
        os.write(2, NATIVE)
    err = capfd.readouterr().err
    assert err == (NATIVE.decode() if verbose else "Fatal Python error: a real problem\n")


def test_a_shown_warning_is_one_line_and_a_recorded_one_is_still_recorded():
    before = warnings.formatwarning
    with console.warnings_in_one_line():
        shown = warnings.formatwarning(
            UserWarning("data: left out 1 file(s)"), UserWarning, "keras_zoo/data.py", 229
        )
        with pytest.warns(UserWarning, match="left out"):
            warnings.warn("data: left out 1 file(s)", UserWarning, stacklevel=1)
    assert shown == "warning: data: left out 1 file(s)\n"
    assert warnings.formatwarning is before


def test_the_verbose_variable_is_read_as_a_switch():
    assert [console.verbose({console.VERBOSE_ENV: v}) for v in ("1", "yes", "0", "")] == [
        True,
        True,
        False,
        False,
    ]
    assert console.verbose({}) is False


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"keras-zoo": parser, **sub.choices}


def test_every_option_of_every_command_has_help_and_shows_its_default():
    parsers = _parsers()
    assert set(parsers) == {"keras-zoo", *(c.replace("_", "-") for c in COMMANDS)}
    for name, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{label} has no help"
            default = action.default
            if default not in (None, False, [], argparse.SUPPRESS):
                assert "default" in cli.help_with_default(action), f"{label} hides {default!r}"
        parser.format_help()  # every help string formats
    train = parsers["train"].format_help()
    assert "(default: 10)" in " ".join(train.split())  # --epochs


def test_the_description_names_every_family():
    help_text = " ".join(cli._parser().format_help().split())
    assert set(models.TITLES) == set(models.FAMILIES)
    for title in models.TITLES.values():
        assert title in help_text
    assert "Vision Transformer" in help_text


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"keras-zoo {_version.__version__}\n"


def test_info_prints_every_id_s_architecture(capsys):
    import keras_zoo

    for name in keras_zoo.list_models():
        assert cli.main(["info", name]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert not [line for line in lines if "top-1 None" in line], name  # "-" where none
        line = next(line for line in lines if line.startswith("  architecture"))
        assert line.removeprefix("  architecture").strip(), f"{name}: empty architecture line"
        if name == "shufflenet_v1":
            assert line.split(None, 1)[1] == "groups=3, scale=1.0 (keywords, at their defaults)"
