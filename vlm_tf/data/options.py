"""The tf.data options a training run sets on its datasets: a training stream that
`tf.distribute` must not shard again, validation data without autotuning.
"""

from __future__ import annotations

import tensorflow as tf


def whole_on_every_worker(dataset):
    """`dataset` marked not to be sharded by `tf.distribute`.

    The attributes of a video dataset (`class_names`, `file_paths`, `skipped`)
    are kept.

    The training set is sharded by file in the pipeline already; the
    validation set is read whole by every worker, which keeps the number of
    validation steps the same on all of them.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    marked = dataset.with_options(options)
    for attribute in ("class_names", "file_paths", "skipped"):
        if hasattr(dataset, attribute):
            setattr(marked, attribute, getattr(dataset, attribute))
    return marked


def without_autotuning(dataset):
    """`dataset` with tf.data's autotuning off, for data `fit` validates on each epoch.

    `fit` drops its previous validation iterator when the next validation
    starts, and with autotuning on that waited, both cores idle, 2.5-10 s in
    about one epoch of three, a third of a short epoch; with it off, never
    (docs/benchmarks.md, "Where an epoch's time went"). Validation runs in a
    second or less, too short for tuning to pay.
    """
    if not isinstance(dataset, tf.data.Dataset):
        # None (no validation), or a `keras.utils.PyDataset` (detection): nothing to tune.
        return dataset
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
