"""Video, captions and sound: the synthetic motion clips with what is in them said in words and
heard on a sound track (§8.1 ③), for `vlm-tf make-data OUT --task multimodal`.

Every clip is one object of a named colour, outline and size, moving in one of the eight motion
classes of `vlm_tf.data.synthetic` at one of two speeds over one of four backgrounds. Its video
file (mp4: MPEG-4 video, AAC sound) carries a sound track made from the scene:

- the pitch follows the object's height in the frame (higher up, higher tone: 220 to 880 Hz),
- the loudness follows its size,
- the timbre is the clip's `sound`, which nothing in the picture shows: a `whistle` (a pure
  tone), a `buzz` (odd harmonics) or a `chime` (a bell's inharmonic partials).

So the sound holds one attribute the frames do not, and the frames hold colour, outline and
background, which the sound does not. Beside each video a JSON file holds the attributes, the
boxes and several captions, each naming every attribute in other words, so one caption picks
out one clip among hundreds. Some colour-motion pairs (`HELD_OUT_PAIRS`) never appear in
train, val or test; they make the `heldout/` split, where a model shows whether it composes
what it learnt or memorised the pairs.
"""

from __future__ import annotations

import itertools
import os

import cv2
import numpy as np

from vlm_tf import atomic
from vlm_tf.data import synthetic

COLOURS = {
    "red": (225, 40, 40),
    "green": (40, 185, 60),
    "blue": (45, 85, 235),
    "yellow": (240, 215, 40),
    "magenta": (215, 50, 205),
    "cyan": (40, 215, 225),
}
SHAPES = tuple(synthetic.OUTLINES)
SIZES = ("small", "large")
SPEEDS = ("slow", "fast")
SOUNDS = ("whistle", "buzz", "chime")
BACKGROUNDS = synthetic.BACKGROUND_KINDS
# One pair for each motion, each colour held out at least once: every colour and every motion
# is still seen in training, only never together in these pairs.
HELD_OUT_PAIRS = (
    ("red", "move_left"),
    ("green", "move_right"),
    ("blue", "move_up"),
    ("yellow", "move_down"),
    ("magenta", "grow"),
    ("cyan", "shrink"),
    ("red", "rotate_cw"),
    ("blue", "rotate_ccw"),
)
SAMPLE_RATE = 16000
DEFAULT_HELDOUT_PER_PAIR = 25
_LOWEST_HZ, _OCTAVES = 220.0, 2.0

MOTION_WORDS = {
    "move_left": ("moving left", "slides to the left", "travels leftwards"),
    "move_right": ("moving right", "slides to the right", "travels rightwards"),
    "move_up": ("moving up", "rises", "travels upwards"),
    "move_down": ("moving down", "sinks", "travels downwards"),
    "grow": ("growing", "grows", "gets bigger"),
    "shrink": ("shrinking", "shrinks", "gets smaller"),
    "rotate_cw": ("turning clockwise", "spins clockwise", "swings round clockwise"),
    "rotate_ccw": ("turning anticlockwise", "spins anticlockwise", "swings round anticlockwise"),
}
_SPEED_WORDS = {"slow": ("slowly", "at a slow pace"), "fast": ("quickly", "at a fast pace")}
_BACKGROUND_WORDS = {
    "gradient": ("a smooth gradient", "a shaded background"),
    "stripes": ("stripes", "a striped background"),
    "checks": ("a checkerboard", "a chequered background"),
    "blobs": ("soft blobs", "a blotchy background"),
}
_SOUND_WORDS = {
    "whistle": ("a whistle", "a pure tone"),
    "buzz": ("a buzz", "a buzzing tone"),
    "chime": ("a chime", "a bell-like tone"),
}


def captions(attributes):
    """Several phrasings of one clip's `attributes`, each naming all of them."""
    a = attributes
    motion, speed = MOTION_WORDS[a["motion"]], _SPEED_WORDS[a["speed"]]
    background, sound = _BACKGROUND_WORDS[a["background"]], _SOUND_WORDS[a["sound"]]
    thing = f"{a['size']} {a['colour']} {a['shape']}"
    return [
        f"a {thing} {motion[0]} {speed[0]} over {background[0]}, with {sound[0]}",
        f"over {background[1]}, a {thing} {motion[1]} {speed[1]} to {sound[1]}",
        f"{sound[0]} as a {a['colour']} {a['shape']}, {a['size']}, {motion[2]} {speed[0]} "
        f"in front of {background[0]}",
    ]


