"""DP-SGD (Abadi et al., 2016) for any classifier: `train --dp-l2-clip C --dp-noise-multiplier σ`.

Each training step computes every clip's gradient on its own, scales it
down to L2 norm at most C, sums them, adds Gaussian noise of standard
deviation σ·C to the sum and divides by the batch size. No clip can then
move the weights by more than C/B, and the noise hides whether it was in
the batch; `vlm_tf.metrics.privacy` turns σ, the sampling rate and the
number of steps into the (ε, δ) the run can claim.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def per_example_clipped_gradients(model, loss_fn, clips, labels, l2_clip):
    """Every example's gradient of `loss_fn(label, model(clip))` with respect to
    `model.trainable_variables`, scaled to global L2 norm at most `l2_clip`.

    Returns:
        `(gradients, norms)`: per variable a tensor `(B, *variable.shape)`, and
        each example's norm before clipping `(B,)`.
    """
    variables = model.trainable_variables

    def one(example):
        clip, label = example
        with tf.GradientTape() as tape:
            prediction = model(clip[None], training=True)
            loss = loss_fn(label[None], tf.cast(prediction, tf.float32))
        grads = tape.gradient(loss, variables)
        grads = [
            tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(grads, variables)
        ]
        norm = tf.linalg.global_norm(grads)
        scale = tf.minimum(1.0, l2_clip / (norm + 1e-12))
        return [g * scale for g in grads], norm

    return tf.map_fn(
        one,
        (clips, labels),
        fn_output_signature=([tf.TensorSpec(v.shape, v.dtype) for v in variables], tf.float32),
    )


@keras.saving.register_keras_serializable(package="vlm_tf")
class PrivateClassifier(keras.Model):
    """A functional classifier trained by DP-SGD; `plain` is the same model without it, to save.

    Args:
        l2_clip: C, the largest L2 norm one clip's gradient may have.
        noise_multiplier: σ, the noise's standard deviation over C.
        seed: the noise's seed.
    """

    def __init__(self, inputs, outputs, *, l2_clip, noise_multiplier, seed=0, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.l2_clip = float(l2_clip)
        self.noise_multiplier = float(noise_multiplier)
        self.seed = int(seed)
        self.noise_seed = keras.random.SeedGenerator(self.seed)

    @property
    def plain(self):
        """The classifier as a plain functional model sharing these weights."""
        return keras.Model(self.input, self.output, name=self.name)

    def train_step(self, data):
        clips, labels = data[:2]
        grads, norms = per_example_clipped_gradients(
            self, keras.losses.categorical_crossentropy, clips, labels, self.l2_clip
        )
        batch = tf.cast(tf.shape(clips)[0], tf.float32)
        noised = [
            (
                tf.reduce_sum(g, axis=0)
                + keras.random.normal(
                    g.shape[1:], stddev=self.noise_multiplier * self.l2_clip, seed=self.noise_seed
                )
            )
            / batch
            for g in grads
        ]
        self.optimizer.apply_gradients(zip(noised, self.trainable_variables))
        # The figures of the step, from one more forward pass (not private: they are logs).
        predictions = self(clips, training=False)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(
                    tf.reduce_mean(keras.losses.categorical_crossentropy(labels, predictions))
                )
            else:
                metric.update_state(labels, predictions)
        return {
            **{m.name: m.result() for m in self.metrics},
            "dp_clipped_share": tf.reduce_mean(tf.cast(norms > self.l2_clip, tf.float32)),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "l2_clip": self.l2_clip,
            "noise_multiplier": self.noise_multiplier,
            "seed": self.seed,
        }


def make_private(model, *, l2_clip, noise_multiplier, seed=0):
    """`model` (functional) as a `PrivateClassifier` on the same layers and weights."""
    return PrivateClassifier(
        model.input,
        model.output,
        l2_clip=l2_clip,
        noise_multiplier=noise_multiplier,
        seed=seed,
        name=model.name,
    )
