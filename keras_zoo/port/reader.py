"""Reading PyTorch checkpoints into numpy, without torch and without running pickled code.

Three formats, told apart by content: torch.save's zip archive (torch >= 1.6), the legacy
pre-1.6 stream, and safetensors. Pickles go through an unpickler that admits only the few
globals a tensor state_dict needs, each mapped to a numpy stand-in defined here.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import struct
import zipfile
from typing import Any, Callable, NamedTuple

import numpy as np

__all__ = ["CheckpointError", "UnsafeCheckpointError", "read_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "ema")
_PREFIXES = ("module.", "_orig_mod.")  # DataParallel, torch.compile
_BF16 = "bfloat16"  # stored as the upper 16 bits of a float32; numpy has no such dtype
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": _BF16,
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": _BF16, "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


class CheckpointError(ValueError):
    """A checkpoint that is truncated, corrupt, or holds no tensor state_dict."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint pickle naming a global outside the few a tensor state_dict needs."""


class _StorageType:
    def __init__(self, dtype: str) -> None:
        self.dtype = dtype


class _Storage(NamedTuple):
    dtype: str
    key: str
    numel: int
    view: tuple[int, int] | None  # legacy storage views: (element offset, length) in the root


class _TensorRef(NamedTuple):
    storage: Any
    offset: Any
    size: Any
    stride: Any


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_ignored: Any) -> _TensorRef:
    # Storages are only named while unpickling (legacy data follows the pickle), so defer.
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *_ignored: Any) -> Any:
    return data


_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "dict"): dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, name: str) -> None:
        super().__init__(file)
        self.name = name
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Protocol <= 2 pickles record builtins under their Python 2 module name.
        module = "builtins" if module == "__builtin__" else module
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"refusing to load '{module}.{name}' from {self.name}: only tensor state_dicts are read"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"{self.name} holds an unsupported persistent id {str(pid)[:80]}")
        view = pid[5] if len(pid) == 6 and pid[5] is not None else None
        storage = _Storage(pid[1].dtype, str(pid[2]), int(pid[4]),
                           (int(view[1]), int(view[2])) if view else None)
        self.storages[storage.key] = storage
        return storage


def _corrupt(name: str, why: str) -> CheckpointError:
    return CheckpointError(f"{name} is truncated or corrupt: {why}")


def _raw_dtype(dtype: str) -> np.dtype:
    return np.dtype("<u2" if dtype == _BF16 else dtype)


