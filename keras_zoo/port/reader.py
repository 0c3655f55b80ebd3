"""Reading PyTorch checkpoints into numpy, without torch and without running pickled code.

Three formats, told apart by content: torch.save's zip archive (torch >= 1.6), the legacy
pre-1.6 stream, and safetensors. Pickles go through an unpickler that admits only the few
globals a tensor state_dict needs, each mapped to an immutable stand-in defined here, and that
sets state on nothing but the dicts and placeholders the file itself made, so nothing a file
does outlives its read. Every size a file declares is checked against the bytes really there
before anything is allocated, and arrays are read into memory (never memory-mapped: a file cut
while mapped would kill the process with SIGBUS).
"""

from __future__ import annotations

import collections
import functools
import io
import json
import math
import os
import pickle
import reprlib
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np

__all__ = ["CheckpointError", "UnknownGlobal", "UnsafeCheckpointError", "read_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "ema")
_PREFIXES = ("module.", "_orig_mod.")  # DataParallel, torch.compile
_PLAIN = (int, float, str, bool, type(None))  # saved beside state_dicts: an epoch, a score
_BF16 = "bfloat16"  # stored as the upper 16 bits of a float32; numpy has no such dtype
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": _BF16,
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": _BF16,
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}
# What one read may allocate, as a multiple of the file's size (plus a fixed allowance): raw
# storages, float16 upcasts and copies of non-contiguous tensors stay well inside it, while a
# file that declares far more data than it holds (stride-0 tensors, aliased zip members,
# deflate bombs) is refused before the memory is taken.
_BUDGET_FACTOR, _BUDGET_SLACK = 8, 1 << 24
# Dict keys whose hash costs time linear in their size (a nested tuple's can be exponential).
_KEY_TYPES = (str, int, float, bool, bytes, type(None))
_UNKNOWN_HINT = (
    "allow_unknown=True (--allow-unknown-globals on the command line) reads the "
    "tensors beside it, with an inert placeholder for each unknown global"
)

_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother, _short.maxlong = 3, 60, 60, 40


def _describe(value: Any) -> str:
    """A bounded repr of checkpoint data: nested or shared structures cost little to print."""
    return _short.repr(value)


class CheckpointError(ValueError):
    """A checkpoint that is truncated, corrupt, too large for what it holds, or holds no
    tensor state_dict."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint pickle naming a global outside the few a tensor state_dict needs."""


class UnknownGlobal:
    """What `read_checkpoint(..., allow_unknown=True)` stands in for a global it does not
    know (an `argparse.Namespace`, a numpy scalar, a `torch.device`): it records the global's
    name and what the pickle passed it, and never calls anything."""

    global_name = "?"
    args: tuple
    kwargs: dict
    state: Any
    items: list

    def __new__(cls, *args: Any, **kwargs: Any) -> UnknownGlobal:
        self = object.__new__(cls)
        self.args, self.kwargs, self.state, self.items = args, kwargs, None, []
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> UnknownGlobal:
        return _placeholder(f"{self.global_name}(...)")(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items.append((key, value))

    def append(self, value: Any) -> None:
        self.items.append(value)

    def extend(self, values: Any) -> None:
        self.items.extend(values)

    def __repr__(self) -> str:
        return f"<unknown global {self.global_name}>"


def _placeholder(name: str) -> type[UnknownGlobal]:
    # a fresh class per global and per read: nothing set on it outlives the read
    return type("UnknownGlobal", (UnknownGlobal,), {"global_name": name})


class _StorageType(NamedTuple):  # immutable: a pickle cannot set state on it
    dtype: str


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


def _check_keys(keys: Any, name: str) -> None:
    for key in keys:
        if not isinstance(key, _KEY_TYPES):
            raise _corrupt(name, f"a dict key of type {type(key).__name__} ({_describe(key)})")


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, *_ignored: Any
) -> _TensorRef:
    # Storages are only named while unpickling (legacy data follows the pickle), so defer.
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *_ignored: Any) -> Any:
    return data


