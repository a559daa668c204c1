"""Decoding on other processes or machines: training clips made by tf.data service.

A dispatcher (one process, anywhere the trainer can reach) hands out the
batches of `epochs.keyed_batches` one key at a time (dynamic sharding) to
its workers, which decode, augment and batch them; the trainer only
consumes. `vlm-tf data-service` starts a dispatcher and workers on this
machine, or workers that join a dispatcher elsewhere (docs/distributed.md).

tf.data service ships a dataset's graph to the workers, and a graph cannot
carry a Python function, which is what decodes a video here (OpenCV,
`vlm_tf.data.decode`). So the graph names the reader by a fixed token
(`READER_TOKEN`) instead of a process-local one, and every worker process
`vlm-tf data-service` starts registers the batch reader
(`clip_batches.frame_reader`) under that token at start-up: the workers must
be vlm_tf's own; a stock tf.data service worker would fail the first batch
with "callback ... is not found".

Each batch is made from its key alone (the pass's order and random values
are stateless functions of the seed and the pass number), so a batch is the
same clips, frames and augmentation whichever worker makes it, and the
same as the local pipeline's batch of that key when every video reads.
The order in which batches arrive is not fixed: workers finish at their own
pace. A worker that dies loses the batches it was making (tf.data service
delivers at most once); training goes on with the others.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import tensorflow as tf
from tensorflow.python.ops import gen_script_ops, script_ops

from vlm_tf.data.clip_batches import frame_reader

# The name the dataset graph calls the frame reader by, in every process that runs it.
READER_TOKEN = "vlm_tf.data.service.read"
# How long the dispatcher waits for a silent worker before handing its work to the others; tf.data's
# default (an hour) would stall training that long after a worker machine fails.
WORKER_TIMEOUT_MS = 5000
PROTOCOL = "grpc"


def _read(paths, indices, height, width, crop, strict):
    """`clip_batches.frame_reader`'s batch, without a cache: a clip whose video fails is left out
    (logged on the worker), or the error ends a strict run.
    """
    read = frame_reader(
        None, (int(height), int(width)), crop_to_aspect_ratio=bool(crop), strict=strict, failed=[]
    )
    return read(paths, indices)


def register_reader():
    """Makes `READER_TOKEN` name the frame reader in this process (what a worker needs)."""
    # FuncRegistry has no public way to insert under a chosen name; tokens are its dict's keys.
    script_ops._py_funcs._funcs[READER_TOKEN] = _read


def read_op(paths, indices, size, crop_to_aspect_ratio, strict):
    """A batch's clips as a graph op that any process with `register_reader` can run: uint8
    `(n, len(indices[0]), height, width, 3)` and the positions in the batch of those n clips.
    """
    height, width = size
    clips, kept = gen_script_ops.py_func_stateless(
        [
            paths,
            indices,
            tf.constant(height, tf.int64),
            tf.constant(width, tf.int64),
            tf.constant(bool(crop_to_aspect_ratio)),
            tf.constant(bool(strict)),
        ],
        token=READER_TOKEN,
        Tout=[tf.uint8, tf.int64],
    )
    return clips, kept


def check_address(address):
    """`host:port` of a dispatcher, or a one-line error naming what was given."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "/" in address:
        raise ValueError(
            f"--data-service {address!r}: expected a dispatcher's HOST:PORT, as `vlm-tf "
            "data-service` prints it"
        )
    return address


def check_dispatcher(address, timeout=5.0):
    """`address` once something listens there, else a one-line error: tf.data service itself
    would retry an unreachable dispatcher for minutes before failing.
    """
    host, _, port = check_address(address).rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ValueError(
            f"--data-service {address}: no dispatcher answers there ({error.strerror or error}); "
            "start one with `vlm-tf data-service`"
        ) from None
    return address


def distribute(dataset, address):
    """`dataset` (batches of `epochs.keyed_batches`) made by the workers of the dispatcher at
    `address`, each batch once, in the order they finish.
    """
    served = dataset.apply(
        tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=f"{PROTOCOL}://{check_address(address)}",
        )
    )
    return served.prefetch(tf.data.AUTOTUNE)


def start_dispatcher(port=0):
    """A dispatcher listening on `port` (0: any free one)."""
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, protocol=PROTOCOL, worker_timeout_ms=WORKER_TIMEOUT_MS
    )
    return tf.data.experimental.service.DispatchServer(config)


def dispatcher_address(dispatcher, host="localhost"):
    """`host:port` of a `start_dispatcher` dispatcher."""
    return f"{host}:{dispatcher.target.rsplit(':', 1)[1]}"


def start_worker(address, host="localhost"):
    """A worker of the dispatcher at `address`, in this process, reading videos with
    `clip_batches.frame_reader`; the trainer reaches it at `host` (this machine's name on the
    network when the trainer runs elsewhere) and a port of its own.
    """
    register_reader()
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=check_address(address),
        worker_address=f"{host}:%port%",
        protocol=PROTOCOL,
    )
    return tf.data.experimental.service.WorkerServer(config)


def spawn_workers(address, count, host="localhost"):
    """`count` worker processes (`python -m vlm_tf.data.service ADDRESS HOST`) of the dispatcher
    at `address`, each decoding on its own core.
    """
    if count < 1:
        raise ValueError(f"workers must be at least 1, received {count}")
    # One decoding thread a worker: the workers are the parallelism. Their start-up lines stay
    # out of the command's output.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "vlm_tf.data.service", check_address(address), host]
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]


def main(argv=None):
    """A worker process: `python -m vlm_tf.data.service HOST:PORT [WORKER_HOST]` serves until
    killed.
    """
    start_worker(*(argv if argv is not None else sys.argv[1:])).join()


if __name__ == "__main__":
    main()
