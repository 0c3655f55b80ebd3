"""Writes that survive kills: atomic_file's temporary files and staged_dir's staging folders."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from keras_zoo.files import atomic_file, staged_dir
from tests.conftest import permission_bound

FILES_PY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "keras_zoo", "files.py")

# A writer that holds its partial result until it is killed. It loads files.py by itself: the
# module needs only the standard library, and a child that imports keras_zoo (TensorFlow) takes
# seconds to start where this one takes milliseconds.
WRITER = """
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("files", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
kind, target, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
with getattr(files, kind)(target) as partial:
    path = os.path.join(partial, "a.png") if kind == "staged_dir" else partial
    with open(path, "wb") as f:
        f.write(b"x" * (1 << 20))
    print(partial, flush=True)
    time.sleep(seconds)
"""

WRITERS = {"atomic_file": atomic_file, "staged_dir": staged_dir}


def _target(folder, kind, stem="out"):
    return Path(folder) / (f"{stem}.weights.h5" if kind == "atomic_file" else stem)


def _writer(kind, target, seconds=60, wrap=lambda argv: argv):
    """A process inside the block of `kind`(target) for `seconds`, and the partial result it
    holds there."""
    argv = [sys.executable, "-c", WRITER, FILES_PY, kind, str(target), str(seconds)]
    process = subprocess.Popen(
        wrap(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    partial = process.stdout.readline().strip()
    if not partial:
        process.kill()
        raise AssertionError(process.communicate()[1])
    return process, partial


def _write(kind, target, data):
    with WRITERS[kind](target) as partial:
        path = os.path.join(partial, "a.png") if kind == "staged_dir" else partial
        Path(path).write_bytes(data)
    return target / "a.png" if kind == "staged_dir" else target


@pytest.mark.parametrize("kind", WRITERS)
def test_sigterm_mid_write_leaves_nothing(tmp_path, kind):
    target = _target(tmp_path, kind)
    process, partial = _writer(kind, target)
    assert os.path.dirname(partial) == str(tmp_path)
    assert os.path.basename(partial) == f".keras_zoo-{process.pid}-0.{target.name}"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM  # cleaned up, then ended by the signal
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", WRITERS)
def test_what_sigkill_leaves_the_next_write_removes(tmp_path, kind):
    target = _target(tmp_path, kind)
    killed, left = _writer(kind, target)
    killed.kill()
    assert killed.wait(timeout=30) == -signal.SIGKILL and os.path.exists(left)
    other, other_left = _writer(kind, _target(tmp_path, kind, "other"))
    other.kill()
    other.wait(timeout=30)
    running, held = _writer(kind, target)
    try:
        written = _write(kind, target, b"whole")
        assert written.read_bytes() == b"whole"
        assert not os.path.exists(left)  # its process is gone
        assert os.path.exists(held)  # its process is still writing
        assert os.path.exists(other_left)  # another destination's
    finally:
        running.terminate()
        running.wait(timeout=30)
    assert sorted(os.listdir(tmp_path)) == sorted([target.name, os.path.basename(other_left)])
    assert written.read_bytes() == b"whole"


def test_atomic_file_replaces_dst_in_one_rename_or_leaves_it(tmp_path):
    dst = tmp_path / "out.weights.h5"
    dst.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="broken"):
        with atomic_file(dst) as tmp:
            Path(tmp).write_bytes(b"half")
            raise RuntimeError("broken")
    assert dst.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.weights.h5"]
    with atomic_file(dst) as tmp:
        assert tmp.endswith(".out.weights.h5")  # Keras's save_weights insists on the suffix
        Path(tmp).write_bytes(b"new")
        inode = os.stat(tmp).st_ino
    assert dst.read_bytes() == b"new" and os.stat(dst).st_ino == inode
    assert os.listdir(tmp_path) == ["out.weights.h5"]


def test_staged_dir_stages_beside_out_and_renames_into_it(tmp_path):
    out = tmp_path / "out"
    with staged_dir(out) as stage:
        assert os.path.dirname(stage) == str(tmp_path) and not out.exists()
        (Path(stage) / "a.png").write_bytes(b"a")
        staged = os.stat(stage).st_ino
    assert os.stat(out).st_ino == staged  # a new out is the staged folder, renamed
    (out / "keep.txt").write_text("kept")
    with staged_dir(out) as stage:
        assert os.path.dirname(stage) == str(tmp_path)
        os.mkdir(os.path.join(stage, "sub"))
        (Path(stage) / "sub" / "b.png").write_bytes(b"b")
        (Path(stage) / "a.png").write_bytes(b"new")
        staged = os.stat(os.path.join(stage, "a.png")).st_ino
    assert (out / "a.png").read_bytes() == b"new" and os.stat(out / "a.png").st_ino == staged
    assert (out / "keep.txt").read_text() == "kept" and (out / "sub" / "b.png").read_bytes() == b"b"
    assert os.listdir(tmp_path) == ["out"]


def test_staged_dir_creates_out_with_its_missing_folders(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with staged_dir(out) as stage:
        assert os.path.dirname(stage) == str(tmp_path)  # the first folder that exists
        (Path(stage) / "a.png").write_bytes(b"a")
    assert os.listdir(out) == ["a.png"] and os.listdir(tmp_path) == ["a"]


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_block_leaves_out_untouched_and_no_staging_folder(tmp_path, existing):
    out = tmp_path / "out" if existing else tmp_path / "a" / "out"
    if existing:
        out.mkdir()
        (out / "a.png").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="broken"):
        with staged_dir(out) as stage:
            (Path(stage) / "a.png").write_bytes(b"half")
            (Path(stage) / "b.png").write_bytes(b"half")
            raise RuntimeError("broken")
    if existing:
        assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == ["a.png"]
        assert (out / "a.png").read_bytes() == b"old"
    else:
        assert os.listdir(tmp_path) == []


def test_staged_dir_refuses_a_file_before_the_block_runs(tmp_path):
    (tmp_path / "out").write_text("x")
    ran = []
    with pytest.raises(NotADirectoryError, match=r"out'?: expected a folder, found a file"):
        with staged_dir(tmp_path / "out"):
            ran.append(True)
    assert not ran and os.listdir(tmp_path) == ["out"]


def test_staged_dir_stages_inside_out_when_its_parent_is_read_only(tmp_path):
    parent = tmp_path / "read-only"
    out = parent / "out"
    out.mkdir(parents=True)
    parent.chmod(0o555)
    try:
        writer, partial = _writer("staged_dir", out, wrap=permission_bound)
        try:
            assert os.path.dirname(partial) == str(out) and os.listdir(parent) == ["out"]
        finally:
            writer.terminate()
        assert writer.wait(timeout=30) == -signal.SIGTERM and os.listdir(out) == []
        writer, _ = _writer("staged_dir", out, seconds=0, wrap=permission_bound)
        assert writer.wait(timeout=30) == 0
        assert os.listdir(out) == ["a.png"] and (out / "a.png").stat().st_size == 1 << 20
    finally:
        parent.chmod(0o755)
