"""Video files in and out with OpenCV: the one place vlm_tf reads or writes a video.

Frames are RGB `uint8` arrays of shape `(T, H, W, 3)` everywhere else in the
package. OpenCV works in BGR, so the conversion happens here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np

# Containers OpenCV's FFmpeg backend reads; `.json` box files and anything else
# beside the videos are ignored by the dataset indexer.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv")
# A clip cut from a longer video by time (a Kinetics-style list names clips
# so) is named as a W3C media fragment names one: "video.mp4#t=2.5,7" is
# seconds 2.5 to 7 of video.mp4. `probe_video` and `read_frames` take such a
# name wherever they take a path, so every reader built on them (datasets,
# views, the decoded-video cache) reads the clip as if it were a file.
SEGMENT_MARK = "#t="


class VideoReadError(ValueError):
    """A file that cannot be used as a video; `path` and `reason` are kept apart for reports."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int
    fps: float
    width: int
    height: int


# fourcc per container for write_video; these encoders ship in every
# opencv-python(-headless) wheel (H.264 does not, for licensing reasons).
WRITER_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def write_video(path, frames, fps=10.0) -> str:
    """Encodes RGB uint8 `frames` `(T, H, W, 3)` to `path`; the extension picks the codec."""
    path = os.fspath(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            "write_video expects uint8 frames of shape (T, H, W, 3) with T >= 1, received "
            f"{frames.dtype} {frames.shape}"
        )
    extension = os.path.splitext(path)[1].lower()
    if extension not in WRITER_CODECS:
        raise ValueError(f"write_video writes {sorted(WRITER_CODECS)}, received {path!r}")
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*WRITER_CODECS[extension]), float(fps), (width, height)
    )
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV could not open a {WRITER_CODECS[extension]} video writer")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def segment_path(path, start, end):
    """The name of seconds `start` to `end` of the video at `path` (`SEGMENT_MARK`)."""
    return f"{os.fspath(path)}{SEGMENT_MARK}{float(start):g},{float(end):g}"


def split_segment(path):
    """`(file, (start, end))` of a `segment_path` name; `(path, None)` for a plain path (a file
    whose own name holds the mark included).
    """
    path = os.fspath(path)
    file, mark, times = path.rpartition(SEGMENT_MARK)
    if not mark or os.path.exists(path):
        return path, None
    try:
        start, end = (float(value) for value in times.split(","))
    except ValueError:
        return path, None
    return file, (start, end)


def _fps(capture):
    return float(capture.get(cv2.CAP_PROP_FPS) or 0.0)


def _frame_range(fps, path, segment):
    """`(first, stop)`: the frames of `segment` (seconds) in a video of `fps` frames a second;
    `(0, None)` (every frame) without one.
    """
    if segment is None:
        return 0, None
    start, end = segment
    if fps <= 0:
        raise VideoReadError(path, "the video has no frame rate, so no time range can be cut")
    if not 0 <= start < end:
        raise VideoReadError(path, f"time range {start:g}-{end:g} s is empty or negative")
    return int(round(start * fps)), int(round(end * fps))


def _open(path, decoder_threads=None):
    """A `cv2.VideoCapture` of `path`, or `VideoReadError` naming what is wrong with it.

    `decoder_threads` sets FFmpeg's decoding threads for this file; `None`
    leaves FFmpeg's default (one per core). Readers that decode many files at
    once pass 1: with the cores already busy on other files, FFmpeg's own
    threads only add start-up and hand-over costs (a 64×64 clip decodes 2.5×
    faster on one thread, and a 720p MPEG-4 one as fast; docs/benchmarks.md).
    """
    path = os.fspath(path)
    try:
        os.stat(path)
    except OSError as error:
        # "file not found", or what else stat said: a symlink loop, a folder without permission.
        reason = "file not found" if isinstance(error, FileNotFoundError) else error.strerror
        raise VideoReadError(path, reason) from None
    if not os.path.isfile(path):
        raise VideoReadError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "empty file (0 bytes)")
    if decoder_threads is None:
        capture = cv2.VideoCapture(path)
    else:
        capture = cv2.VideoCapture(
            path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, int(decoder_threads)]
        )
        if not capture.isOpened():
            # Not a file FFmpeg takes: let OpenCV choose another backend.
            capture.release()
            capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(path, "not a video OpenCV can open (unknown container or codec)")
    return capture


def probe_video(path, *, decoder_threads=None) -> VideoInfo:
    """Opens `path` and counts its frames by decoding them.

    The frame count in the container header is not trusted: WebM/MKV often
    omit it and a truncated file still reports the original length, so we
    `grab()` (decode without colour conversion) until the stream ends.
    """
    file, segment = split_segment(path)
    capture = _open(file, decoder_threads)
    try:
        fps = _fps(capture)
        first, stop = _frame_range(fps, path, segment)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        decoded = 0
        while (stop is None or decoded < stop) and capture.grab():
            decoded += 1
    finally:
        capture.release()
    if decoded == 0:
        raise VideoReadError(path, "no decodable frames (zero-length or corrupt stream)")
    if decoded <= first:
        raise VideoReadError(
            path,
            f"time range {segment[0]:g}-{segment[1]:g} s starts after the video's {decoded} "
            f"frames at {fps:g} fps",
        )
    return VideoInfo(os.fspath(path), decoded - first, fps, width, height)


