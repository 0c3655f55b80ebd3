"""What `keras-zoo` writes to the console: its own lines, not TensorFlow's.

By default a command shows no TensorFlow, absl or CUDA log line:

- TensorFlow's C++ log shows nothing below fatal (TF_CPP_MIN_LOG_LEVEL=3, which hides the
  "failed call to cuInit" of a machine without a GPU) and gRPC's errors only, set before
  TensorFlow is imported, over what the environment says;
- what TensorFlow's libraries write through absl before absl is set up, which no setting
  silences ("WARNING: All log messages before absl::InitializeLog() is called ...", "Could not
  find cuda drivers", CUDA's "Unable to register cuDNN factory"), is read aside while
  TensorFlow is imported, and only the lines that are not such log lines are written back;
  the same while an export converts (`keras_zoo.deploy`: the LiteRT converter's log lines and
  its "fully_quantize: 0, inference_type: 6, ..." line) and a LiteRT interpreter starts;
- the Python loggers of TensorFlow and absl show errors only;
- a warning is one line, `warning: MESSAGE`, not Python's file, line number and source line;
- where stdout is not a terminal (a file, a pipe), Keras prints a line per epoch rather than
  progress bars, which would come out as backspaces and escape codes (`progress_verbosity`).

`KERAS_ZOO_VERBOSE=1` in the environment leaves all of this as TensorFlow and Python have it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, MutableMapping

VERBOSE_ENV = "KERAS_ZOO_VERBOSE"

# set before TensorFlow is imported
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}

# absl's "I0123 12:34:56.789012  1234 file.cc:31] ..." (before absl is set up, the seconds
# since 1970 in place of the time of day: "I0000 00:00:1714668459.875897"), TensorFlow's older
# "2024-01-23 12:34:56.789012: I tensorflow/.../file.cc:31] ...", absl's notice before its first
# line, the second line of TensorFlow's CPU-instructions notice, LiteRT's notice when an
# interpreter first allocates its tensors, and the converter's settings line of a quantized
# LiteRT conversion
_LOG_LINE = re.compile(
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: "
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|fully_quantize: \d+, inference_type: \d+, "
)


def verbose(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for TensorFlow's log lines and Python's full warnings
    (KERAS_ZOO_VERBOSE set to anything but empty or 0)."""
    return environ.get(VERBOSE_ENV, "") not in ("", "0")


def quiet_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Sets `QUIET_ENVIRONMENT` in `environ`, unless TensorFlow is imported already (it reads
    them when imported: the program that imported it keeps its log level)."""
    if "tensorflow" not in sys.modules:
        environ.update(QUIET_ENVIRONMENT)


def is_log_line(line: str) -> bool:
    """Whether `line` is a TensorFlow, absl or CUDA library's log line.

    >>> is_log_line("I0000 00:00:1714668459.875897  381002 cudart_stub.cc:31] Could not find")
    True
    >>> is_log_line("keras-zoo predict: error: unknown model 'resnet05'")
    False
    """
    return _LOG_LINE.match(line) is not None


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Within the block, what is written to the process's stderr (file descriptor 2, where C++
    libraries write) goes to a temporary file; at its end, the lines that are not log lines
    (`is_log_line`) are written to stderr, so that a real error still shows. Nothing is read
    aside where `verbose()`."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to read aside
        yield
        return
    with tempfile.TemporaryFile() as aside:
        os.dup2(aside.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            aside.seek(0)
            lines = aside.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not is_log_line(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def import_tensorflow() -> None:
    """Imports TensorFlow with its start-up log lines left out (`native_stderr_filtered`), and
    sets its and absl's Python loggers to errors. Nothing where it is imported already: the
    program that imported it keeps its settings."""
    if "tensorflow" in sys.modules:
        return
    with native_stderr_filtered():
        import tensorflow  # noqa: F401
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quiet
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """A warning as the command line shows it: `warning: MESSAGE`, without the file, line number
    and source line that raised it (`warnings.formatwarning`'s signature).

    >>> one_line_warning(UserWarning("left out 1 file"), UserWarning, "keras_zoo/data.py", 9)
    'warning: left out 1 file\\n'
    """
    return f"warning: {str(message).strip()}\n"


@contextlib.contextmanager
def warnings_in_one_line() -> Iterator[None]:
    """Within the block, a warning that is shown is shown in one line (`one_line_warning`);
    where warnings are recorded rather than shown (`warnings.catch_warnings(record=True)`,
    pytest.warns), they still are."""
    before = warnings.formatwarning
    warnings.formatwarning = one_line_warning
    try:
        yield
    finally:
        warnings.formatwarning = before


def progress_verbosity() -> int:
    """Keras' `verbose` for fit and progress bars: 1 (a progress bar) on a terminal, 2 (a line
    per epoch) where stdout is a file or a pipe, where Keras' bar would write backspaces and
    escape codes."""
    isatty = getattr(sys.stdout, "isatty", None)
    return 1 if isatty is not None and isatty() else 2
