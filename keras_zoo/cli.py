"""The `keras-zoo` command line.

keras-zoo list [PATTERN] [--weights]   model ids with parameters, GMACs and top-1, or
                               their weight sets with each one's preprocessing
keras-zoo info NAME            one id's metadata and the keywords build() takes
keras-zoo demo [NAME ...]      build, print summary figures, run a batch of images
keras-zoo port NAME SRC DST    port a PyTorch checkpoint into a Keras weights file
keras-zoo analyze-features NAME --image IMG --out DIR    feature maps of chosen layers (and
                               a Vision Transformer's attention maps)
keras-zoo analyze-kernels NAME --out DIR                 statistics and histograms of weights
keras-zoo digits DIR           write the bundled handwritten digits as a class-per-folder tree
keras-zoo train NAME --data DIR                          train or fine-tune on a folder
keras-zoo evaluate NAME --weights W --data DIR           accuracy, precision, recall (a
                               landmark model's NME, failure rate and AUC)
keras-zoo predict NAME --weights W IMAGE ...             top classes of images (a landmark
                               model's points on the faces in them)
keras-zoo export NAME OUT [--weights W] [--quantize int8 --calibration DIR]
                               LiteRT, ONNX, OpenVINO or SavedModel, checked in its runtime
keras-zoo bench                against keras.applications and PyTorch, side by side
keras-zoo track DETS --out DIR [--gt GT]                 track MOTChallenge detections (SORT,
                               ByteTrack), scored against ground truth

Each command is one module of `keras_zoo.commands`, its parser beside its handler; here the
arguments are parsed, the command is run, and bad input is reported in one line. Parsing, help,
`list`, `info` and `track` import neither Keras nor TensorFlow; the other commands import TensorFlow
before they run, quietly (`keras_zoo.console`: KERAS_ZOO_VERBOSE=1 shows its log lines).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, NoReturn

from keras_zoo import commands, console, models
from keras_zoo._version import __version__

EPILOG = (
    "'keras-zoo COMMAND --help' describes a command. TensorFlow's log lines are left out and a "
    f"warning is one line; {console.VERBOSE_ENV}=1 in the environment shows them as TensorFlow "
    "and Python write them."
)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with each option's default shown, `(default: VALUE)`, where the option
    has one worth showing (not None, False or empty) and its help does not speak of it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return help_with_default(action)


def help_with_default(action: argparse.Action) -> str | None:
    """`action`'s help with its default, as `HelpFormatter` shows it (argparse's `%` escapes
    kept)."""
    text = action.help
    default = action.default
    if (
        text is None
        or text == argparse.SUPPRESS
        or "default" in text
        or default is None
        or default is False
        or default == argparse.SUPPRESS
        or (isinstance(default, (list, tuple)) and not default)
    ):
        return text
    shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
    return f"{text} (default: {shown.replace('%', '%%')})"


class _Parser(argparse.ArgumentParser):
    """argparse's parser with the error first: `keras-zoo train: error: argument --image-size:
    ...`, then the usage (argparse prints the usage first), and each option's default in the
    help (`HelpFormatter`). Subcommands inherit it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n{self.format_usage()}")


def description() -> str:
    """The command line's one-line description, naming every family (`models.TITLES`)."""
    titles = list(models.TITLES.values())
    return f"{', '.join(titles[:-1])} and {titles[-1]} for Keras 3."


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="keras-zoo", description=description(), epilog=EPILOG)
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands.modules():
        command.add_parser(sub)
    return parser


def _input_errors() -> tuple[type[BaseException], ...]:
    """The errors main reports in a line rather than a traceback: those of bad arguments and
    files, and, once TensorFlow is loaded, its ops' errors about the values they were given (an
    image that fails to decode, a batch too large for memory)."""
    errors = (ValueError, TypeError, OSError, RuntimeError, ImportError)
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return errors
    return errors + (
        tf.errors.InvalidArgumentError,
        tf.errors.NotFoundError,
        tf.errors.DataLossError,
        tf.errors.UnimplementedError,
        tf.errors.ResourceExhaustedError,
    )


def _error_text(err: BaseException) -> str:
    """The message main prints: the error's own, whose first line says what is wrong, or a
    TensorFlow op's reason in one line."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(err, tf.errors.OpError):
        from keras_zoo.checks import op_error_text

        return f"TensorFlow could not run on this input: {op_error_text(err)}"
    return str(err).strip() or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Runs `keras-zoo ARGV...` and returns its exit status: 0, 2 for bad input (a one-line
    error on stderr), 130 for an interrupted training run."""
    from keras_zoo.files import terminate_as_interrupt

    quiet = not console.verbose()
    if quiet:
        console.quiet_environment()  # before anything imports TensorFlow
    args = _parser().parse_args(argv)
    with contextlib.ExitStack() as stack:
        if quiet:
            stack.enter_context(console.warnings_in_one_line())
        try:
            if quiet and args.command not in commands.WITHOUT_TENSORFLOW:
                console.import_tensorflow()
            with terminate_as_interrupt():  # SIGTERM runs the command's cleanups, as Ctrl-C does
                return args.run(args)
        except _input_errors() as err:
            print(f"keras-zoo {args.command}: error: {_error_text(err)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
