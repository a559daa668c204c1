"""Anonymisation (`vlm-tf anonymize`, `vlm_tf.anonymize`, §8.2 ①) on real photographs that
scikit-image ships, made into moving videos whose faces' boxes are known.
"""

import json

import cv2
import numpy as np
import pytest
import skimage.data
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.data import read_frames, write_video

FRAMES = 16
SIZE = 192
# The faces in scikit-image's 512x512 photographs, [x0, y0, x1, y1] (BlazeFace's box on the still).
FACES = {"astronaut": [180, 82, 274, 176], "camera": [174, 119, 264, 209]}


def _pan(image, face):
    """A camera panning across `image` and zooming in: frames, and the face's box in each."""
    height, width = image.shape[:2]
    frames, boxes = [], []
    for t in range(FRAMES):
        side = int(round(0.75 * height - 0.2 * height * t / (FRAMES - 1)))
        x, y = int(round((width - side) * t / (FRAMES - 1))), int(round((height - side) * 0.3))
        frames.append(
            cv2.resize(
                image[y : y + side, x : x + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA
            )
        )
        boxes.append((np.array(face, float) - [x, y, x, y]) * SIZE / side)
    return np.stack(frames), np.array(boxes)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """`(folder, {name: face boxes per frame})`: two videos with a face, one without."""
    folder = tmp_path_factory.mktemp("faces")
    photos = {
        "astronaut": skimage.data.astronaut(),
        "camera": np.repeat(skimage.data.camera()[..., None], 3, axis=-1),
        "coffee": skimage.data.coffee(),
    }
    boxes = {}
    for name, image in photos.items():
        frames, faces = _pan(image, FACES.get(name, [0, 0, 1, 1]))
        write_video(folder / f"{name}.mp4", frames, fps=8)
        if name in FACES:
            boxes[name] = faces
    return folder, boxes


def _covered(report, frame, box):
    """The share of `box` (clipped to the frame) inside what `report` hid in `frame`."""
    hidden = np.zeros((SIZE, SIZE), bool)
    for item in report["hidden"][frame]:
        x0, y0, x1, y1 = item["box"]
        hidden[y0:y1, x0:x1] = True
    x0, y0 = (max(0, int(np.floor(v))) for v in box[:2])
    x1, y1 = (min(SIZE, int(np.ceil(v))) for v in box[2:])
    return hidden[y0:y1, x0:x1].mean()


def _frames_with_a_face(detector, frames):
    return sum(len(detector.detect(frame)[0]) > 0 for frame in frames)


def test_every_face_of_a_folder_is_hidden_and_no_longer_found(videos, tmp_path):
    from vlm_tf.anonymize import load_detectors

    folder, faces = videos
    out = tmp_path / "out"
    done = vlm_tf("anonymize", folder, out, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = {s["path"].rsplit("/", 1)[-1]: s for s in json.loads(done.stdout)}
    assert set(summaries) == {"astronaut.mp4", "camera.mp4", "coffee.mp4"}
    # Nothing to hide in a cup of coffee.
    assert summaries["coffee.mp4"]["frames_hidden"] == 0
    detector = load_detectors()["face"]
    for name, boxes in faces.items():
        report = json.loads((out / f"{name}.json").read_text())
        assert report["frames"] == FRAMES and len(report["hidden"]) == FRAMES
        # A face counts as hidden when the boxes hidden cover 80 % of it.
        hidden = [_covered(report, t, box) >= 0.8 for t, box in enumerate(boxes)]
        assert np.mean(hidden) >= 0.9, (name, hidden)
        before = _frames_with_a_face(detector, read_frames(folder / f"{name}.mp4"))
        after = _frames_with_a_face(detector, read_frames(out / f"{name}.mp4"))
        # Measured: found in 14 and 15 frames of 16 before, in none after.
        assert before >= 0.8 * FRAMES and after <= 0.1 * FRAMES, (name, before, after)
        for item in (item for frame in report["hidden"] for item in frame):
            assert item["kind"] == "face" and 0 <= item["from_frame"] < FRAMES
            assert 0.5 <= item["score"] <= 1 and len(item["box"]) == 4


@pytest.mark.parametrize("method", ["pixelate", "box"])
def test_each_way_of_hiding_changes_only_the_boxes_it_hides(videos, method):
    from vlm_tf.anonymize import anonymize_frames, load_detectors

    folder, _ = videos
    frames = read_frames(folder / "astronaut.mp4")
    detectors = load_detectors()
    out, hidden = anonymize_frames(frames, method=method, detectors=detectors)
    for t in range(FRAMES):
        untouched = np.ones((SIZE, SIZE), bool)
        for item in hidden[t]:
            x0, y0, x1, y1 = item["box"]
            untouched[y0:y1, x0:x1] = False
        np.testing.assert_array_equal(out[t][untouched], frames[t][untouched])
        assert not untouched.all()
    assert _frames_with_a_face(detectors["face"], out) <= 0.1 * FRAMES


def test_people_are_hidden_whole(videos, tmp_path):
    folder, faces = videos
    done = vlm_tf("anonymize", folder / "astronaut.mp4", tmp_path / "a.mp4", "--people", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "a.json").read_text())
    people = [item for frame in report["hidden"] for item in frame]
    assert people and {item["kind"] for item in people} == {"person"}
    # A person's box holds the face and more of the body.
    for t, box in enumerate(faces["astronaut"]):
        assert _covered(report, t, box) >= 0.8 or not report["hidden"][t]
    assert report["frames_hidden"] >= 0.8 * FRAMES


def test_anonymize_refuses_in_one_line_and_overwrites_nothing(videos, tmp_path):
    folder, _ = videos
    video = folder / "camera.mp4"
    out = tmp_path / "kept.mp4"
    out.write_bytes(b"mine")
    assert_one_line_error(vlm_tf("anonymize", video, out), str(out), "exists")
    assert out.read_bytes() == b"mine"
    assert_one_line_error(vlm_tf("anonymize", tmp_path / "nope.mp4", tmp_path / "x.mp4"), "nope")
    assert_one_line_error(vlm_tf("anonymize", folder, out), "folder")
    # A folder whose one output would overwrite a file writes nothing at all.
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "coffee.json").write_text("{}")
    assert_one_line_error(vlm_tf("anonymize", folder, tmp_path / "o"), "coffee.json", "exists")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["coffee.json"]
    assert_one_line_error(vlm_tf("anonymize", video, tmp_path / "y.mp4", "--method", "smear"))