def partial_captions(attributes):
    """Phrasings of one clip that each leave attributes out: the outline with the motion and no
    colour, the colour with no motion, and so on. Trained on beside `captions`, they teach that a
    sentence naming the motion alone means the motion whatever the colour (what a zero-shot prompt
    asks); none uses the words of video_text's prompt templates.
    """
    a = attributes
    motion, speed = MOTION_WORDS[a["motion"]], _SPEED_WORDS[a["speed"]]
    background = _BACKGROUND_WORDS[a["background"]]
    # "an arrow", "an ell": the outline comes first in two of them.
    article = "an" if a["shape"][0] in "aeiou" else "a"
    return [
        f"{article} {a['shape']} {motion[0]} {speed[0]}",
        f"a {a['size']} {a['shape']} that {motion[1]}",
        f"a {a['colour']} {a['shape']} over {background[1]}",
        f"{article} {a['shape']} that {motion[2]} over {background[0]}",
    ]


def described_videos(folder):
    """`[(path, meta)]`: the videos under `folder` with a JSON object beside them (`<stem>.json`),
    and that object; videos without one are left out.
    """
    import json

    from vlm_tf.data.splits import list_videos

    found = []
    for path in list_videos(folder):
        meta_path = os.path.splitext(path)[0] + ".json"
        if not os.path.isfile(meta_path):
            continue
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if isinstance(meta, dict):
            found.append((path, meta))
    return found


def prompts(attributes):
    """Short phrasings of what the picture of a clip of `attributes` shows, as a user would ask for
    it: the first names every visible attribute (all but the sound), the others fewer.
    """
    a = attributes
    motion, speed = MOTION_WORDS[a["motion"]], _SPEED_WORDS[a["speed"]]
    return [
        f"a {a['size']} {a['colour']} {a['shape']} {motion[0]} {speed[0]} over "
        f"{_BACKGROUND_WORDS[a['background']][0]}",
        f"a {a['colour']} {a['shape']} {motion[0]}",
        f"a {a['size']} {a['colour']} {a['shape']} that {motion[1]} {speed[1]}",
    ]


def compositions(motions):
    """Every attribute dict `captions` can phrase for `motions`: each motion with every speed,
    outline, size, colour, background and sound (13 824 for the eight motions).
    """
    names = ("speed", "shape", "size", "colour", "background", "sound")
    values = (SPEEDS, SHAPES, SIZES, tuple(COLOURS), BACKGROUNDS, SOUNDS)
    for motion in motions:
        for chosen in itertools.product(*values):
            yield {"motion": motion, **dict(zip(names, chosen))}


def attributes_in(text):
    """The attributes a caption or prompt names, by the words `captions` and `prompts` use for
    them: `{"motion": "move_left", "colour": "red", ...}`, only those it names.
    """
    words = " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())
    padded = f" {words} "
    found = {}
    for name, values in (
        ("colour", COLOURS),
        ("shape", SHAPES),
        ("size", SIZES),
    ):
        named = [value for value in values if f" {value} " in padded]
        if len(named) == 1:
            found[name] = named[0]
    for name, phrases in (
        ("motion", MOTION_WORDS),
        ("speed", _SPEED_WORDS),
        ("background", _BACKGROUND_WORDS),
        ("sound", _SOUND_WORDS),
    ):
        named = [
            value
            for value, words_of in phrases.items()
            if any(f" {phrase} " in padded for phrase in words_of)
        ]
        if len(named) == 1:
            found[name] = named[0]
    return found


def prompt_splits(data_dir):
    """`{"test": …, "heldout": …}` where `data_dir` is a multimodal dataset's root holding both,
    else `{None: data_dir}`: the folders prompted generation reads and writes, by the report key
    (`heldout` or the top level) their scores fill.
    """
    splits = {name: os.path.join(data_dir, name) for name in ("test", "heldout")}
    if all(os.path.isdir(folder) for folder in splits.values()):
        return splits
    return {None: data_dir}


def draw_attributes(rng, motion, colours):
    """One clip's attributes: `motion` given, the colour drawn from `colours`, the rest free."""
    return {
        "motion": motion,
        "colour": colours[rng.integers(len(colours))],
        "shape": SHAPES[rng.integers(len(SHAPES))],
        "size": SIZES[rng.integers(len(SIZES))],
        "speed": SPEEDS[rng.integers(len(SPEEDS))],
        "background": BACKGROUNDS[rng.integers(len(BACKGROUNDS))],
        "sound": SOUNDS[rng.integers(len(SOUNDS))],
    }


