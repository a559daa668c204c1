"""tf.distribute training: real worker processes on loopback (127.0.0.1) against one process."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf, write_fading_dataset

from vlm_tf.training import distribute

# One process trains a registered model on fixed clips under `--strategy`'s
# own code (make_distribution, the sharding rule, whole_on_every_worker);
# the chief saves the weights it ends with.
STEPS_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    from vlm_tf.models import build_model
    from vlm_tf.training import distribute

    distribution = distribute.make_distribution("auto")
    import tensorflow as tf

    from vlm_tf.data.options import whole_on_every_worker

    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 255, (32, 4, 32, 32, 3)).astype("float32")
    labels = np.eye(8, dtype="float32")[rng.integers(0, 8, 32)]
    dataset = tf.data.Dataset.from_tensor_slices((clips, labels))
    if distribution.num_workers > 1:
        # As `train` feeds workers: each its share of the clips, endless, for a given number of
        # steps.
        dataset = dataset.shard(distribution.num_workers, distribution.shard_index).repeat()
    # Batches of the global batch size, 8; tf.distribute splits them among the replicas.
    dataset = whole_on_every_worker(dataset.batch(8))
    keras.utils.set_random_seed(0)
    with distribution.strategy.scope():
        model = build_model("cnn_lstm", num_classes=8, image_size=(32, 32))
        # Plain SGD: Adam divides each step by the gradient's size, which
        # turns round-off in near-zero gradients into differences of a whole step.
        model.compile(keras.optimizers.SGD(0.05), "categorical_crossentropy", metrics=["accuracy"])
    initial = [w.numpy() for w in model.weights]
    model.fit(dataset, epochs=2, steps_per_epoch=32 // 8, verbose=0)
    if distribution.is_chief:
        np.savez(sys.argv[1], *[w.numpy() for w in model.weights])
        np.savez(sys.argv[1] + ".initial.npz", *initial)
    distribute.barrier(distribution)
    """
)


