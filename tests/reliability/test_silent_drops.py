"""Nothing dropped silently: what a command leaves out is named with its reason, or it refuses.

Corrupt cache files, unreadable videos under `train --strict`, class folders
without videos, a dataset make-data did not finish, and a still image given
to `predict`, each as a user meets them.
"""

import json
import shlex
import shutil

import cv2
import numpy as np
import pytest
from helpers import TINY_CLASSIFY, assert_one_line_error, vlm_tf

from vlm_tf.data.decode import read_frames, write_video

# The quickest training a command accepts; every train below is refused before its first step.
TINY_TRAIN = (
    *("--model", "cnn_lstm", "--epochs", "1", "--frames", "8", "--size", "32"),
    *("--batch-size", "8", "--precision", "float32", "--jit", "off", "--quiet"),
)


@pytest.fixture
def dataset(tiny_dataset, tmp_path):
    """A copy of the tiny dataset that a test may break."""
    return shutil.copytree(tiny_dataset, tmp_path / "data")


def corrupt_cache(dataset, cache):
    """`{cache file: video}` of two training videos decoded into `cache` at 32x32, whose files are
    then broken as a failing disk or another program would: one overwritten, one cut short.
    """
    from vlm_tf.data.cache import DecodedVideos

    store = DecodedVideos(cache, (32, 32))
    files = {}
    for video in sorted((dataset / "train" / "grow").glob("*.mp4"))[:2]:
        before = set(cache.glob("*.npy"))
        store.read(str(video), [0])
        (file,) = set(cache.glob("*.npy")) - before
        files[str(file)] = str(video)
    first, second = files
    with open(first, "wb") as f:
        f.write(b"not an array")
    with open(second, "r+b") as f:
        f.truncate(1000)
    return files


def test_corrupt_cache_files_are_reported_and_their_videos_decoded_again(dataset, tmp_path):
    from vlm_tf.data import video_dataset_from_directory

    cache = tmp_path / "cache"
    corrupted = corrupt_cache(dataset, cache)
    clips = video_dataset_from_directory(
        dataset / "train", num_frames=8, image_size=(32, 32), batch_size=8, seed=0, cache=cache
    )
    reported = {item["path"]: item["reason"] for item in clips.skipped}
    assert set(reported) == set(corrupted)
    for file, video in corrupted.items():
        assert video in reported[file] and "decoded again" in reported[file], reported[file]
    # Not one video drops out of the epoch, and the cache holds every one of them again.
    assert sum(len(labels) for _, labels in clips) == len(clips.file_paths) == 32
    for file in corrupted:
        assert np.load(file).shape == (8, 32, 32, 3)


def test_train_strict_refuses_a_corrupt_cache_file_before_training(dataset, tmp_path):
    from vlm_tf.training import RunConfig, train

    cache = tmp_path / "cache"
    corrupted = corrupt_cache(dataset, cache)
    config = RunConfig(**{**TINY_CLASSIFY, "epochs": 1})
    with pytest.raises(ValueError, match="strict") as refused:
        train(dataset, tmp_path / "run", config, verbose=0, cache=cache, strict=True)
    assert str(refused.value).split(":")[0] in corrupted
    assert not (tmp_path / "run").exists()


def test_train_strict_refuses_an_unreadable_video_before_training(dataset, tmp_path):
    broken = dataset / "train" / "grow" / "broken.mp4"
    broken.write_bytes(b"not a video")
    done = vlm_tf("train", dataset, "--out", tmp_path / "run", "--strict", *TINY_TRAIN)
    assert done.returncode == 2
    assert_one_line_error(done, f"error: {broken}: ", "strict")
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_class_folder_without_videos(dataset, tmp_path):
    empty = dataset / "train" / "spin"
    empty.mkdir()
    done = vlm_tf("train", dataset, "--out", tmp_path / "run", *TINY_TRAIN)
    assert done.returncode == 2
    assert_one_line_error(done, f"error: {empty}: class folder without video files")
    assert not (tmp_path / "run").exists()


def test_evaluate_skips_a_class_folder_without_videos_with_a_word(classify_run, dataset):
    empty = dataset / "test" / "grow"
    for file in empty.iterdir():
        file.unlink()
    # Marked unfinished too: --allow-incomplete evaluates on what there is.
    manifest = dataset / "dataset.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "complete": False}))
    done = vlm_tf("evaluate", classify_run[0], dataset / "test", "--allow-incomplete")
    assert done.returncode == 0, done.stderr
    assert f"skipped {empty}: class folder without video files" in done.stdout.splitlines()


def test_an_unfinished_dataset_is_refused_until_make_data_finishes_it(
    classify_run, dataset, tmp_path
):
    # What make-data leaves when the disk fills: a manifest saying so, the last class missing.
    manifest = dataset / "dataset.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "complete": False}))
    shutil.rmtree(dataset / "test" / "rotate_ccw")
    for refused in (
        vlm_tf("train", dataset, "--out", tmp_path / "run", *TINY_TRAIN),
        vlm_tf("evaluate", classify_run[0], dataset / "test"),
    ):
        assert refused.returncode == 2
        assert_one_line_error(refused, f"error: {manifest}: ", "make-data", "--allow-incomplete")
    assert not (tmp_path / "run").exists()
    # The command the refusal names finishes the dataset.
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("vlm-tf")]
    command = shlex.split(line.split("`")[1])
    assert command[:3] == ["vlm-tf", "make-data", str(dataset)]
    finished = vlm_tf(*command[1:])
    assert finished.returncode == 0, finished.stderr
    assert json.loads(manifest.read_text())["complete"] is True
    assert len(list((dataset / "test" / "rotate_ccw").glob("*.mp4"))) == 1


def test_predict_says_when_its_input_is_not_a_clip(classify_run, tiny_dataset, tmp_path):
    clip = sorted((tiny_dataset / "test" / "grow").glob("*.mp4"))[0]
    frames = read_frames(clip)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    one_frame = write_video(tmp_path / "one_frame.mp4", frames[:1])
    done = vlm_tf("predict", classify_run[0], still, one_frame, clip)
    assert done.returncode == 0, done.stderr
    # Each is still labelled; the two that are not clips say so, the clip does not.
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [
        str(still),
        one_frame,
        str(clip),
    ]
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert [note.split(";")[0] for note in notes] == [
        f"note: {still} is not a clip (1 frame(s))",
        f"note: {one_frame} is not a clip (1 frame(s))",
    ]


@pytest.mark.parametrize("first_pass", [None, 0], ids=["finite", "pass_keyed"])
def test_a_video_that_fails_after_its_probe_is_named(dataset, first_pass):
    """A file changed on disk mid-run drops its clip from the epoch; the dataset names it, and
    `train` lists it with the files it skipped.
    """
    from vlm_tf.data import video_dataset_from_directory

    train = video_dataset_from_directory(
        dataset / "train",
        num_frames=8,
        image_size=(32, 32),
        batch_size=8,
        seed=0,
        first_pass=first_pass,
    )
    broken = sorted((dataset / "train" / "grow").glob("*.mp4"))[0]
    broken.write_bytes(b"")
    one_pass = train.take(train.steps_per_pass) if first_pass is not None else train
    clips = sum(int(batch.shape[0]) for batch, _ in one_pass)
    assert clips == len(train.file_paths) - 1
    assert [item["path"] for item in train.failed] == [str(broken)]
    assert "failed in training" in train.failed[0]["reason"]
