"""The code's style and layers, checked as CI checks them: ruff (lint and format) and
import-linter's layers contract.
"""

import ast
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(name):
    """The command-line tool installed beside this interpreter (the test extra brings both)."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    found = path if os.path.exists(path) else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


@pytest.mark.parametrize(
    "arguments", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"]
)
def test_ruff_passes(arguments):
    done = subprocess.run([_tool("ruff"), *arguments], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_imports_point_down_the_layers():
    """setup.cfg's contract: cli → tools → inference → training → tasks → export → models → parts
    → data.
    """
    done = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def _code_lines(lines):
    return [line for line in lines if line.strip() and not line.strip().startswith("#")]


def test_modules_and_functions_stay_small():
    """The architecture issue's limits: no module of `vlm_tf/` over 500 lines, no function over 80
    lines of code (its docstring, comments and blank lines aside).
    """
    too_long = []
    for folder, _, files in os.walk(os.path.join(ROOT, "vlm_tf")):
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            where = os.path.relpath(path, ROOT)
            with open(path, encoding="utf-8") as f:
                source = f.read()
            lines = source.splitlines()
            if len(lines) > 500:
                too_long.append(f"{where}: {len(lines)} lines")
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                body = node.body
                if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:] or body
                code = _code_lines(lines[body[0].lineno - 1 : node.end_lineno])
                if len(code) > 80:
                    too_long.append(f"{where}: {node.name}, {len(code)} lines")
    assert not too_long, too_long
