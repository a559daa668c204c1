"""Decoded-video caching: the same clips as decoding every epoch, from memory or from a folder of
.npy files.
"""

import os

import numpy as np
import pytest

from vlm_tf.data import video_dataset_from_directory
from vlm_tf.data.cache import DecodedVideos
from vlm_tf.data.decode import read_frames

COMMON = dict(num_frames=6, image_size=(24, 24), batch_size=4, label_mode="int", seed=5)


def _clips(dataset, epochs=2):
    return [np.concatenate([clips.numpy() for clips, _ in dataset]) for _ in range(epochs)]


@pytest.mark.parametrize("augment", [False, True], ids=["uniform", "random_augmented"])
def test_cached_pipeline_yields_the_clips_decoding_does(tiny_dataset, tmp_path, augment):
    folder = tiny_dataset / "train"
    plain = _clips(video_dataset_from_directory(folder, augment=augment, **COMMON))
    in_memory = _clips(
        video_dataset_from_directory(folder, augment=augment, cache="memory", **COMMON)
    )
    on_disk = _clips(
        video_dataset_from_directory(folder, augment=augment, cache=tmp_path / "decoded", **COMMON)
    )
    for epoch in range(2):
        np.testing.assert_array_equal(in_memory[epoch], plain[epoch])
        np.testing.assert_array_equal(on_disk[epoch], plain[epoch])
    if augment:
        assert not np.array_equal(plain[0], plain[1]), (
            "random sampling still differs between epochs"
        )
    assert len(list((tmp_path / "decoded").glob("*.npy"))) == 32


def test_disk_cache_outlives_the_process_and_follows_edits(tiny_dataset, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(sorted((tiny_dataset / "test" / "grow").glob("*.mp4"))[0].read_bytes())
    indices = [0, 2, 2, 7]
    store = DecodedVideos(tmp_path / "decoded", (16, 16))
    first = store.read(str(video), indices)
    np.testing.assert_array_equal(first, read_frames(video, indices, (16, 16)))
    (cached,) = (tmp_path / "decoded").glob("*.npy")
    assert not list((tmp_path / "decoded").glob(".partial-*")), (
        "nothing half-written is left behind"
    )
    # A later store (another run) serves the file, not a new decode: marked frames come back.
    np.save(cached, np.full_like(np.load(cached), 7))
    assert (DecodedVideos(tmp_path / "decoded", (16, 16)).read(str(video), indices) == 7).all()
    # An edited video (new modification time) is decoded again, as is another frame size.
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    np.testing.assert_array_equal(
        DecodedVideos(tmp_path / "decoded", (16, 16)).read(str(video), indices), first
    )
    DecodedVideos(tmp_path / "decoded", (8, 8)).read(str(video), indices)
    assert len(list((tmp_path / "decoded").glob("*.npy"))) == 3
