"""Callbacks a run adds to Keras' own TensorBoard callback: the model graph, input clips, attention maps."""

from __future__ import annotations

import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic
from vlm_tf.layers import HardAttention, MultiScaleAttention, SoftAttention
from vlm_tf.layers.transformer import ClassAttentionPooling, TubeletEmbedding
from vlm_tf.training import config as run_files

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


class LocalValidation(keras.callbacks.Callback):
    """Validation loss and accuracy (`val_loss`, `val_accuracy` in the epoch's logs) computed by each worker on its own.

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

    def on_epoch_end(self, epoch, logs=None):
        losses, hits = [], []
        for clips, labels in self.dataset:
            probabilities = self.model(clips, training=False)
            losses.append(keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(labels, probabilities)))
            hits.append(np.argmax(keras.ops.convert_to_numpy(probabilities), -1) == np.argmax(keras.ops.convert_to_numpy(labels), -1))
        if logs is not None and losses:
            logs["val_loss"] = float(np.mean(np.concatenate(losses)))
            logs["val_accuracy"] = float(np.mean(np.concatenate(hits)))


class SaveModel(keras.callbacks.Callback):
    """Saves the model, or one part of it (`part="generator"`, say), as a `.keras` file after each epoch, never half-written.

    With `monitor`, only epochs that improve on the best value so far (or on
    `initial_value`, the best of the epochs before a resume) save: Keras'
    `ModelCheckpoint` with `save_best_only`, except that it writes through a
    temporary file (a kill during its write left a file that could not be
    read) and can save a part of a composite model, which is what is used
    afterwards (a GAN's generator, not the generator and discriminator).
    """

    def __init__(self, path, *, part=None, monitor=None, mode="max", initial_value=None):
        super().__init__()
        self.path = path
        self.part = part
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.best = None if initial_value is None else self.sign * initial_value

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or (self.best is not None and self.sign * value <= self.best):
                return
            self.best = self.sign * value
        atomic.save_model(self.model if self.part is None else getattr(self.model, self.part), self.path)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose saved state a kill cannot spoil.

    Keras writes `latest.weights.h5` in place, so a SIGKILL during that
    write leaves a file h5py cannot open and the run cannot resume. Here each
    epoch's state (weights and epoch count) is written into a folder under a
    temporary name and renamed to `state-NNNNN` once whole; a restart
    restores the newest whole state, and older ones are removed once a newer
    one exists. Put it last in the callback list: a saved state N then means
    every other end-of-epoch write of epoch N is on disk too. The backup
    stays after training so the caller can remove it (`discard`) only once
    the run's final model is written.
    """

    STATE_PREFIX = "state-"
    WEIGHTS_FILE = "latest.weights.h5"
    METADATA_FILE = "training_metadata.json"

    def __init__(self, backup_dir):
        super().__init__(backup_dir, delete_checkpoint=False)

    def _states(self):
        if not os.path.isdir(self.backup_dir):
            return []
        names = [name for name in os.listdir(self.backup_dir) if name.startswith(self.STATE_PREFIX)]
        return [os.path.join(self.backup_dir, name) for name in sorted(names)]

    def saved_epoch(self):
        """How many epochs the newest saved state has completed (0 when there is none)."""
        states = self._states()
        if not states:
            return 0
        return int(run_files.read_json(os.path.join(states[-1], self.METADATA_FILE))["epoch"])

    def on_train_begin(self, logs=None):
        states = self._states()
        if states:
            # The base class restores from these two paths.
            self._weights_path = os.path.join(states[-1], self.WEIGHTS_FILE)
            self._training_metadata_path = os.path.join(states[-1], self.METADATA_FILE)
            self._load_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        older = self._states()
        with atomic.replacing(os.path.join(self.backup_dir, f"{self.STATE_PREFIX}{self._current_epoch:05d}")) as state:
            os.makedirs(state)
            self.model.save_weights(os.path.join(state, self.WEIGHTS_FILE))
            atomic.write_json(os.path.join(state, self.METADATA_FILE), {"epoch": self._current_epoch, "batch": self._last_batch_seen})
        for path in older:
            shutil.rmtree(path)

    def discard(self):
        """Removes the backup: the run is finished."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)


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


class ProfileSteps(keras.callbacks.Callback):
    """A TensorFlow profiler trace of training steps `first` to `last` (counted from 0 over the whole run in this process).

    The first steps trace the model and fill the input buffers, so the trace
    starts after them. It lands in `log_dir/plugins/profile/<run>/` as
    `*.xplane.pb`, which TensorBoard's Profile tab opens (the
    tensorboard-plugin-profile package). A run with fewer steps ends the
    trace when training ends.
    """

    def __init__(self, log_dir, first=3, last=7):
        super().__init__()
        self.log_dir, self.first, self.last = log_dir, first, last
        self.step = 0
        self.tracing = False

    def on_train_batch_begin(self, batch, logs=None):
        if self.step == self.first:
            tf.profiler.experimental.start(self.log_dir)
            self.tracing = True

    def on_train_batch_end(self, batch, logs=None):
        if self.tracing and self.step == self.last:
            self._stop()
        self.step += 1

    def on_train_end(self, logs=None):
        if self.tracing:
            self._stop()

    def _stop(self):
        tf.profiler.experimental.stop()
        self.tracing = False
