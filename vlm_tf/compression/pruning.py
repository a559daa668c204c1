"""Magnitude pruning with the gradual schedule of Zhu & Gupta (2017), "To prune, or not to prune".

The weights of smallest magnitude in every kernel are set to zero a few at
a time while the model keeps training, so the ones left can take over
their work:

    s_t = s_f + (s_i − s_f) · (1 − (t − t0) / (n·Δt))³,   t = t0, t0 + Δt, …, t0 + n·Δt

s_t rises fast at first, while there are many redundant weights, and
slowly near the target s_f. Once a weight is pruned its mask holds it at
zero for the rest of training; the dense model that results is no faster,
but its zeros compress (`compression.json` compares gzip sizes) and a
sparse runtime can skip them.

Why not `tensorflow-model-optimization`: its 0.8.1 release wraps only
tf_keras (Keras 2) layers. Importing it sets `TF_USE_LEGACY_KERAS=1` and
imports `tf_keras` (without that package the import fails, "Keras cannot
be imported"); with it, `prune_low_magnitude` refuses a Keras 3 model
("can only prune an object of the following types: keras.models.Sequential,
... You passed an object of type: Sequential"; TF 2.21, Keras 3.15). Its
maintainers have no plan to port it (tensorflow/model-optimization issue
1119). What pruning needs, masks re-applied after every optimizer step, is
a short Keras 3 callback: `MagnitudePruning`.
"""

from __future__ import annotations

import dataclasses
import gzip
import os

import keras
import numpy as np

from vlm_tf import atomic
from vlm_tf.compression.runs import (
    fit_run,
    new_run_dir,
    quiet_end_of_input,
    run_datasets,
    seeded,
    skipped_files,
    training_data_dir,
    write_report,
)
from vlm_tf.inference import load_run
from vlm_tf.training import config as run_files
from vlm_tf.training import runtime
from vlm_tf.training.loop import make_optimizer, write_run_header

# The weight matrices of Conv, Dense, EinsumDense and the recurrent cells
# (input and recurrent kernels): nearly all of a model's parameters. Biases,
# normalisation scales and embeddings are few and each matters.
PRUNED_WEIGHTS = ("kernel", "recurrent_kernel")
# "global": one magnitude threshold over all kernels; "layer": every kernel
# loses the same fraction (Zhu & Gupta's choice). Global kept more accuracy
# at 80% (MagnitudePruning's docstring).
SCOPES = ("global", "layer")
DEFAULT_SCOPE = "global"
# prune_run fine-tunes at a tenth of the run's own learning rate, held
# constant: the run is already trained, and the steps only have to let the
# weights left make up for the ones pruned.
FINE_TUNE_LR_SCALE = 0.1
# prune_run reaches the target after this share of its steps and trains the
# rest at the final sparsity, so the last weights can recover.
PRUNING_SHARE = 2 / 3
# Pruning events on the way to the target (Zhu & Gupta's n).
PRUNING_EVENTS = 10


def polynomial_sparsity(step, *, final_sparsity, begin_step, end_step, initial_sparsity=0.0):
    """Zhu & Gupta's s_t at optimizer step `step`.

    `initial_sparsity` up to `begin_step`, `final_sparsity` from `end_step`, a
    cubic between.
    """
    # End first: with begin_step == end_step the schedule is one-shot pruning.
    if step >= end_step:
        return float(final_sparsity)
    if step <= begin_step:
        return float(initial_sparsity)
    remaining = 1.0 - (step - begin_step) / (end_step - begin_step)
    return float(final_sparsity + (initial_sparsity - final_sparsity) * remaining**3)


def prunable_weights(model):
    """The trainable kernels that `MagnitudePruning` prunes (`PRUNED_WEIGHTS`).

    They come in the model's weight order.
    """
    return [weight for weight in model.trainable_weights if weight.name in PRUNED_WEIGHTS]


def smallest_mask(magnitudes, sparsity):
    """A 0/1 array shaped like `magnitudes`, with zeros at its smallest entries.

    There are `round(sparsity · size)` zeros, exactly that many whatever the
    ties: pruned weights are exactly zero, so the ones pruned before are
    always among those pruned again.
    """
    flat = np.ravel(magnitudes)
    count = int(round(sparsity * flat.size))
    mask = np.ones(flat.size, np.float32)
    if count:
        mask[np.argpartition(flat, count - 1)[:count]] = 0.0
    return mask.reshape(np.shape(magnitudes))


