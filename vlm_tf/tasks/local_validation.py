"""Validation each worker of a multi-worker run computes by itself (the classify task's)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class LocalValidation(keras.callbacks.Callback):
    """Validation loss and accuracy (`val_loss`, `val_accuracy` in the epoch's logs) computed by
    each worker on its own.

    `fit`'s own validation under `MultiWorkerMirroredStrategy` counts its
    steps from the dataset before `tf.distribute` re-batches it, so each
    worker would see only the first part of the validation set. The
    replicas hold the same weights, so every worker validating the whole set
    by itself gives the numbers one process would, at the cost of each
    worker reading it. Put it first: the callbacks after it see its figures.
    """

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset
        self._forward = None

    def on_epoch_end(self, epoch, logs=None):
        if self._forward is None:
            # Traced once: called eagerly, the model cost more than the whole pass otherwise.
            self._forward = tf.function(lambda clips: self.model(clips, training=False))
        losses, hits = [], []
        for clips, labels in self.dataset:
            probabilities = keras.ops.convert_to_numpy(self._forward(clips)).astype(np.float32)
            labels = keras.ops.convert_to_numpy(labels)
            losses.append(
                keras.ops.convert_to_numpy(
                    keras.losses.categorical_crossentropy(labels, probabilities)
                )
            )
            hits.append(np.argmax(probabilities, -1) == np.argmax(labels, -1))
        if logs is not None and losses:
            logs["val_loss"] = float(np.mean(np.concatenate(losses)))
            logs["val_accuracy"] = float(np.mean(np.concatenate(hits)))
