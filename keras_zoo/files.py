"""Writing results so that a failed command leaves nothing partial behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike) -> Iterator[str]:
    """Yields an empty temporary folder to write into; when the block succeeds its contents
    move into `out` (created if needed, files already there with the same names replaced),
    when it fails the temporary folder is removed and `out` is untouched.

    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "result")
    >>> with staged_dir(out) as tmp:
    ...     open(os.path.join(tmp, "a.txt"), "w").close()
    >>> os.listdir(out)
    ['a.txt']
    """
    tmp = tempfile.mkdtemp(prefix="keras_zoo-")
    try:
        yield tmp
        for root, _, files in os.walk(tmp):
            target = os.path.join(out, os.path.relpath(root, tmp))
            os.makedirs(target, exist_ok=True)
            for name in files:
                shutil.move(os.path.join(root, name), os.path.join(target, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
