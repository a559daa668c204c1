"""The §3.3 generator and discriminator and the §3.4 fusion model: shapes, names, the rendering and
the warp, serialisation.
"""

import keras
import numpy as np
import pytest

from vlm_tf.layers import (
    FlatSprite,
    IntegrateMotion,
    SpriteRenderer,
    TwoColourBackground,
    WarpLastFrame,
)
from vlm_tf.models.video_gan import (
    build_fusion_model,
    build_video_discriminator,
    build_video_generator,
)


def _noise(batch, latent_dim=16, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, latent_dim)).astype(np.float32)


def test_generator_makes_pixel_clips_that_depend_on_noise_and_label(tmp_path):
    generator = build_video_generator(
        num_classes=3, latent_dim=16, num_frames=6, image_size=(16, 16), filters=32, motion_units=16
    )
    noise, labels = _noise(3), np.array([0, 1, 2], np.int32)
    clips = np.asarray(generator([noise, labels]))
    assert clips.shape == (3, 6, 16, 16, 3)
    assert clips.min() >= 0.0 and clips.max() <= 255.0
    same_noise = np.asarray(generator([np.repeat(noise[:1], 3, axis=0), labels]))
    assert not np.allclose(same_noise[0], same_noise[1], atol=1e-3)
    other_noise = np.asarray(generator([_noise(3, seed=1), labels]))
    assert not np.allclose(clips[0], other_noise[0], atol=1e-3)

    path = tmp_path / "generator.keras"
    generator.save(path)
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(path)([noise, labels])), clips, atol=1e-4
    )


def test_discriminator_conditional_and_unconditional():
    clips = np.random.default_rng(0).uniform(0, 255, (2, 8, 16, 16, 3)).astype(np.float32)
    conditional = build_video_discriminator(
        num_classes=5, num_frames=8, image_size=(16, 16), filters=8
    )
    logit, class_logits = conditional([clips, np.array([0, 4], np.int32)])
    assert logit.shape == (2, 1) and class_logits.shape == (2, 5)
    # The projection term: the same clip judged as another class scores differently.
    other, _ = conditional([clips, np.array([1, 3], np.int32)])
    assert not np.allclose(logit, other)
    unconditional = build_video_discriminator(
        num_classes=None, num_frames=8, image_size=(16, 16), filters=8
    )
    assert unconditional(clips).shape == (2, 1)


@pytest.mark.parametrize("size", [(12, 12), (32, 16), (2, 2)])
def test_generator_refuses_sizes_the_decoder_cannot_reach(size):
    with pytest.raises(ValueError, match="4·2\\^k"):
        build_video_generator(num_classes=2, image_size=size)