_DICTS = {("collections", "OrderedDict"): collections.OrderedDict, ("builtins", "dict"): dict}
_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}
_REFUSED_OPS = {  # opcodes no tensor state_dict uses: sets hash their items, buffers allocate
    op[0]: name
    for name, op in (
        ("a set", pickle.EMPTY_SET),
        ("a set", pickle.ADDITEMS),
        ("a frozenset", pickle.FROZENSET),
        ("an out-of-band buffer", pickle.BYTEARRAY8),
        ("an out-of-band buffer", pickle.NEXT_BUFFER),
        ("an out-of-band buffer", pickle.READONLY_BUFFER),
        ("an extension code", pickle.EXT1),
        ("an extension code", pickle.EXT2),
        ("an extension code", pickle.EXT4),
    )
}


class _Bounded:
    """A file up to byte `end`, for the unpickler: a length the pickle declares is checked
    against what remains before anything is read or allocated."""

    def __init__(self, f: Any, name: str, end: int) -> None:
        self.f, self.name, self.end = f, name, end

    def read(self, n: int = -1) -> bytes:
        left = self.end - self.f.tell()
        if n < 0:
            n = left
        if n > left:
            raise _truncated(
                self.name, f"the pickle asks for {n} bytes where {max(left, 0)} remain"
            )
        return self.f.read(n)

    def readline(self) -> bytes:
        return self.f.readline(max(self.end - self.f.tell(), 0))


class _SafeUnpickler(pickle._Unpickler):  # the Python unpickler: its opcodes can be checked
    # typeshed leaves out the Python unpickler's stack and opcode methods (the type: ignores)
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)
    stack: list[Any]

    def __init__(self, file: _Bounded, name: str, allow_unknown: bool) -> None:
        super().__init__(file)
        self.name, self.allow_unknown = name, allow_unknown
        self.storages: dict[str, _Storage] = {}
        self.made: dict[int, Any] = {}  # the dicts this pickle built, by id (kept alive)

    def find_class(self, module: str, name: str) -> Any:
        # Protocol <= 2 pickles record builtins under their Python 2 module name.
        module = "builtins" if module == "__builtin__" else module
        if (module, name) in _DICTS:
            return self._dict_maker(_DICTS[(module, name)])
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if self.allow_unknown:
            return _placeholder(f"{module}.{name}")
        raise UnsafeCheckpointError(
            f"refusing to load '{module}.{name}' from {self.name}: only tensor state_dicts are "
            f"read; {_UNKNOWN_HINT}"
        )

    def _dict_maker(self, kind: type) -> Callable[..., dict]:
        def make(*args: Any) -> dict:
            if len(args) > 1 or (args and not isinstance(args[0], (dict, list))):
                raise _corrupt(self.name, f"{kind.__name__} built from {_describe(args)}")
            items = list(
                args[0].items() if args and isinstance(args[0], dict) else args[0] if args else ()
            )
            if not all(isinstance(i, tuple) and len(i) == 2 for i in items):
                raise _corrupt(self.name, f"{kind.__name__} built from {_describe(args)}")
            _check_keys((k for k, _ in items), self.name)
            return self._made(kind(items))

        return make

    def _made(self, obj: Any) -> Any:
        self.made[id(obj)] = obj
        return obj

    def persistent_load(self, pid: Any) -> _Storage:
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
            and pid[4] >= 0
        ):
            raise _corrupt(self.name, f"an unsupported persistent id {_describe(pid)}")
        view = pid[5] if len(pid) == 6 and pid[5] is not None else None
        if view is not None and not (
            isinstance(view, tuple)
            and len(view) == 3
            and all(isinstance(v, int) and v >= 0 for v in view[1:])
        ):
            raise _corrupt(self.name, f"an unsupported storage view {_describe(view)}")
        storage = _Storage(pid[1].dtype, pid[2], pid[4], (view[1], view[2]) if view else None)
        self.storages[storage.key] = storage
        return storage

    # The opcodes below are the Python unpickler's, with checks first.
    def load_build(self) -> None:
        inst = self.stack[-2] if len(self.stack) > 1 else None
        if id(inst) not in self.made and not isinstance(inst, UnknownGlobal):
            raise _corrupt(self.name, f"the pickle sets state on {_describe(inst)}")
        super().load_build()  # type: ignore[misc]

    def load_newobj(self) -> None:
        cls = self.stack[-2] if len(self.stack) > 1 else None
        if not (isinstance(cls, type) and issubclass(cls, UnknownGlobal)):
            raise _corrupt(self.name, f"the pickle creates an object of {_describe(cls)}")
        super().load_newobj()  # type: ignore[misc]

    def load_newobj_ex(self) -> None:
        cls = self.stack[-3] if len(self.stack) > 2 else None
        if not (isinstance(cls, type) and issubclass(cls, UnknownGlobal)):
            raise _corrupt(self.name, f"the pickle creates an object of {_describe(cls)}")
        super().load_newobj_ex()  # type: ignore[misc]

    def load_empty_dictionary(self) -> None:
        super().load_empty_dictionary()  # type: ignore[misc]
        self._made(self.stack[-1])

    def load_dict(self) -> None:
        _check_keys(self.stack[0::2], self.name)
        super().load_dict()  # type: ignore[misc]
        self._made(self.stack[-1])

    def load_setitem(self) -> None:
        _check_keys(self.stack[-2:-1], self.name)
        super().load_setitem()  # type: ignore[misc]

    def load_setitems(self) -> None:
        _check_keys(self.stack[0::2], self.name)
        super().load_setitems()  # type: ignore[misc]


