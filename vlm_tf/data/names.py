"""Names read from files, checked before they become paths.

A run folder or a dataset may come from someone else: a class name in its
`config.json` or a label in a box file is joined into paths (`OUT/<class>/`,
`DATA_DIR/<class>/`), so `../../x` there would read or write outside the
folder the user chose. Every name taken from such a file goes through
`check_name`; a writer that joins one into its output folder also checks the
result with `check_inside`.
"""

from __future__ import annotations

import os
import unicodedata

_EXPECTED = "expected one file name: no path separator, not . or .., no control characters"


def _flaw(value):
    """What makes `value` unusable as one path component, or None."""
    if not isinstance(value, str):
        return f"is a {type(value).__name__}, not a string"
    if not value:
        return "is empty"
    if value in (os.curdir, os.pardir):
        return "names a folder, not a file"
    if any(sep and sep in value for sep in ("/", "\\", os.sep, os.altsep)):
        return "holds a path separator"
    # Windows reads `C:name` as relative to drive C's current folder.
    if os.path.isabs(value) or os.path.splitdrive(value)[0]:
        return "is an absolute path"
    # Category Cc: C0 controls, DEL and C1 controls (a terminal obeys some of them in a message).
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "holds a control character"
    return None


def check_name(value, *, source, what="name"):
    """Returns `value` when it can be one component of a path.

    Raises a one-line ValueError naming `source` (the file `value` was
    read from), `what` it is (`class name`, `objects[2].label`) and the
    value's repr otherwise.
    """
    flaw = _flaw(value)
    if flaw is not None:
        raise ValueError(f"{source}: {what} {value!r} {flaw}; {_EXPECTED}")
    return value


def check_inside(path, folder):
    """Returns `path` when it resolves (symbolic links followed) to somewhere under `folder`.

    Raises a ValueError naming both otherwise: a writer calls it before
    writing a path made from names it read.
    """
    real_path, real_folder = os.path.realpath(path), os.path.realpath(folder)
    if real_path == real_folder or os.path.commonpath([real_path, real_folder]) != real_folder:
        raise ValueError(f"{path} resolves to {real_path}, outside {folder}; refusing to write it")
    return path
