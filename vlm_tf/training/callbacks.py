"""Callbacks a run adds to Keras' own TensorBoard callback: the model graph, input clips, attention maps."""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from vlm_tf.layers import HardAttention, MultiScaleAttention, SoftAttention
from vlm_tf.layers.transformer import ClassAttentionPooling, TubeletEmbedding

ATTENTION_LAYER = "attention"
# Height in pixels of one row of weights under the frames.
_BAR_HEIGHT = 10


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


class ModelGraph(keras.callbacks.Callback):
    """Writes the model's forward graph to TensorBoard's Graphs tab.

    `keras.callbacks.TensorBoard(write_graph=True)` writes nothing with
    Keras 3.15 on TensorFlow 2.21: it looks for `function_spec` on the train
    function, an attribute `tf.function` no longer has. Tracing the model
    ourselves gives the graph a reader wants anyway: the layers, not the
    optimizer's bookkeeping.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir

    def on_train_begin(self, logs=None):
        spec = [tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in self.model.inputs]

        def forward(*inputs):
            return self.model(*inputs, training=False)

        graph = tf.function(forward).get_concrete_function(*spec).graph
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            tf.summary.graph(graph)
        writer.close()


class TrainingThroughput(keras.callbacks.Callback):
    """Adds `train_clips_per_s` to each epoch's logs: training clips over the time of the epoch's training part.

    The clock stops when validation starts, so the figure is the training
    steps with their input pipeline, not evaluation. CSVLogger and
    TensorBoard, later in the callback list, record it with the other
    metrics.
    """

    def __init__(self, num_clips):
        super().__init__()
        self.num_clips = num_clips

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.train_seconds = None

    def on_test_begin(self, logs=None):
        if self.train_seconds is None:
            self.train_seconds = time.perf_counter() - self.started

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.train_seconds if self.train_seconds is not None else time.perf_counter() - self.started
        if logs is not None:
            logs["train_clips_per_s"] = self.num_clips / seconds


def attention_layer(model):
    """The model's attention layer (named `attention`), or `None` when it has none that weighs frames."""
    try:
        layer = model.get_layer(ATTENTION_LAYER)
    except ValueError:
        return None
    if isinstance(layer, SoftAttention) and layer.over != "time":
        return None
    return layer if isinstance(layer, (SoftAttention, HardAttention, MultiScaleAttention, ClassAttentionPooling)) else None


def frame_weight_rows(model, weights, num_frames):
    """The attention layer's weights for N clips → `(N, rows, num_frames)`: what each frame received.

    Soft and hard attention give one row. Multi-scale attention gives one
    row per scale and a last row with their sum (the weight each frame has
    in the output). A transformer's class attention is summed over the
    patches of each time step and spread over the frames of its tubelet.
    """
    layer = attention_layer(model)
    weights = np.asarray(weights, np.float32)
    if isinstance(layer, MultiScaleAttention):
        return np.concatenate([weights, weights.sum(axis=1, keepdims=True)], axis=1)
    if isinstance(layer, ClassAttentionPooling):
        tubelet = next(l for l in model.layers if isinstance(l, TubeletEmbedding)).tubelet_size[0]
        per_step = weights.sum(axis=2) / tubelet
        rows = np.zeros((len(weights), num_frames), np.float32)
        spread = np.repeat(per_step, tubelet, axis=1)[:, :num_frames]
        rows[:, : spread.shape[1]] = spread
        return rows[:, None]
    return weights[:, None]


def attention_map_image(clip, rows):
    """Frames side by side `(H, T·W)` with one bar per row of weights under them, brighter where the weight is higher.

    Each row is scaled to its own maximum, so a row shows where its
    attention went, not how much of the total it carries.
    """
    clip = np.asarray(clip)
    num_frames, height, width = clip.shape[:3]
    frames = np.concatenate(list(clip), axis=1).clip(0, 255).astype(np.uint8)
    bars = []
    for row in np.asarray(rows, np.float32):
        level = row / max(float(row.max()), 1e-12)
        # Black (no weight) through red to yellow (the row's largest weight).
        colour = np.stack([np.minimum(1.0, 2 * level), np.maximum(0.0, 2 * level - 1), np.zeros_like(level)], axis=-1)
        bar = np.repeat(np.repeat(colour[None], _BAR_HEIGHT, axis=0), width, axis=1)
        bar[:2] = 0.0
        bars.append((bar * 255).astype(np.uint8))
    return np.concatenate([frames, *bars], axis=0)


