"""The sound track of a video file, decoded with PyAV and resampled to one rate, mono.

A file without sound is not an error: `read_audio` returns silence as long as the video and says
so (`AudioTrack.has_sound` False), so a model that takes sound still gets an input of the right
length and can learn what silence means (modality dropout trains it to). A file that cannot be
read at all is a `ValueError` naming it.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

DEFAULT_SAMPLE_RATE = 16000


@dataclasses.dataclass(frozen=True)
class AudioTrack:
    """Mono float32 samples in [-1, 1] at `sample_rate`; `has_sound` False when the file had no
    audio stream and `samples` is silence as long as its video.
    """

    samples: np.ndarray
    sample_rate: int
    has_sound: bool

    @property
    def seconds(self):
        return len(self.samples) / self.sample_rate


def _import_av(path):
    try:
        import av
    except ImportError:
        raise ValueError(f"{path}: reading sound needs PyAV (pip install -e '.[data]')") from None
    return av


def read_audio(path, *, sample_rate=DEFAULT_SAMPLE_RATE, seconds=None):
    """The sound of `path` as an `AudioTrack` at `sample_rate`, mono.

    `seconds`, when given, cuts or pads (with silence) the samples to that length, so clips of
    one length batch together. Without a sound track, the silence lasts as long as the video.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    av = _import_av(path)
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                video = container.streams.video[0] if container.streams.video else None
                duration = _video_seconds(container, video)
                samples, has_sound = np.zeros(round(duration * sample_rate), np.float32), False
            else:
                resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
                chunks = []
                for frame in container.decode(audio=0):
                    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
                samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
                has_sound = True
    except av.error.FFmpegError as error:
        raise ValueError(f"{path}: not a readable media file ({error})") from None
    if seconds is not None:
        length = round(seconds * sample_rate)
        samples = np.pad(samples[:length], (0, max(0, length - len(samples))))
    return AudioTrack(samples.astype(np.float32), int(sample_rate), has_sound)


def read_sound(paths, sample_rate, num_samples=None):
    """`(samples (N, num_samples) float32, has_sound (N,) bool)`: each video's sound, cut or
    padded with silence to `num_samples` (None: the median length of the tracks with sound). An
    unreadable file is silence here: the clip pipeline, which reads its frames, skips it with its
    reason.
    """
    tracks = []
    for path in paths:
        try:
            tracks.append(read_audio(path, sample_rate=sample_rate))
        except ValueError:
            tracks.append(None)
    heard = [track for track in tracks if track is not None and track.has_sound]
    if num_samples is None:
        num_samples = int(np.median([len(track.samples) for track in heard])) if heard else 0
    samples = np.zeros((len(paths), num_samples), np.float32)
    for row, track in enumerate(tracks):
        if track is not None:
            kept = track.samples[:num_samples]
            samples[row, : len(kept)] = kept
    return samples, np.array([track is not None and track.has_sound for track in tracks], bool)


def _video_seconds(container, video):
    if video is not None and video.frames and video.average_rate:
        return video.frames / float(video.average_rate)
    if container.duration:
        return container.duration / 1e6
    return 0.0
