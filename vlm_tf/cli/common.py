"""What every `vlm-tf` command shares: argument types, printing, and the line between a user's
mistake and a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback

import vlm_tf
from vlm_tf.errors import CannotFinish

# A bad argument, a missing or unreadable file, a folder that would be
# overwritten: the user can fix it (argparse's own errors exit 2 too).
EXIT_USER_ERROR = 2
# An exception nobody meant to raise: a bug in vlm_tf or below it.
EXIT_BUG = 1
# A command that cannot finish although its input was fine (`CannotFinish`:
# another process writes the run, training diverged), said in one line.
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
# The reader of our output went away (`vlm-tf evaluate ... | head -1`): the
# status of a process ended by SIGPIPE, without a word.
EXIT_CLOSED_PIPE = 141


class CommandError(Exception):
    """An expected failure, reported as one line."""


def refuse_existing(path):
    """Raises CommandError when `path` exists: a command's output never replaces a file it did
    not write.
    """
    if os.path.lexists(path):
        raise CommandError(f"{path} already exists; choose another --out or remove it")


def say(*parts):
    print(*parts, flush=True)


def number_type(kind, accepts, wanted):
    """An argparse `type`: `text` as `kind`, refused with `expected <wanted>` unless
    `accepts(value)`.
    """

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, received {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, received {text!r}")
        return value

    return parse


positive_int = number_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = number_type(int, lambda v: v >= 0, "an integer of 0 or more")
positive_float = number_type(float, lambda v: v > 0, "a positive number")
non_negative_float = number_type(float, lambda v: v >= 0, "a number of 0 or more")
fraction = number_type(float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")
unit_float = number_type(float, lambda v: 0 <= v <= 1, "a number from 0 to 1")


def one_line(error):
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def is_user_error(error):
    """Whether `error` reports something the user can fix rather than a bug.

    vlm_tf checks its input up front and raises ValueError (bad value) or
    OSError (missing, unreadable or unwritable file) naming what it
    received; TensorFlow's op errors are about the data it was fed (a
    video that does not decode). A ValueError raised deeper, inside Keras
    or NumPy, is not one of those checks: it is a bug, and its traceback
    must not be lost.
    """
    if isinstance(error, (CommandError, OSError)):
        return True
    if isinstance(error, ValueError):
        frames = traceback.extract_tb(error.__traceback__)
        package = os.path.dirname(os.path.abspath(vlm_tf.__file__))
        return bool(frames) and os.path.abspath(frames[-1].filename).startswith(package + os.sep)
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(error, tf.errors.OpError)


def report_failure(error, *, debug):
    """Prints one line for `error` on stderr and returns the exit code; a bug's traceback goes to a
    file (and to stderr with `debug`).
    """
    if isinstance(error, CannotFinish):
        print(f"vlm-tf: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    if is_user_error(error):
        message = (
            getattr(error, "message", None)
            if not isinstance(error, (ValueError, OSError, CommandError))
            else None
        )
        print(f"vlm-tf: error: {one_line(message or error)}", file=sys.stderr)
        if debug:
            traceback.print_exception(error)
        return EXIT_USER_ERROR
    text = "".join(traceback.format_exception(error))
    handle, path = tempfile.mkstemp(prefix="vlm-tf-traceback-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write(text)
    print(
        f"vlm-tf: internal error (a bug, please report it): {type(error).__name__}: "
        f"{one_line(error)}",
        file=sys.stderr,
    )
    print(
        f"vlm-tf: the full traceback is in {path} (rerun with --debug to print it here)",
        file=sys.stderr,
    )
    if debug:
        print(text, file=sys.stderr, end="")
    return EXIT_BUG
