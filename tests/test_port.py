"""The porter end to end: checkpoint files in, Keras weights files out, exact and safe."""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import keras_zoo
from keras_zoo import cli
from keras_zoo.port import compare, load_state_dict, provenance
from keras_zoo.pretrained import port
from tests.conftest import permission_bound, relative_error
from tests.torch_models import randomize, state_dict_numpy, torch_model


@pytest.fixture(scope="module")
def resnet18_ref():
    return randomize(torch_model("resnet18"), seed=1)


@pytest.fixture(scope="module")
def resnet18_pth(resnet18_ref, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    torch.save(resnet18_ref.state_dict(), path)
    return path


def _weights(model):
    return {w.path: w.numpy() for w in model.weights}


def _direct(name, ref, **kwargs):
    model = keras_zoo.build(name, classifier_activation=None, **kwargs)
    load_state_dict(model, state_dict_numpy(ref))
    return model


def test_port_writes_weights_that_reload_bit_identical(resnet18_ref, resnet18_pth, tmp_path):
    dst = tmp_path / "r18.weights.h5"
    result = port("resnet18", resnet18_pth, dst)
    assert result.path == str(dst) and os.path.isfile(dst) and result.error is None
    loaded = keras_zoo.build("resnet18", weights=str(dst), classifier_activation=None)
    expected = _direct("resnet18", resnet18_ref)
    got, want = _weights(loaded), _weights(expected)
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[k], want[k]) for k in want)
    record = provenance(dst)
    assert record["model"] == "resnet18" and record["source"] == "resnet18.pth"
    assert record["source_sha256"] == result.sha256 and len(result.sha256) == 64
    assert record["version"] == keras_zoo.__version__
    assert "check_max_relative_error" not in record


def test_legacy_h5_destination(resnet18_ref, resnet18_pth, tmp_path):
    dst = tmp_path / "r18.h5"
    port("resnet18", resnet18_pth, dst)
    model = keras_zoo.build("resnet18", classifier_activation=None)
    model.load_weights(dst)
    want = _weights(_direct("resnet18", resnet18_ref))
    assert all(np.array_equal(v, want[k]) for k, v in _weights(model).items())
    assert provenance(dst)["model"] == "resnet18"


def test_zip_legacy_and_safetensors_give_identical_keras_weights(resnet18_ref, tmp_path):
    from safetensors.torch import save_file

    state = resnet18_ref.state_dict()
    torch.save(state, tmp_path / "zip.pth")
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    ported = []
    for src in ("zip.pth", "legacy.pth", "w.safetensors"):
        port("resnet18", tmp_path / src, tmp_path / f"{src}.weights.h5")
        model = keras_zoo.build("resnet18", weights=str(tmp_path / f"{src}.weights.h5"))
        ported.append(_weights(model))
    for other in ported[1:]:
        assert all(np.array_equal(other[k], ported[0][k]) for k in ported[0])


def test_build_loads_a_checkpoint_directly_and_skips_the_classifier_on_purpose(
    resnet18_ref, resnet18_pth, rng
):
    x = rng.normal(size=(1, 96, 96, 3)).astype("float32")
    with torch.no_grad():
        t = torch.from_numpy(x.transpose(0, 3, 1, 2))
        logits = resnet18_ref(t).numpy()
        # torchvision's ResNet up to its last stage (before avgpool and fc)
        r = resnet18_ref
        body = torch.nn.Sequential(
            r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3, r.layer4
        )
        feats = body(t).numpy().transpose(0, 2, 3, 1)
    full = keras_zoo.build(
        "resnet18", weights=str(resnet18_pth), classifier_activation=None, input_shape=(96, 96, 3)
    )
    assert relative_error(full.predict(x, verbose=0), logits) <= 2e-5
    headless = keras_zoo.build(
        "resnet18", weights=str(resnet18_pth), include_top=False, input_shape=(96, 96, 3)
    )
    assert relative_error(headless.predict(x, verbose=0), feats) <= 2e-5
    five = keras_zoo.build(
        "resnet18", weights=str(resnet18_pth), classes=5, input_shape=(96, 96, 3)
    )
    assert five.output.shape == (None, 5)
    np.testing.assert_array_equal(
        five.get_layer("layer4.1.conv2").kernel.numpy(),
        full.get_layer("layer4.1.conv2").kernel.numpy(),
    )


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_keras_weights_of_a_full_model_load_without_the_top(resnet18_pth, tmp_path, suffix):
    dst = tmp_path / f"r18{suffix}"
    port("resnet18", resnet18_pth, dst)
    full = keras_zoo.build("resnet18", weights=str(dst))
    for kwargs in (dict(include_top=False), dict(classes=3), dict(features_only=True)):
        model = keras_zoo.build("resnet18", weights=str(dst), **kwargs)
        np.testing.assert_array_equal(
            model.get_layer("layer3.0.conv1").kernel.numpy(),
            full.get_layer("layer3.0.conv1").kernel.numpy(),
        )


