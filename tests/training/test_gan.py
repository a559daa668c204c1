"""Adversarial training: the §4.3 losses as TF ops against vlm_tf.math, one step of each model, the
augmentation.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf import math as vm
from vlm_tf.models.adversarial import (
    FramePredictionGAN,
    VideoGAN,
    discriminator_loss,
    generator_loss,
    shift_clips,
)
from vlm_tf.models.video_gan import (
    build_fusion_model,
    build_video_discriminator,
    build_video_generator,
)


def _logits(seed, n=64):
    return np.random.default_rng(seed).normal(0, 3, (n, 1)).astype(np.float32)


def test_losses_on_logits_equal_the_texts_formulas_on_probabilities():
    real, fake = _logits(0), _logits(1)
    d_real, d_fake = (
        1 / (1 + np.exp(-real.astype(np.float64))),
        1 / (1 + np.exp(-fake.astype(np.float64))),
    )
    assert float(discriminator_loss(real, fake)) == pytest.approx(
        vm.discriminator_loss(d_real, d_fake), rel=1e-5
    )
    assert float(generator_loss(fake)) == pytest.approx(
        vm.generator_loss_nonsaturating(d_fake), rel=1e-5
    )
    text = generator_loss(fake, real, kind="text")
    assert float(text) == pytest.approx(
        vm.generator_loss_text(vm.encoder_identity(d_real), d_fake), abs=1e-6
    )
    with pytest.raises(ValueError, match="loss must be one of"):
        generator_loss(fake, kind="wasserstein")


def test_the_texts_generator_loss_saturates_where_the_standard_one_does_not():
    # D confidently rejects the fakes (logit -8): the gradient G receives.
    fake = tf.Variable([[-8.0]])
    gradients = {}
    for kind in ("standard", "text"):
        with tf.GradientTape() as tape:
            loss = generator_loss(fake, tf.constant([[2.0]]), kind=kind)
        gradients[kind] = abs(float(tape.gradient(loss, fake)[0, 0]))
    assert gradients["standard"] > 0.99
    assert gradients["text"] < 1e-3


def test_shift_clips_moves_whole_clips_and_keeps_their_motion():
    clips = np.random.default_rng(0).uniform(0, 255, (4, 5, 12, 12, 3)).astype(np.float32)
    np.testing.assert_array_equal(shift_clips(clips, 0, seed=[1, 2]), clips)
    shifted = shift_clips(tf.constant(clips), 2, seed=tf.constant([1, 2])).numpy()
    assert shifted.shape == clips.shape
    for clip, moved in zip(clips, shifted):
        # Some offset (dy, dx) in [-2, 2]² maps the whole clip, every frame alike.
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(
                moved[:, max(dy, 0) : 12 + min(dy, 0), max(dx, 0) : 12 + min(dx, 0)],
                clip[:, max(-dy, 0) : 12 + min(-dy, 0), max(-dx, 0) : 12 + min(-dx, 0)],
            )
        ]
        assert matches


def _batches(num_frames, size, num_classes=3, batch=4):
    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 255, (batch, num_frames, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((clips, labels)).batch(batch)


@pytest.mark.parametrize("loss", ["standard", pytest.param("text", marks=pytest.mark.slow)])
def test_video_gan_one_step_moves_both_players(loss):
    generator = build_video_generator(
        num_classes=3, latent_dim=8, num_frames=4, image_size=(8, 8), filters=16, motion_units=8
    )
    discriminator = build_video_discriminator(
        num_classes=3, num_frames=4, image_size=(8, 8), filters=4
    )
    gan = VideoGAN(generator, discriminator, seed=1)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3), loss=loss
    )
    before = {
        name: [w.numpy().copy() for w in part.trainable_weights]
        for name, part in (("g", generator), ("d", discriminator))
    }
    history = gan.fit(_batches(4, 8), epochs=1, verbose=0)
    assert set(history.history) >= {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(values[0]) for values in history.history.values())
    for name, part in (("g", generator), ("d", discriminator)):
        assert any(
            not np.allclose(b, w.numpy()) for b, w in zip(before[name], part.trainable_weights)
        ), name
    assert gan([np.zeros((2, 8), np.float32), np.array([0, 2], np.int32)]).shape == (2, 4, 8, 8, 3)


def test_frame_prediction_gan_trains_the_predictor_on_the_clips_second_half():
    # SSIM's 11×11 window needs frames of at least 11 pixels.
    predictor = build_fusion_model(
        observed_frames=3, predicted_frames=2, image_size=(16, 16), filters=(4,), rnn_units=4
    )
    model = FramePredictionGAN(
        predictor,
        build_video_discriminator(num_classes=None, num_frames=5, image_size=(16, 16), filters=4),
    )
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
    before = [w.numpy().copy() for w in predictor.trainable_weights]
    history = model.fit(_batches(5, 16), validation_data=_batches(5, 16), epochs=1, verbose=0)
    assert {"g_loss", "reconstruction", "d_loss", "psnr", "ssim", "val_psnr", "val_ssim"} <= set(
        history.history
    )
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, predictor.trainable_weights))


def test_frame_prediction_gan_needs_a_discriminator_for_the_adversarial_term():
    predictor = build_fusion_model(
        observed_frames=2, predicted_frames=2, image_size=(8, 8), filters=(4,), rnn_units=4
    )
    with pytest.raises(ValueError, match="needs a discriminator"):
        FramePredictionGAN(predictor).compile(g_optimizer=keras.optimizers.Adam())
    FramePredictionGAN(predictor).compile(
        g_optimizer=keras.optimizers.Adam(), adversarial_weight=0.0
    )
