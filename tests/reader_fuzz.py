"""Seeded fuzzing of keras_zoo.port.reader under a memory limit, in a process of its own.

    python tests/reader_fuzz.py SEED CASES FILE...

Each case cuts, flips or overwrites bytes of one of the FILEs (real checkpoints) and reads the
result; the only outcomes allowed are a dict of numpy arrays or a CheckpointError, each within
a second. The reader module is loaded by its path, so the process holds numpy and nothing
more, and the address-space limit bounds what any one read may allocate. Prints one line per
unexpected outcome and a summary; exits 1 if there was any.
"""

import importlib.util
import io
import os
import pathlib
import random
import resource
import sys
import time
import zipfile

LIMIT = 1 << 30  # bytes of address space for the whole process, numpy included
SLOW = 1.0  # seconds one read may take

READER = pathlib.Path(__file__).resolve().parents[1] / "keras_zoo" / "port" / "reader.py"


def load_reader():
    spec = importlib.util.spec_from_file_location("reader", READER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.choice(("cut", "flip", "flip", "overwrite", "int"))
    if kind == "cut":
        return bytes(data[: rng.randrange(len(data))])
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        if kind == "flip":
            data[at] ^= 1 << rng.randrange(8)
        elif kind == "overwrite":
            data[at : at + 8] = rng.randbytes(8)
        else:  # a plausible-looking length or count: small, huge or negative
            value = rng.choice((0, 1, 2**31 - 1, 2**32, 2**62, -1, rng.randrange(2**16)))
            data[at : at + 8] = (value % 2**64).to_bytes(8, "little")
    return bytes(data)


def repickled(archive: bytes, rng: random.Random) -> bytes:
    """The archive with its data.pkl mutated and a valid CRC, so the unpickler sees the damage."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(
                info.filename, mutate(data, rng) if info.filename.endswith("data.pkl") else data
            )
    return out.getvalue()


def main(seed: int, cases: int, files: list[str]) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    reader = load_reader()
    import numpy as np

    rng, originals, failures, outcomes = random.Random(seed), {}, [], {"dict": 0, "error": 0}
    for path in files:
        originals[path] = pathlib.Path(path).read_bytes()
    work = pathlib.Path(files[0]).parent / "fuzzed"
    work.mkdir(exist_ok=True)
    slowest = 0.0
    for case in range(cases):
        source = files[case % len(files)]
        data = originals[source]
        if data.startswith(b"PK") and rng.random() < 0.5:
            data = repickled(data, rng)
        else:
            data = mutate(data, rng)
        target = work / pathlib.Path(source).name
        target.write_bytes(data)
        start = time.perf_counter()
        try:
            got = reader.read_checkpoint(target)
            ok = isinstance(got, dict) and all(
                isinstance(k, str) and isinstance(v, np.ndarray) for k, v in got.items()
            )
            outcomes["dict"] += 1
            if not ok:
                failures.append(f"case {case} ({source}): returned {type(got).__name__}")
        except reader.CheckpointError as err:
            outcomes["error"] += 1
            if str(target) not in str(err):
                failures.append(f"case {case} ({source}): error does not name the file: {err}")
            if "out of memory" in str(err) or "MemoryError" in str(err):  # the limit was hit
                failures.append(f"case {case} ({source}): {err}")
        except BaseException as err:  # noqa: BLE001 - anything else is what this looks for
            failures.append(f"case {case} ({source}): {type(err).__name__}: {str(err)[:200]}")
        took = time.perf_counter() - start
        slowest = max(slowest, took)
        if took > SLOW:
            failures.append(f"case {case} ({source}): took {took:.2f} s")
    for line in failures:
        print(line)
    print(
        f"{cases} cases: {outcomes['dict']} dicts, {outcomes['error']} CheckpointErrors, "
        f"{len(failures)} unexpected; slowest read {slowest * 1000:.0f} ms"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]))