def _refuse(unpickler: _SafeUnpickler, code: int) -> None:
    raise _corrupt(
        unpickler.name, f"the pickle holds {_REFUSED_OPS[code]}, which no state_dict does"
    )


_SafeUnpickler.dispatch.update(
    {
        pickle.BUILD[0]: _SafeUnpickler.load_build,
        pickle.NEWOBJ[0]: _SafeUnpickler.load_newobj,
        pickle.NEWOBJ_EX[0]: _SafeUnpickler.load_newobj_ex,
        pickle.EMPTY_DICT[0]: _SafeUnpickler.load_empty_dictionary,
        pickle.DICT[0]: _SafeUnpickler.load_dict,
        pickle.SETITEM[0]: _SafeUnpickler.load_setitem,
        pickle.SETITEMS[0]: _SafeUnpickler.load_setitems,
        **{code: functools.partial(_refuse, code=code) for code in _REFUSED_OPS},
    }
)


def _corrupt(name: str, why: str) -> CheckpointError:
    return CheckpointError(f"{name} is corrupt: {why}")


def _truncated(name: str, why: str) -> CheckpointError:
    return CheckpointError(f"{name} is truncated: {why}")


def _raw_dtype(dtype: str) -> np.dtype:
    return np.dtype("<u2" if dtype == _BF16 else dtype)


class _Source:
    """An open checkpoint file: bounded reads of its bytes into fresh memory, and the budget of
    bytes a read of it may allocate."""

    def __init__(self, f: io.BufferedReader, name: str, size: int) -> None:
        self.f, self.name, self.size = f, name, size
        self.budget = _BUDGET_FACTOR * size + _BUDGET_SLACK

    def spend(self, nbytes: int, what: str) -> None:
        if nbytes > self.budget:
            raise CheckpointError(
                f"{self.name} declares more data than it holds: {what} would take {nbytes} "
                f"bytes, past what a file of {self.size} bytes may expand to"
            )
        self.budget -= nbytes

    def read(self, offset: int, n: int) -> bytes:
        self.f.seek(offset)
        return self.f.read(n)

    def array(self, offset: int, count: int, dtype: np.dtype) -> np.ndarray:
        nbytes = count * dtype.itemsize
        if offset < 0 or count < 0 or offset + nbytes > self.size:
            raise _truncated(
                self.name,
                f"{nbytes} bytes at offset {offset} run past the end of "
                f"the file ({self.size} bytes)",
            )
        self.spend(nbytes, f"a storage of {count} elements")
        arr = np.empty(count, dtype)
        self.f.seek(offset)
        if self.f.readinto(arr.view(np.uint8).data) != nbytes:
            raise _truncated(
                self.name, f"the file ended while reading {nbytes} bytes at offset {offset}"
            )
        return arr

    def upcast(self, raw: np.ndarray, dtype: str) -> np.ndarray:
        if dtype == _BF16 or raw.dtype == np.float16:
            self.spend(raw.size * 4, f"a float32 copy of {raw.size} elements")
            if dtype == _BF16:
                return (raw.astype("<u4") << 16).view("<f4")
            return raw.astype(np.float32)
        return raw


