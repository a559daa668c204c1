"""The chapter-6 restorer and its layers: shapes, the TF ops they stand for, the identity they start
as, save/load at any frame size.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.layers import (
    CentreFrame,
    FoldTime,
    GlobalContext,
    PixelShuffle,
    RelativeToCentre,
    Upscale,
)
from vlm_tf.models.registry import default_model, get_model_spec, model_names
from vlm_tf.models.restoration import build_video_restorer


def _frames(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


@pytest.mark.parametrize("scale", [2, 4])
def test_pixel_shuffle_is_depth_to_space(scale):
    x = _frames((2, 5, 7, 3 * scale * scale))
    np.testing.assert_array_equal(PixelShuffle(scale)(x), tf.nn.depth_to_space(x, scale))


@pytest.mark.parametrize("scale", [2, 4])
def test_upscale_is_tf_bicubic_resize_even_when_the_size_is_unknown(scale):
    x = _frames((2, 7, 9, 3))
    expected = tf.image.resize(x, (7 * scale, 9 * scale), "bicubic")
    np.testing.assert_allclose(Upscale(scale)(x), expected, atol=1e-3)
    traced = tf.function(
        Upscale(scale).__call__, input_signature=[tf.TensorSpec([None, None, None, 3])]
    )
    np.testing.assert_allclose(traced(x), expected, atol=1e-3)


def test_fold_time_stacks_each_frame_as_channels():
    x = _frames((2, 3, 4, 5, 3))
    folded = np.asarray(FoldTime()(x))
    assert folded.shape == (2, 4, 5, 9)
    for t in range(3):
        np.testing.assert_array_equal(folded[..., 3 * t : 3 * t + 3], x[:, t])


def test_relative_to_centre_keeps_the_centre_and_subtracts_it_from_the_rest():
    x = _frames((2, 5, 4, 4, 3))
    out = np.asarray(RelativeToCentre()(x))
    np.testing.assert_array_equal(out[:, 2], x[:, 2])
    for t in (0, 1, 3, 4):
        np.testing.assert_allclose(out[:, t], x[:, t] - x[:, 2], atol=1e-4)
    single = _frames((2, 1, 4, 4, 3))
    np.testing.assert_array_equal(RelativeToCentre()(single), single)


def test_centre_frame_and_global_context_start_as_the_identity():
    x = _frames((2, 5, 8, 8, 3))
    np.testing.assert_array_equal(CentreFrame()(x), x[:, 2])
    features = x[:, 0]
    np.testing.assert_array_equal(GlobalContext()(features), features)


@pytest.mark.parametrize("scale", [1, 2])
def test_restorer_starts_as_the_identity_or_bicubic_at_any_size(scale):
    model = build_video_restorer(window=5, scale=scale)
    for height, width in ((16, 16), (12, 20)):
        x = _frames((1, 5, height, width, 3))
        expected = (
            x[:, 2]
            if scale == 1
            else tf.image.resize(x[:, 2], (height * scale, width * scale), "bicubic")
        )
        np.testing.assert_allclose(model(x), expected, atol=1e-3)


def test_restorer_trains_saves_and_loads(tmp_path):
    model = build_video_restorer(window=3, scale=2, filters=8, depth=3)
    x, y = _frames((4, 3, 8, 8, 3)), _frames((4, 16, 16, 3), seed=1)
    model.compile(optimizer="adam", loss="mean_squared_error")
    before = model.predict(x, verbose=0)
    model.fit(x, y, epochs=2, verbose=0)
    after = model.predict(x, verbose=0)
    assert not np.allclose(before, after)
    model.save(tmp_path / "restorer.keras")
    np.testing.assert_allclose(
        keras.models.load_model(tmp_path / "restorer.keras").predict(x, verbose=0), after, atol=1e-4
    )


def test_restorer_rejects_an_even_window():
    with pytest.raises(ValueError, match="odd number of frames, received 4"):
        build_video_restorer(window=4)


def test_each_restoration_task_has_a_window_and_a_single_frame_model():
    for task in ("denoise", "superres", "enhance"):
        assert model_names(task) == [f"{task}_window", f"{task}_single"]
        assert default_model(task) == f"{task}_window"
        assert get_model_spec(f"{task}_single").kwargs["window"] == 1
    assert default_model("classify") == "cnn_lstm"
