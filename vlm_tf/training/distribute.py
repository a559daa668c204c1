"""Training on more than one device or machine with `tf.distribute` (chapter 8: scale).

    --strategy default      one device, no strategy (what a single-process run always did)
    --strategy mirrored     `MirroredStrategy`: every GPU of this machine (or its CPU), one process
    --strategy multiworker  `MultiWorkerMirroredStrategy`: one process per worker, the cluster
                            and this worker's place in it read from `TF_CONFIG`
    --strategy auto         multiworker when `TF_CONFIG` names more than one task, mirrored
                            when this machine has more than one GPU, else default

Every replica holds a copy of the model; each step, each works on its share
of the global batch and the gradients are averaged across all of them
(all-reduce), so the copies stay identical. `batch_size` is the global
batch, and the learning rate the one for that batch: N workers take the
same steps one process would, on the same number of clips. A bigger global
batch is a choice of its own (with a learning rate to match, e.g. scaled
linearly); nothing is rescaled behind the user's back.

Between workers, `vlm_tf.data.pipeline` shards the video files (each worker
decodes only its share, reshuffled every epoch with the same seed so the
shares never overlap) and repeats them, and `fit` is given the number of
steps per epoch: every worker must take the same number of steps, or the
all-reduce would wait forever for the one that ran out of clips. Every
worker validates on the whole validation set.

The chief (task `chief`, or worker 0 when the cluster has no chief) writes
the run folder. The other workers run the same callbacks into a scratch run
folder of their own, `RUN_DIR.<task><index>` (saving a distributed model
can involve the other workers, so all of them must save), which holds
their backup: workers killed and started again with the same command
resume from it, as a single-process run does, all of them from the last
epoch every worker saved (a kill can land between two workers' saves).
The scratch folder is removed when the worker finishes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from vlm_tf.training.config import STRATEGIES


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` with a `reduce` that Keras 3's `fit` can call.

    Keras 3.15 calls `strategy.reduce` with a whole `(clips, labels)` batch
    (to build the model before the first step) and, for the logged metrics,
    with `axis=0` on scalars; `MultiWorkerMirroredStrategy` rejects both, so
    `fit` fails before its first step (keras-team/keras#20585). Reducing
    leaf by leaf, and scalars across replicas only, is what Keras means by
    both calls. Tested against single-process training
    (tests/training/test_distribute.py): the weights agree to round-off.
    """

    def reduce(self, reduce_op, value, axis):
        def reduce_one(leaf):
            leaf_axis = None if axis is not None and leaf.shape.rank == 0 else axis
            return super(_MultiWorkerMirroredStrategy, self).reduce(reduce_op, leaf, leaf_axis)

        return tf.nest.map_structure(reduce_one, value)


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A run's strategy and this process's place among the workers."""

    name: str
    strategy: tf.distribute.Strategy
    num_workers: int = 1
    task_type: str = "worker"
    task_index: int = 0
    is_chief: bool = True
    # This process's share of the input files, 0 … num_workers - 1 (a `chief` task comes first).
    shard_index: int = 0

    @property
    def num_replicas(self):
        return self.strategy.num_replicas_in_sync

    def scratch_dir(self, run_dir):
        """Where a non-chief worker writes its own copy of the run: `RUN_DIR.<task><index>`."""
        return f"{os.path.normpath(run_dir)}.{self.task_type}{self.task_index}"

    def to_dict(self):
        return {
            "strategy": self.name,
            "num_workers": self.num_workers,
            "num_replicas": self.num_replicas,
        }


def read_tf_config():
    """`TF_CONFIG` as a dict (`{}` when unset); a one-line error when it is not JSON with a cluster
    and a task.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        values = json.loads(text)
        cluster, task = values["cluster"], values["task"]
        task_type, index = str(task["type"]), int(task["index"])
        hosts = cluster[task_type]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, "task": '
            '{"type": "worker", "index": 0}}, received ' + text[:200]
        ) from None
    if not 0 <= index < len(hosts):
        raise ValueError(
            f"TF_CONFIG: task index {index} is outside the {len(hosts)} {task_type} address(es) "
            "of the cluster"
        )
    return values