def _start(script_args, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = tf_config
    return subprocess.Popen(
        [sys.executable, "-c", STEPS_SCRIPT, *script_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(processes, timeout=300):
    outputs = [process.communicate(timeout=timeout) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_two_workers_take_the_steps_one_process_takes(tmp_path):
    """Each worker holds half of every global batch; the averaged gradients give one process's
    weights, to round-off.
    """
    one = _start([tmp_path / "one.npz"])
    _finish([one])
    two = [
        _start([tmp_path / "two.npz"], tf_config) for tf_config in distribute.loopback_cluster(2)
    ]
    _finish(two)
    with (
        np.load(tmp_path / "one.npz") as single,
        np.load(tmp_path / "two.npz") as workers,
        np.load(f"{tmp_path / 'one.npz'}.initial.npz") as initial,
    ):
        assert len(single.files) == len(workers.files) > 0
        for name in single.files:
            np.testing.assert_allclose(workers[name], single[name], rtol=1e-4, atol=1e-6)
        # Eight steps moved the weights far more than the two runs differ.
        assert (
            max(float(np.abs(single[name] - initial[name]).max()) for name in single.files) > 1e-3
        )


def _history(run_dir):
    import csv

    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


TRAIN_ARGS = (
    "--epochs",
    "4",
    "--frames",
    "8",
    "--size",
    "32",
    "--precision",
    "float32",
    "--jit",
    "off",
    "--quiet",
)


@pytest.mark.slow
def test_two_local_workers_train_as_well_as_one_process_and_resume_after_a_kill(tmp_path):
    data = write_fading_dataset(tmp_path / "data")
    done = vlm_tf("train", data, "--out", tmp_path / "single", "--strategy", "default", *TRAIN_ARGS)
    assert done.returncode == 0, done.stderr[-3000:]

    # Both workers killed with SIGKILL once the chief has backed up epoch 2 ...
    run_dir = tmp_path / "workers"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        "-m",
        "vlm_tf.cli",
        "train",
        str(data),
        "--out",
        str(run_dir),
        *TRAIN_ARGS,
        "--strategy",
        "multiworker",
    ]
    workers = [
        subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**env, "TF_CONFIG": c},
        )
        for c in distribute.loopback_cluster(2)
    ]
    deadline = time.monotonic() + 300
    while not (run_dir / "backup" / "state-00002").is_dir():
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), (
            "the workers ended before backing up epoch 2"
        )
        time.sleep(0.1)
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert not (run_dir / "model.keras").exists()
    # The kill as if it had landed before the other worker saved epoch 2:
    # all must resume from epoch 1, the last one both saved.
    other_backup = f"{run_dir}.worker1/backup"
    for state in os.listdir(other_backup):
        if state.startswith("state-") and int(state.removeprefix("state-")) > 1:
            shutil.rmtree(os.path.join(other_backup, state))

    # ... and started again with the same command: they continue from there.
    finished = distribute.run_local_workers(
        ["train", data, "--out", run_dir, *TRAIN_ARGS], 2, timeout=300, env=env
    )
    assert all(worker.returncode == 0 for worker in finished), [
        worker.stderr[-1500:] for worker in finished
    ]
    assert "resumed and finished" in finished[0].stdout
    assert [int(row["epoch"]) for row in _history(run_dir)] == [0, 1, 2, 3]
    assert json.loads((run_dir / "execution.json").read_text())["num_workers"] == 2
    # The other worker's scratch copy of the run is gone; the chief's folder is the run.
    assert not os.path.exists(f"{run_dir}.worker1")
    assert not (run_dir / "backup").exists()

    accuracies = {}
    for name in ("single", "workers"):
        done = vlm_tf("evaluate", tmp_path / name, data / "test", "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        accuracies[name] = json.loads(done.stdout)["accuracy"]
    # Two classes: chance is 0.5.
    assert (
        accuracies["single"] >= 0.8 and abs(accuracies["workers"] - accuracies["single"]) <= 0.15
    ), accuracies


def test_shards_split_every_pass_between_workers(tiny_dataset):
    from vlm_tf.data import video_dataset_from_directory

    common = dict(num_frames=2, image_size=(16, 16), batch_size=4, seed=5, shuffle=True)
    whole = video_dataset_from_directory(tiny_dataset / "train", **common)
    num_files = len(whole.file_paths)
    passes = []
    for index in range(2):
        shard = video_dataset_from_directory(tiny_dataset / "train", shard=(2, index), **common)
        # Endless: two passes' worth of this worker's share.
        clips = np.concatenate([clips.numpy() for clips, _ in shard.take(num_files // 4)])
        passes.append(clips.reshape(len(clips), -1))
    first_pass = np.concatenate([passes[0][: num_files // 2], passes[1][: num_files // 2]])
    # Within a pass no clip is on both workers, and together they hold every file once.
    assert len({row.tobytes() for row in first_pass}) == num_files


def test_a_worker_resumed_at_an_epoch_sees_what_it_would_have_seen(tiny_dataset):
    """A worker's stream is keyed by pass: started at epoch 2 it yields, clip for clip, what the
    uninterrupted stream yields in its epoch 2, though epochs here do not line up with passes.
    """
    from vlm_tf.data import video_dataset_from_directory

    # 32 files, a global batch of 6: 5 steps an epoch, 3 clips of each worker's stream a step,
    # so an epoch is 15 of the 16 files a worker holds in a pass.
    common = dict(
        num_frames=2, image_size=(16, 16), batch_size=6, seed=5, shuffle=True, augment=True
    )
    for index in range(2):
        stream = video_dataset_from_directory(tiny_dataset / "train", shard=(2, index), **common)
        assert stream.steps_per_pass == 5
        epochs = np.stack([clip.numpy() for clip, _ in stream.unbatch().take(45)])
        resumed = video_dataset_from_directory(
            tiny_dataset / "train", shard=(2, index), first_pass=2, **common
        )
        epoch_2 = np.stack([clip.numpy() for clip, _ in resumed.unbatch().take(15)])
        np.testing.assert_array_equal(epoch_2, epochs[30:])
        assert not np.array_equal(epoch_2, epochs[:15])


def test_bad_strategy_settings_are_one_line_errors(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    done = vlm_tf("train", tiny_dataset, "--out", tmp_path / "a", "--strategy", "multiworker")
    assert_one_line_error(done, "TF_CONFIG")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    done = vlm_tf("train", tiny_dataset, "--out", tmp_path / "b", "--strategy", "multiworker")
    assert_one_line_error(done, "TF_CONFIG must be JSON")
    monkeypatch.delenv("TF_CONFIG")
    done = vlm_tf(
        "train",
        tiny_dataset,
        "--out",
        tmp_path / "c",
        "--strategy",
        "mirrored",
        "--task",
        "denoise",
    )
    assert_one_line_error(done, "classify runs")
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_mirrored_strategy_trains_on_this_machines_devices(tiny_dataset, tmp_path):
    done = vlm_tf(
        "train",
        tiny_dataset,
        "--out",
        tmp_path / "run",
        "--strategy",
        "mirrored",
        "--epochs",
        "1",
        "--frames",
        "4",
        "--size",
        "32",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    execution = json.loads((tmp_path / "run" / "execution.json").read_text())
    # No GPU here: MirroredStrategy holds one replica, on the CPU.
    assert (
        execution["strategy"] == "mirrored"
        and execution["num_replicas"] >= 1
        and execution["num_workers"] == 1
    )
    done = vlm_tf("evaluate", tmp_path / "run", tiny_dataset / "test", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["num_videos"] == 8
