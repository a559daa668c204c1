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


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs: a disk that fills. Mounting needs root, as CI and this machine have."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_error_names_the_file_and_leaves_nothing(small_disk):
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
        + ["--videos-per-class", "3", "--frames", "4", "--size", "16"],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(writer)
    # Progress lines go to stderr; no error, no traceback follows them.
    assert done.returncode == 141, done.stderr
    assert "vlm-tf" not in done.stderr and "Error" not in done.stderr, done.stderr
