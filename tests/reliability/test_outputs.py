"""What commands write: never over a file they did not write, errors that name the path, a closed
pipe ends quietly.
"""

import os
import subprocess
import sys

import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf import atomic
from vlm_tf.data import read_frames
from vlm_tf.data.decode import VideoReadError


def test_a_full_disk_error_names_the_file_and_leaves_nothing(small_disk):
    small_disk = small_disk(64 * 1024)
    path = small_disk / "history.json"
    with pytest.raises(OSError, match="No space left on device") as raised:
        atomic.write_json(path, {"rows": ["x" * 1000] * 200})
    assert raised.value.filename == str(path)
    assert os.listdir(small_disk) == []


def test_tflite_export_refuses_a_file_it_did_not_write(classify_run, tmp_path):
    run_dir = classify_run[0]
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    done = vlm_tf("export", run_dir, "--format", "tflite", "--out", notes)
    assert_one_line_error(done, str(notes), "already exists")
    assert notes.read_text() == '{"mine": true}'


def test_tflite_export_into_a_full_disk_names_the_file(classify_run, small_disk):
    small_disk = small_disk(64 * 1024)
    out = small_disk / "model.tflite"
    done = vlm_tf("export", classify_run[0], "--format", "tflite", "--out", out)
    assert done.returncode == 2
    assert_one_line_error(done, "No space left on device", str(out))
    assert os.listdir(small_disk) == []


def test_a_symlink_loop_is_not_reported_as_a_missing_file(tmp_path):
    loop = tmp_path / "loop.mp4"
    os.symlink(loop, loop)
    with pytest.raises(VideoReadError, match="symbolic links"):
        read_frames(loop, [0], (32, 32))


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # The reader is gone before the first line is written, as after `| head -0`.
    reader, writer = os.pipe()
    os.close(reader)
    done = subprocess.run(
        [sys.executable, "-m", "vlm_tf.cli", "make-data", str(tmp_path / "data")]
        + ["--videos-per-class", "3", "--video-frames", "4", "--size", "16"],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(writer)
    # Progress lines go to stderr; no error, no traceback follows them.
    assert done.returncode == 141, done.stderr
    assert "vlm-tf" not in done.stderr and "Error" not in done.stderr, done.stderr


def test_impossible_training_settings_are_refused_before_they_cost_memory(tiny_dataset, tmp_path):
    common = ["--epochs", "1", "--quiet", "--jit", "off"]
    for setting, needle in (
        (["--size", "100000"], "100000x100000"),
        (["--batch-size", "99999999999"], "batches of 99999999999 clips"),
        # The clips alone fit here; what the model keeps of 20000 frames for its backward pass
        # does not (over 400 GiB for this model).
        (["--frames", "20000", "--model", "cnn_lstm_bn_gap"], "activations"),
    ):
        out = tmp_path / "run"
        done = vlm_tf("train", tiny_dataset, "--out", out, *common, *setting)
        assert done.returncode == 2, done.stderr[-3000:]
        assert_one_line_error(done, needle, "GiB available")
        assert not out.exists()


def test_views_no_batch_can_hold_are_refused(classify_run, tiny_dataset):
    """It used to print "accuracy 0.000 on 0 videos" and exit 0."""
    done = vlm_tf("evaluate", classify_run[0], tiny_dataset / "test", "--views", "1000000")
    assert done.returncode == 2
    assert_one_line_error(done, "1000000 clip(s)", "GiB available")


@pytest.mark.parametrize("command", ["apply", "predict-frames"])
def test_a_video_output_never_replaces_an_existing_file(
    classify_run, tiny_dataset, tmp_path, command
):
    video = next((tiny_dataset / "test").glob("*/*.mp4"))
    mine = tmp_path / "mine.mp4"
    mine.write_bytes(b"my own video")
    done = vlm_tf(command, classify_run[0], video, "--out", mine)
    assert_one_line_error(done, str(mine), "already exists")
    assert mine.read_bytes() == b"my own video"