def make_distribution(name="auto"):
    """The `Distribution` for `--strategy name` (`STRATEGIES`).

    Call it before TensorFlow runs anything in the process: the multi-worker
    strategy configures the collective operations at startup.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, received {name!r}")
    tf_config = read_tf_config()
    tasks = sum(
        len(hosts)
        for kind, hosts in tf_config.get("cluster", {}).items()
        if kind in ("chief", "worker")
    )
    if name == "auto":
        name = (
            "multiworker"
            if tasks > 1
            else "mirrored"
            if len(tf.config.list_physical_devices("GPU")) > 1
            else "default"
        )
    if name == "default":
        return Distribution("default", tf.distribute.get_strategy())
    if name == "mirrored":
        return Distribution("mirrored", tf.distribute.MirroredStrategy())
    if not tf_config:
        raise ValueError(
            "--strategy multiworker needs TF_CONFIG naming the cluster and this worker "
            "(docs/distributed.md)"
        )
    task_type, task_index = str(tf_config["task"]["type"]), int(tf_config["task"]["index"])
    if task_type not in ("chief", "worker"):
        raise ValueError(
            f"TF_CONFIG: this task is a {task_type!r}; vlm-tf trains on chief and worker tasks only"
        )
    has_chief = bool(tf_config["cluster"].get("chief"))
    is_chief = task_type == "chief" or (task_index == 0 and not has_chief)
    shard_index = 0 if task_type == "chief" else task_index + int(has_chief)
    return Distribution(
        "multiworker",
        _MultiWorkerMirroredStrategy(),
        tasks,
        task_type,
        task_index,
        is_chief,
        shard_index,
    )


def barrier(distribution):
    """Waits until every worker gets here (an all-reduce of nothing): the chief's run folder is
    whole before any worker returns.
    """
    if distribution.num_workers > 1:
        strategy = distribution.strategy
        strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)


def agreed_epoch(distribution, saved_epoch):
    """The epoch every worker resumes from: the fewest completed epochs any worker saved (this
    worker's `saved_epoch` when it trains alone).
    """
    if distribution.num_workers == 1:
        return saved_epoch
    strategy = distribution.strategy
    saved = strategy.gather(strategy.run(lambda: tf.constant([saved_epoch])), axis=0)
    return int(tf.reduce_min(saved))


def loopback_cluster(num_workers):
    """`TF_CONFIG` values for `num_workers` workers on this machine (127.0.0.1, free ports), one per
    worker.
    """
    sockets = [socket.socket() for _ in range(num_workers)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()
    return [
        json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})
        for i in range(num_workers)
    ]


def run_local_workers(args, num_workers=2, *, timeout=None, env=None):
    """Runs `vlm-tf ARGS --strategy multiworker` as `num_workers` processes of a loopback cluster;
    returns their `CompletedProcess`es, chief first.

    What several machines do, on one: try a multi-worker setup, or test it.
    When one worker fails the others are stopped (they would wait for it
    forever), and all are stopped after `timeout` seconds; a stopped
    worker's return code is negative.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be a positive integer, received {num_workers!r}")
    command = [sys.executable, "-m", "vlm_tf.cli", *map(str, args), "--strategy", "multiworker"]
    # Files, not pipes: a worker writing more than a pipe holds would block.
    logs = [
        (tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in range(num_workers)
    ]
    workers = [
        subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            text=True,
            env={**(env or os.environ), "TF_CONFIG": tf_config},
        )
        for (out, err), tf_config in zip(logs, loopback_cluster(num_workers))
    ]
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while any(worker.poll() is None for worker in workers):
            failed = any(worker.returncode not in (None, 0) for worker in workers)
            if failed or (deadline is not None and time.monotonic() > deadline):
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
    done = []
    for worker, (out, err) in zip(workers, logs):
        out.seek(0), err.seek(0)
        done.append(subprocess.CompletedProcess(command, worker.returncode, out.read(), err.read()))
        out.close(), err.close()
    return done
