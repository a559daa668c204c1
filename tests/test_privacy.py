"""Differentially private training (`train --dp-l2-clip C --dp-noise-multiplier σ`, §8.2 ①):
DP-SGD's clipping and noise against a direct computation, ε against the accountant's documented
value, and what a private run records.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.metrics.privacy import dp_sgd_epsilon
from vlm_tf.models.private import PrivateClassifier, make_private, per_example_clipped_gradients


def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="tanh")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def _batch(size=4, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (size, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size)]
    return x, y


def _direct_clipped(model, x, y, clip):
    """Each example's gradient by its own tape, scaled by min(1, C / ||g||)."""
    found = []
    for xi, yi in zip(x, y):
        with tf.GradientTape() as tape:
            loss = keras.losses.categorical_crossentropy(yi[None], model(xi[None]))
        grads = tape.gradient(loss, model.trainable_variables)
        norm = np.sqrt(sum(float(tf.reduce_sum(g**2)) for g in grads))
        found.append([g.numpy() * min(1.0, clip / norm) for g in grads])
    return found


def test_each_clips_gradient_is_clipped_on_its_own():
    model = _tiny_model()
    x, y = _batch()
    grads, norms = per_example_clipped_gradients(
        model, keras.losses.categorical_crossentropy, tf.constant(x), tf.constant(y), 0.05
    )
    expected = _direct_clipped(model, x, y, 0.05)
    for k in range(len(x)):
        for got, want in zip(grads, expected[k]):
            np.testing.assert_allclose(got[k].numpy(), want, rtol=1e-5, atol=1e-7)
        total = np.sqrt(sum(np.sum(g[k].numpy() ** 2) for g in grads))
        assert total == pytest.approx(min(0.05, float(norms[k])), rel=1e-5)
    # The clip binds for these examples: their gradients were larger.
    assert float(tf.reduce_min(norms)) > 0.05


def test_a_dp_sgd_step_is_the_mean_clipped_gradient_plus_noise_of_sigma_c_over_b():
    x, y = _batch(size=4)
    clip, sigma, rate = 0.05, 2.0, 0.1
    steps = {}
    for noise in (0.0, sigma):
        model = make_private(_tiny_model(), l2_clip=clip, noise_multiplier=noise, seed=3)
        model.compile(optimizer=keras.optimizers.SGD(rate), loss="categorical_crossentropy")
        before = [w.numpy() for w in model.trainable_variables]
        expected = _direct_clipped(model, x, y, clip)
        model.train_on_batch(x, y)
        steps[noise] = [w.numpy() - b for w, b in zip(model.trainable_variables, before)]
        if noise == 0.0:
            for k, step in enumerate(steps[noise]):
                mean = np.mean([e[k] for e in expected], axis=0)
                np.testing.assert_allclose(step, -rate * mean, rtol=1e-4, atol=1e-8)
    # The noise on the update: Gaussian with standard deviation rate · σ · C / B, every weight.
    noise = np.concatenate([(n - c).ravel() for n, c in zip(steps[sigma], steps[0.0])])
    assert noise.size == 53
    assert np.std(noise) == pytest.approx(rate * sigma * clip / 4, rel=0.25)


def test_epsilon_is_the_accountants_documented_value():
    # dp-accounting's own tests: σ = 4.530877117 makes one Gaussian query exactly (1, 1e-6)-DP.
    assert dp_sgd_epsilon(
        noise_multiplier=4.530877117, sampling_probability=1.0, steps=1, delta=1e-6
    ) == pytest.approx(1.0, abs=1e-3)
    # More steps, less noise or a larger sample cost more.
    base = dict(noise_multiplier=1.0, sampling_probability=0.01, steps=1000)
    epsilon = dp_sgd_epsilon(**base)
    assert dp_sgd_epsilon(**{**base, "steps": 2000}) > epsilon
    assert dp_sgd_epsilon(**{**base, "noise_multiplier": 0.8}) > epsilon
    assert dp_sgd_epsilon(**{**base, "sampling_probability": 0.02}) > epsilon
    assert dp_sgd_epsilon(**{**base, "steps": 0}) == 0.0


def test_a_private_run_reports_its_budget_every_epoch_and_at_the_end(tiny_dataset, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vlm_tf.inference import load_run
    from vlm_tf.training import config as run_files

    run_dir = tmp_path / "run"
    done = vlm_tf(
        "train", tiny_dataset, "--out", run_dir, "--epochs", 2, "--frames", 8, "--size", 32,
        "--precision", "float32", "--dp-l2-clip", 1.0, "--dp-noise-multiplier", 1.1,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    privacy = json.loads((run_dir / "privacy.json").read_text())
    # 32 training clips of the tiny set, batches of 8: q = 0.25, 4 steps an epoch.
    assert privacy["sampling_probability"] == 0.25 and privacy["steps"] == 8
    assert privacy["epsilon"] == pytest.approx(
        dp_sgd_epsilon(noise_multiplier=1.1, sampling_probability=0.25, steps=8, delta=1e-5)
    )
    assert privacy["delta"] == 1e-5 and f"ε = {privacy['epsilon']:.2f}" in done.stdout
    history = run_files.read_history(run_dir)
    assert [row["dp_epsilon"] for row in history] == pytest.approx(
        [
            dp_sgd_epsilon(noise_multiplier=1.1, sampling_probability=0.25, steps=s, delta=1e-5)
            for s in (4, 8)
        ]
    )
    events = EventAccumulator(str(run_dir / "logs" / "train"), size_guidance={"tensors": 0})
    events.Reload()
    assert "epoch_dp_epsilon" in events.Tags()["tensors"]
    # What the run keeps is the plain classifier, loadable without vlm_tf's DP-SGD step.
    assert not isinstance(load_run(run_dir).model, PrivateClassifier)


def test_private_training_refuses_half_a_setting_batch_norm_and_the_consistency_loss(
    tiny_dataset, tmp_path
):
    common = ["train", tiny_dataset, "--epochs", 1, "--frames", 8, "--size", 32]
    assert_one_line_error(
        vlm_tf(*common, "--out", tmp_path / "a", "--dp-l2-clip", 1.0), "dp_noise_multiplier"
    )
    assert_one_line_error(
        vlm_tf(
            *common, "--out", tmp_path / "b", "--model", "cnn_lstm_bn_gap",
            "--dp-l2-clip", 1.0, "--dp-noise-multiplier", 1.0,
        ),
        "batch normalization",
    )  # fmt: skip
    assert_one_line_error(
        vlm_tf(*common, "--out", tmp_path / "c", "--dp-l2-clip", 1.0, "--dp-noise-multiplier", -1),
        "-1",
    )
    assert_one_line_error(
        vlm_tf(
            *common, "--out", tmp_path / "d", "--augment", "robust",
            "--dp-l2-clip", 1.0, "--dp-noise-multiplier", 1.0,
        ),
        "--consistency 0",
    )  # fmt: skip
    assert not any((tmp_path / name / "model.keras").exists() for name in "abcd")
