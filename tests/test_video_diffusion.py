"""The flow-matching video diffusion model: the denoiser's interface, the noising formula,
classifier-free guidance, sampling, serialisation, and a model that learns two colours.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.models.video_diffusion import (
    DENOISER_INPUTS,
    VideoDiffusion,
    build_video_denoiser,
    guided_velocity,
    noised,
    sample_clips,
)

TINY = dict(condition_dim=3, num_frames=4, image_size=(8, 8), filters=(8, 16))


def _denoiser(seed=0):
    """A tiny denoiser whose zero-initialised weights (the output convolution, the FiLM
    projections) are drawn at random, so that every input changes the velocity.
    """
    keras.utils.set_random_seed(seed)
    denoiser = build_video_denoiser(**TINY)
    rng = np.random.default_rng(seed)
    for weight in denoiser.weights:
        if not np.any(weight.numpy()):
            weight.assign(rng.normal(0.0, 0.3, weight.shape).astype(np.float32))
    return denoiser


def _inputs(batch=2, seed=0, first_frame=True):
    rng = np.random.default_rng(seed)
    frames, (height, width) = TINY["num_frames"], TINY["image_size"]
    return {
        "noisy": rng.normal(size=(batch, frames, height, width, 3)).astype(np.float32),
        "time": rng.uniform(size=(batch,)).astype(np.float32),
        "condition": rng.normal(size=(batch, TINY["condition_dim"])).astype(np.float32),
        "first_frame": rng.uniform(-1, 1, (batch, height, width, 3)).astype(np.float32)
        * first_frame,
        "first_frame_mask": np.full((batch,), float(first_frame), np.float32),
    }


def test_denoiser_takes_the_named_inputs_and_gives_a_float32_velocity():
    denoiser = _denoiser()
    assert list(denoiser.input) == list(DENOISER_INPUTS)
    inputs = _inputs()
    velocity = denoiser(inputs)
    assert velocity.shape == (2, 4, 8, 8, 3) and velocity.dtype == "float32"
    for key in ("time", "condition", "first_frame"):
        changed = dict(inputs, **{key: inputs[key] + 0.5})
        assert not np.allclose(denoiser(changed), velocity, atol=1e-4), key
    # As built, the output convolution is zero: the first prediction is v = 0.
    assert not np.any(build_video_denoiser(**TINY)(inputs))


@pytest.mark.parametrize(
    "config",
    [dict(image_size=(9, 9)), dict(filters=(8,)), dict(num_frames=0)],
    ids=["size", "one_level", "frames"],
)
def test_denoiser_refuses_a_config_it_cannot_build(config):
    with pytest.raises(ValueError):
        build_video_denoiser(**{**TINY, **config})


def test_noised_is_the_straight_line_from_clip_to_noise():
    rng = np.random.default_rng(0)
    clips = rng.uniform(-1, 1, (3, 4, 8, 8, 3)).astype(np.float32)
    noise = rng.normal(size=clips.shape).astype(np.float32)
    t = np.array([0.0, 0.3, 1.0], np.float32)
    x_t, target = (np.asarray(a) for a in noised(clips, noise, t))
    for i, ti in enumerate(t):
        np.testing.assert_allclose(x_t[i], (1 - ti) * clips[i] + ti * noise[i], atol=1e-6)
    np.testing.assert_allclose(target, noise - clips, atol=1e-6)


def test_guidance_mixes_the_conditional_and_unconditional_velocities():
    denoiser = _denoiser()
    inputs = _inputs()
    conditional = np.asarray(denoiser(inputs))
    unconditional = np.asarray(denoiser(dict(inputs, condition=np.zeros_like(inputs["condition"]))))
    assert not np.allclose(conditional, unconditional, atol=1e-4)
    np.testing.assert_allclose(guided_velocity(denoiser, inputs, 1.0), conditional, atol=1e-5)
    np.testing.assert_allclose(guided_velocity(denoiser, inputs, 0.0), unconditional, atol=1e-5)
    np.testing.assert_allclose(
        guided_velocity(denoiser, inputs, 3.0),
        unconditional + 3.0 * (conditional - unconditional),
        atol=1e-4,
    )


def test_sample_clips_is_seeded_and_keeps_the_first_frame():
    denoiser = _denoiser()
    condition = np.eye(3, dtype=np.float32)
    clips = sample_clips(denoiser, condition, steps=3, seed=1)
    assert clips.shape == (3, 4, 8, 8, 3) and clips.dtype == np.uint8
    assert np.array_equal(sample_clips(denoiser, condition, steps=3, seed=1), clips)
    assert not np.array_equal(sample_clips(denoiser, condition, steps=3, seed=2), clips)
    # The batch size bounds memory only (up to a rounding of the last pixel level).
    in_ones = sample_clips(denoiser, condition, steps=3, seed=1, batch_size=1)
    assert np.abs(in_ones.astype(int) - clips).max() <= 1

    first = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    given = sample_clips(denoiser, condition, first_frame=first, steps=3, seed=1)
    assert np.array_equal(given[:, 0], first)
    assert not np.array_equal(given[:, 1:], clips[:, 1:])


def test_one_euler_step_at_guidance_one_is_noise_minus_the_conditional_velocity():
    denoiser = _denoiser()
    condition = np.eye(3, dtype=np.float32)[:2]
    noise = np.random.default_rng(5).standard_normal((2, 4, 8, 8, 3), dtype=np.float32)
    velocity = denoiser(
        {
            "noisy": noise,
            "time": np.ones((2,), np.float32),
            "condition": condition,
            "first_frame": np.zeros((2, 8, 8, 3), np.float32),
            "first_frame_mask": np.zeros((2,), np.float32),
        }
    )
    expected = np.clip(np.round((noise - np.asarray(velocity) + 1.0) * 127.5), 0, 255)
    clips = sample_clips(denoiser, condition, steps=1, guidance=1.0, seed=5)
    assert np.abs(clips.astype(int) - expected).max() <= 1


def test_denoiser_round_trips_through_a_keras_file(tmp_path):
    denoiser = _denoiser()
    inputs = _inputs()
    path = tmp_path / "denoiser.keras"
    keras.saving.save_model(denoiser, path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(inputs), denoiser(inputs), atol=1e-6)


class _Recorder(keras.Model):
    """A stand-in denoiser that keeps the inputs `train_step` gives it (run eagerly)."""

    def __init__(self):
        super().__init__()
        self.gain = self.add_weight(shape=(), initializer="ones", name="gain")
        self.seen = []

    def call(self, inputs, training=False):
        self.seen.append({key: np.asarray(value) for key, value in inputs.items()})
        return inputs["noisy"] * self.gain


@pytest.mark.parametrize("condition_drop, first_frame_drop", [(1.0, 0.0), (0.0, 1.0)])
def test_train_step_drops_the_condition_and_gives_the_clips_own_first_frame(
    condition_drop, first_frame_drop
):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 4, 8, 8, 3)).astype(np.float32)
    condition = rng.normal(size=(4, 3)).astype(np.float32)
    recorder = _Recorder()
    model = VideoDiffusion(
        recorder, condition_drop=condition_drop, first_frame_drop=first_frame_drop
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    model.fit({"frames": frames, "condition": condition}, batch_size=4, shuffle=False, verbose=0)
    seen = recorder.seen[-1]
    assert list(seen) == list(DENOISER_INPUTS)
    assert seen["noisy"].shape == frames.shape and len(np.unique(seen["time"])) == 4
    assert np.all((seen["time"] >= 0) & (seen["time"] <= 1))
    kept_frame = 1.0 - first_frame_drop
    np.testing.assert_allclose(seen["condition"], condition * (1.0 - condition_drop))
    np.testing.assert_allclose(seen["first_frame_mask"], np.full(4, kept_frame))
    np.testing.assert_allclose(
        seen["first_frame"], (frames[:, 0] / 127.5 - 1.0) * kept_frame, atol=1e-6
    )


def test_video_diffusion_refuses_a_drop_outside_zero_one():
    with pytest.raises(ValueError, match="condition_drop"):
        VideoDiffusion(_denoiser(), condition_drop=1.5)


@pytest.mark.slow
def test_a_tiny_model_learns_red_for_one_prompt_and_blue_for_the_other():
    keras.utils.set_random_seed(0)
    denoiser = build_video_denoiser(
        condition_dim=2, num_frames=4, image_size=(8, 8), filters=(8, 16)
    )
    rng = np.random.default_rng(0)
    colours = np.array([[220, 30, 30], [30, 30, 220]], np.float32)
    labels = np.arange(64) % 2
    frames = colours[labels][:, None, None, None, :] + rng.normal(0, 8, (64, 4, 8, 8, 3))
    data = {
        "frames": np.clip(frames, 0, 255).astype(np.float32),
        "condition": np.eye(2, dtype=np.float32)[labels],
    }
    dataset = tf.data.Dataset.from_tensor_slices(data).shuffle(64, seed=0).repeat().batch(16)
    model = VideoDiffusion(denoiser, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(dataset, steps_per_epoch=100, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    clips = sample_clips(denoiser, np.eye(2, dtype=np.float32), steps=16, seed=0)
    means = clips.reshape(2, -1, 3).mean(axis=1)
    assert means[0, 0] - means[0, 2] > 100, means
    assert means[1, 2] - means[1, 0] > 100, means
