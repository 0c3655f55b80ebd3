"""The suite's rule for what it needs beyond Python packages (tests/conftest.py): under CI a test
whose tool or module is missing fails with the install line, elsewhere it skips with it."""

import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import require_module, require_tool

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCREENSHOT_TEST = "test_the_screenshot_script_renders_the_dashboards"
ON_CI = ["true", "TRUE", "1", "yes"]
OFF_CI = [None, "", "0", "false"]


def screenshot_requirement() -> tuple[tuple, dict]:
    """The arguments of the screenshot test's needs_tool marker."""
    from tests import test_training

    marks = getattr(test_training, SCREENSHOT_TEST).pytestmark
    (mark,) = [m for m in marks if m.name == "needs_tool"]
    return mark.args, mark.kwargs


def path_without(commands, folder: pathlib.Path) -> str:
    """PATH with `commands` hidden: each folder that holds one of them replaced, in its place,
    by a folder of links to its other entries."""
    parts = []
    for i, part in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if not part or not os.path.isdir(part):
            continue
        if not any(os.path.lexists(os.path.join(part, c)) for c in commands):
            parts.append(part)
            continue
        links = folder / str(i)
        links.mkdir(parents=True)
        for name in os.listdir(part):
            if name not in commands:
                (links / name).symlink_to(os.path.join(part, name))
        parts.append(str(links))
    return os.pathsep.join(parts)


def set_ci(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)


@pytest.mark.parametrize("ci", ON_CI)
def test_under_ci_a_missing_browser_fails_the_screenshot_test_with_the_install_line(
    ci, monkeypatch, tmp_path
):
    args, kwargs = screenshot_requirement()
    assert "chromium" in args and kwargs == {"install": "apt-get install chromium"}
    monkeypatch.setenv("PATH", path_without(args, tmp_path / "bin"))
    set_ci(monkeypatch, ci)
    with pytest.raises(pytest.fail.Exception, match=r"\(apt-get install chromium\)") as failed:
        require_tool(*args, **kwargs)
    assert "no chromium or " in str(failed.value)


@pytest.mark.parametrize("ci", OFF_CI)
def test_off_ci_a_missing_browser_skips_the_screenshot_test_with_the_install_line(
    ci, monkeypatch, tmp_path
):
    args, kwargs = screenshot_requirement()
    monkeypatch.setenv("PATH", path_without(args, tmp_path / "bin"))
    set_ci(monkeypatch, ci)
    with pytest.raises(pytest.skip.Exception, match=r"\(apt-get install chromium\)"):
        require_tool(*args, **kwargs)


@pytest.mark.parametrize("ci", ON_CI + OFF_CI)
def test_a_tool_on_path_is_found_under_ci_or_not(ci, monkeypatch, tmp_path):
    tool = tmp_path / "second-name"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    set_ci(monkeypatch, ci)
    assert require_tool("first-name", "second-name", install="x") == str(tool)


def test_a_missing_module_fails_under_ci_and_skips_elsewhere(monkeypatch):
    assert require_module("json", "x").__name__ == "json"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no module no_such_module.*\(pip x\)"):
        require_module("no_such_module", "pip x")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"no module no_such_module \(pip x\)"):
        require_module("no_such_module", "pip x")


def test_under_ci_the_screenshot_test_itself_fails_before_its_fixtures_without_chromium(tmp_path):
    # the real test, in its own pytest: the requirement is checked before the module's training
    # run (the `run` fixture), which the test's failure then does not wait for
    args, _ = screenshot_requirement()
    env = {**os.environ, "CI": "true", "PATH": path_without(args, tmp_path / "bin")}
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "0",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_training.py",
            "-k",
            SCREENSHOT_TEST,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    # a failure in setup, before any fixture: pytest counts it as an error
    assert "1 error" in output and "skipped" not in output and "passed" not in output, output
    assert "apt-get install chromium" in output, output
    assert f"ERROR at setup of {SCREENSHOT_TEST}" in output, output
