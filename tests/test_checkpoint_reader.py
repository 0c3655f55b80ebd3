"""read_checkpoint reads torch.save (zip and legacy) and safetensors files without torch, safely."""

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from keras_zoo.port.reader import CheckpointError, read_checkpoint

FORMATS = ("zip", "legacy", "safetensors")


def save(obj, path, fmt):
    if fmt == "zip":
        torch.save(obj, path)
    elif fmt == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:  # safetensors wants contiguous tensors that share no memory
        save_file({k: v.contiguous().clone() for k, v in obj.items()}, str(path))
    return path


def numpy_of(t):
    return t.float().numpy() if t.dtype in (torch.float16, torch.bfloat16) else t.numpy()


def assert_same(got, expected, ordered=True):
    assert list(got) == list(expected) if ordered else sorted(got) == sorted(expected)
    for key, tensor in expected.items():
        want = numpy_of(tensor)
        assert got[key].dtype == want.dtype, key
        assert got[key].shape == want.shape, key
        np.testing.assert_array_equal(got[key], want, err_msg=key)


def small_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5)
    )
    net(torch.randn(2, 3, 8, 8))  # training step: non-trivial running stats, num_batches_tracked = 1
    return net


def walks_to_memmap(arr):
    while arr is not None:
        if isinstance(arr, np.memmap):
            return True
        arr = getattr(arr, "base", None)
    return False


@pytest.mark.parametrize("fmt", FORMATS)
def test_sequential_state_dict_round_trips_exactly(tmp_path, fmt):
    sd = small_net().state_dict()
    got = read_checkpoint(save(sd, tmp_path / f"net.{fmt}", fmt))
    # safetensors records no key order; the reader sorts its keys by name
    assert_same(got, sd, ordered=fmt != "safetensors")
    assert got["1.num_batches_tracked"].dtype == np.int64 and got["1.num_batches_tracked"] == 1


def test_the_three_formats_agree(tmp_path):
    sd = small_net().state_dict()
    zipped, legacy, safe = (read_checkpoint(save(sd, tmp_path / f"net.{f}", f)) for f in FORMATS)
    assert list(zipped) == list(legacy) == list(sd)
    for key in sd:
        assert np.array_equal(zipped[key], legacy[key]) and np.array_equal(zipped[key], safe[key])


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_views_non_contiguous_and_offset_tensors(tmp_path, fmt):
    t = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    sd = {"t": t, "tail": t[2:], "w": t.t(), "col": t[:, 1], "scalar": torch.tensor(7.5),
          "empty": torch.zeros(0, 3), "f64": torch.linspace(0, 1, 5, dtype=torch.float64),
          "i32": torch.tensor([1, -2], dtype=torch.int32), "flags": torch.tensor([True, False])}
    got = read_checkpoint(save(sd, tmp_path / "views.pth", fmt))
    assert_same(got, sd)
    assert got["w"].flags.c_contiguous and got["w"].shape == (4, 6)
    assert got["f64"].dtype == np.float64 and got["i32"].dtype == np.int32 and got["flags"].dtype == bool


@pytest.mark.parametrize("fmt", FORMATS)
def test_half_and_bfloat16_come_back_as_float32(tmp_path, fmt):
    values = torch.tensor([[1.5, -2.25, 3.0e4], [1e-3, 0.0, -7.0]])
    sd = {"h": values.half(), "b": values.bfloat16(), "b_t": values.bfloat16().t(), "f": values}
    if fmt == "safetensors":
        del sd["b_t"]
    got = read_checkpoint(save(sd, tmp_path / "half.bin", fmt))  # the format is told by content
    assert_same(got, sd, ordered=fmt != "safetensors")
    assert all(got[k].dtype == np.float32 for k in sd)
    np.testing.assert_allclose(got["b"], values.numpy(), rtol=1e-2)
    assert got["b"][0, 0] == 1.5 and got["h"][0, 1] == -2.25


