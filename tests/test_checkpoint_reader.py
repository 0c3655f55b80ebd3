"""read_checkpoint reads torch.save (zip and legacy) and safetensors files without torch, safely."""

import argparse
import collections
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from keras_zoo.port.reader import CheckpointError, UnsafeCheckpointError, read_checkpoint

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
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 5),
    )
    net(
        torch.randn(2, 3, 8, 8)
    )  # training step: non-trivial running stats, num_batches_tracked = 1
    return net


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
    sd = {
        "t": t,
        "tail": t[2:],
        "w": t.t(),
        "col": t[:, 1],
        "scalar": torch.tensor(7.5),
        "empty": torch.zeros(0, 3),
        "f64": torch.linspace(0, 1, 5, dtype=torch.float64),
        "i32": torch.tensor([1, -2], dtype=torch.int32),
        "flags": torch.tensor([True, False]),
    }
    got = read_checkpoint(save(sd, tmp_path / "views.pth", fmt))
    assert_same(got, sd)
    assert got["w"].flags.c_contiguous and got["w"].shape == (4, 6)
    assert (
        got["f64"].dtype == np.float64
        and got["i32"].dtype == np.int32
        and got["flags"].dtype == bool
    )


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


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd, "epoch": 3, "arch": "net", "best": 0.5},
        lambda sd: {"model": sd},
        lambda sd: {"model": sd, "ema": {k: v + 1 for k, v in sd.items()}, "step": 10},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
        lambda sd: {"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}, "epoch": 1},
    ],
    ids=["state_dict+epoch", "model", "model+ema", "module.", "_orig_mod.", "nested-prefixes"],
)
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_wrappers_and_prefixes_are_unwrapped(tmp_path, fmt, wrap):
    sd = small_net().state_dict()
    assert_same(read_checkpoint(save(wrap(sd), tmp_path / "w.pth", fmt)), sd)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_state_dicts_side_by_side_read_as_one(tmp_path, fmt):
    # PFLD-pytorch's train.py: {"epoch", "pfld_backbone": ..., "auxiliarynet": ...}
    net, head = small_net().state_dict(), torch.nn.Linear(5, 2).state_dict()
    checkpoint = {
        "epoch": 7,
        "best": 0.5,
        "backbone": net,
        "head": {f"module.{k}": v for k, v in head.items()},
    }
    got = read_checkpoint(save(checkpoint, tmp_path / "two.pth.tar", fmt))
    assert_same(
        got,
        {
            **{f"backbone.{k}": v for k, v in net.items()},
            **{f"head.{k}": v for k, v in head.items()},
        },
    )
    # a value beside them that is not plain data (an optimizer's state) makes it no state_dict
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1}]}
    path = save({"backbone": net, "optimizer": optimizer}, tmp_path / "opt.pth", fmt)
    with pytest.raises(
        ValueError, match=r"opt.pth holds a dict with non-tensor entries \('backbone'"
    ):
        read_checkpoint(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_arrays_are_in_memory_and_outlive_the_file(tmp_path, fmt):
    sd = small_net().state_dict()
    path = save(sd, tmp_path / "net.bin", fmt)
    got = read_checkpoint(path)
    path.write_bytes(b"")  # cut to nothing: a mapped array would now die with SIGBUS when read
    assert all(v.flags.writeable and not isinstance(v, np.memmap) for v in got.values())
    for key in sd:
        np.testing.assert_array_equal(got[key], numpy_of(sd[key]))


def test_deflated_zip_entries_fall_back_to_reading(tmp_path):
    sd = small_net().state_dict()
    real = save(sd, tmp_path / "net.pth", "zip")
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(tmp_path / "deflated.pth", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    assert_same(read_checkpoint(tmp_path / "deflated.pth"), sd)


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
            dst.writestr(
                info.filename, payload if info.filename.endswith("data.pkl") else src.read(info)
            )
    return out


def legacy_stream(path, payload):
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    path.write_bytes(
        b"".join(pickle.dumps(x, protocol=2) for x in header) + payload + pickle.dumps([], 2)
    )
    return path


def test_the_attack_payload_is_real(tmp_path):
    pickle.loads(pickle.dumps(RunCommand(f"touch {tmp_path / 'control'}"), protocol=2))
    assert (tmp_path / "control").exists()  # so the refusals below are what keeps "pwned" away


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_command_in_the_pickle_is_refused_and_not_run(tmp_path, fmt):
    pwned = tmp_path / "pwned"
    payload = pickle.dumps({"w": RunCommand(f"touch {pwned}")}, protocol=2)
    recorded = (
        f"{os.system.__module__}.system"  # what pickle records for os.system ("posix" on Linux)
    )
    assert recorded.replace(".", "\n").encode() in payload
    if fmt == "zip":
        real = save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip")
        path = replace_data_pkl(real, tmp_path / "evil.pth", payload)
    else:
        path = legacy_stream(tmp_path / "evil.pth", payload)
    with pytest.raises(
        pickle.UnpicklingError, match=f"refusing to load '{recorded}' from .*evil.pth"
    ):
        read_checkpoint(path)
    assert not pwned.exists()


def test_eval_and_whole_modules_are_refused_by_name(tmp_path):
    real = save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip")
    for protocol in (2, 4):  # protocol 2 records "__builtin__ eval", 4 "builtins eval"
        path = replace_data_pkl(
            real, tmp_path / "eval.pth", pickle.dumps(Eval(), protocol=protocol)
        )
        with pytest.raises(ValueError, match="refusing to load 'builtins.eval' from .*eval.pth"):
            read_checkpoint(path)
    torch.save(torch.nn.Linear(2, 3), tmp_path / "module.pth")
    with pytest.raises(ValueError, match="'torch.nn.modules.linear.Linear' from .*module.pth"):
        read_checkpoint(tmp_path / "module.pth")
    with pytest.raises(
        ValueError,
        match="module.pth holds an object of torch.nn.modules.linear.Linear, not a state_dict",
    ):
        read_checkpoint(tmp_path / "module.pth", allow_unknown=True)


def test_big_endian_and_non_state_dicts_are_refused(tmp_path):
    real = save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip")
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(tmp_path / "big.pth", "w") as dst:
        for info in src.infolist():
            dst.writestr(
                info.filename, b"big" if info.filename.endswith("byteorder") else src.read(info)
            )
    with pytest.raises(ValueError, match="big.pth was saved big-endian"):
        read_checkpoint(tmp_path / "big.pth")
    torch.save([torch.ones(2)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="list.pth holds a list, not a state_dict"):
        read_checkpoint(tmp_path / "list.pth")
    torch.save({"w": torch.ones(2), "note": "hi"}, tmp_path / "mixed.pth")
    with pytest.raises(
        ValueError, match="mixed.pth holds a dict with non-tensor entries \\('note': str\\)"
    ):
        read_checkpoint(tmp_path / "mixed.pth")
    torch.save({}, tmp_path / "empty.pth")
    with pytest.raises(ValueError, match="empty.pth holds an empty dict"):
        read_checkpoint(tmp_path / "empty.pth")


def cut(path, keep):
    data = path.read_bytes()
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[: keep(len(data))])
    return out


@pytest.mark.parametrize(
    "fmt, keep",
    [
        ("zip", lambda n: n // 2),
        ("legacy", lambda n: n - 3),
        ("legacy", lambda n: n // 2),
        ("safetensors", lambda n: n - 10),
        ("safetensors", lambda n: 20),
    ],
)
def test_truncated_files_are_reported_by_name(tmp_path, fmt, keep):
    path = save(small_net().state_dict(), tmp_path / f"net.{fmt}", fmt)
    if fmt == "safetensors":
        path = path.rename(path.with_suffix(".safetensors"))
    bad = cut(path, keep)
    with pytest.raises(ValueError, match=f"{bad.name} is truncated: "):
        read_checkpoint(bad)


def test_a_zip_storage_shorter_than_its_tensor_is_corrupt(tmp_path):
    real = save({"w": torch.ones(8)}, tmp_path / "real.pth", "zip")
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(tmp_path / "short.pth", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:10] if "/data/" in info.filename else data)
    with pytest.raises(
        ValueError, match="short.pth is corrupt: storage 0 is shorter than its 8 elements"
    ):
        read_checkpoint(tmp_path / "short.pth")


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


# Crafted files: a pickle written by hand around a real archive's storages.
class Storage:
    """Pickled as a persistent id naming storage `key` of `numel` float32 elements."""

    def __init__(self, key="0", numel=4):
        self.key, self.numel = key, numel


class Tensor:
    def __init__(self, storage, offset=0, size=(4,), stride=(1,)):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


class Craft(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def crafted(path, obj, storages=None, compress=None):
    """A torch-style zip archive whose data.pkl pickles `obj` and whose data/<key> members are
    `storages` (default one storage "0" of 1, 2, 3, 4 as float32; deflated when `compress` is
    given)."""
    if storages is None:
        storages = {"0": np.arange(1, 5, dtype="<f4").tobytes()}
    buf = io.BytesIO()
    Craft(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data, compress_type=compress or zipfile.ZIP_STORED)
    return path


def test_a_crafted_archive_reads_like_a_saved_one(tmp_path):
    # the crafting helpers below write what torch.save writes, so their refusals are the reader's
    got = read_checkpoint(crafted(tmp_path / "ok.pth", {"w": Tensor(Storage())}))
    np.testing.assert_array_equal(got["w"], [1, 2, 3, 4])


def build_state(global_line, state):
    """A protocol-2 pickle that sets `state` on the global `global_line` ("module\\nname")."""
    return (
        b"\x80\x02c"
        + global_line.encode()
        + b"\n"
        + pickle.dumps(state, 2)[2:-1]
        + pickle.BUILD
        + b"0"
        + pickle.dumps({"w": 1}, 2)[2:]
    )


@pytest.mark.parametrize(
    "target, state",
    [
        ("torch\nFloatStorage", {"dtype": ">f4"}),
        ("torch\nFloatStorage", (None, {"dtype": ">f4"})),
        ("torch._utils\n_rebuild_tensor_v2", (None, {"__defaults__": (0, (1,), (1,))})),
        ("collections\nOrderedDict", (None, {"fromkeys": None})),
    ],
)
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_file_cannot_change_what_later_reads_see(tmp_path, fmt, target, state):
    good = save({"w": torch.tensor([1.0, 2.0, 3.0, 4.0])}, tmp_path / "good.pth", fmt)
    payload = build_state(target, state)
    if fmt == "zip":
        evil = replace_data_pkl(
            save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip"), tmp_path / "evil.pth", payload
        )
    else:
        evil = legacy_stream(tmp_path / "evil.pth", payload)
    with pytest.raises(CheckpointError, match="evil.pth is corrupt: the pickle sets state on"):
        read_checkpoint(evil)
    np.testing.assert_array_equal(read_checkpoint(good)["w"], [1, 2, 3, 4])


def shared_nest(depth=64):
    x = []
    for _ in range(depth):
        x = [x, x]  # pickled in ~5 bytes a level; printed in full, 2**64 brackets
    return x


@pytest.mark.parametrize(
    "obj",
    [
        lambda: {"w": Tensor(Storage(), offset=shared_nest())},
        lambda: {"w": Tensor(Storage(), size=shared_nest())},
        lambda: {"w": shared_nest()},
        lambda: shared_nest(),
    ],
    ids=["offset", "size", "entry", "top"],
)
def test_errors_print_shared_nested_data_briefly(tmp_path, obj):
    path = crafted(tmp_path / "nest.pth", obj())
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert len(str(err.value)) < 400 and "nest.pth" in str(err.value)


def test_a_persistent_id_of_shared_nested_data_is_described_briefly(tmp_path):
    payload = b"\x80\x02" + pickle.dumps(shared_nest(), 2)[2:-1] + pickle.BINPERSID + b"."
    path = replace_data_pkl(
        save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip"), tmp_path / "pid.pth", payload
    )
    with pytest.raises(
        CheckpointError, match="pid.pth is corrupt: an unsupported persistent id"
    ) as err:
        read_checkpoint(path)
    assert len(str(err.value)) < 400


def test_dict_keys_whose_hash_would_not_end_are_refused(tmp_path):
    key = ()
    for _ in range(80):
        key = (key, key)  # hashing it visits 2**80 tuples
    # {key: 1}, written opcode by opcode: building the dict here would hash the key
    payload = b"\x80\x02}" + pickle.dumps(key, 2)[2:-1] + b"K\x01" + pickle.SETITEM + b"."
    path = replace_data_pkl(
        save({"w": torch.ones(2)}, tmp_path / "real.pth", "zip"), tmp_path / "key.pth", payload
    )
    with pytest.raises(CheckpointError, match="key.pth is corrupt: a dict key of type tuple"):
        read_checkpoint(path)


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    "tensor",
    [
        lambda: Tensor(Storage(), size=(10**10,), stride=(0,)),  # 40 GB over 4 floats
        lambda: Tensor(Storage(), size=(10**5, 10**5), stride=(0, 0)),
    ],
    ids=["stride-0", "stride-0-2d"],
)
def test_tensors_declaring_more_than_their_storage_are_refused_before_allocating(tmp_path, tensor):
    path = crafted(tmp_path / "huge.pth", {"w": tensor()})

    def read():
        with pytest.raises(CheckpointError, match="huge.pth declares more data than it holds"):
            read_checkpoint(path)

    assert peak_bytes(read) < 2**20


def test_an_expanded_tensor_within_its_storage_still_reads(tmp_path):
    t = torch.arange(4.0)  # a stride-0 view of no more elements than its storage holds
    got = read_checkpoint(save({"t": t, "pair": t[:2].expand(2, 2)}, tmp_path / "e.pth", "zip"))
    np.testing.assert_array_equal(got["pair"], [[0, 1], [0, 1]])


def test_a_deflate_bomb_is_refused_within_bounded_memory(tmp_path):
    numel = 2**26  # 256 MiB of float32 zeros, deflated to about 250 KiB
    path = tmp_path / "bomb.pth"
    crafted(
        path,
        {"w": Tensor(Storage(numel=numel), size=(numel,))},
        storages={},
        compress=zipfile.ZIP_DEFLATED,
    )
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open("archive/data/0", "w") as f:
        zeros = bytes(2**22)
        for _ in range(numel * 4 // len(zeros)):
            f.write(zeros)
    assert path.stat().st_size < 2**20

    def read():
        with pytest.raises(
            CheckpointError,
            match="bomb.pth declares more data than it holds: "
            "the deflated member archive/data/0 would take 268435456",
        ):
            read_checkpoint(path)

    assert peak_bytes(read) < 2**22


def safetensors_file(path, entries, data):
    header = json.dumps(entries).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


@pytest.mark.parametrize(
    "offsets, why",
    [
        ([[0, 16], [8, 24]], "tensor 'b' overlaps another"),
        ([[0, 16], [0, 16]], "overlaps another"),
        ([[0, 16], [24, 40]], "tensor 'b' leaves a gap before it"),
        ([[0, 16], [16, 32]], "leave bytes unused at the end"),
    ],
)
def test_safetensors_offsets_must_tile_the_data(tmp_path, offsets, why):
    entries = {k: {"dtype": "F32", "shape": [4], "data_offsets": o} for k, o in zip("ab", offsets)}
    path = safetensors_file(tmp_path / "bad.safetensors", entries, bytes(40))
    with pytest.raises(CheckpointError, match=f"bad.safetensors is corrupt: .*{why}"):
        read_checkpoint(path)
    entries = {
        k: {"dtype": "F32", "shape": [4], "data_offsets": [16 * i, 16 * i + 16]}
        for i, k in enumerate("ab")
    }
    got = read_checkpoint(safetensors_file(tmp_path / "ok.safetensors", entries, bytes(32)))
    assert sorted(got) == ["a", "b"]


def test_a_byte_flipped_in_a_storage_fails_its_crc(tmp_path):
    path = save({"w": torch.arange(64.0)}, tmp_path / "net.pth", "zip")
    data = bytearray(path.read_bytes())
    at = data.index(np.arange(64, dtype="<f4").tobytes()) + 100
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="net.pth is corrupt: .*data/0 fails its CRC check"):
        read_checkpoint(path)


def test_running_out_of_memory_is_said_as_such(tmp_path, monkeypatch):
    path = save({"w": torch.ones(4)}, tmp_path / "net.pth", "zip")

    def no_memory(*args):
        raise MemoryError

    monkeypatch.setattr(np, "empty", no_memory)
    with pytest.raises(CheckpointError, match="net.pth could not be read: out of memory$"):
        read_checkpoint(path)


class Command:  # what a training script's pickle holds beside the state_dict
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def training_script_checkpoint(sd, marker):
    return {
        "state_dict": sd,
        "args": argparse.Namespace(lr=0.1, arch="net"),
        "epoch": np.int64(7),
        "best": np.float32(0.9),
        "device": torch.device("cpu"),
        "hook": Command(marker),
    }


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_unknown_globals_are_refused_by_name_or_stood_in_for(tmp_path, fmt):
    sd, pwned = small_net().state_dict(), tmp_path / "pwned"
    path = save(training_script_checkpoint(sd, pwned), tmp_path / "trained.pth", fmt)
    with pytest.raises(
        UnsafeCheckpointError,
        match=r"refusing to load 'argparse.Namespace' from "
        r".*trained.pth: .*allow_unknown=True \(--allow-unknown-globals",
    ):
        read_checkpoint(path)
    assert_same(read_checkpoint(path, allow_unknown=True), sd)
    assert not pwned.exists()  # neither way ran the command


def test_a_placeholder_records_and_runs_nothing(tmp_path):
    pwned = tmp_path / "pwned"
    path = save(
        {"w": torch.ones(2), "args": argparse.Namespace(lr=0.1), "hook": Command(pwned)},
        tmp_path / "mixed.pth",
        "zip",
    )
    with pytest.raises(
        CheckpointError,
        match=r"non-tensor entries \('args': <unknown global "
        r"argparse.Namespace>, 'hook': <unknown global "
        rf"{os.system.__module__}.system>\)",
    ):
        read_checkpoint(path, allow_unknown=True)
    assert not pwned.exists()


def test_fuzzed_checkpoints_read_or_fail_cleanly_within_bounds(tmp_path):
    values = torch.linspace(-3, 3, 48).reshape(4, 12)
    sd = {
        **small_net().state_dict(),
        "h": values.half(),
        "b": values.bfloat16(),
        "t": values.t(),
        "tail": values[1:],
        "i": torch.arange(6, dtype=torch.int32),
        "flag": torch.tensor([True]),
    }
    files = [
        save(sd, tmp_path / "net.pth", "zip"),
        save(sd, tmp_path / "legacy.pth", "legacy"),
        save(
            {k: v for k, v in sd.items() if k not in ("t", "tail")},
            tmp_path / "net.safetensors",
            "safetensors",
        ),
    ]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            os.path.join(os.path.dirname(__file__), "reader_fuzz.py"),
            "0",
            "3000",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    dicts, errors = map(int, re.search(r"(\d+) dicts, (\d+) CheckpointErrors", run.stdout).groups())
    assert dicts > 100 and errors > 1000  # both outcomes are exercised
