"""What pruning and distillation share: a finished classify run in, a new run folder out.

The new folder is a run like `vlm-tf train` writes (config.json,
class_names.json, model.keras, history.csv), so `vlm-tf evaluate`,
`predict` and `export` take it unchanged, plus `compression.json`, what
was done and what it bought.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings

import keras

from vlm_tf import atomic, crypto
from vlm_tf.data.pipeline import make_split_datasets
from vlm_tf.data.splits import find_split_dirs
from vlm_tf.training import config as run_files
from vlm_tf.training import runtime
from vlm_tf.training.callbacks import history_and_logs

COMPRESSION_FILE = "compression.json"


def training_data_dir(run, data_dir):
    """`data_dir`, else the folder the run was trained on (its config.json's `data_dir`).

    A run folder may come from another machine or another person: the folder
    it names is used only if it is an absolute path to a folder here (it is
    only read, and its classes must be the run's); otherwise the error asks
    for `--data`.
    """
    if data_dir is not None:
        return os.fspath(data_dir)
    config_path = os.path.join(run.run_dir, run_files.CONFIG_FILE)
    recorded = atomic.read_json(config_path).get("data_dir")
    if not (isinstance(recorded, str) and os.path.isabs(recorded) and os.path.isdir(recorded)):
        raise FileNotFoundError(
            f"{recorded!r} (the training data named by {config_path}): no such directory here; "
            "point to the run's training videos with --data DIR (data_dir=)"
        )
    return recorded


def new_run_dir(out, default):
    """The output folder (`out`, else `default`), refused if it already holds anything.

    A compressed run never overwrites another.
    """
    out = os.fspath(out if out is not None else default)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(f"{out} already exists and is not empty; choose another output folder")
    # With a key in use, the new run is encrypted as `train`'s would be.
    crypto.seal(out)
    return out


def run_datasets(run, data_dir, config):
    """The training and validation datasets of `config` on `data_dir`, with the steps in one epoch.

    Refused unless its classes are the run's.
    """
    train_ds, val_ds = make_split_datasets(
        *find_split_dirs(data_dir),
        num_frames=config.num_frames,
        image_size=(config.image_size, config.image_size),
        batch_size=config.batch_size,
        seed=config.seed,
        augment=config.augment,
        label_mode="categorical",
    )
    if list(train_ds.class_names) != list(run.class_names):
        raise ValueError(
            f"{data_dir}: classes {', '.join(train_ds.class_names)} are not the run's "
            f"({', '.join(run.class_names)})"
        )
    return train_ds, val_ds, math.ceil(len(train_ds.file_paths) / config.batch_size)


def seeded(config):
    """Seeds the process and sets the run's precision.

    Returns the policy that was in force, for the caller to restore.
    """
    previous = keras.mixed_precision.global_policy()
    runtime.configure(seed=config.seed, precision=config.precision)
    return previous


@contextlib.contextmanager
def quiet_end_of_input():
    """Silences the warning Keras gives when a pass over a dataset of unknown length ends.

    As in `vlm_tf.training.loop`: our datasets skip unreadable files, so
    their length is unknown and every pass ends this way.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        yield


def fit_run(model, train_ds, val_ds, *, run_dir, epochs, callbacks, verbose):
    """Fits `model` on a run's datasets for `epochs`; returns the History.

    `callbacks` run first, then a logger that writes every epoch to
    `RUN_DIR/history.csv`, as `vlm-tf train` does. The datasets shuffle
    themselves, so Keras does not.
    """
    history, _, _ = history_and_logs(run_dir)
    with quiet_end_of_input():
        return model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            callbacks=[*callbacks, history],
            verbose=verbose,
            shuffle=False,
        )


def skipped_files(train_ds, val_ds):
    """The `{"path", "reason"}` of the files either dataset skipped, each once.

    The training set's come first.
    """
    return train_ds.skipped + [s for s in val_ds.skipped if s not in train_ds.skipped]


def write_report(run_dir, report):
    """Writes `RUN_DIR/compression.json`; returns `report`."""
    atomic.write_json(os.path.join(run_dir, COMPRESSION_FILE), report)
    return report