@pytest.mark.parametrize("wrap", [
    lambda sd: {"state_dict": sd, "epoch": 3, "arch": "net", "best": 0.5},
    lambda sd: {"model": sd},
    lambda sd: {"model": sd, "ema": {k: v + 1 for k, v in sd.items()}, "step": 10},
    lambda sd: {f"module.{k}": v for k, v in sd.items()},
    lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
    lambda sd: {"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}, "epoch": 1},
], ids=["state_dict+epoch", "model", "model+ema", "module.", "_orig_mod.", "nested-prefixes"])
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_wrappers_and_prefixes_are_unwrapped(tmp_path, fmt, wrap):
    sd = small_net().state_dict()
    assert_same(read_checkpoint(save(wrap(sd), tmp_path / "w.pth", fmt)), sd)


def test_mmap_views_the_file_and_no_mmap_copies(tmp_path):
    sd = small_net().state_dict()
    path = save(sd, tmp_path / "net.pth", "zip")
    mapped, copied = read_checkpoint(path, mmap=True), read_checkpoint(path, mmap=False)
    assert walks_to_memmap(mapped["3.weight"]) and walks_to_memmap(mapped["1.num_batches_tracked"])
    assert not any(walks_to_memmap(v) for v in copied.values())
    assert all(v.flags.writeable for v in copied.values())
    for key in sd:
        assert np.array_equal(mapped[key], copied[key])
    del sd
    assert float(mapped["0.weight"].sum()) == float(copied["0.weight"].sum())  # usable after return


def test_deflated_zip_entries_fall_back_to_reading(tmp_path):
    sd = small_net().state_dict()
    real = save(sd, tmp_path / "net.pth", "zip")
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(tmp_path / "deflated.pth", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    got = read_checkpoint(tmp_path / "deflated.pth", mmap=True)
    assert_same(got, sd)
    assert not any(walks_to_memmap(v) for v in got.values())


class RunCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class Eval:
    def __reduce__(self):
        return eval, ("1 + 1",)


def replace_data_pkl(real, out, payload):
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, payload if info.filename.endswith("data.pkl") else src.read(info))
    return out


def legacy_stream(path, payload):
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    path.write_bytes(b"".join(pickle.dumps(x, protocol=2) for x in header) + payload + pickle.dumps([], 2))
    return path


def test_the_attack_payload_is_real(tmp_path):
    pickle.loads(pickle.dumps(RunCommand(f"touch {tmp_path / 'control'}"), protocol=2))
    assert (tmp_path / "control").exists()  # so the refusals below are what keeps "pwned" away


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_command_in_the_pickle_is_refused_and_not_run(tmp_path, fmt):
    pwned = tmp_path / "pwned"
    payload = pickle.dumps({"w": RunCommand(f"touch {pwned}")}, protocol=2)
    recorded = f"{os.system.__module__}.system"  # what pickle records for os.system ("posix" on Linux)
    assert recorded.replace(".", "\n").encode() in payload
    if fmt == "zip":
        real = save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip")
        path = replace_data_pkl(real, tmp_path / "evil.pth", payload)
    else:
        path = legacy_stream(tmp_path / "evil.pth", payload)
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load '{recorded}' from .*evil.pth"):
        read_checkpoint(path)
    assert not pwned.exists()


def test_eval_and_whole_modules_are_refused_by_name(tmp_path):
    real = save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip")
    for protocol in (2, 4):  # protocol 2 records "__builtin__ eval", 4 "builtins eval"
        path = replace_data_pkl(real, tmp_path / "eval.pth", pickle.dumps(Eval(), protocol=protocol))
        with pytest.raises(ValueError, match="refusing to load 'builtins.eval' from .*eval.pth"):
            read_checkpoint(path)
    torch.save(torch.nn.Linear(2, 3), tmp_path / "module.pth")
    with pytest.raises(ValueError, match="'torch.nn.modules.linear.Linear' from .*module.pth"):
        read_checkpoint(tmp_path / "module.pth")


def test_big_endian_and_non_state_dicts_are_refused(tmp_path):
    real = save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip")
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(tmp_path / "big.pth", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, b"big" if info.filename.endswith("byteorder") else src.read(info))
    with pytest.raises(ValueError, match="big.pth was saved big-endian"):
        read_checkpoint(tmp_path / "big.pth")
    torch.save([torch.ones(2)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="list.pth holds a list, not a state_dict"):
        read_checkpoint(tmp_path / "list.pth")
    torch.save({"w": torch.ones(2), "note": "hi"}, tmp_path / "mixed.pth")
    with pytest.raises(ValueError, match="mixed.pth holds a dict with non-tensor entries \\('note': str\\)"):
        read_checkpoint(tmp_path / "mixed.pth")
    torch.save({}, tmp_path / "empty.pth")
    with pytest.raises(ValueError, match="empty.pth holds an empty dict"):
        read_checkpoint(tmp_path / "empty.pth")


def cut(path, keep):
    data = path.read_bytes()
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[: keep(len(data))])
    return out


@pytest.mark.parametrize("fmt, keep", [
    ("zip", lambda n: n // 2),
    ("legacy", lambda n: n - 3),
    ("legacy", lambda n: n // 2),
    ("safetensors", lambda n: n - 10),
    ("safetensors", lambda n: 20),
])
def test_truncated_files_are_reported_by_name(tmp_path, fmt, keep):
    path = save(small_net().state_dict(), tmp_path / f"net.{fmt}", fmt)
    if fmt == "safetensors":
        path = path.rename(path.with_suffix(".safetensors"))
    bad = cut(path, keep)
    with pytest.raises(ValueError, match=f"{bad.name}.*(truncated or corrupt|not a PyTorch checkpoint)"):
        read_checkpoint(bad)


def test_a_zip_storage_shorter_than_its_tensor_is_corrupt(tmp_path):
    real = save({"w": torch.ones(8)}, tmp_path / "real.pth", "zip")
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(tmp_path / "short.pth", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:10] if "/data/" in info.filename else data)
    for mmap in (True, False):
        with pytest.raises(ValueError, match="short.pth is truncated or corrupt"):
            read_checkpoint(tmp_path / "short.pth", mmap=mmap)


def test_random_bytes_and_missing_files(tmp_path):
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="noise.pth"):
        read_checkpoint(noise)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.bin"):
        read_checkpoint(tmp_path / "empty.bin")
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        read_checkpoint(tmp_path / "nothing.pth")