def test_a_fine_tuned_checkpoint_ports_with_its_own_classes(tmp_path):
    ref = randomize(torch_model("resnet18", num_classes=5), seed=2)
    torch.save({"state_dict": ref.state_dict(), "epoch": 7}, tmp_path / "flowers.pth")
    port("resnet18", tmp_path / "flowers.pth", tmp_path / "flowers.weights.h5")
    model = keras_zoo.build("resnet18", classes=5, weights=str(tmp_path / "flowers.weights.h5"))
    np.testing.assert_array_equal(
        model.get_layer("fc").kernel.numpy(), ref.fc.weight.detach().numpy().T
    )


def test_wrong_architecture_names_the_one_it_looks_like(tmp_path):
    torch.save(torch_model("resnext50_32x4d").state_dict(), tmp_path / "x.pth")
    dst = tmp_path / "out.weights.h5"
    with pytest.raises(ValueError) as err:
        port("resnet50", tmp_path / "x.pth", dst)
    message = str(err.value)
    assert (
        "x.pth does not fit resnet50: layer1.0.conv1: checkpoint weight (128, 64, 1, 1)" in message
    )
    assert "looks like resnext50_32x4d: layer1.0.conv1 is (128, 64, 1, 1)" in message
    assert not dst.exists() and os.listdir(tmp_path) == ["x.pth"]


def test_a_fine_tuned_checkpoint_of_another_architecture_is_named(tmp_path):
    torch.save(torch_model("resnet50", num_classes=10).state_dict(), tmp_path / "r50-10.pth")
    with pytest.raises(ValueError) as err:
        port("resnet18", tmp_path / "r50-10.pth", tmp_path / "out.weights.h5")
    assert (
        err.value.args[0].splitlines()[1]
        == "It looks like resnet50: layer1.0.conv1 is (64, 64, 1, 1)."
    )


class Command:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_training_script_checkpoint_ports_with_allow_unknown_globals(
    resnet18_ref, tmp_path, capsys
):
    import argparse

    pwned, dst = tmp_path / "pwned", tmp_path / "out.weights.h5"
    torch.save(
        {
            "args": argparse.Namespace(arch="resnet18", lr=0.1),
            "epoch": np.int64(90),
            "state_dict": resnet18_ref.state_dict(),
            "device": torch.device("cpu"),
            "hook": Command(pwned),
        },
        tmp_path / "trained.pth",
    )
    argv = ["port", "resnet18", str(tmp_path / "trained.pth"), str(dst)]
    assert cli.main(argv) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert (
        "refusing to load 'argparse.Namespace' from" in first and "--allow-unknown-globals" in first
    )
    assert not dst.exists()
    assert cli.main(argv + ["--allow-unknown-globals"]) == 0
    got = keras_zoo.build("resnet18", weights=str(dst), classifier_activation=None)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(got.get_weights(), _direct("resnet18", resnet18_ref).get_weights())
    )
    assert not pwned.exists()  # the placeholder stood in for os.system and ran nothing


def test_a_source_that_changes_while_it_is_read_writes_nothing(resnet18_pth, tmp_path, monkeypatch):
    from keras_zoo.port import reader

    src = tmp_path / "r18.pth"
    src.write_bytes(resnet18_pth.read_bytes())
    real = reader.read_checkpoint

    def read_then_append(path, **kwargs):
        state = real(path, **kwargs)
        with open(path, "ab") as f:
            f.write(b"\0")
        return state

    monkeypatch.setattr(reader, "read_checkpoint", read_then_append)
    with pytest.raises(ValueError, match="r18.pth changed while it was read; nothing written"):
        port("resnet18", src, tmp_path / "out.weights.h5")
    assert not (tmp_path / "out.weights.h5").exists()


