"""Real-world corruptions of whole videos at five severities: the video analogue of
ImageNet-C (Hendrycks and Dietterich, 2019), for `vlm-tf evaluate --corruptions`.

Each corruption takes every decoded frame of a video at the file's own
size, RGB uint8 `(T, H, W, 3)`, and returns the frames a degraded camera,
link or player would have given: noise, blur, a low bit rate through the
real encoder, light and weather, and what happens to time (frames dropped,
repeated, played at another rate or out of order). Spatial sizes (blur
lengths) are fractions of the frame's shorter side, so a severity means the
same on a 64-pixel clip as on a 480-pixel one; the values follow
ImageNet-C's where it has the corruption. Everything is drawn from the
`numpy.random.Generator` passed in: the same seed gives the same video.
"""

from __future__ import annotations

import json
import pathlib
import struct
import subprocess
import sys
import threading

import cv2
import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
# Training's `augment=` (`vlm_tf.data.transforms`): none, the standard crop and colour, or those
# then corruptions of these families (`corrupt_clip`). Here, free of TensorFlow, so a run's
# config is checked before TensorFlow loads.
AUGMENTATIONS = (False, True, "robust")
# What the pipeline takes besides: "crop", the standard augmentation's crop alone, for clips whose
# captions a flip or a colour change would make false (`vlm_tf.tasks.video_text`).
PIPELINE_AUGMENTATIONS = (*AUGMENTATIONS, "crop")


def check_augment(augment, *, allowed=AUGMENTATIONS):
    """Raises a one-line ValueError unless `augment` is one of `allowed`."""
    # `is`, not `==`: 1 and 0 compare equal to True and False but are not augmentation settings.
    if not any(augment is mode if isinstance(mode, bool) else augment == mode for mode in allowed):
        raise ValueError(
            f"augment must be one of {', '.join(map(repr, allowed))} (the standard "
            f"augmentation, then corruptions), received {augment!r}"
        )


def _gaussian_noise(frames, severity, rng, fps):
    sigma = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1] * 255.0
    return frames + rng.normal(0.0, sigma, frames.shape)


def _shot_noise(frames, severity, rng, fps):
    # Photon counting: fewer photons per pixel, more relative noise in the dark parts too.
    photons = (60.0, 25.0, 12.0, 5.0, 3.0)[severity - 1]
    return rng.poisson(frames / 255.0 * photons) / photons * 255.0


def _disk(radius):
    # Each tap weighs the share of its pixel inside the disk (8×8 samples a pixel), so a
    # radius under one pixel still blurs a little instead of not at all.
    size = 2 * int(np.ceil(radius)) + 1
    fine = (np.arange(size * 8) + 0.5) / 8 - size / 2
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2 <= radius**2).astype(np.float32)
    kernel = inside.reshape(size, 8, size, 8).mean(axis=(1, 3))
    return kernel / kernel.sum()


def _filter(frames, kernel):
    return np.stack(
        [cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT) for frame in frames]
    )


def _defocus_blur(frames, severity, rng, fps):
    side = min(frames.shape[1:3])
    radius = (0.013, 0.018, 0.027, 0.036, 0.045)[severity - 1] * side
    # At least three quarters of a pixel: on the smallest frames the first severities still blur.
    return _filter(frames.astype(np.float32), _disk(max(radius, 0.75)))


def _motion_blur(frames, severity, rng, fps):
    # A camera shaking along one direction for the whole video: a line kernel at a random angle.
    side = min(frames.shape[1:3])
    length = max(2, round((0.03, 0.05, 0.07, 0.10, 0.13)[severity - 1] * side))
    size = 2 * length + 1
    kernel = np.zeros((size, size), np.float32)
    angle = rng.uniform(0.0, np.pi)
    for t in np.linspace(-length / 2, length / 2, 4 * length):
        kernel[round(length + t * np.sin(angle)), round(length + t * np.cos(angle))] = 1.0
    return _filter(frames.astype(np.float32), kernel / kernel.sum())


