"""tf.data service on loopback: a dispatcher and two worker processes decode training batches."""

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.cli.common import EXIT_INTERRUPTED
from vlm_tf.data import service
from vlm_tf.data.pipeline import video_dataset_from_directory

OPTIONS = dict(num_frames=4, image_size=(32, 32), batch_size=4, seed=1, augment=True)


@pytest.fixture(scope="module")
def dispatcher():
    """`(address, workers)`: a dispatcher in this process and two worker processes."""
    server = service.start_dispatcher()
    address = service.dispatcher_address(server)
    workers = service.spawn_workers(address, 2)
    yield address, workers
    for worker in workers:
        worker.kill()
        worker.wait()


def _fingerprints(dataset, steps):
    """Each batch as (sum of its pixels, its labels): equal batches, equal fingerprints."""
    return [
        (round(float(np.asarray(clips, np.float64).sum()), 2), tuple(np.asarray(labels).tolist()))
        for clips, labels in dataset.take(steps)
    ]


def test_the_workers_make_the_local_pipelines_batches_for_a_seed(tiny_dataset, dispatcher):
    address, _ = dispatcher
    train = os.path.join(tiny_dataset, "train")
    # From epoch 1, as a resumed run asks: the keys, not a replay, decide what a batch holds.
    local = video_dataset_from_directory(train, first_pass=1, **OPTIONS)
    served = video_dataset_from_directory(train, first_pass=1, service=address, **OPTIONS)
    assert served.steps_per_pass == local.steps_per_pass
    steps = 2 * local.steps_per_pass
    received = _fingerprints(served, steps)
    # Workers finish batches in their own order, and one may be passes ahead of the other when the
    # trainer stops reading: every batch received is one of the local pipeline's, each once, from
    # a window of passes wide enough for what the workers hold in flight.
    window = _fingerprints(local, 8 * local.steps_per_pass)
    assert len(set(received)) == len(received)
    assert set(received) <= set(window)
    other_seed = video_dataset_from_directory(train, first_pass=1, **{**OPTIONS, "seed": 2})
    assert not set(_fingerprints(other_seed, steps)) & set(window)


def _epochs_done(run_dir):
    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as f:
        return len(list(csv.DictReader(f)))


@pytest.mark.slow
def test_training_goes_on_after_a_worker_is_killed(tiny_dataset, dispatcher, tmp_path):
    address, workers = dispatcher
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "vlm_tf.cli",
        "train",
        tiny_dataset,
        "--out",
        run_dir,
        "--model",
        "cnn_lstm",
        "--epochs",
        "6",
        "--frames",
        "4",
        "--size",
        "32",
        "--batch-size",
        "4",
        "--precision",
        "float32",
        "--jit",
        "off",
        "--quiet",
        "--data-service",
        address,
    ]
    trainer = subprocess.Popen(
        [str(part) for part in command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    while _epochs_done(run_dir) < 1 and trainer.poll() is None:
        time.sleep(0.1)
    # Killed mid-run: five epochs are still to come.
    assert trainer.poll() is None, trainer.communicate()
    workers[0].kill()
    stdout, stderr = trainer.communicate(timeout=900)
    assert trainer.returncode == 0, stderr
    assert "finished" in stdout
    assert _epochs_done(run_dir) == 6
    assert os.path.isfile(run_dir / "model.keras")


def test_bad_service_addresses_and_runs_it_cannot_feed_are_one_line_errors(
    tiny_dataset, dispatcher, tmp_path
):
    address, _ = dispatcher
    common = ["train", tiny_dataset, "--epochs", "1", "--frames", "4", "--size", "32"]
    done = vlm_tf(*common, "--out", tmp_path / "a", "--data-service", "no-port")
    assert_one_line_error(done, "no-port", "HOST:PORT")
    # Port 1 is never a dispatcher: refused before anything is written.
    done = vlm_tf(*common, "--out", tmp_path / "b", "--data-service", "127.0.0.1:1")
    assert_one_line_error(done, "127.0.0.1:1", "no dispatcher answers")
    assert not (tmp_path / "b").exists()
    done = vlm_tf(*common, "--out", tmp_path / "c", "--data-service", address, "--cache", "memory")
    assert_one_line_error(done, "data_service", "cache")
    done = vlm_tf(*common, "--out", tmp_path / "d", "--task", "denoise", "--data-service", address)
    assert_one_line_error(done, "data_service", "classify")
    done = vlm_tf("data-service", "--join", "nowhere")
    assert_one_line_error(done, "nowhere", "HOST:PORT")


def test_the_data_service_command_serves_until_interrupted(tiny_dataset):
    command = subprocess.Popen(
        [sys.executable, "-m", "vlm_tf.cli", "data-service", "--port", "0", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    first = command.stdout.readline()
    assert first.startswith("dispatcher at localhost:"), first
    address = first.split()[-1]
    served = video_dataset_from_directory(
        os.path.join(tiny_dataset, "train"), first_pass=0, service=address, **OPTIONS
    )
    clips, _ = next(iter(served))
    assert clips.shape == (4, 4, 32, 32, 3)
    command.send_signal(signal.SIGINT)
    _, stderr = command.communicate(timeout=60)
    assert command.returncode == EXIT_INTERRUPTED
    assert "Traceback" not in stderr
