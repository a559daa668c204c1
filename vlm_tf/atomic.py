"""Writes that a killed process cannot leave half done.

Everything a run or an export writes for later use (checkpoints, the final
model, JSON files, SavedModel folders) is written under a temporary name
beside its destination and then renamed onto it. A rename within one folder
is atomic on POSIX and Windows, so a reader, or the same command started
again after a SIGKILL, sees either the old file or the new one, never part.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil

PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path beside `path`, renamed onto it when the block ends without error.

    The temporary name keeps `path`'s own name as its end, so writers that
    check the suffix (`.keras`, `.weights.h5`) accept it. It works for a file
    or a folder; a folder can only replace a missing or empty folder. On error
    the temporary is removed and `path` is left as it was. A missing parent
    folder is made.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f"{PARTIAL_PREFIX}{os.getpid()}-{name}")
    _remove(temporary)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        _remove(temporary)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def save_model(model, path):
    """`model.save(path)` (a `.keras` file) through a temporary file."""
    with replacing(path) as temporary:
        model.save(temporary)


def copy_file(source, destination):
    with replacing(destination) as temporary:
        shutil.copyfile(source, temporary)


def write_json(path, obj):
    with replacing(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