class MagnitudePruning(keras.callbacks.Callback):
    """Prunes the model's kernels to `final_sparsity` on the polynomial schedule.

    It holds the pruned weights at zero.

    At every pruning step (`begin_step`, then every `frequency` optimizer
    steps, and `end_step`), before the step runs, each kernel's mask is
    recomputed from the magnitudes at `polynomial_sparsity(step)`; after
    every training step the masks are multiplied into the kernels again, since
    the optimizer's update (Adam's momentum in particular) moves pruned
    weights off zero. The masks and the step count are the callback's
    state: a second `fit` with the same callback continues the schedule.

    `scope="global"` (the default) ranks all kernels' magnitudes together.
    Weights are smaller in layers with a larger fan-in (Glorot's initial
    scale falls with it), so one threshold takes most from the widest
    kernel, the LSTM's input kernel (93% of the default model's weights, and
    the most redundant), and leaves the small layers mostly whole: at 80%
    overall, the trained default model's LSTM input kernel lost 82% of its
    weights, its first convolution 24% and its output layer 17%. `scope="layer"` prunes every
    kernel to the same fraction. Measured on the default model at 80%
    (docs/design.md, "Pruning"): test accuracy 0.65 global against 0.57 per
    layer, from 0.67 unpruned.

    The TensorFlow backend (the project's) runs it; Keras' JAX trainer keeps
    the variables in its own state during `fit`, so a callback's writes to
    them would be lost, and it is refused there.
    """

    def __init__(
        self,
        final_sparsity,
        *,
        end_step,
        begin_step=0,
        frequency=1,
        initial_sparsity=0.0,
        scope=DEFAULT_SCOPE,
    ):
        super().__init__()
        if not 0.0 <= initial_sparsity <= final_sparsity < 1.0:
            raise ValueError(
                "sparsities must satisfy 0 <= initial <= final < 1, received "
                f"initial={initial_sparsity!r}, final={final_sparsity!r}"
            )
        if not 0 <= begin_step <= end_step:
            raise ValueError(
                "steps must satisfy 0 <= begin_step <= end_step, received "
                f"begin_step={begin_step!r}, end_step={end_step!r}"
            )
        if int(frequency) < 1:
            raise ValueError(f"frequency must be a positive integer, received {frequency!r}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, received {scope!r}")
        self.final_sparsity = float(final_sparsity)
        self.initial_sparsity = float(initial_sparsity)
        self.begin_step, self.end_step, self.frequency = (
            int(begin_step),
            int(end_step),
            int(frequency),
        )
        self.scope = scope
        self.step = 0
        self.kernels = []
        self.masks = []

    def sparsity(self, step):
        return polynomial_sparsity(
            step,
            final_sparsity=self.final_sparsity,
            begin_step=self.begin_step,
            end_step=self.end_step,
            initial_sparsity=self.initial_sparsity,
        )

    def is_pruning_step(self, step):
        return self.begin_step <= step <= self.end_step and (
            (step - self.begin_step) % self.frequency == 0 or step == self.end_step
        )

    def on_train_begin(self, logs=None):
        if keras.backend.backend() == "jax":
            raise ValueError(
                "MagnitudePruning needs the tensorflow backend (Keras' JAX trainer discards a "
                "callback's writes to weights), received KERAS_BACKEND=jax"
            )
        if not self.kernels:
            self.kernels = prunable_weights(self.model)
            self.masks = [
                keras.Variable(
                    np.ones(kernel.shape), dtype=kernel.dtype, trainable=False, name="pruning_mask"
                )
                for kernel in self.kernels
            ]

    def on_train_batch_begin(self, batch, logs=None):
        if self.is_pruning_step(self.step):
            self._update_masks(self.sparsity(self.step))
            self._apply_masks()

    def on_train_batch_end(self, batch, logs=None):
        self._apply_masks()
        self.step += 1

    def _update_masks(self, sparsity):
        magnitudes = [np.abs(keras.ops.convert_to_numpy(kernel)) for kernel in self.kernels]
        if self.scope == "layer":
            masks = [smallest_mask(values, sparsity) for values in magnitudes]
        else:
            flat = smallest_mask(
                np.concatenate([values.ravel() for values in magnitudes]), sparsity
            )
            ends = np.cumsum([values.size for values in magnitudes])[:-1]
            masks = [
                part.reshape(values.shape) for part, values in zip(np.split(flat, ends), magnitudes)
            ]
        for variable, mask in zip(self.masks, masks):
            variable.assign(mask)

    def _apply_masks(self):
        for kernel, mask in zip(self.kernels, self.masks):
            kernel.assign(keras.ops.multiply(kernel, mask))


def weight_names(model):
    """Each weight's name under its model layer.

    Names such as `"conv1/conv2d/kernel"` and
    `"lstm1/lstm_cell/recurrent_kernel"`.

    A wrapped layer loaded from a `.keras` file loses the wrapper from its
    variables' paths (`conv2d/kernel`); the layer's name puts it back, so a
    model and its saved copy name their weights alike.
    """
    names = {}
    for layer in model.layers:
        for weight in layer.weights:
            names[id(weight)] = (
                weight.path
                if weight.path.startswith(f"{layer.name}/")
                else f"{layer.name}/{weight.path}"
            )
    return names