def pick_clips(dataset, max_clips):
    """Up to `max_clips` clips of different classes from a batched `(clips, labels)` dataset, with their labels."""
    clips, labels = [], []
    for batch_clips, batch_labels in dataset:
        batch_labels = batch_labels.numpy()
        if batch_labels.ndim == 2:
            batch_labels = batch_labels.argmax(axis=-1)
        for clip, label in zip(batch_clips.numpy(), batch_labels):
            if label not in labels:
                clips.append(clip)
                labels.append(int(label))
            if len(clips) == max_clips:
                return np.stack(clips), labels
    return (np.stack(clips), labels) if clips else (None, [])


class AttentionMaps(keras.callbacks.Callback):
    """Each epoch, which frames the model weighed for a few validation clips, as TensorBoard images.

    For models with an `attention` layer (`attention_layer`): one image per
    clip, its frames with the attention weights under them
    (`attention_map_image`), tagged `attention/<k>_<class>` at step = epoch.
    """

    def __init__(self, dataset, log_dir, class_names, max_clips=4):
        super().__init__()
        self.dataset = dataset
        self.log_dir = log_dir
        self.class_names = class_names
        self.max_clips = max_clips

    def on_train_begin(self, logs=None):
        self.clips, self.labels = pick_clips(self.dataset, self.max_clips)
        layer = attention_layer(self.model)
        self.probe = keras.Model(self.model.input, layer.output[1])
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        if self.clips is None:
            return
        rows = frame_weight_rows(self.model, self.probe(self.clips, training=False), self.clips.shape[1])
        with self.writer.as_default():
            for k, (clip, label) in enumerate(zip(self.clips, self.labels)):
                tf.summary.image(f"attention/{k}_{self.class_names[label]}", attention_map_image(clip, rows[k])[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


def save_model_atomically(model, path):
    """Saves `model` to `path` (.keras) through a temporary file, so `path` is never half-written."""
    temporary = f"{path}.tmp.keras"
    model.save(temporary)
    os.replace(temporary, path)


class SaveSubmodel(keras.callbacks.Callback):
    """Saves one part of a composite model (`gan.generator`, say) as its own `.keras` file after each epoch.

    `ModelCheckpoint` would save the whole training model, discriminator and
    all; what is used afterwards is the part. With `monitor`, only epochs
    that improve on the best value so far (or on `initial_value`) save.
    """

    def __init__(self, attribute, path, *, monitor=None, mode="max", initial_value=None):
        super().__init__()
        self.attribute = attribute
        self.path = path
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.best = None if initial_value is None else self.sign * initial_value

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or (self.best is not None and self.sign * value <= self.best):
                return
            self.best = self.sign * value
        save_model_atomically(getattr(self.model, self.attribute), self.path)


class GeneratedClips(keras.callbacks.Callback):
    """Each epoch, one TensorBoard image per class: a real clip above clips generated from fixed noise.

    The noise is drawn once, so from epoch to epoch the images show the same
    samples improving, not new ones.
    """

    def __init__(self, real_clips, class_names, log_dir, *, per_class=2, seed=0):
        super().__init__()
        self.real_clips = real_clips
        self.class_names = class_names
        self.log_dir = log_dir
        self.per_class = per_class
        self.seed = seed

    def on_train_begin(self, logs=None):
        rng = np.random.default_rng(self.seed)
        self.labels = np.repeat(np.arange(len(self.class_names)), self.per_class).astype(np.int32)
        self.noise = rng.normal(size=(len(self.labels), self.model.latent_dim)).astype(np.float32)
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        generated = np.asarray(self.model.generator([self.noise, self.labels], training=False))
        with self.writer.as_default():
            for k, name in enumerate(self.class_names):
                rows = [clip_montage(clip) for clip in generated[k * self.per_class : (k + 1) * self.per_class]]
                if self.real_clips.get(k) is not None:
                    rows.insert(0, clip_montage(self.real_clips[k]))
                tf.summary.image(f"generated/{k}_{name}", np.concatenate(rows, axis=0)[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


class PredictedFrames(keras.callbacks.Callback):
    """Each epoch, for a few validation clips: the observed frames, then the true next frames above the predicted ones."""

    def __init__(self, clips, log_dir):
        super().__init__()
        self.clips = clips
        self.log_dir = log_dir

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        observed_frames = self.model.observed_frames
        observed, future = self.clips[:, :observed_frames], self.clips[:, observed_frames : observed_frames + self.model.predicted_frames]
        predicted = np.asarray(self.model.predictor(observed, training=False))
        with self.writer.as_default():
            for k in range(len(self.clips)):
                top = clip_montage(np.concatenate([observed[k], future[k]]), max_frames=len(observed[k]) + len(future[k]))
                bottom = clip_montage(np.concatenate([observed[k], predicted[k]]), max_frames=len(observed[k]) + len(predicted[k]))
                tf.summary.image(f"predicted/{k}", np.concatenate([top, bottom], axis=0)[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()
