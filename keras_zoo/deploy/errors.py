"""The error of a failed export, and the line of a converter's or runtime's error shown."""

from __future__ import annotations

import re


class ExportError(RuntimeError):
    """An export that failed its conversion or its check; nothing was left at its path."""


def first_line(err: BaseException) -> str:
    """The first line of `err`'s message (colour codes removed; Keras' "Exception encountered
    when calling" preamble after the line it announces), with a count of the lines left out.

    >>> first_line(ValueError("bad shape\\n  at layer conv"))
    'bad shape (1 more lines)'
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip() or type(err).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines = [
            f"{lines[1].strip()} ({lines[0].removeprefix('Exception encountered when ')}".rstrip(
                "."
            )
            + ")"
        ] + lines[2:]
    return lines[0][:500] + (f" ({len(lines) - 1} more lines)" if len(lines) > 1 else "")
