"""The loop's own callbacks, every task's: clips per second, the best model kept, backups a kill
cannot spoil, a profiler trace.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import time
import uuid

import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic, crypto
from vlm_tf.errors import CannotFinish
from vlm_tf.training.config import HISTORY_FILE


class TrainingThroughput(keras.callbacks.Callback):
    """Adds `train_clips_per_s` to each epoch's logs: training clips over the time of the epoch's
    training part.

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
        seconds = (
            self.train_seconds
            if self.train_seconds is not None
            else time.perf_counter() - self.started
        )
        if logs is not None:
            logs["train_clips_per_s"] = self.num_clips / seconds


class EnergyUse(keras.callbacks.Callback):
    """Adds `energy_joules` and `energy_joules_per_clip` to each epoch's logs: the energy of the
    whole epoch, validation included, by `meter` (`vlm_tf.energy.EnergyMeter`), over the epoch's
    training clips.
    """

    def __init__(self, num_clips, meter):
        super().__init__()
        self.num_clips = num_clips
        self.meter = meter

    def on_epoch_begin(self, epoch, logs=None):
        self.meter.start()

    def on_epoch_end(self, epoch, logs=None):
        energy = self.meter.read(clips=self.num_clips)
        if logs is not None:
            logs["energy_joules"] = energy.joules
            logs["energy_joules_per_clip"] = energy.joules / self.num_clips


class TrainingDiverged(CannotFinish):
    """A loss became NaN or infinite: the run cannot learn from here with these settings."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `TrainingDiverged`, naming the epoch and step, at the first batch whose loss is not
    finite.

    Keras' `TerminateOnNaN` only stops training, after which the epoch's end
    still runs: its row, a "best" model and a backup of NaN weights would be
    written and the run would report success. Raising instead leaves the
    run folder as the last good epoch left it, resumable from there. Every
    logged loss counts (`loss`, a GAN's `d_loss` and `g_loss`).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if name.endswith("loss") and not math.isfinite(float(value)):
                raise TrainingDiverged(
                    f"training diverged: {name} was {float(value)} at epoch {self.epoch + 1}, "
                    f"step {batch + 1}; the run folder keeps the epochs before it (a lower "
                    "--learning-rate in a new --out folder usually helps)"
                )


class SaveModel(keras.callbacks.Callback):
    """Saves the model, or one part of it (`part="generator"`, say), as a `.keras` file after each
    epoch, never half-written.

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
        atomic.save_model(
            self.model if self.part is None else getattr(self.model, self.part), self.path
        )


# What an HDF5 weights file takes beyond its arrays (weights and optimizer
# state): measured 5 % for cnn_lstm and 11 % (340 KB) for video_transformer,
# whose arrays are many and small; the check keeps a margin over that.
HDF5_SLACK = 1.25
HDF5_OVERHEAD_BYTES = 256 * 1024


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose saved state a kill cannot spoil.

    Keras writes `latest.weights.h5` in place, so a SIGKILL during that
    write leaves a file h5py cannot open and the run cannot resume. Here each
    epoch's state (weights and epoch count) is written into a folder under a
    temporary name and renamed to `state-NNNNN` once whole; a restart
    restores the newest whole state, and older ones are removed once a newer
    ones exist (all but the `keep` newest). Put it last in the callback
    list: a saved state N then means every other end-of-epoch write of
    epoch N is on disk too. The backup stays after training so the caller
    can remove it (`discard`) only once the run's final model is written.
    """

    STATE_PREFIX = "state-"
    WEIGHTS_FILE = "latest.weights.h5"
    # An encrypted run's state: every variable as a NumPy array, encrypted in memory (Keras writes
    # weights files only by name, in the clear).
    ARRAYS_FILE = "latest.npz"
    METADATA_FILE = "training_metadata.json"

    def __init__(self, backup_dir, keep=1):
        super().__init__(backup_dir, delete_checkpoint=False)
        self.keep = keep

    def _states(self):
        if not os.path.isdir(self.backup_dir):
            return []
        names = [name for name in os.listdir(self.backup_dir) if name.startswith(self.STATE_PREFIX)]
        return [os.path.join(self.backup_dir, name) for name in sorted(names)]

    def _epoch(self, state):
        return int(atomic.read_json(os.path.join(state, self.METADATA_FILE))["epoch"])

    def saved_epoch(self):
        """How many epochs the newest saved state has completed (0 when there is none)."""
        states = self._states()
        return self._epoch(states[-1]) if states else 0

    def rewind(self, epoch):
        """Removes the states newer than `epoch` completed epochs, so that training resumes from
        `epoch` (0: from the start); a one-line error when no state of `epoch` is kept.
        """
        states = self._states()
        epochs = [self._epoch(state) for state in states]
        if epoch and epoch not in epochs:
            raise ValueError(
                f"{self.backup_dir} holds no saved state of epoch {epoch} (it has "
                f"{epochs or 'none'}); the run cannot resume there"
            )
        for path, saved in zip(states, epochs):
            if saved > epoch:
                shutil.rmtree(path)

    def on_train_begin(self, logs=None):
        states = self._states()
        if not states:
            return
        arrays_path = os.path.join(states[-1], self.ARRAYS_FILE)
        if not os.path.isfile(arrays_path):
            # The base class restores from these two paths.
            self._weights_path = os.path.join(states[-1], self.WEIGHTS_FILE)
            self._training_metadata_path = os.path.join(states[-1], self.METADATA_FILE)
            self._load_model()
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        with np.load(io.BytesIO(crypto.read_bytes(arrays_path))) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        variables = self._variables()
        if [tuple(v.shape) for v in variables] != [value.shape for value in values]:
            raise ValueError(f"{arrays_path}: saved by another model; the run cannot resume")
        for variable, value in zip(variables, values):
            variable.assign(value)
        self.model._initial_epoch = self._epoch(states[-1])

    def _variables(self):
        """The model's variables and its optimizer's, in an order a rebuilt model repeats."""
        return [*self.model.variables, *getattr(self.model.optimizer, "variables", [])]

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        older = self._states()
        state_path = os.path.join(self.backup_dir, f"{self.STATE_PREFIX}{self._current_epoch:05d}")
        # Weights and optimizer state, plus room for HDF5's own bookkeeping.
        needed = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in self._variables())
        atomic.require_space(state_path, int(needed * HDF5_SLACK) + HDF5_OVERHEAD_BYTES)
        with atomic.replacing(state_path) as state:
            os.makedirs(state)
            if crypto.key_for(state) is None:
                self.model.save_weights(os.path.join(state, self.WEIGHTS_FILE))
            else:
                buffer = io.BytesIO()
                np.savez(buffer, *(np.asarray(v) for v in self._variables()))
                atomic.write_bytes(os.path.join(state, self.ARRAYS_FILE), buffer.getvalue())
            atomic.write_json(
                os.path.join(state, self.METADATA_FILE),
                {"epoch": self._current_epoch, "batch": self._last_batch_seen},
            )
        for path in older[: max(len(older) + 1 - self.keep, 0)]:
            shutil.rmtree(path)

    def discard(self):
        """Removes the backup: the run is finished."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)


