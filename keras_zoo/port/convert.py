"""`port`: a PyTorch checkpoint in, a Keras weights file for the matching model out.

The file is written atomically (a failed or killed port leaves nothing behind: see
keras_zoo.files) and records where it came from: the source file's name and sha256, the model
id, the keras_zoo version, and the measured error when the numeric check ran.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import h5py
import keras
import numpy as np

from keras_zoo import checks
from keras_zoo.files import atomic_file, check_writable
from keras_zoo.port.compare import relative_error
from keras_zoo.port.loading import fit_checkpoint

CHECK_TOLERANCE = 2e-5  # max |keras - torch| / max |torch| on the logits, float32
PROVENANCE_PREFIX = "keras_zoo."


@dataclasses.dataclass(frozen=True)
class PortResult:
    """What `port` wrote: the file, the model id, the source and its sha256, the measured
    relative error (None without a check) and the seconds the port took."""

    path: str
    model: str
    source: str
    sha256: str
    error: float | None
    seconds: float


def sha256_of(path: str, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def git_blob_of(path: str, chunk: int = 1 << 22) -> str:
    """The git blob id of the file at `path`: the sha1 of b"blob <size>\0" and its bytes."""
    digest = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_against_torch(
    model: keras.Model,
    state: dict[str, np.ndarray],
    module: Any,
    *,
    size: int = 224,
    seed: int = 0,
) -> float:
    """max |keras - torch| / max |torch| of the logits on random images.

    The checkpoint is loaded (strictly) into the PyTorch `module` of the same architecture and
    both run on the same random NHWC batch.
    """
    import torch

    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    module.eval()
    x = np.random.default_rng(seed).normal(size=(2, size, size, 3)).astype("float32")
    with torch.no_grad():
        expected = module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    got = np.asarray(model.predict(x, verbose=0))
    return relative_error(got, expected)


def _identity(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def torchvision_reference(name: str, classes: int) -> Any:
    """torchvision's model `name` with `classes` outputs: the default for the numeric check.

    torchvision is imported through `keras_zoo.torch_reference.import_torchvision`, which also
    works on CPU builds of torch that lack torchvision's compiled operators."""
    from keras_zoo.torch_reference import import_torchvision

    try:
        torchvision = import_torchvision()
    except Exception as err:  # missing, or a build whose compiled ops do not match torch's
        raise RuntimeError(
            f"the numeric check needs torch and torchvision ({err}); pass reference= (or "
            "--reference MODULE:FUNCTION) to compare against another PyTorch module"
        ) from None
    return torchvision.models.get_model(name, weights=None, num_classes=classes)


def _check_destination(dst: str) -> None:
    if not dst.endswith((".weights.h5", ".h5")):
        raise ValueError(f"destination {dst!r} must end in .weights.h5 (or .h5 for legacy H5)")
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise ValueError(f"destination {dst!r}: folder {folder!r} does not exist")
    check_writable(dst)  # a read-only folder fails now, not after the port's work


def write_weights(model: keras.Model, dst: str, provenance: dict[str, Any]) -> None:
    """Saves `model`'s weights to `dst` (.weights.h5, or legacy H5 for other .h5 names) with
    `provenance` as HDF5 attributes, through a temporary file renamed into place
    (`keras_zoo.files.atomic_file`: a kill leaves no partial `dst`)."""
    _check_destination(dst)
    with atomic_file(dst) as tmp:
        if dst.endswith(".weights.h5"):
            model.save_weights(tmp, overwrite=True)
        else:
            model.save(tmp, overwrite=True)  # legacy H5, which load_weights also reads
        with h5py.File(tmp, "a") as f:
            for key, value in provenance.items():
                f.attrs[PROVENANCE_PREFIX + key] = value


def provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance `port` recorded in a weights file ({} for other files)."""
    with h5py.File(path, "r") as f:
        return {
            key[len(PROVENANCE_PREFIX) :]: (value.item() if hasattr(value, "item") else value)
            for key, value in f.attrs.items()
            if key.startswith(PROVENANCE_PREFIX)
        }


def port(
    model: keras.Model | str,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    check: bool = False,
    reference: Callable[[str, int], Any] | None = None,
    layout: str | None = None,
    allow_unknown: bool = False,
    model_for_checkpoint: Callable[[str, dict, str | None], keras.Model] | None = None,
    identify: Callable[[Mapping[str, np.ndarray]], str | None] | None = None,
) -> PortResult:
    """Ports the PyTorch checkpoint `src` into a Keras weights file `dst` for `model`: any
    Keras model whose weighted layers are named after the checkpoint's module paths, or a
    name that `model_for_checkpoint(name, state_dict, layout)` builds a model for
    (`keras_zoo.pretrained.port` passes the registry's: a keras_zoo model id, built with the
    checkpoint's number of classes).

    The checkpoint's key layout ("torchvision", "timm" or "megvii") is detected unless
    `layout` is given, and converted to the model's names (keys in no known layout are
    matched as they are). Every checkpoint tensor must fit
    the model exactly (a checkpoint of another architecture fails, naming the id it looks like
    when `identify(state_dict)` names one). With `check=True`, the ported model and the
    PyTorch model (`reference(name, classes)`, torchvision's by default) are compared on
    random images and a relative error above 2e-5 fails the port. Nothing is written unless
    everything succeeded. `allow_unknown=True` reads a checkpoint that holds other objects
    beside its tensors (an argparse.Namespace, a torch.device) with inert placeholders for
    them (`read_checkpoint`).

    Example (`keras_zoo.pretrained.port`, which knows the registry's ids, with a torchvision
    checkpoint in the working folder)::

        from keras_zoo.pretrained import port

        result = port("resnet50", "resnet50-0676ba61.pth", "resnet50.weights.h5")
        result.seconds, result.sha256
    """
    from keras_zoo._version import __version__
    from keras_zoo.port.key_maps import convert_state_dict, detect_layout
    from keras_zoo.port.reader import read_checkpoint

    start = time.perf_counter()
    src, dst = checks.check_checkpoint(src, "src"), os.fspath(dst)
    _check_destination(dst)
    before = _identity(src)
    digest = sha256_of(src)  # of the bytes read below: a file that changes meanwhile fails
    state = read_checkpoint(src, allow_unknown=allow_unknown)
    if _identity(src) != before:
        raise ValueError(f"{src} changed while it was read; nothing written")
    layout = layout or detect_layout(state)
    if layout is not None:  # otherwise matched by name as they are
        state = convert_state_dict(state, layout)
    if isinstance(model, str):
        if model_for_checkpoint is None:
            raise TypeError(
                "port(name, ...) needs model_for_checkpoint= (keras_zoo.pretrained.port "
                "passes the registry's); pass a keras.Model"
            )
        model = model_for_checkpoint(model, state, layout)
    name = model.name
    fit_checkpoint(model, state, source=os.path.basename(src), identify=identify)
    error = None
    if check:
        classes = model.outputs[0].shape[-1]
        module = (reference or torchvision_reference)(name, classes)
        error = check_against_torch(model, state, module)
        if not error <= CHECK_TOLERANCE:
            raise ValueError(
                f"numeric check failed for {name} from {os.path.basename(src)}: max relative "
                f"logit error {error:.3g} > {CHECK_TOLERANCE:g}; nothing written"
            )
    record = {
        "model": name,
        "source": os.path.basename(src),
        "source_sha256": digest,
        "version": __version__,
    }
    if error is not None:
        record["check_max_relative_error"] = error
    write_weights(model, dst, record)
    return PortResult(dst, name, os.path.basename(src), digest, error, time.perf_counter() - start)