def _trajectory(rng, a, size, num_frames):
    """Per-frame centre (x, y), radius and angle for attributes `a`, as synthetic's classes move
    but at the named size and speed.
    """
    t = np.arange(num_frames, dtype=np.float64)
    last = max(num_frames - 1, 1)
    fast = a["speed"] == "fast"
    radius = rng.uniform(*((0.13, 0.16) if a["size"] == "large" else (0.07, 0.09))) * size
    angle0 = rng.uniform(0, 360)
    motion = a["motion"]
    if motion.startswith("move_"):
        # Pixels a frame at 64 px: the fast ones twice the slow ones, both within the frame.
        per_frame = rng.uniform(*((1.6, 2.0) if fast else (0.7, 0.9))) * size / 64
        travel = min(per_frame * last, 0.9 * (size - 2 * radius))
        start = rng.uniform(radius, size - radius - travel)
        along = start + travel * t / last
        across = np.full(num_frames, rng.uniform(radius, size - radius))
        if motion in ("move_left", "move_up"):
            along = along[::-1]
        x, y = (along, across) if motion in ("move_left", "move_right") else (across, along)
        return x, y, np.full(num_frames, radius), np.full(num_frames, angle0)
    if motion in ("grow", "shrink"):
        # The named size is the large end; the speed is how many times it grows on the way.
        ratio = rng.uniform(*((3.0, 3.6) if fast else (1.6, 1.9)))
        radii = radius * 1.6 / ratio * ratio ** (t / last)
        if motion == "shrink":
            radii = radii[::-1]
        reach = radius * 1.6
        centre = rng.uniform(reach, size - reach, 2)
        return (
            np.full(num_frames, centre[0]),
            np.full(num_frames, centre[1]),
            radii,
            np.full(num_frames, angle0),
        )
    step = rng.uniform(*((12.0, 14.0) if fast else (5.0, 7.0)))
    step *= 1 if motion == "rotate_cw" else -1
    reach = radius * (1.0 + synthetic.PIVOT_OFFSET[1])
    pivot = rng.uniform(reach, size - reach, 2)
    return (
        np.full(num_frames, pivot[0]),
        np.full(num_frames, pivot[1]),
        np.full(num_frames, radius),
        angle0 + step * t,
    )


def render_scene(attributes, *, num_frames, size, fps, rng):
    """`(frames, boxes, sound)`: RGB uint8 `(T, size, size, 3)`, `(T, 4)` boxes and mono float32
    samples at `SAMPLE_RATE` as long as the video, for `attributes`.
    """
    kind = BACKGROUNDS.index(attributes["background"])
    # A greyish background: the object's colour is the colour a caption names.
    background = synthetic.textured_background(rng, size, kind)
    background = 0.35 * background + 0.65 * background.mean(axis=2, keepdims=True)
    colour = np.asarray(COLOURS[attributes["colour"]], np.float64)
    outline = np.array(synthetic.OUTLINES[attributes["shape"]])
    xs, ys, radii, angles = _trajectory(rng, attributes, size, num_frames)
    offset = rng.uniform(*synthetic.PIVOT_OFFSET) if attributes["motion"].startswith("rot") else 0
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    boxes = np.empty((num_frames, 4))
    for i in range(num_frames):
        points = synthetic.outline_points(outline, 1.0, radii[i], angles[i], [xs[i], ys[i]], offset)
        canvas = background.copy()
        cv2.fillPoly(
            canvas, [np.round(points * 16).astype(np.int32)], colour.tolist(), cv2.LINE_AA, shift=4
        )
        frames[i] = (canvas + rng.normal(0.0, 3.0, canvas.shape)).clip(0, 255).astype(np.uint8)
        boxes[i] = [*points.min(axis=0).clip(0, size), *points.max(axis=0).clip(0, size)]
    heights = 1.0 - (boxes[:, 1] + boxes[:, 3]) / (2 * size)
    return frames, boxes, soundtrack(attributes["sound"], heights, radii / size, fps)


def soundtrack(sound, heights, sizes, fps, sample_rate=SAMPLE_RATE):
    """Mono samples for per-frame `heights` (0 bottom … 1 top) and `sizes` (radius / frame side):
    pitch from height, loudness from size, timbre from `sound`.
    """
    count = round(len(heights) / fps * sample_rate)
    frame_times = (np.arange(len(heights)) + 0.5) / fps
    times = np.arange(count) / sample_rate
    pitch = _LOWEST_HZ * 2.0 ** (_OCTAVES * np.interp(times, frame_times, heights))
    loudness = np.interp(times, frame_times, np.clip(sizes / 0.3, 0.15, 1.0)) * 0.5
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    if sound == "whistle":
        wave = np.sin(phase)
    elif sound == "buzz":
        wave = sum(np.sin(k * phase) / k for k in (1, 3, 5, 7)) / 1.5
    else:
        wave = sum(w * np.sin(k * phase) for k, w in ((1.0, 0.6), (2.76, 0.3), (5.4, 0.2))) / 1.1
    return (loudness * wave).astype(np.float32)


