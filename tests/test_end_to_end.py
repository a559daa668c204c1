"""The issue's acceptance runs: the quickstart, and the same commands on videos nobody here made."""

import json
import re

import pytest
from helpers import CAMERA_CLASSES, serve_in_subprocess, vlm_tf, write_camera_motion_dataset


@pytest.mark.slow
def test_quickstart_reaches_85_percent_and_exports(tmp_path):
    done = vlm_tf("quickstart", "--out", tmp_path / "qs")
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", done.stdout).group(1))
    # Measured 0.931 here and 0.889 on CI's machine (another CPU, where `--precision auto` may
    # choose otherwise): on 144 test videos one standard error is about 0.02, so the bar sits
    # three below the runs seen, at almost seven times chance (0.125).
    assert accuracy >= 0.85, done.stdout[-3000:]
    assert f"tensorboard --logdir {tmp_path / 'qs' / 'run' / 'logs'}" in done.stdout
    saved_model = tmp_path / "qs" / "run" / "saved_model"
    assert (saved_model / "saved_model.pb").is_file()

    # The exported model classifies a test video by itself, from raw uint8 frames.
    from vlm_tf.data import read_frames
    from vlm_tf.data.sampling import uniform_indices

    video = sorted((tmp_path / "qs" / "data" / "test" / "move_right").glob("*.mp4"))[0]
    frames = read_frames(video, uniform_indices(24, 16).numpy(), (64, 64))
    served = serve_in_subprocess(str(saved_model), frames[None])
    assert len(served["probabilities"][0]) == 8

    again = vlm_tf("quickstart", "--out", tmp_path / "qs")
    assert again.returncode == 0 and "already holds a finished run" in again.stdout


@pytest.fixture(scope="module")
def camera_data(tmp_path_factory):
    """The foreign footage, written once for every model trained on it."""
    root = tmp_path_factory.mktemp("camera")
    return write_camera_motion_dataset(root, train_per_class=24, test_per_class=8, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, options, chances",
    [
        # Measured 0.50 (chance 0.17): learnt, but far from the synthetic
        # set's 0.93 (docs/design.md, "Videos nobody here made").
        (None, (), 2),
        # Not held here, measured (docs/design.md, "Videos nobody here made"):
        # cnn_lstm_bn_gap (0.875 and 0.854 after 30 epochs, 0.771 after 15; its
        # 160-240 s went to the trustworthy tests' budget), the tiny transformer
        # (0.73, 264 s) and multi-scale attention (0.56-0.75 over three seeds
        # on one machine, 0.27 on another).
    ],
    ids=["default"],
)
def test_train_learns_foreign_camera_motion_videos(camera_data, tmp_path, model, options, chances):
    """H.264 / VP9 / MPEG-4 from FFmpeg, four sizes, 15-30 fps, 20-45 frames, 24 training clips per
    class.
    """
    data = camera_data
    done = vlm_tf(
        "train",
        data,
        "--out",
        tmp_path / "run",
        "--quiet",
        *(["--model", model] if model else []),
        *options,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    done = vlm_tf("evaluate", tmp_path / "run", data / "test", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["num_videos"] == 8 * len(CAMERA_CLASSES) and report["skipped"] == []
    assert report["accuracy"] >= chances / len(CAMERA_CLASSES), report
