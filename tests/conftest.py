import importlib
import json
import os
import shutil
import socket
import subprocess
import types
from typing import NoReturn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_zoo.port.compare import relative_error  # noqa: E402, F401  (tests import it here)

COLOURS = {"blue": 2, "green": 1, "red": 0}  # class folder -> the channel that is bright


# What the suite needs beyond Python packages. Under CI (the environment variable CI set, as CI
# services do, to anything but "", "0" or "false") a test whose tool is missing fails, so that
# a green run has run every test; on a developer's machine it skips. Either way the message says
# how to install the tool. .ci/run installs the system packages before the suite runs.

TEST_EXTRA = 'pip install -e ".[test]"'  # the Python packages of the tests (scripts/test.sh)


def on_ci() -> bool:
    """Whether the suite runs under CI: the environment variable CI set, not to "", "0" or
    "false"."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing_requirement(what: str, install: str) -> NoReturn:
    """Fails the running test under CI and skips it elsewhere, with a message that says `what`
    is missing and gives the `install` line."""
    if on_ci():
        pytest.fail(
            f"{what}: install it ({install}); under CI a missing requirement fails the test",
            pytrace=False,
        )
    pytest.skip(f"{what} ({install})")


def require_tool(*names: str, install: str) -> str:
    """The path of the first of the commands `names` on PATH; when none is there, the test
    fails under CI and skips elsewhere, naming the `install` line."""
    found = next((path for path in map(shutil.which, names) if path), None)
    if found is None:
        missing_requirement(f"no {' or '.join(names)} on PATH", install)
    return found


def require_module(name: str, install: str) -> types.ModuleType:
    """The module `name`, imported; when it cannot be, the test fails under CI and skips
    elsewhere, naming the `install` line (pytest.importorskip would skip under CI as well)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing_requirement(f"no module {name}", install)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_tool(*names, install): the test runs one of the commands `names`; require_tool "
        "checks for it before any fixture is set up",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # before the fixtures, so that a missing tool costs no expensive module fixture
    for mark in item.iter_markers("needs_tool"):
        require_tool(*mark.args, **mark.kwargs)


def make_tree(root, per_class=10, size=40, seed=0, classes=COLOURS):
    """A class-per-folder tree of `per_class` PNG images per class, each class's images bright
    in its own channel: small images a model learns to tell apart in an epoch or two."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, channel in classes.items():
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (size, size, 3))
            pixels[..., channel] += 160
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i:02d}.png")
    return root


def random_batch_norm_weights(layer, rng, spread: float):
    """Random statistics for a built batch norm, far from the initial ones: gamma and the
    variance uniform in [0.5, 1.5], beta and the mean normal with standard deviation `spread`."""
    return [
        (
            rng.uniform(0.5, 1.5, w.shape)
            if "variance" in w.path or "gamma" in w.path
            else rng.normal(0, spread, w.shape)
        ).astype("float32")
        for w in layer.weights
    ]


@pytest.fixture(scope="session")
def torch():
    """torch, imported as keras_zoo.torch_reference imports it (failing under CI=true, skipping
    elsewhere, where it is not installed)."""
    require_module("torch", TEST_EXTRA)
    from keras_zoo.torch_reference import import_torch

    return import_torch()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def float64():
    """Builds Keras models in float64 for the duration of a test."""
    import keras

    # Keras caches the global dtype policy on first use: set it as well as floatx.
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def assert_save_load_round_trip(model, x, tmp_path):
    """model.save(.keras) -> load_model gives identical outputs on `x`."""
    import keras

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


class TensorBoardServer:
    """A real TensorBoard server on 127.0.0.1 over `logdir` (with extra command-line `flags`),
    for as long as the `with` block runs; `json(path)` and `get(path)` query its HTTP API."""

    def __init__(self, logdir, log_file, *flags):
        self.logdir, self.log_file, self.flags = str(logdir), log_file, flags

    def __enter__(self):
        import socket
        import subprocess
        import sys

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self._log = open(self.log_file, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                self.logdir,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *self.flags,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        return self

    def __exit__(self, *exc):
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()

    def get(self, path: str, timeout: float = 10) -> bytes:
        import urllib.request

        with urllib.request.urlopen(self.base + path, timeout=timeout) as response:
            assert response.status == 200
            return response.read()

    def json(self, path: str):
        import json

        return json.loads(self.get(path))

    def wait_for(self, path: str, ready, seconds: float = 90):
        """Polls `path` until ready(its JSON) holds; the last answer (AssertionError with the
        server's log when it never does)."""
        import json
        import time
        import urllib.error

        answer, deadline = None, time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                answer = self.json(path)
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                answer = None
            if answer is not None and ready(answer):
                return answer
            time.sleep(0.5)
        raise AssertionError(f"{path}: {answer!r}\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        with open(self.log_file, errors="replace") as f:
            return f.read()[-3000:]


# Execs argv[1:] without root's capabilities to pass over file permissions (dropped from the
# bounding set, so that they are not granted again by exec): a root process then meets the
# permissions of the files it does not own as the others do, and of its own as their owner.
_WITHOUT_DAC_CAPABILITIES = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
os.execv(sys.argv[1], sys.argv[1:])
"""


def permission_bound(argv: list[str]) -> list[str]:
    """`argv` as a command whose writes a folder's permissions refuse, even when the tests
    run as root (which passes over them otherwise)."""
    if os.geteuid() != 0:
        return argv
    import sys

    return [sys.executable, "-c", _WITHOUT_DAC_CAPABILITIES, *argv]


def h5_arrays(path) -> dict:
    """Every dataset in the HDF5 file at `path`, by its path in the file."""
    import h5py

    found = {}
    with h5py.File(path) as f:
        f.visititems(
            lambda n, o: found.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(argv, count: int = 2, timeout: float = 400) -> tuple[list[int], list[str]]:
    """Runs `argv(index)` as `count` workers of one TF_CONFIG cluster on this machine, on the
    CPU; (return codes, outputs with stderr) once all have ended, each killed after `timeout`."""
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(count)]
    procs = []
    for index in range(count):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(tf_config),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": "",
        }
        procs.append(
            subprocess.Popen(
                argv(index), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    try:
        outputs = [proc.communicate(timeout=timeout)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    return [proc.returncode for proc in procs], outputs


def use_weight_set(monkeypatch, name, key, path):
    """Registers a copy of `name`'s weight set `key` whose published hash is `path`'s, and a
    file:// mirror holding `path` under the weight set's file name."""
    import dataclasses
    import hashlib
    import pathlib

    import keras_zoo
    from keras_zoo import registry

    info = keras_zoo.model_info(name)
    ws = info.weight_set(key)
    digest = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    mine = dataclasses.replace(ws, sha256=digest[:8])
    weights = tuple(mine if w is ws else w for w in info.weights)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(info, weights=weights))
    mirror = pathlib.Path(path).parent / "mirror"
    mirror.mkdir(exist_ok=True)
    pathlib.Path(path).rename(mirror / ws.filename)
    monkeypatch.setenv("KERAS_ZOO_WEIGHTS_URL", mirror.as_uri())
    return mine
