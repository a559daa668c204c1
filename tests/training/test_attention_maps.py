"""Attention maps in TensorBoard: which frames each model weighed, read back from real event
files.
"""

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vlm_tf.models import build_model
from vlm_tf.models.attention import attention_layer, frame_weight_rows
from vlm_tf.training import RunConfig, train
from vlm_tf.visualize import attention_map_image


def _image_tags(log_dir):
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: accumulator.Tensors(tag) for tag in accumulator.Tags()["tensors"]}


@pytest.mark.parametrize(
    "model,rows",
    [
        ("cnn_lstm_soft_attention", 1),
        ("cnn_multiscale_attention", 4),
        pytest.param("video_transformer", 1, marks=pytest.mark.slow),
    ],
)
def test_every_epoch_writes_the_attention_of_validation_clips(model, rows, tiny_dataset, tmp_path):
    train(
        tiny_dataset,
        tmp_path / "run",
        # Precision and XLA fixed: `auto` would measure each model first
        # (tests/training/test_runtime.py).
        RunConfig(
            model=model,
            epochs=2,
            num_frames=4,
            image_size=32,
            batch_size=8,
            precision="float32",
            jit="off",
        ),
        verbose=0,
    )
    images = _image_tags(tmp_path / "run" / "logs" / "attention")
    assert len(images) == 4 and all(tag.startswith("attention/") for tag in images)
    # Four clips of four different classes.
    assert len({tag.split("_", 1)[1] for tag in images}) == 4
    for events in images.values():
        assert [event.step for event in events] == [0, 1]
        # [width, height, PNG]: 4 frames of 32 px, one 10 px bar per row of weights.
        width, height = events[0].tensor_proto.string_val[:2]
        assert (int(width), int(height)) == (4 * 32, 32 + 10 * rows)


def test_models_without_attention_write_no_maps(tiny_dataset, tmp_path):
    train(
        tiny_dataset,
        tmp_path / "run",
        RunConfig(
            model="cnn_mean",
            epochs=1,
            num_frames=4,
            image_size=32,
            batch_size=8,
            precision="float32",
            jit="off",
        ),
        verbose=0,
    )
    assert not (tmp_path / "run" / "logs" / "attention").exists()


def test_the_brightest_bar_is_under_the_frame_with_most_weight():
    clip = np.full((5, 8, 6, 3), 128, np.uint8)
    rows = np.array([[0.1, 0.2, 0.5, 0.1, 0.1], [0.6, 0.1, 0.1, 0.1, 0.1]])
    image = attention_map_image(clip, rows)
    assert image.shape == (8 + 2 * 10, 5 * 6, 3)
    for k, row in enumerate(rows):
        bar = image[8 + 10 * k + 5, :, :2].astype(int).sum(axis=-1).reshape(5, 6)[:, 0]
        assert np.argmax(bar) == np.argmax(row)
        assert bar.min() < bar.max()


def test_transformer_weights_are_spread_over_each_tubelet():
    model = build_model("video_transformer", num_classes=3, image_size=(32, 32))
    assert attention_layer(model) is not None
    # 6 frames → 3 tubelet steps of 2 frames, 16 patches each.
    weights = np.random.default_rng(0).dirichlet(np.ones(3 * 16), size=2).reshape(2, 3, 16)
    rows = frame_weight_rows(model, weights, 6)
    assert rows.shape == (2, 1, 6)
    np.testing.assert_allclose(rows.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(rows[:, 0, 0::2], rows[:, 0, 1::2])
    np.testing.assert_allclose(rows[:, 0, 0::2] * 2, weights.sum(axis=2), rtol=1e-6)
