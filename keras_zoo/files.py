"""Writing results so that a failed or killed command leaves nothing partial behind.

A result is written under a hidden name beside its destination, on the same filesystem, and
renamed into place in one step when it is complete. The hidden name holds the writing
process's id, `.keras_zoo-<pid>-<n>.<name of the destination>`: a failure (an exception,
Ctrl-C, or SIGTERM through `terminate_as_interrupt`) removes it, and what a SIGKILL, which no
process can catch, leaves behind is removed by the next write to the same destination once
its process is gone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator

TEMP_PREFIX = ".keras_zoo-"
_serial = itertools.count()  # several partial results of one process never share a name


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread was by `terminate_as_interrupt`: a
    KeyboardInterrupt, so that the cleanups that run for Ctrl-C run for it too."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """For the block, SIGTERM raises `Terminated` in the main thread, so that its `finally`
    and `except BaseException` cleanups run; once they have, the process ends by SIGTERM as
    the sender asked (even where the block caught the exception).

    Only where SIGTERM has its default action and in the main thread, the one that runs
    Python's signal handlers: a handler of the program's own, an ignored SIGTERM and nested
    blocks are left as they are.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    received = []

    def interrupt(signum, frame):
        received.append(signum)
        if len(received) == 1:  # a second SIGTERM must not break off the first one's cleanup
            raise Terminated(f"terminated by signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if received:
            sys.stdout.flush()
            sys.stderr.flush()
            signal.raise_signal(signal.SIGTERM)


@contextlib.contextmanager
def atomic_file(dst: str | os.PathLike) -> Iterator[str]:
    """Yields the path of a new empty file beside `dst` to write into; when the block
    succeeds the file is renamed onto `dst` in one step, when it fails (SIGTERM included) it is
    removed and `dst` is untouched. An unwritable folder fails on entry, naming `dst`.

    The temporary name ends with dst's name, so writers that insist on a suffix (Keras's
    `.weights.h5`) accept it.

    >>> import os, tempfile
    >>> dst = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> with atomic_file(dst) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    >>> open(dst).read(), os.listdir(os.path.dirname(dst))
    ('done', ['a.txt'])
    """
    dst = os.fspath(dst)
    folder, name = os.path.split(os.path.abspath(dst))
    with terminate_as_interrupt():
        tmp = _claim(dst, folder, name, _create_file)
        try:
            yield tmp
            os.replace(tmp, dst)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def check_writable(dst: str | os.PathLike) -> None:
    """Fails, naming `dst`, unless `atomic_file(dst)` can create its file: the check to make
    before long work whose result goes to `dst`."""
    dst = os.fspath(dst)
    folder, name = os.path.split(os.path.abspath(dst))
    os.unlink(_claim(dst, folder, name, _create_file))


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike) -> Iterator[str]:
    """Yields an empty hidden folder beside `out` to write into; when the block succeeds its
    contents move into `out` (created if needed, files already there with the same names
    replaced), when it fails (SIGTERM included) the folder is removed and `out` is untouched.

    Every move is a rename within one filesystem: a new `out` is the staged folder renamed,
    in one step; into an existing one each file is renamed. Where `out` is a mount point or
    its parent folder is not writable, the staging folder is a hidden one inside `out`.

    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "result")
    >>> with staged_dir(out) as tmp:
    ...     open(os.path.join(tmp, "a.txt"), "w").close()
    >>> os.listdir(out)
    ['a.txt']
    """
    given = os.fspath(out)
    out = os.path.abspath(given)
    home = _staging_home(given, out)
    name = os.path.basename(out)
    if home == out:  # and what a killed run left beside out before out existed
        _remove_stale(os.path.dirname(out), name)
    with terminate_as_interrupt():
        stage = _claim(given, home, name, os.mkdir)
        try:
            yield stage
            _move_in(stage, out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _staging_home(given: str, out: str) -> str:
    """The folder to stage `out` in: its parent (or first existing ancestor), or `out` itself
    where a rename from its parent would cross filesystems or the parent is read-only."""
    if os.path.isdir(out):
        parent = os.path.dirname(out)
        same_filesystem = os.stat(parent).st_dev == os.stat(out).st_dev
        return parent if same_filesystem and os.access(parent, os.W_OK) else out
    if os.path.lexists(out):
        raise NotADirectoryError(f"{given!r}: expected a folder, found a file")
    folder = os.path.dirname(out)
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"{given!r}: {folder!r} is a file, not a folder")
    return folder


def _move_in(stage: str, out: str) -> None:
    if not os.path.lexists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        os.rename(stage, out)
        return
    for root, _, files in os.walk(stage):
        target = os.path.join(out, os.path.relpath(root, stage))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.replace(os.path.join(root, name), os.path.join(target, name))


def _create_file(path: str) -> None:
    # the mode the umask gives new files, where mkstemp's would be 0600
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _claim(given: str, folder: str, name: str, make: Callable[[str], None]) -> str:
    """A new entry in `folder` for a partial `name` of this process, made by `make(path)`
    after what dead processes left of `name` there is removed; its creation is the check that
    the folder is writable, with an error naming `given`."""
    _remove_stale(folder, name)
    while True:
        path = os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}-{next(_serial)}.{name}")
        try:
            make(path)
            return path
        except FileExistsError:  # left by an earlier process with this pid: take the next
            continue
        except FileNotFoundError:
            raise FileNotFoundError(
                f"destination {given!r}: folder {folder!r} does not exist"
            ) from None
        except OSError as err:
            raise PermissionError(
                f"destination {given!r}: cannot write in folder {folder!r} ({err.strerror or err})"
            ) from None


def _remove_stale(folder: str, name: str) -> None:
    """Removes the partial `name`s in `folder` whose processes have ended."""
    owner = re.compile(rf"{re.escape(TEMP_PREFIX)}(\d+)-\d+\.{re.escape(name)}")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = owner.fullmatch(entry.name)
        if match is None or _running(int(match.group(1))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _running(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # there os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