Fetch = Callable[[_Storage], np.ndarray]


def _read_member(src: _Source, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytearray:
    """A deflated (or otherwise compressed) member, its CRC checked, within the budget."""
    src.spend(info.file_size, f"the deflated member {info.filename}")
    data = bytearray(info.file_size)
    with z.open(info) as f:
        got = f.readinto(data)  # type: ignore[attr-defined]
        f.read(1)  # reaching the end is what makes zipfile check the CRC
    if got != info.file_size:
        raise _truncated(src.name, f"{info.filename} ends before its {info.file_size} bytes")
    return data


def _read_zip(src: _Source, allow_unknown: bool) -> tuple[Any, Fetch]:
    try:
        z = zipfile.ZipFile(
            src.f
        )  # not closed here: fetch reads from it later; src.f owns the file
    except zipfile.BadZipFile:
        raise _truncated(
            src.name, "it starts as a zip archive but has no zip directory at its end"
        ) from None
    pkl = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
    if pkl is None:
        raise CheckpointError(
            f"{src.name} is a zip archive without data.pkl, not a PyTorch checkpoint"
        )
    prefix = pkl[: -len("data.pkl")]
    if (
        prefix + "byteorder" in z.namelist()
        and bytes(_member_bytes(src, z, z.getinfo(prefix + "byteorder"))).strip() != b"little"
    ):
        raise CheckpointError(
            f"{src.name} was saved big-endian; only little-endian checkpoints are read"
        )
    data = bytes(_member_bytes(src, z, z.getinfo(pkl)))
    obj = _SafeUnpickler(
        _Bounded(io.BytesIO(data), src.name, len(data)), src.name, allow_unknown
    ).load()

    def fetch(storage: _Storage) -> np.ndarray:
        try:
            info = z.getinfo(f"{prefix}data/{storage.key}")
        except KeyError:
            raise _corrupt(
                src.name, f"storage {_describe(storage.key)} is not in the archive"
            ) from None
        dtype = _raw_dtype(storage.dtype)
        if info.file_size < storage.numel * dtype.itemsize:
            raise _corrupt(
                src.name, f"storage {storage.key} is shorter than its {storage.numel} elements"
            )
        raw = np.frombuffer(_member_bytes(src, z, info), np.uint8)
        return raw[: storage.numel * dtype.itemsize].view(dtype)

    return obj, fetch


def _member_bytes(src: _Source, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    """A member's bytes (read from the file when stored, as torch.save writes them), CRC checked."""
    if info.compress_type != zipfile.ZIP_STORED:
        return _read_member(src, z, info)
    header = src.read(info.header_offset, 30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise _corrupt(src.name, f"bad zip local header for {info.filename}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    data = src.array(info.header_offset + 30 + name_len + extra_len, info.file_size, np.dtype("u1"))
    if zlib.crc32(data.data) != info.CRC:
        raise _corrupt(src.name, f"{info.filename} fails its CRC check")
    return data


def _read_legacy(src: _Source, allow_unknown: bool) -> tuple[Any, Fetch]:
    stream = _Bounded(src.f, src.name, src.size)

    def load() -> Any:
        return _SafeUnpickler(stream, src.name, allow_unknown).load()

    src.f.seek(0)
    try:
        magic = load()
    except Exception:  # not a pickle at all
        magic = None
    if not (isinstance(magic, int) and magic == _LEGACY_MAGIC):
        raise CheckpointError(
            f"{src.name} is not a PyTorch checkpoint: no zip, safetensors or legacy header"
        )
    if load() != _LEGACY_PROTOCOL:
        raise _corrupt(src.name, "unknown legacy protocol version")
    sys_info = load()
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise CheckpointError(
            f"{src.name} was saved big-endian; only little-endian checkpoints are read"
        )
    unpickler = _SafeUnpickler(stream, src.name, allow_unknown)
    obj = unpickler.load()
    keys = load()
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise _corrupt(src.name, f"the storage keys are {_describe(keys)}")
    # After the pickles: per storage key, an int64 element count and then the raw bytes.
    pos, where = src.f.tell(), {}
    for key in keys:
        head = src.read(pos, 8)
        if len(head) != 8:
            raise _truncated(src.name, "storage data ends early")
        count = int.from_bytes(head, "little", signed=True)
        if key not in unpickler.storages or count < 0:
            raise _corrupt(src.name, f"storage {_describe(key)} is not one the pickle names")
        where[key] = (pos + 8, count)
        pos += 8 + count * _raw_dtype(unpickler.storages[key].dtype).itemsize

    def fetch(storage: _Storage) -> np.ndarray:
        if storage.key not in where:
            raise _corrupt(src.name, f"storage {_describe(storage.key)} has no data")
        offset, count = where[storage.key]
        if count < storage.numel:
            raise _corrupt(
                src.name, f"storage {storage.key} is shorter than its {storage.numel} elements"
            )
        return src.array(offset, storage.numel, _raw_dtype(storage.dtype))

    return obj, fetch


def _read_safetensors(src: _Source) -> dict[str, np.ndarray]:
    # Parsed here rather than by safetensors.numpy, which cannot return bfloat16.
    head = src.read(0, 8)
    n = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 2 <= n <= src.size - 8:
        raise _truncated(src.name, "the safetensors header runs past the end of the file")
    try:
        header = json.loads(src.read(8, n))
    except (ValueError, RecursionError) as err:
        raise _corrupt(
            src.name, f"the safetensors header is not valid JSON ({_describe(str(err))})"
        ) from None
    if not isinstance(header, dict):
        raise _corrupt(src.name, "the safetensors header is not a JSON object")
    entries = []
    for key in sorted(k for k in header if k != "__metadata__"):  # the format keeps no order
        entry = header[key]
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(isinstance(d, int) for d in entry["data_offsets"])
        ):
            raise _corrupt(
                src.name, f"tensor {_describe(key)} has a malformed entry {_describe(entry)}"
            )
        if entry.get("dtype") not in _SAFETENSORS_DTYPES:
            raise CheckpointError(
                f"{src.name}: tensor {key!r} has unsupported dtype {_describe(entry.get('dtype'))}"
            )
        dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
        (begin, end), raw = entry["data_offsets"], _raw_dtype(dtype)
        if begin < 0 or end - begin != math.prod(entry["shape"]) * raw.itemsize:
            raise _corrupt(src.name, f"tensor {key!r} has inconsistent shape and data offsets")
        entries.append((begin, end, key, dtype))
    # the format's rule: the tensors tile the data buffer, with no overlaps and no holes
    position, data_size = 0, src.size - 8 - n
    for begin, end, key, _ in sorted(entries):
        if begin != position:
            raise _corrupt(
                src.name,
                f"tensor {key!r} "
                f"{'overlaps another' if begin < position else 'leaves a gap before it'}"
                f" (bytes {begin}..{end}, the previous tensor ends at {position})",
            )
        position = end
    if position != data_size:
        why = (
            "run past the end of the file"
            if position > data_size
            else "leave bytes unused at the end"
        )
        raise (_truncated if position > data_size else _corrupt)(
            src.name, f"the tensors' {position} bytes {why} (the data holds {data_size})"
        )
    out = {}
    for begin, _end, key, dtype in entries:
        shape = header[key]["shape"]
        out[key] = src.upcast(
            src.array(8 + n + begin, math.prod(shape), _raw_dtype(dtype)), dtype
        ).reshape(shape)
    return out


def _build(ref: _TensorRef, storage: np.ndarray, src: _Source) -> np.ndarray:
    offset, size, stride = ref.offset, ref.size, ref.stride
    if not (
        isinstance(offset, int)
        and isinstance(size, (tuple, list))
        and isinstance(stride, (tuple, list))
        and all(isinstance(d, int) for d in (*size, *stride))
        and len(size) == len(stride)
        and offset >= 0
        and min((*size, *stride), default=0) >= 0
    ):
        raise _corrupt(
            src.name,
            f"malformed tensor (offset {_describe(offset)}, size "
            f"{_describe(size)}, stride {_describe(stride)})",
        )
    size, stride = tuple(size), tuple(stride)
    if 0 in size:
        return np.empty(size, storage.dtype)
    # as_strided reads wherever it is told, so bound the tensor within its storage first
    if offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.size:
        raise _corrupt(src.name, f"a tensor of size {size} runs past its storage")
    expected, contiguous = 1, True
    for n, s in zip(reversed(size), reversed(stride)):
        contiguous &= n == 1 or s == expected
        expected *= n
    if contiguous:
        return storage[offset : offset + math.prod(size)].reshape(size)
    numel = math.prod(size)
    if numel > storage.size:  # only overlapping strides (stride 0) declare more than is stored
        raise CheckpointError(
            f"{src.name} declares more data than it holds: a tensor of size "
            f"{size} (stride {stride}) over a storage of {storage.size} elements"
        )
    src.spend(numel * storage.itemsize, f"a tensor of size {size}")
    strides = [s * storage.itemsize for s in stride]
    return np.ascontiguousarray(np.lib.stride_tricks.as_strided(storage[offset:], size, strides))


def _is_tensor(v: Any) -> bool:
    return isinstance(v, (np.ndarray, _TensorRef))


def _is_state_dict(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and all(map(_is_tensor, v.values()))


def _strip_prefixes(obj: dict[str, Any]) -> dict[str, Any]:
    p = next((p for p in _PREFIXES if obj and all(str(k).startswith(p) for k in obj)), None)
    return obj if p is None else _strip_prefixes({k[len(p) :]: v for k, v in obj.items()})


def _side_by_side(obj: dict) -> dict[str, Any] | None:
    """State_dicts saved side by side with plain values (PFLD-pytorch's train.py: {"epoch",
    "pfld_backbone", "auxiliarynet"}) as one, each one's keys under its name; else None."""
    parts = {k: v for k, v in obj.items() if isinstance(k, str) and "." not in k}
    parts = {k: v for k, v in parts.items() if _is_state_dict(v)}
    if not parts or not all(isinstance(v, _PLAIN) for k, v in obj.items() if k not in parts):
        return None
    return {f"{p}.{k}": v for p, sd in parts.items() for k, v in _strip_prefixes(sd).items()}


def _select(obj: Any, name: str) -> dict[str, Any]:
    if isinstance(obj, dict) and not all(map(_is_tensor, obj.values())):
        inner = next((obj[k] for k in _WRAPPER_KEYS if _is_state_dict(obj.get(k))), None)
        obj = inner or _side_by_side(obj) or obj
    if not isinstance(obj, dict):
        what = (
            "a single tensor"
            if _is_tensor(obj)
            else f"an object of {obj.global_name}"
            if isinstance(obj, UnknownGlobal)
            else f"a {type(obj).__name__}"
        )
        raise CheckpointError(f"{name} holds {what}, not a state_dict")
    if not obj:
        raise CheckpointError(f"{name} holds an empty dict, not a state_dict")
    odd = [
        f"{_describe(k)}: {_describe(v) if isinstance(v, UnknownGlobal) else type(v).__name__}"
        for k, v in obj.items()
        if not (isinstance(k, str) and _is_tensor(v))
    ]
    if odd:
        raise CheckpointError(
            f"{name} holds a dict with non-tensor entries ({', '.join(odd[:5])}), not a state_dict"
        )
    return _strip_prefixes(obj)


def read_checkpoint(
    path: str | os.PathLike, *, allow_unknown: bool = False
) -> dict[str, np.ndarray]:
    """A PyTorch checkpoint's state_dict as {key: numpy array}, read without torch.

    Reads torch.save's zip and legacy formats and safetensors, unwrapping {"state_dict": ...}
    style wrappers and "module." / "_orig_mod." prefixes; state_dicts side by side ({"epoch",
    "pfld_backbone", "auxiliarynet"}) read as one ("pfld_backbone.conv1.weight"). Floats come
    back as float32 (float64 stays), integers keep their dtype; arrays are in memory,
    independent of the file.
    Unpickling admits only tensor-building globals; any other global is refused by name unless
    `allow_unknown=True`, which stands an inert `UnknownGlobal` placeholder in for it (training
    scripts often save an argparse.Namespace or a torch.device beside the state_dict): the
    placeholder records the name and arguments and calls nothing. A truncated, corrupt or
    inconsistent file raises CheckpointError naming it, in memory and time bounded by the
    file's size.

    Example (with a torchvision checkpoint in the working folder)::

        sd = read_checkpoint("resnet50-0676ba61.pth")
        sd["conv1.weight"].shape  # (64, 3, 7, 7)
    """
    name = os.fspath(path)
    with open(name, "rb") as f:  # a missing file raises FileNotFoundError naming the path
        try:
            return _read(_Source(f, name, os.fstat(f.fileno()).st_size), allow_unknown)
        except CheckpointError:
            raise
        except MemoryError:
            raise CheckpointError(f"{name} could not be read: out of memory") from None
        except RecursionError:
            raise _corrupt(name, "its data nests too deeply") from None
        except (EOFError, pickle.UnpicklingError) as err:
            truncated = isinstance(err, EOFError) or "truncated" in str(err)
            raise (_truncated if truncated else _corrupt)(
                name,
                f"the pickle {'ends early' if truncated else 'is malformed'} "
                f"({type(err).__name__}: {_message(err)})",
            ) from None
        except Exception as err:  # whatever else a garbled file trips over in zipfile or pickle
            raise _corrupt(name, f"{type(err).__name__}: {_message(err)}") from None


def _message(err: BaseException) -> str:
    # str() of an exception may repr hostile data (a KeyError's key): describe its args instead
    return ", ".join(a if isinstance(a, str) else _describe(a) for a in err.args)[:200]


def _read(src: _Source, allow_unknown: bool) -> dict[str, np.ndarray]:
    if src.size == 0:
        raise CheckpointError(f"{src.name} is empty, not a PyTorch checkpoint")
    head = src.read(0, 16)
    if head.startswith(b"PK\x03\x04"):
        obj, fetch = _read_zip(src, allow_unknown)
    elif src.name.endswith(".safetensors") or (
        len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < src.size
    ):
        return _select(_read_safetensors(src), src.name)
    else:
        obj, fetch = _read_legacy(src, allow_unknown)
    cache: dict[str, np.ndarray] = {}  # per storage key: tensors sharing a storage share memory
    out = {}
    for key, ref in _select(obj, src.name).items():
        storage = ref.storage
        if not isinstance(storage, _Storage):
            raise _corrupt(src.name, f"tensor {key!r} has no storage")
        if storage.key not in cache:
            cache[storage.key] = src.upcast(fetch(storage), storage.dtype)
        data = cache[storage.key]
        if storage.view is not None:
            data = data[storage.view[0] : storage.view[0] + storage.view[1]]
        out[key] = _build(ref, data, src)
    return out