class SealedCopies(keras.callbacks.Callback):
    """Copies, encrypted, the files written in memory under `memory_dir` (the TensorBoard logs of
    an encrypted run) to the same places under `run_dir`: after every other write of each epoch,
    and once more when training ends, after the writers have closed.

    TensorBoard's writers append to files by name; an encrypted run points them at TensorFlow's
    in-memory file system (`ram://`) instead, so their content never reaches the disk in the
    clear. A file is copied again only when it has grown.
    """

    def __init__(self, memory_dir, run_dir):
        super().__init__()
        self.memory_dir, self.run_dir = memory_dir, run_dir
        self.sizes = {}

    def on_epoch_end(self, epoch, logs=None):
        self.copy()

    def on_train_end(self, logs=None):
        self.copy()
        if tf.io.gfile.exists(self.memory_dir):
            tf.io.gfile.rmtree(self.memory_dir)

    def copy(self):
        if not tf.io.gfile.exists(self.memory_dir):
            return
        for folder, _, names in tf.io.gfile.walk(self.memory_dir):
            for name in names:
                source = f"{folder.rstrip('/')}/{name}"
                relative = source[len(self.memory_dir) + 1 :]
                size = tf.io.gfile.stat(source).length
                if self.sizes.get(relative) == size:
                    continue
                with tf.io.gfile.GFile(source, "rb") as f:
                    atomic.write_bytes(os.path.join(self.run_dir, relative), f.read())
                self.sizes[relative] = size


def history_and_logs(run_dir, *, append=False):
    """`(history, log_root, copies)`: the callback that writes the run's `history.csv`, the folder
    TensorBoard writers write under, and the callbacks that must follow them.

    A plain run: Keras' `CSVLogger` and `run_dir`. An encrypted one (`vlm_tf.crypto`):
    `SealedHistory`, and a new in-memory folder that `SealedCopies` copies into `run_dir`.
    """
    path = os.path.join(run_dir, HISTORY_FILE)
    if crypto.key_for(run_dir) is None:
        return keras.callbacks.CSVLogger(path, append=append), run_dir, []
    memory_dir = f"ram://vlm_tf/{uuid.uuid4().hex}"
    return SealedHistory(path, append=append), memory_dir, [SealedCopies(memory_dir, run_dir)]


class SealedHistory(keras.callbacks.Callback):
    """An encrypted run's `history.csv`: `CSVLogger`'s columns and rows, the file written whole
    and encrypted after each epoch (`CSVLogger` appends to a file by name, in the clear).
    """

    def __init__(self, path, *, append=False):
        super().__init__()
        self.path, self.append = path, append

    def on_train_begin(self, logs=None):
        self.text = atomic.read_text(self.path) if self.append and os.path.isfile(self.path) else ""

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        fields = next(csv.reader(self.text.splitlines()[:1]), None) or ["epoch", *sorted(logs)]
        rows = io.StringIO()
        # The csv module's "excel" rows, as CSVLogger writes them.
        writer = csv.writer(rows)
        if not self.text:
            writer.writerow(fields)
        writer.writerow([epoch if name == "epoch" else logs.get(name, "NA") for name in fields])
        self.text += rows.getvalue()
        atomic.write_text(self.path, self.text)


class ProfileSteps(keras.callbacks.Callback):
    """A TensorFlow profiler trace of training steps `first` to `last` (counted from 0 over the
    whole run in this process).

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
