import argparse
import subprocess
import sys

import pytest

import keras_zoo
from keras_zoo import cli


def test_list_prints_the_matching_ids(capsys):
    assert cli.main(["list", "resnext*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:]] == [
        "resnext101_32x8d",
        "resnext101_64x4d",
        "resnext50_32x4d",
    ]
    assert "25,028,904" in out[-1]


def test_list_with_no_match_is_bad_input_in_one_line(capsys):
    assert cli.main(["list", "vgg*"]) == 2
    every = len(keras_zoo.list_models())
    assert capsys.readouterr().err.splitlines() == [
        f"keras-zoo list: error: no model id matches 'vgg*'; 'keras-zoo list' lists all {every}"
    ]


def test_info_shows_metadata_and_keywords(capsys):
    assert cli.main(["info", "wide_resnet50_2"]) == 0
    out = capsys.readouterr().out
    assert "68,883,240" in out and "width_per_group=128" in out and "features_only" in out


def test_unknown_id_is_a_clear_error(capsys):
    assert cli.main(["info", "resnet05"]) == 2
    assert "Did you mean 'resnet50'" in capsys.readouterr().err


def test_demo_builds_and_runs(capsys):
    assert cli.main(["demo", "resnet18", "--batch-size", "2", "--image-size", "64"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("resnet18")]
    assert row and row[0].split()[1] == "11,689,512" == row[0].split()[2]
    assert "16x16x64 8x8x128 4x4x256 2x2x512" in row[0]


@pytest.mark.parametrize("flag", ["--image-size=16", "--batch-size=0"])
def test_demo_rejects_bad_flags(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", flag])
    assert exit_info.value.code == 2
    first, *rest = capsys.readouterr().err.splitlines()
    assert first.startswith(f"keras-zoo demo: error: argument {flag.split('=')[0]}: "), first
    assert rest[0].startswith("usage: keras-zoo demo")


def test_console_entry_point_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "keras_zoo", "list", "resnet1?"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "resnet18" in out and "resnet50" not in out


def test_model_arg_values_are_python_literals_or_bare_words():
    from keras_zoo.commands.options import model_arg

    assert model_arg("alpha=0.75") == ("alpha", 0.75)
    assert model_arg("groups=4") == ("groups", 4)
    assert model_arg(" dropout = 1e-1 ") == ("dropout", 0.1)
    assert model_arg("activation=hard_swish") == ("activation", "hard_swish")
    assert model_arg("sizes=(1, 2)") == ("sizes", (1, 2))
    assert model_arg("note='a=b'") == ("note", "a=b")
    for bad in ("alpha", "=1", "1x=2", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
            model_arg(bad)


def test_family_keywords_are_checked_against_the_family_function():
    from keras_zoo.inference import load_trained, predict
    from keras_zoo.model_args import check_model_args, family_keywords
    from keras_zoo.training import train

    assert family_keywords("shufflenet_v1") == {"groups": 3, "scale": 1.0}
    assert family_keywords("mobilenet_v3_small") == {
        "alpha": 1.0,
        "dropout": 0.2,
        "bn_epsilon": 0.001,
    }
    assert family_keywords("resnet50") == {"drop_path_rate": 0.0}
    assert check_model_args("mobilenet_v2", {"alpha": 1}) == {"alpha": 1}  # an int for a float
    assert check_model_args("mobilenet_v2", None) == {}
    for value in (True, "0.5", None, [0.5]):
        with pytest.raises(ValueError, match=r"^model_args: mobilenet_v2's alpha takes a number"):
            check_model_args("mobilenet_v2", {"alpha": value})
    with pytest.raises(
        ValueError,
        match=r"^model_args: shufflenet_v1's groups takes an integer \(its default is 3\), "
        r"got 2.0$",
    ):
        check_model_args("shufflenet_v1", {"groups": 2.0})
    with pytest.raises(ValueError, match=r"^model_args: resnet50 takes no keyword 'alpha'; it "):
        check_model_args("resnet50", {"alpha": 0.5})
    # the library's entry points check them first, before any file is looked at
    message = r"^model_args: mobilenet_v2 takes no keyword 'groups'; it takes: alpha, dropout$"
    for call in (
        lambda: train("mobilenet_v2", "no/such/data", model_args={"groups": 3}),
        lambda: load_trained("mobilenet_v2", "w.weights.h5", model_args={"groups": 3}),
        lambda: predict("mobilenet_v2", "w.weights.h5", ["x.png"], model_args={"groups": 3}),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_alpha_is_the_shorthand_of_model_arg_alpha(capsys):
    from keras_zoo import cli
    from keras_zoo.commands import options

    args = cli._parser().parse_args(["export", "mobilenet_v2", "m.onnx", "--alpha", "0.5"])
    assert options.model_args(args, "mobilenet_v2") == {"alpha": 0.5}
    args = cli._parser().parse_args(
        ["export", "mobilenet_v2", "m.onnx", "--model-arg", "alpha=0.5", "--model-arg", "dropout=0"]
    )
    assert options.model_args(args, "mobilenet_v2") == {"alpha": 0.5, "dropout": 0}
    argv = ["export", "mobilenet_v2", "m.onnx", "--alpha", "0.5", "--model-arg", "alpha=0.75"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        "keras-zoo export: error: argument --model-arg: alpha is given twice "
        "(--alpha ALPHA is --model-arg alpha=ALPHA)"
    )
    assert cli.main(["export", "resnet18", "m.onnx", "--alpha", "0.5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "keras-zoo export: error: argument --alpha: resnet18 has no width multiplier; "
        "the MobileNets take one"
    )
