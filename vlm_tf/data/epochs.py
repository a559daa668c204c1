"""Which clips an epoch of training shows, as a `tf.data` pipeline of file names.

`vlm_tf.data.pipeline.make_clip_dataset` builds its datasets from these:
`loaded` maps file names to batches of clips in order; `keyed_passes` makes the
endless stream a resumable run trains on, each pass over the files ordered
and randomised from the seed and the pass's number only; `worker_share` is
one worker's part of that stream in multi-worker training, started at any
epoch without decoding what came before; `keyed_batches` is the stream made
batch by batch, for tf.data service's workers.
"""

from __future__ import annotations

import math

import tensorflow as tf


def loaded(files, choose, load, batch_size):
    """`files` as batches of `batch_size` clips, in order: `choose` draws each clip's frames and
    augmentation, `load` decodes and augments a whole batch (`make_clip_dataset`). A clip whose
    file fails to read (it passed the probe and changed on disk) is left out of its batch by
    `load`, or ends a strict dataset; a batch left with no clip is dropped.
    """
    chosen = files.map(choose, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = chosen.batch(batch_size).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return batches.filter(lambda clips, labels: tf.shape(labels)[0] > 0)


def _pass_files(columns, shuffle, seed, number):
    """Pass `number` over the files: `(file columns, random value)` elements, ordered and
    randomised from `(seed, number)` by stateless ops.
    """
    count = int(columns[0].shape[0])
    pass_seed = tf.stack([tf.constant(seed, tf.int64), number])
    order = tf.range(count)
    if shuffle:
        order = tf.random.experimental.stateless_shuffle(order, seed=pass_seed)
    randoms = tf.random.stateless_uniform(
        [count], seed=pass_seed, minval=None, maxval=None, dtype=tf.int64
    )
    return tf.data.Dataset.from_tensor_slices(
        (tuple(tf.gather(column, order) for column in columns), randoms)
    )


def keyed_passes(columns, choose, load, shuffle, seed, first_pass, batch_size):
    """`pipeline.make_clip_dataset`'s endless form: passes `first_pass`, `first_pass + 1`, ..., each
    batched on its own, so that no batch holds two epochs' clips.
    """
    count = int(columns[0].shape[0])
    dataset = (
        tf.data.Dataset.counter(int(first_pass), dtype=tf.int64)
        .flat_map(
            lambda number: loaded(
                _pass_files(columns, shuffle, seed, number), choose, load, batch_size
            )
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    dataset.steps_per_pass = math.ceil(count / batch_size)
    return dataset


def keyed_batches(columns, choose, load, shuffle, seed, first_pass, batch_size):
    """`keyed_passes`'s stream made batch by batch: element `k` is batch `k % steps` of pass
    `k // steps`, from that pass's order and random values, so a batch is the same wherever and
    whenever it is made. tf.data service hands the keys out one at a time and each of its workers
    makes whole batches (`vlm_tf.data.service`). A clip that fails to read shortens its own batch,
    as in `keyed_passes`.
    """
    count = int(columns[0].shape[0])
    steps = math.ceil(count / batch_size)

    def batch(key):
        files = _pass_files(columns, shuffle, seed, key // steps)
        files = files.skip((key % steps) * batch_size).take(batch_size)
        return loaded(files, choose, load, batch_size)

    # Endless in practice: a range, not a counter, because a range splits into keys for the workers.
    keys = tf.data.Dataset.range(int(first_pass) * steps, 2**62)
    dataset = keys.flat_map(batch)
    dataset.steps_per_pass = steps
    return dataset


def worker_share(columns, choose, load, shuffle, seed, shard, first_pass, batch_size):
    """One worker's endless stream for `shard = (num_workers, index)`: of the passes
    `keyed_passes` makes, from the first, every `num_workers`-th file from `index` on, starting
    where epoch `first_pass` starts.

    `batch_size` is the global batch. Each step tf.distribute hands every worker
    `batch_size / num_workers` clips of its own stream, and an epoch is
    `steps_per_pass` steps, so epoch N starts after N times that many clips:
    skipped as file names, before anything is decoded. A worker resumed at
    epoch N then sees what it would have seen uninterrupted.
    """
    count = int(columns[0].shape[0])
    num_workers, index = shard
    steps = max(count // batch_size, 1)
    files = (
        tf.data.Dataset.counter(0, dtype=tf.int64)
        .flat_map(lambda number: _pass_files(columns, shuffle, seed, number))
        .shard(num_workers, index)
        .skip(first_pass * steps * (batch_size // num_workers))
    )
    dataset = loaded(files, choose, load, batch_size).prefetch(tf.data.AUTOTUNE)
    dataset.steps_per_pass = steps
    return dataset