def test_a_pickle_that_runs_a_command_is_refused_and_nothing_runs(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)  # a real zip, then a poisoned data.pkl
    import zipfile

    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    pkl = next(n for n in entries if n.endswith("data.pkl"))
    entries[pkl] = pickle.dumps({"fc.weight": Evil()}, protocol=2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    dst = tmp_path / "out.weights.h5"
    with pytest.raises(Exception, match=r"system") as err:
        port("resnet18", path, dst)
    assert "refus" in str(err.value)
    assert not (tmp_path / "pwned").exists() and not dst.exists()


def test_a_truncated_checkpoint_is_a_clear_error_and_writes_nothing(resnet18_pth, tmp_path):
    cut = tmp_path / "cut.pth"
    data = resnet18_pth.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pth"):
        port("resnet18", cut, tmp_path / "out.weights.h5")
    assert not (tmp_path / "out.weights.h5").exists()


def test_bad_destination_is_refused_before_any_work(resnet18_pth, tmp_path):
    with pytest.raises(ValueError, match="must end in .weights.h5"):
        port("resnet18", resnet18_pth, tmp_path / "out.keras")
    with pytest.raises(ValueError, match="does not exist"):
        port("resnet18", resnet18_pth, tmp_path / "no" / "out.weights.h5")


REPO = os.path.dirname(os.path.dirname(__file__))
CLI_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_a_read_only_destination_folder_fails_before_any_work_naming_it(tmp_path):
    src = tmp_path / "garbage.pth"  # were it read first, the error would be about it
    src.write_bytes(b"not a checkpoint")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    dst = folder / "out.weights.h5"
    try:
        result = subprocess.run(
            permission_bound(
                [sys.executable, "-m", "keras_zoo", "port", "resnet18", str(src), str(dst)]
            ),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=CLI_ENV,
            timeout=300,
        )
    finally:
        folder.chmod(0o755)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2, result.stderr
    assert errors == [
        f"keras-zoo port: error: destination {str(dst)!r}: cannot write in folder "
        f"{str(folder)!r} (Permission denied)"
    ]
    assert os.listdir(folder) == []


def _partial_weights(folder):
    """A temporary file of a port in `folder` that holds part of the weights, or None."""
    for entry in os.scandir(folder):
        try:
            if entry.name.startswith(".keras_zoo-") and entry.stat().st_size > 0:
                return entry.path
        except FileNotFoundError:  # renamed into place meanwhile
            pass
    return None


def _port_stopped_mid_write(src, dst):
    """A `keras-zoo port` process stopped while its temporary file beside `dst` holds part of
    the weights, and that file."""
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_zoo", "port", "resnet18", str(src), str(dst)],
        cwd=REPO,
        env=CLI_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if _partial_weights(dst.parent):
            process.send_signal(signal.SIGSTOP)
            os.waitpid(process.pid, os.WUNTRACED)
            partial = _partial_weights(dst.parent)
            if partial:
                return process, partial
            process.send_signal(signal.SIGCONT)
        time.sleep(0.001)
    process.kill()
    raise AssertionError(f"the port ended before its write was seen: {process.communicate()[1]}")


def test_a_port_terminated_mid_write_leaves_nothing(resnet18_pth, tmp_path):
    process, _ = _port_stopped_mid_write(resnet18_pth, tmp_path / "r18.weights.h5")
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGCONT)
    assert process.wait(timeout=60) == -signal.SIGTERM  # cleaned up, then ended by the signal
    assert os.listdir(tmp_path) == []


def test_what_a_port_killed_mid_write_leaves_the_next_port_removes(resnet18_pth, tmp_path):
    dst = tmp_path / "r18.weights.h5"
    process, partial = _port_stopped_mid_write(resnet18_pth, dst)
    process.kill()
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert os.listdir(tmp_path) == [os.path.basename(partial)] and os.path.getsize(partial) > 0
    port("resnet18", resnet18_pth, dst)
    assert os.listdir(tmp_path) == [dst.name] and provenance(dst)["model"] == "resnet18"


