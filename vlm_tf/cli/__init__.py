"""The `vlm-tf` command: a module per command group, each a thin layer over vlm_tf's modules.

- `data`: make-data
- `train`: train, compare, models
- `pretrain`: pretrain, presets
- `runs`: evaluate, apply, predict, stream, generate, score-generated, predict-frames
- `export`: export, compress
- `tools`: bench, quickstart, data-service
- `multimodal`: retrieve (and predict's --prompts)
- `trust`: explain, anonymize, make-key, decrypt

Commands that serve every task (`evaluate`, `apply`, `export`) ask the
run's task (`vlm_tf.tasks`) for the work and the printing. TensorFlow is
imported only by the sub-command that needs it, so `--help` and argument
errors answer at once. A user's mistake (bad argument, missing file,
unreadable video, a folder that would be overwritten) ends in one line on
stderr and exit status 2, never a traceback; anything else is a bug, said
in one line with the file its traceback was written to (`--debug` prints it).
Every command on runs takes `--encrypt-key-file KEY` (`vlm_tf.crypto`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

import vlm_tf
from vlm_tf import crypto
from vlm_tf.cli import (
    data,
    export,
    generation,
    multimodal,
    pretrain,
    runs,
    tools,
    train,
    trust,
)
from vlm_tf.cli.common import (
    EXIT_CLOSED_PIPE,
    EXIT_INTERRUPTED,
    import_tensorflow_quietly,
    pooled_cpu_allocator_environment,
    quiet_tensorflow_environment,
    report_failure,
)
from vlm_tf.training.config import require_finished_run

COMMAND_GROUPS = (data, train, pretrain, runs, generation, multimodal, export, tools, trust)
# The commands that neither read nor make a run folder or a video cache take no key; quickstart's
# is a demonstration that ends in an export inside its run.
KEYLESS_COMMANDS = (
    "make-data",
    "models",
    "presets",
    "bench",
    "quickstart",
    "data-service",
    "anonymize",
    "make-key",
)
# The commands that never import TensorFlow, which import_tensorflow_quietly would only slow down.
TENSORFLOW_FREE_COMMANDS = ("make-data", "presets", "make-key", "decrypt")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="vlm-tf",
        description=(
            "Video models of the text, from data to export: make-data, train, evaluate, apply, "
            "export."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {vlm_tf.__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="print the full traceback of any failure"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    for name, command in commands.choices.items():
        if name not in KEYLESS_COMMANDS:
            trust.add_key_option(command)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    quiet_tensorflow_environment()
    pooled_cpu_allocator_environment()
    try:
        key_file = getattr(args, "encrypt_key_file", None)
        # The key is the process's for the command only (`main` may run in a caller's process).
        with crypto.keyed(crypto.load_key(key_file)) if key_file else contextlib.nullcontext():
            # A command on a finished run refuses a folder that is not one before TensorFlow's
            # import (seconds) rather than after it, and an encrypted one without its key.
            for run_dir in (getattr(args, name, None) for name in ("run_dir", "classifier_run")):
                if run_dir is not None:
                    require_finished_run(run_dir)
                    crypto.key_for(run_dir)
            if args.command not in TENSORFLOW_FREE_COMMANDS and "tensorflow" not in sys.modules:
                import_tensorflow_quietly()
            args.func(args)
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt:
        print("vlm-tf: interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Ctrl-C mid-epoch leaves tf.data's threads inside (or queued for) a numpy_function call,
        # which needs the interpreter's lock: freeing the input pipeline now waits for them while
        # holding it (a hang), and letting the interpreter exit kills them mid-call (an abort,
        # "terminate called without an active exception"). Nothing needs tearing down: every
        # file is written whole or not at all and the run lock of a dead process is taken over.
        os._exit(EXIT_INTERRUPTED)
    except Exception as error:
        return report_failure(error, debug=args.debug)
    return 0


__all__ = ["build_parser", "main"]
