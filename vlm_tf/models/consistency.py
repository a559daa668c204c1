"""Jensen-Shannon consistency (AugMix, Hendrycks et al., 2020) for any classifier:
`train --augment robust`.

Every training clip arrives with corrupted copies of itself
(`vlm_tf.data.transforms.corrupted_views`). The loss is the cross-entropy
of the clean clip plus `weight` times the Jensen-Shannon divergence between
the predictions for all of them: the model is taught the label on clean
clips and taught that a corruption should not change its answer. Measured
against training on corrupted clips alone in docs/robustness.md.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# A floor under the probabilities: a float32 softmax can round to exactly 0, and log(0) is -inf.
_FLOOR = 1e-7


def jensen_shannon(probabilities):
    """`(B,)`: the Jensen-Shannon divergence of `V` predictions `(V, B, K)` for each example,
    the mean KL divergence of each from their mean (natural log).
    """
    probabilities = tf.clip_by_value(probabilities, _FLOOR, 1.0)
    mixture = tf.reduce_mean(probabilities, axis=0, keepdims=True)
    divergence = tf.reduce_sum(
        probabilities * (tf.math.log(probabilities) - tf.math.log(mixture)), axis=-1
    )
    return tf.reduce_mean(divergence, axis=0)


@keras.saving.register_keras_serializable(package="vlm_tf")
class ConsistentClassifier(keras.Model):
    """A functional classifier trained on `(B, V, T, H, W, 3)` batches of a clip and its
    corrupted views; `plain` is the same model, taking single clips, to save.

    Args:
        weight: the Jensen-Shannon term's weight against the clean clip's cross-entropy.
    """

    def __init__(self, inputs, outputs, *, weight, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.weight = float(weight)

    @property
    def plain(self):
        """The classifier as a plain functional model sharing these weights."""
        return keras.Model(self.input, self.output, name=self.name)

    def train_step(self, data):
        views, labels = data[:2]
        count = views.shape[1]
        # View-major, so one forward pass over all of them splits back into views.
        clips = tf.reshape(
            tf.transpose(views, [1, 0, 2, 3, 4, 5]),
            tf.concat([[-1], tf.shape(views)[2:]], axis=0),
        )
        with tf.GradientTape() as tape:
            predictions = tf.cast(self(clips, training=True), tf.float32)
            predictions = tf.reshape(predictions, [count, -1, predictions.shape[-1]])
            cross_entropy = tf.reduce_mean(
                keras.losses.categorical_crossentropy(labels, predictions[0])
            )
            divergence = tf.reduce_mean(jensen_shannon(predictions))
            loss = cross_entropy + self.weight * divergence
            # Under tf.distribute each replica's gradients are summed: its share of the mean.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(loss / replicas)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        # The clean clip's figures, as a standard run logs them.
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(cross_entropy)
            else:
                metric.update_state(labels, predictions[0])
        return {**{m.name: m.result() for m in self.metrics}, "consistency": divergence}

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


def make_consistent(model, *, weight):
    """`model` (functional) as a `ConsistentClassifier` on the same layers and weights."""
    return ConsistentClassifier(model.input, model.output, weight=weight, name=model.name)
