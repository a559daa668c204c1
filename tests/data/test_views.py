"""Multi-view evaluation: clips spread over each segment × crops of the frame (vlm_tf.data.views),
probabilities averaged per video (vlm_tf.inference).
"""

import numpy as np
import pytest

from vlm_tf.data.sampling import spread_indices, uniform_indices

NUM_FRAMES = 8
SIZE = 32
# 20 frames in 8 segments of 2.5: clip c takes the frame at (k + (c + ½)/3)·2.5.
SPREAD_20_8_3 = [
    [0, 2, 5, 7, 10, 12, 15, 17],
    [1, 3, 6, 8, 11, 13, 16, 18],
    [2, 4, 7, 9, 12, 14, 17, 19],
]


def test_spread_clips_take_each_segment_at_a_different_place():
    np.testing.assert_array_equal(spread_indices(20, NUM_FRAMES, 3).numpy(), SPREAD_20_8_3)
    np.testing.assert_array_equal(
        spread_indices(20, NUM_FRAMES, 1).numpy(), [uniform_indices(20, NUM_FRAMES).numpy()]
    )
    # One frame per segment: every clip is the same.
    np.testing.assert_array_equal(spread_indices(8, NUM_FRAMES, 3).numpy(), [np.arange(8)] * 3)


def test_crops_are_the_whole_frame_then_corners_resized_back():
    from vlm_tf.data.views import apply_crop_views

    # Channel 0 holds the row number, channel 1 the column: bilinear resizing
    # of a ramp is exact, so each view shows which rows and columns it spans.
    rows, columns = np.meshgrid(
        np.arange(SIZE, dtype=np.float32), np.arange(SIZE, dtype=np.float32), indexing="ij"
    )
    frame = np.stack([rows, columns, np.zeros_like(rows)], axis=-1)
    clips = np.broadcast_to(frame, (2, 3, SIZE, SIZE, 3)).copy()
    clips[1] += 100.0  # tells the two clips apart
    views = apply_crop_views(clips, 3).numpy()
    assert views.shape == (6, 3, SIZE, SIZE, 3)
    np.testing.assert_array_equal(views[0], clips[0])
    np.testing.assert_array_equal(views[3], clips[1])
    last = SIZE - 1
    spans = {1: (0.0, 0.9 * last), 2: (0.1 * last, last)}  # top-left, bottom-right
    for view, (start, end) in spans.items():
        for channel in (0, 1):
            np.testing.assert_allclose(views[view][..., channel].min(), start, atol=1e-4)
            np.testing.assert_allclose(views[view][..., channel].max(), end, atol=1e-4)
    np.testing.assert_allclose(views[5] - views[2], 100.0, atol=1e-3)


def test_view_counts_are_checked():
    from vlm_tf.data.views import check_views

    with pytest.raises(ValueError, match="clips"):
        check_views(0, 1)
    with pytest.raises(ValueError, match="crops must be between 1 and 6"):
        check_views(1, 7)


def _untrained_run(batch_size=3):
    import keras

    from vlm_tf.data.synthetic import CLASS_NAMES
    from vlm_tf.inference import Run
    from vlm_tf.models.registry import build_model
    from vlm_tf.training.config import RunConfig

    keras.utils.set_random_seed(0)
    model = build_model("cnn_lstm", num_classes=len(CLASS_NAMES), image_size=(SIZE, SIZE))
    config = RunConfig(
        model="cnn_lstm", num_frames=NUM_FRAMES, image_size=SIZE, batch_size=batch_size
    )
    return Run("untrained", config, list(CLASS_NAMES), model)


def test_one_view_is_exactly_the_evaluation_clip(tiny_dataset):
    from vlm_tf.data.pipeline import video_dataset_from_directory
    from vlm_tf.inference import evaluate_directory, predict_directory

    run = _untrained_run()
    test_dir = tiny_dataset / "test"
    # What evaluate_directory computed before it had views: the validation clips, batch by batch.
    dataset = video_dataset_from_directory(
        test_dir,
        class_names=run.class_names,
        num_frames=NUM_FRAMES,
        image_size=run.image_size,
        batch_size=3,
        shuffle=False,
    )
    batches = [
        (np.asarray(run.model(clips, training=False)), labels.numpy()) for clips, labels in dataset
    ]
    expected = np.concatenate([probabilities for probabilities, _ in batches])
    predictions = predict_directory(run, test_dir)
    np.testing.assert_array_equal(predictions.probabilities, expected)
    np.testing.assert_array_equal(
        predictions.labels, np.concatenate([labels for _, labels in batches])
    )
    assert predictions.paths == dataset.file_paths

    report = evaluate_directory(run, test_dir)
    confusion = np.zeros((8, 8), int)
    np.add.at(confusion, (predictions.labels, expected.argmax(axis=-1)), 1)
    assert report["confusion_matrix"] == confusion.tolist()
    assert report["accuracy"] == np.trace(confusion) / 8 and report["views"] == {
        "clips": 1,
        "crops": 1,
    }


def test_views_are_averaged_per_video(tmp_path):
    import tensorflow as tf

    from vlm_tf.data.decode import read_frames, write_video
    from vlm_tf.inference import evaluate_directory, predict_directory

    run = _untrained_run()
    video = tmp_path / "move_left" / "long.mp4"
    video.parent.mkdir()
    frames = np.random.default_rng(0).integers(0, 256, (20, 40, 48, 3), dtype=np.uint8)
    write_video(video, frames)
    predictions = predict_directory(run, tmp_path, clips=3, crops=3)
    assert predictions.paths == [str(video)] and predictions.probabilities.shape == (1, 8)

    # By hand: the three clips of SPREAD_20_8_3, each whole and cropped at the top-left and
    # bottom-right.
    decoded = read_frames(video, None, run.image_size).astype(np.float32)
    per_view = []
    for indices in SPREAD_20_8_3:
        clip = decoded[indices]
        per_view.append(clip)
        for box in ((0.0, 0.0, 0.9, 0.9), (0.1, 0.1, 1.0, 1.0)):
            per_view.append(
                tf.image.crop_and_resize(
                    clip, [box] * NUM_FRAMES, list(range(NUM_FRAMES)), run.image_size
                ).numpy()
            )
    probabilities = np.asarray(run.model(np.stack(per_view), training=False))
    # The views disagree, so their mean is none of them.
    assert np.ptp(probabilities, axis=0).max() > 1e-4
    np.testing.assert_allclose(predictions.probabilities[0], probabilities.mean(axis=0), atol=1e-6)

    report = evaluate_directory(run, tmp_path, clips=3, crops=3)
    assert report["views"] == {"clips": 3, "crops": 3} and report["num_videos"] == 1
    predicted = int(np.argmax(probabilities.mean(axis=0)))
    assert report["confusion_matrix"][run.class_names.index("move_left")][predicted] == 1
