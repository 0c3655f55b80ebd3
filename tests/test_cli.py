import subprocess
import sys

import pytest

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


def test_list_with_no_match_fails(capsys):
    assert cli.main(["list", "vgg*"]) == 1
    assert "no model id matches 'vgg*'" in capsys.readouterr().err


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