def write_clip(path, frames, sound, fps):
    """Writes `frames` and the mono `sound` into one mp4 (MPEG-4 video, AAC sound) with PyAV."""
    try:
        import av
    except ImportError:
        raise ValueError(
            "make-data --task multimodal writes sound with PyAV: pip install -e '.[data]'"
        ) from None
    with av.open(os.fspath(path), "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=round(fps))
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.bit_rate = 8 * frames.shape[1] * frames.shape[2] * round(fps)
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        samples = av.AudioFrame.from_ndarray(sound[None], format="fltp", layout="mono")
        samples.sample_rate = SAMPLE_RATE
        container.mux(audio.encode(samples))
        container.mux(audio.encode())
        container.mux(video.encode())


def write_multimodal_dataset(
    out_dir,
    *,
    videos_per_class=synthetic.DEFAULT_VIDEOS_PER_CLASS,
    heldout_per_pair=DEFAULT_HELDOUT_PER_PAIR,
    num_frames=synthetic.DEFAULT_NUM_FRAMES,
    size=synthetic.DEFAULT_SIZE,
    seed=0,
    fps=10.0,
    progress=None,
):
    """Writes `out_dir/{train,val,test,heldout}/<motion>/<motion>_NNNN.mp4`, each with its JSON
    (attributes, captions, boxes) beside it, and `dataset.json`.

    train, val and test split `videos_per_class` clips of each motion 70/15/15 and never hold a
    pair of `HELD_OUT_PAIRS`; `heldout` holds `heldout_per_pair` clips of each such pair (0: no
    pair is held out, and there is no `heldout`). Seeded
    per clip, like `synthetic.write_dataset`; a folder that holds this dataset already is left as
    it is, any other non-empty folder refused.
    """
    if videos_per_class < 3 or heldout_per_pair < 0:
        raise ValueError(
            "videos_per_class must be at least 3 and heldout_per_pair at least 0, received "
            f"{videos_per_class} and {heldout_per_pair}"
        )
    # None held out: every pair in every split, as a judge of all compositions needs
    # (`vlm-tf train --task attributes`: held-out pairs teach it that red never moves left).
    held_out_pairs = HELD_OUT_PAIRS if heldout_per_pair else ()
    params = {
        "generator": "vlm_tf.data.multimodal",
        "videos_per_class": int(videos_per_class),
        "heldout_per_pair": int(heldout_per_pair),
        "num_frames": int(num_frames),
        "size": int(size),
        "seed": int(seed),
        "fps": float(fps),
    }
    splits = synthetic._split_sizes(videos_per_class)
    if heldout_per_pair:
        splits["heldout"] = heldout_per_pair
    manifest = {
        **params,
        "classes": list(synthetic.CLASS_NAMES),
        # A flip swaps left and right in the picture and leaves the sound's pitch (height) alone;
        # time reversal would play the picture backwards under a sound that is not.
        "label_maps": {"horizontal_flip": synthetic.LABEL_MAPS["horizontal_flip"]},
        "splits": splits,
        "held_out_pairs": [list(pair) for pair in held_out_pairs],
        "sample_rate": SAMPLE_RATE,
        "attributes": {
            "colour": list(COLOURS),
            "shape": list(SHAPES),
            "size": list(SIZES),
            "speed": list(SPEEDS),
            "background": list(BACKGROUNDS),
            "sound": list(SOUNDS),
        },
    }
    out_dir = os.fspath(out_dir)
    existing = synthetic.finished_dataset(out_dir, params)
    if existing is not None:
        return existing
    synthetic.render_clip(synthetic.CLASS_NAMES[0], num_frames=num_frames, size=size, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, synthetic.DATASET_FILE)
    atomic.write_json(manifest_path, {**manifest, "complete": False})
    total = len(synthetic.CLASS_NAMES) * videos_per_class + len(held_out_pairs) * heldout_per_pair
    done = 0
    for split_index, split in enumerate(splits):
        for class_index, motion in enumerate(synthetic.CLASS_NAMES):
            held = [colour for colour, pair_motion in held_out_pairs if pair_motion == motion]
            colours = held if split == "heldout" else [c for c in COLOURS if c not in held]
            count = splits[split] * len(held) if split == "heldout" else splits[split]
            class_dir = os.path.join(out_dir, split, motion)
            os.makedirs(class_dir, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng((seed, split_index, class_index, i))
                attributes = draw_attributes(rng, motion, colours)
                frames, boxes, sound = render_scene(
                    attributes, num_frames=num_frames, size=size, fps=fps, rng=rng
                )
                stem = os.path.join(class_dir, f"{motion}_{i:04d}")
                write_clip(stem + ".mp4", frames, sound, fps)
                atomic.write_json(
                    stem + ".json",
                    synthetic.box_record(
                        motion,
                        boxes,
                        fps=fps,
                        size=size,
                        attributes=attributes,
                        captions=captions(attributes),
                    ),
                )
                done += 1
                if progress is not None:
                    progress(done, total)
    manifest["complete"] = True
    atomic.write_json(manifest_path, manifest)
    return manifest