def _shifted_pool_resnet18(name, classes):
    # same parameters, different function: the check must notice
    model = torch_model(name, num_classes=classes)
    model.maxpool = torch.nn.MaxPool2d(3, 2, 0)
    return model


def test_numeric_check_records_the_error_or_fails_and_writes_nothing(resnet18_pth, tmp_path):
    good = port(
        "resnet18", resnet18_pth, tmp_path / "ok.weights.h5", check=True, reference=torch_model
    )
    assert 0 < good.error <= 2e-5
    assert provenance(tmp_path / "ok.weights.h5")["check_max_relative_error"] == good.error
    bad = tmp_path / "bad.weights.h5"
    with pytest.raises(ValueError, match="numeric check failed.*nothing written"):
        port("resnet18", resnet18_pth, bad, check=True, reference=_shifted_pool_resnet18)
    assert not bad.exists()


def test_cli_port_and_script(resnet18_pth, tmp_path, capsys):
    dst = tmp_path / "cli.weights.h5"
    assert (
        cli.main(
            [
                "port",
                "resnet18",
                str(resnet18_pth),
                str(dst),
                "--check",
                "--reference",
                "tests.torch_models:torch_model",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"wrote {dst}" in out and "numeric check: max |keras - torch| / max |torch| = " in out
    assert provenance(dst)["check_max_relative_error"] <= 2e-5
    assert cli.main(["port", "resnet50", str(resnet18_pth), str(tmp_path / "x.weights.h5")]) == 2
    assert "does not fit resnet50" in capsys.readouterr().err
    # as a user runs it, in a process of its own (where nothing has imported torchvision
    # yet): --check with the default reference, torchvision imported on this CPU torch
    script = subprocess.run(
        [
            sys.executable,
            "scripts/port_weights.py",
            "resnet18",
            str(resnet18_pth),
            str(tmp_path / "script.weights.h5"),
            "--check",
        ],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert script.returncode == 0, script.stderr
    assert "numeric check: max |keras - torch| / max |torch| = " in script.stdout
    assert provenance(tmp_path / "script.weights.h5")["check_max_relative_error"] <= 2e-5


def test_port_of_a_missing_checkpoint_is_one_line_naming_it(tmp_path, capsys):
    dst = tmp_path / "x.weights.h5"
    for src in (tmp_path / "missing.pth", tmp_path):
        assert cli.main(["port", "resnet18", str(src), str(dst)]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(f"keras-zoo port: error: src {str(src)!r}: ")
        assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match=r"^src '.*missing.pth': no such file$"):
        port("resnet18", tmp_path / "missing.pth", dst)


def test_compare_finds_the_first_diverging_layer(resnet18_ref, rng):
    model = _direct("resnet18", resnet18_ref, input_shape=(64, 64, 3))
    x = rng.normal(size=(1, 64, 64, 3)).astype("float32")
    good = compare(model, resnet18_ref, x)
    assert good.first_divergence is None
    names = [row.name for row in good.rows]
    assert {"conv1", "bn1", "layer1.0.conv1", "layer2.0", "fc"} <= set(names)
    layer = model.get_layer("layer2.0.conv1")
    layer.set_weights([layer.get_weights()[0].transpose(1, 0, 2, 3)])  # kh <-> kw
    bad = compare(model, resnet18_ref, x)
    assert bad.first_divergence.name == "layer2.0.conv1"
    assert "<- first divergence" in str(bad)


def test_port_works_on_any_keras_model_named_like_the_checkpoint(tmp_path, rng):
    # not a keras_zoo model: a small network of its own, named after a torch module's paths
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="features.0")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-5, name="features.1")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x), name="tiny")
    module = torch.nn.Module()
    module.features = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU()
    )
    module.head = torch.nn.Linear(8, 4)
    module.forward = lambda t: module.head(module.features(t).mean((2, 3)))
    module = randomize(module, seed=5, calibration_size=16)
    torch.save(module.state_dict(), tmp_path / "tiny.pth")
    result = port(model, tmp_path / "tiny.pth", tmp_path / "tiny.weights.h5")
    assert result.model == "tiny" and provenance(result.path)["model"] == "tiny"
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    with torch.no_grad():
        want = module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert relative_error(model.predict(x, verbose=0), want) <= 2e-5