def frame_rate(path):
    """The frames a second `path`'s container states (0.0 where it states none)."""
    capture = _open(split_segment(path)[0])
    try:
        return _fps(capture)
    finally:
        capture.release()


def resize_frame(frame, size, crop_to_aspect_ratio=False):
    """One frame resized to `size` `(height, width)` as `read_frames` resizes.

    INTER_AREA to shrink, bilinear to enlarge.
    """
    height, width = size
    if crop_to_aspect_ratio:
        # Centre crop to the target aspect ratio first, as
        # keras.utils.image_dataset_from_directory(crop_to_aspect_ratio=True).
        h, w = frame.shape[:2]
        crop_w = min(w, round(h * width / height))
        crop_h = min(h, round(w * height / width))
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        frame = frame[top : top + crop_h, left : left + crop_w]
    if frame.shape[:2] == (height, width):
        return frame
    shrinking = frame.shape[0] > height or frame.shape[1] > width
    # INTER_AREA averages when shrinking (no aliasing of fine textures);
    # bilinear is the better choice when enlarging.
    return cv2.resize(
        frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )


def read_frames(
    path, indices=None, size=None, *, crop_to_aspect_ratio=False, decoder_threads=None
) -> np.ndarray:
    """Decodes frames of `path` as RGB uint8.

    Args:
        path: the video file, or a time range of it (`segment_path`), whose
            frames are then numbered from the range's first.
        indices: frame numbers to return, non-decreasing; a repeated index
            repeats the frame. `None` returns every frame.
        size: `(height, width)` to resize every frame to, or `None` to keep the file's size.
        crop_to_aspect_ratio: centre-crop to the aspect ratio of `size` before resizing
            instead of stretching.
        decoder_threads: FFmpeg's decoding threads (`_open`); `None` for its default.

    Returns:
        `uint8` array of shape `(len(indices), H, W, 3)`.
    """
    if indices is not None:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            raise ValueError("read_frames needs at least one frame index, received an empty list")
        if indices.min() < 0 or np.any(np.diff(indices) < 0):
            raise ValueError(
                "frame indices must be non-negative and non-decreasing, received "
                f"{indices.tolist()}"
            )
    file, segment = split_segment(path)
    capture = _open(file, decoder_threads)
    frames = []
    try:
        first, stop = _frame_range(_fps(capture), path, segment)
        if indices is None:
            for _ in range(first):
                capture.grab()
            while stop is None or first + len(frames) < stop:
                ok, bgr = capture.read()
                if not ok:
                    break
                frames.append(_to_rgb(bgr, size, crop_to_aspect_ratio))
            if not frames:
                raise VideoReadError(path, "no decodable frames (zero-length or corrupt stream)")
            return np.stack(frames)
        if stop is not None and first + indices[-1] >= stop:
            raise VideoReadError(
                path, f"frame {indices[-1]} was requested of a time range of {stop - first} frames"
            )
        # grab() decodes without the colour conversion; frames that are not
        # wanted are only grabbed, and a repeated index reuses the last frame.
        position, frame = -1, None
        for index in indices + first:
            while position < index:
                if not capture.grab():
                    raise VideoReadError(
                        path,
                        f"stream ended after {position + 1} frames, frame {index} was requested",
                    )
                position, frame = position + 1, None
            if frame is None:
                ok, bgr = capture.retrieve()
                if not ok:
                    raise VideoReadError(path, f"frame {index} could not be decoded")
                frame = _to_rgb(bgr, size, crop_to_aspect_ratio)
            frames.append(frame)
    finally:
        capture.release()
    return np.stack(frames)


def read_frame_stream(source):
    """Yields the RGB uint8 frames `(H, W, 3)` of a video file or a camera, as they are decoded.

    One frame at a time; `source` is a camera when it is an int (its OpenCV
    index).

    For live use: nothing is read ahead and nothing kept. The capture is
    released when the loop ends or is left.
    """
    camera = isinstance(source, int)
    name = f"camera {source}" if camera else source
    if camera:
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            capture.release()
            raise VideoReadError(name, "OpenCV could not open this camera index")
    else:
        capture = _open(source)
    count = 0
    try:
        ok, bgr = capture.read()
        while ok:
            count += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            ok, bgr = capture.read()
    finally:
        capture.release()
    if count == 0:
        raise VideoReadError(name, "no decodable frames (zero-length or corrupt stream)")


def _to_rgb(bgr, size, crop_to_aspect_ratio):
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return rgb if size is None else resize_frame(rgb, size, crop_to_aspect_ratio)
