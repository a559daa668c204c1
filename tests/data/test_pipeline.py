import shutil

import numpy as np
import pytest
import tensorflow as tf
from helpers import FOREIGN_FORMATS, write_foreign_video

from vlm_tf.data.decode import VideoReadError, write_video
from vlm_tf.data.pipeline import video_dataset_from_directory
from vlm_tf.data.synthetic import CLASS_NAMES


def _labels(dataset):
    return np.concatenate([labels.numpy() for _, labels in dataset])


def test_clips_labels_and_class_names(tiny_dataset):
    dataset = video_dataset_from_directory(
        tiny_dataset / "train", num_frames=6, image_size=(24, 20), batch_size=5, shuffle=False
    )
    assert dataset.class_names == sorted(CLASS_NAMES)
    clips, labels = next(iter(dataset))
    assert clips.shape == (5, 6, 24, 20, 3) and clips.dtype == tf.float32
    assert 0 <= float(tf.reduce_min(clips)) and float(tf.reduce_max(clips)) <= 255
    expected = [dataset.class_names.index(path.split("/")[-2]) for path in dataset.file_paths]
    np.testing.assert_array_equal(_labels(dataset), expected)
    one_hot = video_dataset_from_directory(
        tiny_dataset / "train", num_frames=6, batch_size=5, shuffle=False, label_mode="categorical"
    )
    np.testing.assert_array_equal(_labels(one_hot).argmax(axis=-1), expected)


def test_unreadable_files_are_reported_and_never_shift_labels(tiny_dataset, tmp_path):
    root = tmp_path / "mixed"
    shutil.copytree(tiny_dataset / "train", root)
    (root / "grow" / "aaa_empty.mp4").write_bytes(b"")
    (root / "grow" / "aab_text.avi").write_text("not a video")
    (root / "move_up" / "zero.mkv").write_bytes(b"\x1aE\xdf\xa3" + b"\x00" * 64)
    (root / "notes").mkdir()
    (root / "grow" / "readme.txt").write_text("ignored: not a video extension")
    dataset = video_dataset_from_directory(
        root, class_names=list(CLASS_NAMES), num_frames=4, batch_size=4, shuffle=False
    )
    assert sorted(item["path"].split("/")[-1] for item in dataset.skipped) == [
        "aaa_empty.mp4",
        "aab_text.avi",
        "zero.mkv",
    ]
    assert all(item["reason"] for item in dataset.skipped)
    labels = _labels(dataset)
    assert len(labels) == 8 * 4
    np.testing.assert_array_equal(np.bincount(labels, minlength=8), [4] * 8)
    np.testing.assert_array_equal(
        labels, [CLASS_NAMES.index(p.split("/")[-2]) for p in dataset.file_paths]
    )
    with pytest.raises(VideoReadError, match="aaa_empty.mp4"):
        video_dataset_from_directory(root, num_frames=4, strict=True)


def test_validation_split_is_disjoint_and_complete(tiny_dataset):
    common = dict(num_frames=4, batch_size=4, seed=5, validation_split=0.25)
    training, validation = video_dataset_from_directory(
        tiny_dataset / "train", subset="both", **common
    )
    assert not set(training.file_paths) & set(validation.file_paths)
    assert (
        len(training.file_paths) + len(validation.file_paths) == 32
        and len(validation.file_paths) == 8
    )
    again = video_dataset_from_directory(tiny_dataset / "train", subset="validation", **common)
    assert again.file_paths == validation.file_paths


def test_seeded_augmentation_is_reproducible_and_changes_each_epoch(tiny_dataset):
    def first_batch(dataset):
        return next(iter(dataset))[0].numpy()

    def make(seed):
        return video_dataset_from_directory(
            tiny_dataset / "train", num_frames=4, batch_size=4, seed=seed, augment=True
        )

    a, b = make(11), make(11)
    np.testing.assert_array_equal(first_batch(a), first_batch(b))
    assert not np.array_equal(first_batch(a), first_batch(make(12)))
    assert not np.array_equal(first_batch(a), first_batch(a)), (
        "a second epoch should see new samples"
    )


