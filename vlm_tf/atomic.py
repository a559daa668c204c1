"""Writes that a killed process cannot leave half done, and one writer per folder.

Everything a run or an export writes for later use (checkpoints, the final
model, JSON files, SavedModel folders) is written under a temporary name
beside its destination and then renamed onto it. A rename within one folder
is atomic on POSIX and Windows, so a reader, or the same command started
again after a SIGKILL, sees either the old file or the new one, never part.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import shutil

from vlm_tf import crypto
from vlm_tf.errors import CannotFinish

PARTIAL_PREFIX = ".partial-"
# The file in a folder whose OS lock marks the folder's one writer.
LOCK_FILE = ".lock"


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
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        # A full disk says "[Errno 28] No space left on device" and no more: name the file.
        raise OSError(error.errno, error.strerror, path) from error
    finally:
        _remove(temporary)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def require_space(path, nbytes):
    """Raises the full disk's OSError, naming `path`, unless its disk has `nbytes` free.

    For writers that cannot meet a full disk gracefully: h5py, under Keras'
    `save_weights`, ends the whole process with a segmentation fault when a
    write fails for want of space.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if shutil.disk_usage(folder).free < nbytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))


def remove_partials(folder):
    """Removes the temporaries of `replacing` that killed writers left anywhere under `folder`.

    Only for a folder whose lock is held (`exclusive`): then no live process
    is writing one of them.
    """
    for parent, names, files in os.walk(folder):
        for name in [*names, *files]:
            if name.startswith(PARTIAL_PREFIX):
                _remove(os.path.join(parent, name))
        names[:] = [name for name in names if not name.startswith(PARTIAL_PREFIX)]


def contents(folder):
    """The names in `folder` other than the lock file, killed writers' temporaries and an
    encrypted folder's marker.
    """
    return [
        name
        for name in os.listdir(folder)
        if name not in (LOCK_FILE, crypto.MARKER) and not name.startswith(PARTIAL_PREFIX)
    ]


def save_model(model, path):
    """`model.save(path)` (a `.keras` file) through a temporary file; encrypted in memory when the
    folder is (`vlm_tf.crypto`).
    """
    if crypto.key_for(path) is None:
        with replacing(path) as temporary:
            model.save(temporary)
        return
    buffer = io.BytesIO()
    _saving_lib().save_model(model, buffer)
    write_bytes(path, buffer.getvalue())


def load_model(path, **kwargs):
    """`keras.models.load_model(path, **kwargs)`, decrypted in memory when the folder is
    encrypted.
    """
    if crypto.key_for(path) is None:
        import keras

        return keras.models.load_model(path, **kwargs)
    return _saving_lib().load_model(io.BytesIO(crypto.read_bytes(path)), **kwargs)


def _saving_lib():
    # `keras.saving.save_model` and `load_model` accept a path ending in `.keras` and nothing else;
    # the library under them writes and reads the same archive in a file object, which keeps an
    # encrypted run's models out of any file in the clear.
    from keras.src.saving import saving_lib

    return saving_lib


def copy_file(source, destination):
    if crypto.key_for(source) is None and crypto.key_for(destination) is None:
        with replacing(destination) as temporary:
            shutil.copyfile(source, temporary)
        return
    write_bytes(destination, crypto.read_bytes(source))


def write_bytes(path, data):
    """Writes `data` to `path` through a temporary file, encrypted when the folder is."""
    data = crypto.sealed_bytes(path, data)
    with replacing(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(data)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def read_text(path):
    return crypto.read_bytes(path).decode("utf-8")


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path):
    return json.loads(read_text(path))


class FolderInUse(CannotFinish):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def exclusive(folder):
    """Holds the OS lock (`fcntl.flock`) of `folder/.lock` for the block: one writer per folder.

    The lock is the kernel's and dies with its process, so the lock file a
    killed writer leaves behind is simply taken by the next one. While it
    is held, a second `exclusive(folder)` raises `FolderInUse` naming the
    folder and the holder's process id. A folder this made and left holding
    only the lock file is removed again, so a command that failed early
    leaves nothing behind.
    """
    folder = os.fspath(folder)
    made = not os.path.exists(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_FILE)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise FolderInUse(
                f"{folder} is being written by another process (pid {holder}); wait for it to "
                "finish or choose another folder"
            ) from None
        # A writer that just finished may have removed the file this opened:
        # the lock is only good on the file that is still at `path`.
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        # A scratch folder its writer removed itself is gone already.
        if made and os.path.isdir(folder) and os.listdir(folder) == [LOCK_FILE]:
            os.remove(path)
            os.rmdir(folder)
        os.close(fd)