def _upcast(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == _BF16:
        return (raw.astype("<u4") << 16).view("<f4")
    return raw.astype(np.float32) if raw.dtype == np.float16 else raw


class _Source:
    """Typed arrays at byte offsets of an open file: memory-mapped, or read into fresh memory."""

    def __init__(self, f: io.BufferedReader, name: str, size: int, mmap: bool) -> None:
        self.f, self.name, self.size, self.mmap = f, name, size, mmap
        self._mm: np.memmap | None = None

    def read(self, offset: int, n: int) -> bytes:
        self.f.seek(offset)
        return self.f.read(n)

    def array(self, offset: int, count: int, dtype: np.dtype) -> np.ndarray:
        nbytes = count * dtype.itemsize
        if offset < 0 or count < 0 or offset + nbytes > self.size:
            raise _corrupt(self.name, f"{nbytes} bytes at offset {offset} run past the end of the file")
        if self.mmap and nbytes:
            if self._mm is None:
                self._mm = np.memmap(self.f, np.uint8, mode="r")
            return self._mm[offset:offset + nbytes].view(dtype)
        arr = np.empty(count, dtype)
        self.f.seek(offset)
        if self.f.readinto(arr.view(np.uint8)) != nbytes:
            raise _corrupt(self.name, f"short read at offset {offset}")
        return arr


Fetch = Callable[[_Storage], np.ndarray]


def _read_zip(src: _Source) -> tuple[Any, Fetch]:
    z = zipfile.ZipFile(src.f)  # not closed here: fetch reads from it later; src.f owns the file
    pkl = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
    if pkl is None:
        raise CheckpointError(f"{src.name} is a zip archive without data.pkl, not a PyTorch checkpoint")
    prefix = pkl[: -len("data.pkl")]
    if prefix + "byteorder" in z.namelist() and z.read(prefix + "byteorder").strip() != b"little":
        raise CheckpointError(f"{src.name} was saved big-endian; only little-endian checkpoints are read")
    obj = _SafeUnpickler(io.BytesIO(z.read(pkl)), src.name).load()

    def fetch(storage: _Storage) -> np.ndarray:
        info = z.getinfo(f"{prefix}data/{storage.key}")
        dtype = _raw_dtype(storage.dtype)
        if info.file_size < storage.numel * dtype.itemsize:
            raise _corrupt(src.name, f"storage {storage.key} is shorter than its {storage.numel} elements")
        if info.compress_type != zipfile.ZIP_STORED:
            return np.frombuffer(bytearray(z.read(info.filename)), dtype, storage.numel)
        header = src.read(info.header_offset, 30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise _corrupt(src.name, f"bad zip local header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        return src.array(info.header_offset + 30 + name_len + extra_len, storage.numel, dtype)

    return obj, fetch


def _read_legacy(src: _Source) -> tuple[Any, Fetch]:
    def load() -> Any:
        return _SafeUnpickler(src.f, src.name).load()

    src.f.seek(0)
    if load() != _LEGACY_MAGIC:
        raise CheckpointError(f"{src.name} is not a PyTorch checkpoint: no zip, safetensors or legacy header")
    if load() != _LEGACY_PROTOCOL:
        raise _corrupt(src.name, "unknown legacy protocol version")
    sys_info = load()
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise CheckpointError(f"{src.name} was saved big-endian; only little-endian checkpoints are read")
    unpickler = _SafeUnpickler(src.f, src.name)
    obj = unpickler.load()
    keys = load()
    # After the pickles: per storage key, an int64 element count and then the raw bytes.
    pos, where = src.f.tell(), {}
    for key in keys:
        head = src.read(pos, 8)
        if len(head) != 8:
            raise _corrupt(src.name, "storage data ends early")
        count = int.from_bytes(head, "little", signed=True)
        where[key] = (pos + 8, count)
        pos += 8 + count * _raw_dtype(unpickler.storages[key].dtype).itemsize

    def fetch(storage: _Storage) -> np.ndarray:
        offset, count = where[storage.key]
        if count < storage.numel:
            raise _corrupt(src.name, f"storage {storage.key} is shorter than its {storage.numel} elements")
        return src.array(offset, storage.numel, _raw_dtype(storage.dtype))

    return obj, fetch


def _read_safetensors(src: _Source) -> dict[str, np.ndarray]:
    # Parsed here rather than by safetensors.numpy, which cannot return bfloat16.
    head = src.read(0, 8)
    n = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 2 <= n <= src.size - 8:
        raise _corrupt(src.name, "the safetensors header runs past the end of the file")
    header = json.loads(src.read(8, n))
    out = {}
    for key in sorted(k for k in header if k != "__metadata__"):  # the format keeps no order
        entry = header[key]
        if entry["dtype"] not in _SAFETENSORS_DTYPES:
            raise CheckpointError(f"{src.name}: tensor {key!r} has unsupported dtype {entry['dtype']}")
        dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
        shape, (begin, end) = [int(d) for d in entry["shape"]], entry["data_offsets"]
        numel, raw = math.prod(shape), _raw_dtype(dtype)
        if min(shape, default=0) < 0 or begin < 0 or end - begin != numel * raw.itemsize:
            raise _corrupt(src.name, f"tensor {key!r} has inconsistent shape and data offsets")
        out[key] = _upcast(src.array(8 + n + begin, numel, raw), dtype).reshape(shape)
    return out


def _build(ref: _TensorRef, storage: np.ndarray, name: str) -> np.ndarray:
    offset, size, stride = ref.offset, tuple(ref.size), tuple(ref.stride)
    if not (isinstance(offset, int) and all(isinstance(d, int) for d in size + stride)
            and len(size) == len(stride) and offset >= 0 and min(size + stride, default=0) >= 0):
        raise _corrupt(name, f"malformed tensor (offset {offset}, size {size}, stride {stride})")
    if 0 in size:
        return np.empty(size, storage.dtype)
    # as_strided reads wherever it is told, so bound the tensor within its storage first
    if offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.size:
        raise _corrupt(name, f"a tensor of size {size} runs past its storage")
    expected, contiguous = 1, True
    for n, s in zip(reversed(size), reversed(stride)):
        contiguous &= n == 1 or s == expected
        expected *= n
    if contiguous:
        return storage[offset:offset + math.prod(size)].reshape(size)
    strides = [s * storage.itemsize for s in stride]
    return np.ascontiguousarray(np.lib.stride_tricks.as_strided(storage[offset:], size, strides))


def _select(obj: Any, name: str) -> dict[str, Any]:
    def is_tensor(v: Any) -> bool:
        return isinstance(v, (np.ndarray, _TensorRef))

    if isinstance(obj, dict) and not all(map(is_tensor, obj.values())):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(map(is_tensor, inner.values())):
                obj = inner
                break
    if not isinstance(obj, dict):
        what = "a single tensor" if is_tensor(obj) else f"a {type(obj).__name__}"
        raise CheckpointError(f"{name} holds {what}, not a state_dict")
    if not obj:
        raise CheckpointError(f"{name} holds an empty dict, not a state_dict")
    odd = [f"{k!r}: {type(v).__name__}" for k, v in obj.items() if not (isinstance(k, str) and is_tensor(v))]
    if odd:
        raise CheckpointError(f"{name} holds a dict with non-tensor entries ({', '.join(odd[:5])}), "
                              "not a state_dict")
    stripped = True
    while stripped:
        stripped = False
        for p in _PREFIXES:
            if all(k.startswith(p) for k in obj):
                obj, stripped = {k[len(p):]: v for k, v in obj.items()}, True
    return obj


def read_checkpoint(path: str | os.PathLike, *, mmap: bool = True) -> dict[str, np.ndarray]:
    """A PyTorch checkpoint's state_dict as {key: numpy array}, read without torch.

    Reads torch.save's zip and legacy formats and safetensors, unwrapping {"state_dict": ...}
    style wrappers and "module." / "_orig_mod." prefixes. Floats come back as float32 (float64
    stays), integers keep their dtype. With mmap=True, arrays are read-only views of the file
    where the format allows. Unpickling admits only tensor-building globals.

    Example (with a torchvision checkpoint in the working folder)::

        sd = read_checkpoint("resnet50-0676ba61.pth")
        sd["conv1.weight"].shape  # (64, 3, 7, 7)
    """
    name = os.fspath(path)
    with open(name, "rb") as f:  # a missing file raises FileNotFoundError naming the path
        try:
            return _read(_Source(f, name, os.fstat(f.fileno()).st_size, mmap))
        except CheckpointError:
            raise
        except Exception as e:  # whatever a cut or garbled file trips over in zipfile, pickle, json
            raise _corrupt(name, f"{type(e).__name__}: {e}") from e


def _read(src: _Source) -> dict[str, np.ndarray]:
    head = src.read(0, 16)
    if head.startswith(b"PK\x03\x04"):
        obj, fetch = _read_zip(src)
    elif src.name.endswith(".safetensors") or (
            len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < src.size):
        return {k: np.asarray(v) for k, v in _select(_read_safetensors(src), src.name).items()}
    else:
        obj, fetch = _read_legacy(src)
    cache: dict[str, np.ndarray] = {}  # per storage key: tensors sharing a storage share memory
    out = {}
    for key, ref in _select(obj, src.name).items():
        storage = ref.storage
        if not isinstance(storage, _Storage):
            raise _corrupt(src.name, f"tensor {key!r} has no storage")
        if storage.key not in cache:
            cache[storage.key] = _upcast(fetch(storage), storage.dtype)
        data = cache[storage.key]
        if storage.view is not None:
            data = data[storage.view[0]:storage.view[0] + storage.view[1]]
        out[key] = np.asarray(_build(ref, data, src.name))
    return out
