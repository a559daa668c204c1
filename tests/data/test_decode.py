import os

import numpy as np
import pytest
from helpers import FOREIGN_FORMATS, write_foreign_video

from vlm_tf.data.decode import VideoReadError, probe_video, read_frames, write_video


def _ramp(num_frames=10, height=24, width=32):
    """Frames whose mean brightness encodes their index, and a red left half (checks RGB order)."""
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = 20 + 20 * i
        frames[i, :, : width // 2, 0] = 250
    return frames


@pytest.mark.parametrize("extension", [".mp4", ".avi", ".mkv"])
def test_write_then_read_round_trip(tmp_path, extension):
    frames = _ramp()
    path = write_video(tmp_path / f"ramp{extension}", frames, fps=12)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (10, 32, 24)
    decoded = read_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    # Lossy codecs: compare brightness per frame, and that red stayed red (RGB, not BGR).
    np.testing.assert_allclose(
        decoded[..., 1].mean(axis=(1, 2)), frames[..., 1].mean(axis=(1, 2)), atol=6
    )
    assert decoded[:, :, :10, 0].mean() > 200 and decoded[:, :, :10, 2].mean() < 200


def test_indices_select_repeat_and_resize(tmp_path):
    path = write_video(tmp_path / "ramp.avi", _ramp())
    decoded = read_frames(path, [0, 0, 3, 9], size=(12, 16))
    assert decoded.shape == (4, 12, 16, 3)
    brightness = decoded[..., 1].mean(axis=(1, 2))
    np.testing.assert_allclose(brightness, [20, 20, 80, 200], atol=6)


@pytest.mark.parametrize("container,codec,size,fps", FOREIGN_FORMATS)
def test_reads_videos_from_other_encoders(tmp_path, container, codec, size, fps):
    width, height = size
    frames = _ramp(num_frames=12, height=height, width=width)
    path = write_foreign_video(tmp_path / f"foreign.{container}", frames, fps=fps, codec=codec)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (12, width, height)
    assert info.fps == pytest.approx(fps, rel=0.01)
    decoded = read_frames(path, [1, 11], size=(32, 32), crop_to_aspect_ratio=True)
    np.testing.assert_allclose(decoded[..., 1].mean(axis=(1, 2)), [40, 240], atol=8)


def test_bad_files_name_the_file_and_the_reason(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    good = write_video(
        tmp_path / "good.mp4",
        np.random.default_rng(0).integers(0, 256, (30, 64, 64, 3), dtype=np.uint8),
    )
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(open(good, "rb").read()[:600])
    cases = {
        tmp_path / "missing.mp4": "not found",
        empty: "empty",
        text: "not a video",
        truncated: "",
    }
    for path, reason in cases.items():
        with pytest.raises(VideoReadError) as error:
            probe_video(path)
        assert str(path) in str(error.value) and reason in error.value.reason


def test_asking_past_the_end_raises(tmp_path):
    path = write_video(tmp_path / "short.avi", _ramp(num_frames=4))
    with pytest.raises(VideoReadError, match="stream ended after 4 frames"):
        read_frames(path, [0, 6])
    with pytest.raises(ValueError, match="non-decreasing"):
        read_frames(path, [2, 1])


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="writes"):
        write_video(tmp_path / "x.gif", np.zeros((4, 8, 8, 3), np.uint8))
    assert not os.listdir(tmp_path)
