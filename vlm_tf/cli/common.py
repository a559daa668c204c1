"""What every `vlm-tf` command shares: argument types, printing, and the line between a user's
mistake and a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback

import vlm_tf
from vlm_tf import crypto
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


# What TensorFlow writes to the process's stderr as it is imported: absl's lines before its logging
# is set up ignore TF_CPP_MIN_LOG_LEVEL. Matched per line; any other line goes through.
IMPORT_NOISE = (
    "absl::InitializeLog",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "Unable to register cu",
    "computation placer already registered",
    "TF-TRT Warning",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
)


def quiet_tensorflow_environment():
    """Sets TensorFlow's C++ log level before its import: warnings are hidden everywhere, and on a
    machine without an NVIDIA device node errors too, because there the first op's `failed call
    to cuInit` (logged as an error) is certain and says nothing; elsewhere a CUDA error is news.
    """
    on_cpu_only = not os.path.exists("/dev/nvidiactl")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if on_cpu_only else "2")


def pooled_cpu_allocator_environment():
    """Has TensorFlow pool its CPU memory (its BFC allocator) unless the caller chose otherwise.

    Read by TensorFlow when it makes its first tensor. Without it every tensor comes from the C
    library's `malloc`, which maps anything over 32 MB afresh and unmaps it when freed: the
    detector's training (67 MB activations a batch) spent a third of its time in the kernel
    faulting those pages in, and trained 1.7x faster pooled; the default classifier 1.04x
    (benchmarks/detection_speed.py, docs/benchmarks.md). With oneDNN's kernels on (`import vlm_tf`
    turns them on) their own allocator pools large blocks and this adds about 1.05x; it matters
    to whoever turns oneDNN off.
    """
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


def import_tensorflow_quietly():
    """Imports TensorFlow with stderr's file descriptor captured, then writes back every captured
    line that is not import noise (`IMPORT_NOISE`). Only the import: starting TensorFlow's devices
    here would fix its thread pools before a run sets its threads and determinism.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(kept_import_lines(lines)))


def kept_import_lines(lines):
    """The lines of TensorFlow's import output a user should see."""
    return [line for line in lines if not any(noise in line for noise in IMPORT_NOISE)]


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


def print_report(report, as_json, *, energy=None):
    """A command's report, as one JSON object or as its lines; with the `energy` it took
    (`vlm_tf.energy.Energy`) as the key `energy` or a last line.
    """
    if as_json:
        values = report.to_dict()
        if energy is not None:
            values["energy"] = energy.to_dict()
        say(json.dumps(values))
        return
    say("\n".join([*report.lines(), *([energy.line()] if energy is not None else [])]))


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


def views(text):
    """`--views`: `C` or `CxS` → `(clips, crops)`."""
    parts = text.lower().split("x")
    if len(parts) > 2 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected CLIPS or CLIPSxCROPS with positive integers (e.g. 3x3), received {text!r}"
        )
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 1


def name_list(what, known):
    """An argparse `type`: one or more of the names `known()` returns, separated by commas."""

    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        choices = known()
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what}(s) {', '.join(unknown) or repr(text)}; expected some of "
                f"{', '.join(choices)}, separated by commas"
            )
        return names

    return parse


def _corruption_names():
    from vlm_tf.data.corruptions import CORRUPTIONS

    return tuple(CORRUPTIONS)


def corruption_list(text):
    """`--corruptions`: names separated by commas, or `all` (an empty list: every one)."""
    return [] if text == "all" else name_list("corruption", _corruption_names)(text)


def severity_list(text):
    """`--severities`: `A-B` or numbers separated by commas, each 1 to 5."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-"))
            values = list(range(low, high + 1))
        else:
            values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or any(not 1 <= value <= 5 for value in values):
        raise argparse.ArgumentTypeError(
            "expected severities from 1 to 5 as A-B or A,B,... (e.g. 1-5 or 1,3,5), received "
            f"{text!r}"
        )
    return values


def tensorboard_line(logs):
    """How to look at a run's TensorBoard logs `logs`: TensorBoard reads a plain run's, not an
    encrypted one's.
    """
    if crypto.sealed_folder(logs) is None:
        return f"TensorBoard: tensorboard --logdir {logs}"
    return (
        f"TensorBoard: {logs} is encrypted; `vlm-tf decrypt {logs} DIR --encrypt-key-file KEY` "
        "writes a copy in the clear for `tensorboard --logdir DIR`"
    )