def measure_sparsity(model):
    """The fraction of exact zeros in each prunable kernel and over all of them.

    Returns
    `{"sparsity", "pruned_weights", "layers": {name: {"weights", "sparsity"}}}`.
    """
    names = weight_names(model)
    layers = {}
    zeros = total = 0
    for kernel in prunable_weights(model):
        values = keras.ops.convert_to_numpy(kernel)
        count = int(np.count_nonzero(values == 0))
        layers[names[id(kernel)]] = {"weights": int(values.size), "sparsity": count / values.size}
        zeros, total = zeros + count, total + values.size
    return {"sparsity": zeros / max(total, 1), "pruned_weights": int(total), "layers": layers}


def weights_size(model):
    """Bytes of the model's weights, raw and gzip-compressed (level 9).

    They show what its zeros save on disk or on the wire.

    The arrays' own bytes, one after another, as any weights file holds
    them (`save_weights` would add the optimizer's state of a compiled model).
    """
    data = b"".join(
        np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes()
        for weight in model.weights
    )
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9))}


def _fine_tune_config(run, epochs):
    """The run's config for `epochs` of fine-tuning at `FINE_TUNE_LR_SCALE` of its learning rate.

    The rate is held constant, without warmup.
    """
    return dataclasses.replace(
        run.config,
        epochs=int(epochs),
        learning_rate=run.config.learning_rate * FINE_TUNE_LR_SCALE,
        lr_schedule="constant",
        warmup_epochs=0,
    ).resolved()


def prune_run(
    run_dir, data_dir=None, *, sparsity=0.5, epochs=2, out=None, scope=DEFAULT_SCOPE, verbose=0
):
    """Prunes a finished classify run to `sparsity` while fine-tuning it.

    The result is written as a new run folder.

    The run's model trains on its training data (`data_dir`, else the
    folder in its config.json) for `epochs` more epochs at a tenth of its
    learning rate, held constant, while `MagnitudePruning` takes its kernels
    from 0 to `sparsity` over the first two thirds of the steps; the last
    third trains at the final sparsity. `out` (default `RUN_DIR_prunedNN`)
    gets config.json, class_names.json, history.csv, model.keras (the last
    epoch's, the only one at the full sparsity) and compression.json.

    Returns the JSON-ready report written to compression.json: the measured
    `sparsity` overall and per kernel (`layers`), the weights' size raw and
    gzip-compressed against the unpruned weights' (`unpruned_gzip_bytes`),
    validation accuracy before and after, and the schedule.
    """
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), received {sparsity!r}")
    if int(epochs) < 1:
        raise ValueError(f"epochs must be a positive integer, received {epochs!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, received {scope!r}")
    run = load_run(run_dir)
    run.require("classify", "pruning")
    data_dir = training_data_dir(run, data_dir)
    out = new_run_dir(out, f"{os.path.normpath(run.run_dir)}_pruned{round(sparsity * 100)}")
    config = _fine_tune_config(run, epochs)
    previous_policy = seeded(config)
    try:
        train_ds, val_ds, steps_per_epoch = run_datasets(run, data_dir, config)
        model = run.model
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=runtime.jit_compile_argument(config.jit),
        )
        unpruned = weights_size(model)
        end_step = int(config.epochs * steps_per_epoch * PRUNING_SHARE)
        pruning = MagnitudePruning(
            sparsity, end_step=end_step, frequency=max(1, end_step // PRUNING_EVENTS), scope=scope
        )
        write_run_header(out, data_dir, config, run.class_names)
        with quiet_end_of_input():
            accuracy_before = model.evaluate(val_ds, verbose=0, return_dict=True)["accuracy"]
        history = fit_run(
            model,
            train_ds,
            val_ds,
            run_dir=out,
            epochs=config.epochs,
            callbacks=[pruning],
            verbose=verbose,
        )
        atomic.save_model(model, os.path.join(out, run_files.MODEL_FILE))
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    pruned = weights_size(model)
    return write_report(
        out,
        {
            "method": "magnitude_pruning",
            "source_run": os.path.abspath(run.run_dir),
            "run_dir": os.path.abspath(out),
            "model": config.model,
            "target_sparsity": float(sparsity),
            "scope": scope,
            **measure_sparsity(model),
            "params": int(model.count_params()),
            "weights_bytes": pruned["bytes"],
            "gzip_bytes": pruned["gzip_bytes"],
            "unpruned_gzip_bytes": unpruned["gzip_bytes"],
            "val_accuracy_before": float(accuracy_before),
            "val_accuracy": float(history.history["val_accuracy"][-1]),
            "epochs": config.epochs,
            "learning_rate": config.learning_rate,
            "schedule": {
                "begin_step": pruning.begin_step,
                "end_step": pruning.end_step,
                "frequency": pruning.frequency,
                "steps": pruning.step,
            },
            "skipped": skipped_files(train_ds, val_ds),
        },
    )