class _CodecWorker:
    """The process `codec_worker.py` runs in (see there why), started on first use and shared
    by the threads of this process one call at a time; it ends when this process does.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._process = None

    def encode_decode(self, frames, codec, fps, bit_rate):
        request = json.dumps(
            {"codec": codec, "fps": fps, "bit_rate": bit_rate, "shape": list(frames.shape)}
        ).encode()
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, str(_CODEC_WORKER)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            process = self._process
            process.stdin.write(struct.pack(">I", len(request)) + request + frames.tobytes())
            process.stdin.flush()
            head = process.stdout.read(4)
            if len(head) != 4:
                raise RuntimeError(f"the {codec} encoder process ended (exit {process.wait()})")
            reply = json.loads(process.stdout.read(struct.unpack(">I", head)[0]))
            if "error" in reply:
                raise RuntimeError(f"{codec}: {reply['error']}")
            shape = reply["shape"]
            decoded = process.stdout.read(int(np.prod(shape)))
        return np.frombuffer(decoded, np.uint8).reshape(shape)


_CODEC_WORKER = pathlib.Path(__file__).with_name("codec_worker.py")
_CODECS = _CodecWorker()


def _encode_decode(frames, fps, codec, bits_per_pixel):
    # yuv420p needs even sides: the last row or column is repeated, and cut off again after.
    height, width = frames.shape[1:3]
    padded = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    padded = np.ascontiguousarray(np.clip(np.rint(padded), 0, 255).astype(np.uint8))
    rate = max(1, round(fps))
    bit_rate = max(1000, int(bits_per_pixel * padded.shape[1] * padded.shape[2] * fps))
    decoded = _CODECS.encode_decode(padded, codec, rate, bit_rate)
    return decoded[:, :height, :width]


def _h264(frames, severity, rng, fps):
    return _encode_decode(frames, fps, "libx264", (0.3, 0.2, 0.12, 0.08, 0.05)[severity - 1])


def _mpeg4(frames, severity, rng, fps):
    return _encode_decode(frames, fps, "mpeg4", (0.2, 0.1, 0.05, 0.03, 0.02)[severity - 1])


def _brightness(frames, severity, rng, fps):
    hsv = cv2.cvtColor(frames.reshape(-1, frames.shape[2], 3), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 2] += (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1] * 255.0
    hsv = np.clip(hsv, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).reshape(frames.shape)


def _contrast(frames, severity, rng, fps):
    factor = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    means = frames.mean(axis=(1, 2, 3), keepdims=True)
    return (frames - means) * factor + means


def _fog(frames, severity, rng, fps):
    # A haze of smooth random density (octaves of upsampled noise), the same over the whole video,
    # then the range squeezed as ImageNet-C's fog does.
    strength = (0.3, 0.5, 0.7, 0.9, 1.2)[severity - 1]
    height, width = frames.shape[1:3]
    haze = np.zeros((height, width), np.float32)
    for octave in range(1, 5):
        cells = 2**octave
        grid = rng.uniform(0.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
        haze += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / octave
    haze = (haze - haze.min()) / max(float(np.ptp(haze)), 1e-6)
    peak = frames.max()
    fogged = frames + strength * 255.0 * haze[None, :, :, None]
    return fogged * peak / (peak + strength * 255.0)


def _pixelate(frames, severity, rng, fps):
    factor = (0.5, 0.4, 0.3, 0.25, 0.2)[severity - 1]
    height, width = frames.shape[1:3]
    small = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.stack(
        [
            cv2.resize(
                cv2.resize(frame, small, interpolation=cv2.INTER_AREA),
                (width, height),
                interpolation=cv2.INTER_NEAREST,
            )
            for frame in frames
        ]
    )


def _frame_drop(frames, severity, rng, fps):
    # Lost frames: the video is shorter and what moved jumps.
    share = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    kept = np.sort(rng.permutation(len(frames))[: max(1, round(len(frames) * (1 - share)))])
    return frames[kept]


def _frame_duplicate(frames, severity, rng, fps):
    # A stuttering player: a frame shown again in place of the next one; the length is kept.
    share = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    shown = np.arange(len(frames))
    repeat = rng.uniform(size=len(frames)) < share
    repeat[0] = False
    shown[repeat] = 0
    return frames[np.maximum.accumulate(shown)]


def _frame_rate(frames, severity, rng, fps):
    # The same seconds at a lower rate: every frame of the new rate is the nearest one of the old.
    ratio = (0.8, 0.6, 0.5, 0.4, 0.3)[severity - 1]
    count = max(1, round(len(frames) * ratio))
    return frames[np.minimum(np.round(np.arange(count) / ratio).astype(int), len(frames) - 1)]


def _temporal_jitter(frames, severity, rng, fps):
    # Frames delivered out of order: each shows one up to `reach` frames before or after it.
    reach = severity
    shown = np.arange(len(frames)) + rng.integers(-reach, reach + 1, len(frames))
    return frames[np.clip(shown, 0, len(frames) - 1)]


CORRUPTIONS = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "defocus_blur": _defocus_blur,
    "motion_blur": _motion_blur,
    "h264": _h264,
    "mpeg4": _mpeg4,
    "brightness": _brightness,
    "contrast": _contrast,
    "fog": _fog,
    "pixelate": _pixelate,
    "frame_drop": _frame_drop,
    "frame_duplicate": _frame_duplicate,
    "frame_rate": _frame_rate,
    "temporal_jitter": _temporal_jitter,
}


def check_corruptions(names, severities):
    """Raises a one-line ValueError for an unknown corruption name or a severity outside 1-5."""
    unknown = [name for name in names if name not in CORRUPTIONS]
    if unknown:
        raise ValueError(
            f"unknown corruption(s) {', '.join(unknown)}; expected some of {', '.join(CORRUPTIONS)}"
        )
    wrong = [s for s in severities if s not in SEVERITIES]
    if wrong or not severities or not names:
        raise ValueError(
            "severities are 1 to 5 and at least one corruption and severity is needed, received "
            f"corruptions {list(names)} and severities {list(severities)}"
        )


def corrupt(frames, name, severity, *, rng, fps=25.0):
    """`frames` (uint8 `(T, H, W, 3)`, at least one) after corruption `name` at `severity` (1-5),
    uint8; the temporal corruptions may change `T`. `fps`: the video's frame rate (the encoders'
    bit rate is per second).
    """
    check_corruptions([name], [severity])
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1, received shape {frames.shape}")
    result = CORRUPTIONS[name](frames, severity, rng, float(fps))
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)