def test_sprite_renderer_moves_the_sprite_with_the_pose():
    size = 16
    background = np.full((1, size, size, 3), -1.0, np.float32)
    # A white, fully opaque sprite: what shows is the Gaussian window, centred at rest.
    sprite = np.concatenate(
        [np.full((1, size, size, 3), 10.0), np.full((1, size, size, 1), 10.0)], axis=-1
    ).astype(np.float32)
    shift = np.arctanh(0.5 / 0.75)  # x translation of half a half-frame: 4 pixels
    pose = np.array(
        [[[0.0, 0.0, 0.0, 0.0], [shift, 0.0, 0.0, 0.0], [0.0, shift, 0.0, 0.0]]], np.float32
    )
    frames = np.asarray(SpriteRenderer()([background, sprite, pose]))[0]
    assert frames.shape == (3, size, size, 3)

    def centre(frame):
        weight = frame[..., 0] + 1.0
        ys, xs = np.mgrid[0:size, 0:size]
        return (weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum()

    (x0, y0), (x1, y1), (x2, y2) = (centre(frame) for frame in frames)
    assert x0 == pytest.approx(size / 2 - 0.5, abs=0.05) and y0 == pytest.approx(
        size / 2 - 0.5, abs=0.05
    )
    assert x1 - x0 == pytest.approx(4.0, abs=0.5) and y1 == pytest.approx(y0, abs=0.05)
    assert y2 - y0 == pytest.approx(4.0, abs=0.5) and x2 == pytest.approx(x0, abs=0.05)


def test_sprite_renderer_swings_an_offset_sprite_round_its_pivot():
    size = 32
    background = np.full((1, size, size, 3), -1.0, np.float32)
    # A white dot at the sprite's centre (opaque within 2 pixels of it, clear elsewhere).
    ys, xs = np.mgrid[0:size, 0:size] - (size / 2 - 0.5)
    dot = np.where(np.hypot(xs, ys) < 2.0, 10.0, -10.0)
    sprite = np.concatenate([np.full((size, size, 3), 10.0), dot[..., None]], axis=-1)[None].astype(
        np.float32
    )
    # Quarter turns (the angle is pi * tanh) with the sprite 0.4 half-frames right of the pivot.
    angles = np.arctanh(np.array([0.0, 0.5, -0.5]))
    pose = np.zeros((1, 3, 4), np.float32)
    pose[0, :, 3] = angles
    offset = np.array([[np.arctanh(0.4 / 0.5), 0.0]], np.float32)
    frames = np.asarray(SpriteRenderer()([background, sprite, pose, offset]))[0]
    ys, xs = np.mgrid[0:size, 0:size]
    half = size / 2
    centres = []
    for frame in frames:
        weight = frame[..., 0] + 1.0
        x = (weight * xs).sum() / weight.sum() - (half - 0.5)
        y = (weight * ys).sum() / weight.sum() - (half - 0.5)
        centres.append((x / half, y / half))
    # Right of the pivot, then below it (y grows down: a clockwise quarter turn), then above it.
    np.testing.assert_allclose(centres, [(0.4, 0.0), (0.0, 0.4), (0.0, -0.4)], atol=0.03)
    still = np.asarray(SpriteRenderer()([background, sprite, pose]))[0]
    assert np.allclose(still[1], still[0], atol=1e-4)


def test_integrate_motion_is_a_steady_motion_centred_on_the_pose():
    rng = np.random.default_rng(0)
    pose, velocity = (
        rng.normal(size=(2, 4)).astype(np.float32),
        rng.normal(size=(2, 4)).astype(np.float32),
    )
    steady = np.asarray(IntegrateMotion()([pose, velocity, np.zeros((2, 7, 4), np.float32)]))
    np.testing.assert_allclose(
        np.diff(steady, axis=1), np.repeat(velocity[:, None], 6, axis=1), atol=1e-5
    )
    np.testing.assert_allclose(steady.mean(axis=1), pose, atol=1e-5)
    # The residual adds to the velocity, scaled down.
    residual = np.zeros((2, 7, 4), np.float32)
    residual[:, 3, 0] = 1.0
    jolted = np.asarray(IntegrateMotion(residual_scale=0.5)([pose, velocity, residual]))
    np.testing.assert_allclose(np.diff(jolted, axis=1)[:, 2, 0], velocity[:, 0] + 0.5, atol=1e-5)


def test_background_mixes_two_colours_and_the_sprite_has_one():
    colours = np.array([[-1, -1, -1, 1, 0.5, 0]], np.float32)
    pattern = np.zeros((1, 2, 2, 1), np.float32)
    pattern[0, :, 1] = 1.0
    background = np.asarray(TwoColourBackground((8, 8))([pattern, colours]))
    assert background.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(background[0, :, 0], -1.0, atol=1e-6)
    np.testing.assert_allclose(
        background[0, :, -1], np.broadcast_to([1, 0.5, 0], (8, 3)), atol=1e-6
    )
    shape = np.random.default_rng(0).normal(size=(1, 8, 8, 1)).astype(np.float32)
    sprite = np.asarray(FlatSprite()([np.array([[0.1, 0.2, 0.3]], np.float32), shape]))
    np.testing.assert_allclose(
        sprite[..., :3], np.broadcast_to([0.1, 0.2, 0.3], (1, 8, 8, 3)), atol=1e-7
    )
    np.testing.assert_allclose(sprite[..., 3:], shape)


def test_fusion_model_has_the_texts_parts_and_warps_the_last_frame(tmp_path):
    model = build_fusion_model(
        observed_frames=4, predicted_frames=3, image_size=(16, 16), filters=(8, 16), rnn_units=8
    )
    for name in ("CNN", "RNN", "Fusion", "Generator", "OutputLayer"):
        model.get_layer(name)
    assert isinstance(model.get_layer("OutputLayer"), WarpLastFrame)
    clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype(np.float32)
    assert model(clips).shape == (2, 3, 16, 16, 3)

    # With the mask pushed to 0 and no flow the prediction is the last
    # observed frame, exactly; a flow of 1 pixel in x shifts it by one column.
    frames_layer = model.get_layer("Generator").get_layer("frames")
    kernel, bias = frames_layer.get_weights()
    channel = np.arange(bias.size) % 6
    kernel[:] = 0.0
    bias[:] = 0.0
    bias[channel == 3] = -100.0
    frames_layer.set_weights([kernel, bias])
    np.testing.assert_allclose(
        np.asarray(model(clips)), np.repeat(clips[:, -1:], 3, axis=1), atol=1e-3
    )
    max_flow = model.get_layer("OutputLayer").max_flow
    bias[channel == 4] = np.arctanh(1.0 / max_flow)
    frames_layer.set_weights([kernel, bias])
    predicted = np.asarray(model(clips))
    np.testing.assert_allclose(
        predicted[:, :, :, :-1], np.repeat(clips[:, -1:, :, 1:], 3, axis=1), atol=1e-2
    )
    # The border repeats the last column instead of going black.
    np.testing.assert_allclose(
        predicted[:, :, :, -1], np.repeat(clips[:, -1:, :, -1], 3, axis=1), atol=1e-2
    )

    path = tmp_path / "fusion.keras"
    model.save(path)
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(path)(clips)), predicted, atol=1e-4
    )


def test_fusion_model_checks_its_arguments():
    with pytest.raises(ValueError, match="divisible by 8"):
        build_fusion_model(image_size=(20, 20), filters=(8, 8, 8))
    with pytest.raises(ValueError, match="observed_frames"):
        build_fusion_model(observed_frames=0)