def test_label_changing_augmentation_needs_a_label_map(tiny_dataset):
    def labels_seen(label_maps):
        dataset = video_dataset_from_directory(
            tiny_dataset / "train",
            class_names=list(CLASS_NAMES),
            num_frames=4,
            batch_size=32,
            seed=1,
            augment=True,
            label_maps=label_maps,
        )
        truth = np.array([CLASS_NAMES.index(p.split("/")[-2]) for p in dataset.file_paths])
        # Shuffled order: compare label counts, which a relabelling changes only for mapped pairs.
        return [np.bincount(_labels(dataset), minlength=8) for _ in range(6)], np.bincount(
            truth, minlength=8
        )

    counts, truth = labels_seen(None)
    assert all(np.array_equal(c, truth) for c in counts)
    counts, truth = labels_seen("auto")
    assert any(not np.array_equal(c, truth) for c in counts)
    assert all(c.sum() == truth.sum() for c in counts)


def test_videos_from_other_encoders_sizes_and_rates(tmp_path):
    rng = np.random.default_rng(0)
    for k, (container, codec, (width, height), fps) in enumerate(FOREIGN_FORMATS):
        folder = tmp_path / ("bright" if k % 2 else "dark")
        folder.mkdir(exist_ok=True)
        level = 200 if k % 2 else 40
        frames = np.clip(rng.normal(level, 5, (5 + 7 * k, height, width, 3)), 0, 255).astype(
            np.uint8
        )
        write_foreign_video(folder / f"clip{k}.{container}", frames, fps=fps, codec=codec)
    dataset = video_dataset_from_directory(
        tmp_path, num_frames=8, image_size=(32, 32), batch_size=4, shuffle=False
    )
    assert dataset.skipped == []
    clips, labels = next(iter(dataset))
    means = clips.numpy().mean(axis=(1, 2, 3, 4))
    assert all(
        (m > 150) == (dataset.class_names[k] == "bright") for m, k in zip(means, labels.numpy())
    )


def test_bad_arguments_name_what_was_received(tiny_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        video_dataset_from_directory(tmp_path / "nowhere")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no video files"):
        video_dataset_from_directory(tmp_path / "empty")
    with pytest.raises(ValueError, match="sampling"):
        video_dataset_from_directory(tiny_dataset / "train", sampling="middle")
    with pytest.raises(ValueError, match="image_size"):
        video_dataset_from_directory(tiny_dataset / "train", image_size=64)
    with pytest.raises(ValueError, match="seed"):
        video_dataset_from_directory(
            tiny_dataset / "train", validation_split=0.2, subset="training"
        )


def test_written_video_round_trips_through_the_pipeline(tmp_path):
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    frames[..., 0] = 255
    for name in ("red", "blue"):
        (tmp_path / name).mkdir()
    write_video(tmp_path / "red" / "a.mp4", frames)
    write_video(tmp_path / "blue" / "b.avi", frames[..., ::-1].copy())
    dataset = video_dataset_from_directory(
        tmp_path, num_frames=5, image_size=(16, 16), batch_size=2, shuffle=False
    )
    clips, labels = next(iter(dataset))
    red = clips.numpy()[list(labels.numpy()).index(dataset.class_names.index("red"))]
    assert red[..., 0].mean() > 200 and red[..., 2].mean() < 60


def test_a_batch_keeps_each_clip_with_its_label_when_a_file_in_it_fails(tiny_dataset, tmp_path):
    """Clips are decoded a batch at a time: a file that fails leaves its clip out of its batch
    and the clips after it keep their own labels.
    """
    from vlm_tf.data.decode import read_frames
    from vlm_tf.data.pipeline import make_clip_dataset
    from vlm_tf.data.sampling import uniform_indices
    from vlm_tf.data.splits import probe_files

    paths = []
    for i, path in enumerate(sorted((tiny_dataset / "train").glob("*/*.mp4"))[:6]):
        paths.append(str(shutil.copy(path, tmp_path / f"{i}.mp4")))
    counts, _ = probe_files(paths)
    dataset = make_clip_dataset(
        paths,
        list(range(6)),
        counts,
        class_names=[str(i) for i in range(6)],
        num_frames=4,
        image_size=(16, 16),
        batch_size=4,
    )
    (tmp_path / "2.mp4").write_bytes(b"not a video")
    batches = [(clips.numpy(), labels.numpy()) for clips, labels in dataset]
    assert [labels.tolist() for _, labels in batches] == [[0, 1, 3], [4, 5]]
    for clips, labels in batches:
        for clip, row in zip(clips, labels):
            expected = read_frames(paths[row], uniform_indices(counts[row], 4).numpy(), (16, 16))
            np.testing.assert_array_equal(clip, expected)
    assert [item["path"] for item in dataset.failed] == [paths[2]]
