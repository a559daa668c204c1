"""What a differentially private classify run records: ε every epoch, and `RUN_DIR/privacy.json`.

The run trains by DP-SGD (`vlm_tf.models.private`) when its options set
`dp_l2_clip` and `dp_noise_multiplier`; ε comes from `vlm_tf.metrics.privacy`.
"""

from __future__ import annotations

import os

import keras

from vlm_tf import atomic
from vlm_tf.metrics.privacy import dp_sgd_epsilon
from vlm_tf.models.private import make_private

PRIVACY_FILE = "privacy.json"


def private_model(model, options, config):
    """`model` trained by DP-SGD with `options`' clip and noise, seeded by `config.seed`.

    Batch normalization is refused: it mixes the clips of a batch, so one
    clip's influence is no longer bounded by its clipped gradient. So is
    `--augment robust`'s consistency loss, which ties a clip to its copies.
    """
    if config.augment == "robust" and options.consistency > 0:
        raise ValueError(
            "DP-SGD bounds each clip's own gradient; the consistency loss of --augment robust ties "
            "a clip to its corrupted copies: give --consistency 0 (corruptions alone)"
        )
    inner = [
        layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        for layer in model.layers
    ]
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in inner):
        raise ValueError(
            f"{config.model} has batch normalization, which mixes the clips of a batch: DP-SGD "
            "bounds what one clip can change only without it; choose another model"
        )
    return make_private(
        model,
        l2_clip=options.dp_l2_clip,
        noise_multiplier=options.dp_noise_multiplier,
        seed=config.seed,
    )


def privacy_settings(options, batch_size, num_clips):
    """The DP-SGD figures of a run: noise, clip, δ and the sampling rate of `batch_size` clips
    out of `num_clips`.
    """
    return {
        "noise_multiplier": options.dp_noise_multiplier,
        "l2_clip": options.dp_l2_clip,
        "delta": options.dp_delta,
        "sampling_probability": min(1.0, batch_size / num_clips),
    }


class PrivacyBudget(keras.callbacks.Callback):
    """Adds `dp_epsilon` to each epoch's logs: ε at the run's δ after the optimizer's steps so far
    (a resumed run's restored optimizer counts the steps before the interruption too).
    """

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["dp_epsilon"] = epsilon_after(self.settings, int(self.model.optimizer.iterations))


def epsilon_after(settings, steps):
    return dp_sgd_epsilon(
        noise_multiplier=settings["noise_multiplier"],
        sampling_probability=settings["sampling_probability"],
        steps=steps,
        delta=settings["delta"],
    )


def write_privacy(run_dir, settings, steps):
    """`RUN_DIR/privacy.json`: ε and δ after `steps`, and how they were got."""
    atomic.write_json(
        os.path.join(run_dir, PRIVACY_FILE),
        {
            "epsilon": epsilon_after(settings, steps),
            **settings,
            "steps": steps,
            "accountant": "RDP, Google's dp-accounting; batches accounted as Poisson-sampled",
        },
    )


def privacy_line(run_dir):
    """One line on a private run's budget, from its privacy.json; None for any other run."""
    path = os.path.join(run_dir, PRIVACY_FILE)
    if not os.path.isfile(path):
        return None
    privacy = atomic.read_json(path)
    return (
        f"privacy: ε = {privacy['epsilon']:.2f} at δ = {privacy['delta']:g} after "
        f"{privacy['steps']} DP-SGD steps (σ {privacy['noise_multiplier']:g}, clip "
        f"{privacy['l2_clip']:g}; {path})"
    )
