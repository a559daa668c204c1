"""Masked video modelling (vlm_tf.models.masked): tubelets, tube masks, the loss on hidden ones."""

import numpy as np
import pytest

from vlm_tf.models.masked import (
    build_masked_video_model,
    normalise_patches,
    patchify,
    unpatchify,
)


@pytest.fixture(scope="module")
def model():
    return build_masked_video_model(
        encoder="video_transformer_mean", num_frames=4, image_size=(32, 32), seed=3
    )


def test_patchify_orders_pixels_as_the_tubelet_embedding_orders_tokens():
    clips = np.random.default_rng(0).integers(0, 256, (2, 4, 16, 24, 3)).astype("float32")
    patches = np.asarray(patchify(clips, (2, 8, 8), (2, 3)))
    assert patches.shape == (2, 2, 6, 2 * 8 * 8 * 3)
    # Time step 1, patch 4 (row 1, column 1): frames 2-3, rows 8-15, columns 8-15.
    expected = clips[0, 2:4, 8:16, 8:16].reshape(-1) / 255.0
    np.testing.assert_allclose(patches[0, 1, 4], expected, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(unpatchify(patches, (2, 8, 8), (2, 3))) * 255, clips, atol=1e-3
    )
    normalised = np.asarray(normalise_patches(patches))
    np.testing.assert_allclose(normalised.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(normalised.std(-1), 1, atol=1e-3)


def test_the_tube_mask_hides_the_same_patches_at_every_time_step(model):
    clips = np.random.default_rng(1).uniform(0, 255, (3, 4, 32, 32, 3)).astype("float32")
    predicted, target, hidden = (np.asarray(x) for x in model(clips))
    assert predicted.shape == target.shape == (3, 2, 16, 2 * 8 * 8 * 3)
    # 16 patches a frame, 90 % hidden: 2 kept, the same ones through the clip, drawn per clip.
    assert hidden.shape == (3, 16) and (hidden.sum(axis=1) == 14).all()
    assert len({tuple(row) for row in hidden}) > 1
    masked, filled, hidden = (np.asarray(x) for x in model.reconstruct(clips))
    kept = np.repeat(np.repeat(1 - hidden.reshape(3, 4, 4), 8, axis=1), 8, axis=2)
    kept = kept[:, None, :, :, None].astype(bool)
    # What was shown is shown as it was; what was hidden is grey in the masked frames.
    np.testing.assert_allclose(np.where(kept, filled, clips), clips, atol=1e-3)
    np.testing.assert_allclose(np.where(kept, 127.5, masked), 127.5, atol=1e-3)


def test_the_loss_counts_the_hidden_tubelets_only(model):
    rng = np.random.default_rng(2)
    target = rng.normal(size=(2, 2, 16, 8)).astype("float32")
    hidden = np.zeros((2, 16), "float32")
    hidden[:, :12] = 1.0
    wrong_where_kept = target.copy()
    wrong_where_kept[:, :, 12:] += 5.0
    assert float(model.compute_loss(y_pred=(wrong_where_kept, target, hidden))) == 0.0
    wrong_where_hidden = target.copy()
    wrong_where_hidden[:, :, :12] += 2.0
    assert float(model.compute_loss(y_pred=(wrong_where_hidden, target, hidden))) == pytest.approx(
        4.0
    )


def test_the_backbone_trained_is_the_one_the_model_holds(model):
    """Every backbone weight is one of the model's: training the model trains it."""
    ids = {id(weight) for weight in model.trainable_weights}
    assert all(id(weight) in ids for weight in model.backbone.trainable_weights)
    assert len(model.trainable_weights) > len(model.backbone.trainable_weights)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(encoder="cnn_lstm"), "tubelet transformer"),
        (dict(encoder="video_transformer_mean", mask_ratio=1.0), "mask_ratio must be in (0, 1)"),
    ],
)
def test_what_masked_modelling_cannot_train_is_refused(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        build_masked_video_model(num_frames=4, image_size=(32, 32), **{"mask_ratio": 0.9, **kwargs})
