"""The commands the README, docs/, the notebooks and the benchmarks name exist, with the options
they are shown with: a figure's command that no longer runs would leave the figure untraceable.
"""

import argparse
import pathlib
import re

import pytest

from vlm_tf.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted(ROOT.glob("*/README.md")),
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "notebooks" / "src").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
]
COMMAND = re.compile(r"vlm-tf ([a-z][a-z-]*)([^`\n]*)")
# A usage line continued on the next: indentation (after a notebook's "# "), then an option.
CONTINUATION = re.compile(r"^(#\s)?\s+\[?--")
OPTION = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")


def named_commands(path):
    """`(line_number, command, rest_of_its_line)` for every `vlm-tf COMMAND ...` in `path`, with
    indented continuation lines joined to the command they continue.
    """
    named = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = COMMAND.search(line)
        if match:
            named.append([number, match.group(1), match.group(2)])
        elif named and named[-1][0] + 1 == number and CONTINUATION.match(line):
            named[-1][0] = number
            named[-1][2] += " " + line
    return named


def test_the_scan_finds_the_commands_of_the_readme():
    commands = {command for _, command, _ in named_commands(ROOT / "README.md")}
    assert {"quickstart", "make-data", "train", "evaluate", "export"} <= commands


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_named_command_and_option_exists(path):
    parser = build_parser()
    # argparse has no public way to list sub-commands; its sub-parsers action holds them.
    subcommands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ).choices
    wrong = []
    for number, command, rest in named_commands(path):
        if command not in subcommands:
            wrong.append(f"line {number}: no command `vlm-tf {command}`")
            continue
        actions = subcommands[command]._actions
        known = {option for action in actions for option in action.option_strings}
        # A comment or a parenthesised remark after the command is prose, not its options.
        for option in OPTION.findall(re.split(r" #| \(", rest)[0]):
            if option not in known:
                wrong.append(f"line {number}: `vlm-tf {command}` has no {option}")
    assert not wrong, f"{path.relative_to(ROOT)}: " + "; ".join(wrong)
