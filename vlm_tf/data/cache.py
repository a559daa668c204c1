"""Videos decoded once, kept for the epochs after: in memory, or as `.npy` files in a folder.

A training run reads every video once an epoch, and with random frame
sampling a different set of frames each time, so what is kept is the whole
video at the clip size: every frame, resized as `read_frames` resizes them.
A clip is then a gather of frame indices, the same frames `read_frames`
would decode for those indices. The folder form outlives the process
(`vlm-tf train --cache DIR` again, or several runs on one dataset); a file
is named by the video's path, size and modification time and the frame
size, so an edited video is decoded again, and it is written under a
temporary name and renamed, so a killed run never leaves half a file. A
folder made with a key in use (`vlm_tf.crypto`) keeps every video
encrypted, and each read decrypts its video in memory.

A file that is corrupt all the same (cut short by a failing disk,
overwritten by another program) would fail every epoch and drop its video
without a word; a dataset opening the cache removes it first
(`discard_corrupt`), so the video is decoded again, and reports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading

import numpy as np

from vlm_tf import atomic, crypto
from vlm_tf.data.decode import read_frames, split_segment

MEMORY = "memory"
# `np.load` parses a file's header with `ast.literal_eval`, and CPython 3.11's AST
# constructor keeps one recursion counter for every thread: tf.data's parallel reads of cached
# clips raised "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905) and
# the clip was dropped from the epoch. Headers are read one at a time; the frames stay mapped.
_HEADER_LOCK = threading.Lock()


class DecodedVideos:
    """Whole videos at one frame size, decoded on first use and then served from `where`.

    `where` is `"memory"` or a folder.
    """

    def __init__(self, where, size, *, crop_to_aspect_ratio=False):
        self.where = MEMORY if where == MEMORY else os.fspath(where)
        self.size = tuple(int(v) for v in size)
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self._videos = {}
        # A folder made or opened with a key in use holds its videos encrypted (`vlm_tf.crypto`).
        self.key = None if self.where == MEMORY else crypto.seal(self.where)

    def read(self, path, indices):
        """The frames of `path` at `indices` (uint8 `(len(indices), H, W, 3)`).

        The same as `read_frames(path, indices, size)` returns.
        """
        return np.asarray(self._video(path)[np.asarray(indices, dtype=np.int64)])

    def discard_corrupt(self, paths):
        """Removes the files of `paths` that cannot serve their video, so it is decoded again.

        A file is checked as `read` will open it: a uint8 `(T, H, W, 3)` array
        at this frame size, whole. Returns `{"path", "reason"}` for each file
        removed; in memory, there are none.
        """
        if self.where == MEMORY:
            return []
        discarded = []
        for path in paths:
            file = os.path.join(self.where, self._file_name(path))
            if not os.path.isfile(file):
                continue
            problem = self._problem(file)
            if problem is None:
                continue
            # Another worker of a distributed run may have removed it first.
            with contextlib.suppress(FileNotFoundError):
                os.remove(file)
            discarded.append(
                {
                    "path": file,
                    "reason": (
                        f"corrupt cache file of {path} ({problem}); removed, the video is "
                        "decoded again"
                    ),
                }
            )
        return discarded

    def _problem(self, file):
        """What is wrong with the cache file `file`, or None."""
        try:
            source = io.BytesIO(crypto.read_bytes(file)) if self.key else open(file, "rb")
        except ValueError as error:
            return str(error).removeprefix(f"{file}: ")
        with source:
            if source.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
                return "not a .npy file"
            source.seek(0)
            try:
                frames = np.load(source) if self.key else np.load(file, mmap_mode="r")
            except (ValueError, EOFError) as error:
                # Cut short in its header: EOFError; in its frames: ValueError.
                return (str(error).strip() or type(error).__name__).splitlines()[0]
        height, width = self.size
        if frames.dtype != np.uint8 or frames.shape[1:] != (height, width, 3) or not len(frames):
            return f"holds {frames.dtype} {frames.shape}, not uint8 (T, {height}, {width}, 3)"
        return None

    def _decode(self, path):
        return read_frames(
            path, None, self.size, crop_to_aspect_ratio=self.crop_to_aspect_ratio, decoder_threads=1
        )

    def _video(self, path):
        if self.where == MEMORY:
            video = self._videos.get(path)
            if video is None:
                video = self._videos[path] = self._decode(path)
            return video
        file = os.path.join(self.where, self._file_name(path))
        if not os.path.isfile(file):
            frames = self._decode(path)
            if self.key:
                buffer = io.BytesIO()
                np.save(buffer, frames)
                atomic.write_bytes(file, buffer.getvalue())
            else:
                with atomic.replacing(file) as temporary:
                    np.save(temporary, frames)
            return frames
        # An encrypted video is decrypted whole, in memory, at each read: nothing in the clear
        # may be mapped from the disk.
        source = io.BytesIO(crypto.read_bytes(file)) if self.key else file
        with _HEADER_LOCK:
            return np.load(source, mmap_mode=None if self.key else "r")

    def _file_name(self, path):
        # A time range of a video (`segment_path`) is a video of its own, dated by its file.
        status = os.stat(split_segment(path)[0])
        key = (
            f"{os.path.abspath(path)}|{status.st_size}|{status.st_mtime_ns}|"
            f"{self.size}|{self.crop_to_aspect_ratio}"
        )
        return hashlib.sha1(key.encode()).hexdigest() + ".npy"
