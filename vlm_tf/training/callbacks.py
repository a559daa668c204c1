"""Callbacks a run adds to Keras' own: input clips in TensorBoard."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def clip_montage(clip, max_frames=8):
    """One clip `(T, H, W, 3)` in [0, 255] → one image `(H, T'·W, 3)` uint8 of up to `max_frames` frames."""
    clip = np.asarray(clip)
    step = max(1, int(np.ceil(len(clip) / max_frames)))
    return np.concatenate(list(clip[::step]), axis=1).clip(0, 255).astype(np.uint8)


class ClipSamples(keras.callbacks.Callback):
    """Writes a few training clips, as the model receives them, to TensorBoard as images.

    Seeing the augmented input is the quickest check that frames are in
    order, in RGB and labelled right.
    """

    def __init__(self, dataset, log_dir, class_names, max_clips=4):
        super().__init__()
        self.dataset = dataset
        self.log_dir = log_dir
        self.class_names = class_names
        self.max_clips = max_clips

    def on_train_begin(self, logs=None):
        clips, labels = next(iter(self.dataset))
        labels = labels.numpy()
        if labels.ndim == 2:
            labels = labels.argmax(axis=-1)
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            for i in range(min(self.max_clips, len(labels))):
                name = f"input_clips/{i}_{self.class_names[labels[i]]}"
                tf.summary.image(name, clip_montage(clips[i].numpy())[None], step=0)
        writer.close()
