"""A run folder survives any interruption and has one writer: real processes killed at chosen
points of `vlm-tf train`, then the same command again, which must end with the weights of a run
that was never interrupted (deterministic ops on).
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf import atomic, crypto
from vlm_tf.inference import load_run
from vlm_tf.training import config as run_files

# `vlm-tf train` in a child that signals itself at a chosen point: the kill is
# real, only its moment is chosen. argv: POINT EPOCH SIGNAL, then train's own.
# POINT: "step" (after the epoch's second batch), "backup" (the epoch's backup
# written under its temporary name, not yet renamed), "checkpoint" (the same
# for the best model), "stall" (hang in the epoch until killed from outside).
SIGNALLED_TRAIN = textwrap.dedent(
    """
    import os, signal, sys, time
    import keras
    from vlm_tf.cli import main
    from vlm_tf.training import callbacks

    point, epoch, signame = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    # A test runner's worker may ignore SIGINT, and its children inherit that: Ctrl-C is wanted.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    now = {"epoch": -1}

    def at_point():
        if now["epoch"] != epoch:
            return
        if point == "stall":
            time.sleep(600)
        os.kill(os.getpid(), getattr(signal, signame))

    epoch_begin = callbacks.StopOnNonFiniteLoss.on_epoch_begin
    batch_end = callbacks.StopOnNonFiniteLoss.on_train_batch_end

    def on_epoch_begin(self, e, logs=None):
        now["epoch"] = e
        epoch_begin(self, e, logs)

    def on_train_batch_end(self, batch, logs=None):
        batch_end(self, batch, logs)
        if point in ("step", "stall") and batch == 1:
            at_point()

    def then_at(method, where):
        def patched(self, *args, **kwargs):
            method(self, *args, **kwargs)
            if point == where:
                at_point()
        return patched

    if signame == "SIGINT":
        # Slow reads: Ctrl-C then always finds tf.data's threads inside a numpy_function call,
        # which used to hang the command (or abort its exit).
        from vlm_tf.data import pipeline
        frame_reader = pipeline.frame_reader

        def slow_frame_reader(*args, **kwargs):
            read = frame_reader(*args, **kwargs)
            return lambda paths, indices: (time.sleep(0.2), read(paths, indices))[1]

        pipeline.frame_reader = slow_frame_reader
    callbacks.StopOnNonFiniteLoss.on_epoch_begin = on_epoch_begin
    callbacks.StopOnNonFiniteLoss.on_train_batch_end = on_train_batch_end
    # The backup writes its weights with save_weights, the best model with save.
    keras.Model.save_weights = then_at(keras.Model.save_weights, "backup")
    keras.Model.save = then_at(keras.Model.save, "checkpoint")
    sys.exit(main(["train", *sys.argv[4:]]))
    """
)
EPOCHS = 3


def _train_args(data, run_dir, *extra, deterministic=True):
    # 32 training clips in batches of 8: four steps an epoch.
    args = [
        str(data),
        "--out",
        str(run_dir),
        "--model",
        "cnn_lstm",
        "--epochs",
        str(EPOCHS),
        "--frames",
        "8",
        "--size",
        "32",
        "--batch-size",
        "8",
        "--precision",
        "float32",
        "--jit",
        "off",
        "--deterministic",
        "--quiet",
        *extra,
    ]
    return args if deterministic else [arg for arg in args if arg != "--deterministic"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tmp_path_factory):
    """The run every interrupted one must end as: the same command, never stopped."""
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


def _signalled(point, epoch, signame, data, run_dir, *extra, deterministic=True, **popen):
    command = [sys.executable, "-c", SIGNALLED_TRAIN, point, str(epoch), signame]
    command += _train_args(data, run_dir, *extra, deterministic=deterministic)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if popen:
        return subprocess.Popen(command, env=env, **popen)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _assert_finished_as(run_dir, uninterrupted):
    """`run_dir` is a whole finished run, with the weights and history of `uninterrupted`."""
    _assert_whole_finished_run(run_dir)
    weights = load_run(run_dir).model.get_weights()
    expected = load_run(uninterrupted).model.get_weights()
    for got, want in zip(weights, expected):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(run_files.read_history(run_dir), run_files.read_history(uninterrupted)):
        # Everything but the clock and the energy, which follows it.
        for key in ("train_clips_per_s", "energy_joules", "energy_joules_per_clip"):
            del got[key], want[key]
        assert got == want


def _assert_whole_finished_run(run_dir):
    assert (run_dir / run_files.MODEL_FILE).is_file()
    assert not (run_dir / run_files.BACKUP_DIR).exists()
    epochs = [row["epoch"] for row in run_files.read_history(run_dir)]
    assert epochs == list(range(EPOCHS)), epochs
    leftovers = [
        os.path.join(parent, name)
        for parent, folders, files in os.walk(run_dir)
        for name in folders + files
        if name.startswith(atomic.PARTIAL_PREFIX)
    ]
    assert leftovers == []


def test_history_keeps_only_whole_rows_of_backed_up_epochs(tmp_path):
    path = tmp_path / run_files.HISTORY_FILE
    # What kills leave: nothing but the open file, a header without its row, half a row.
    for text, epochs in (("", []), ("epoch,lo", []), ("epoch,loss\n0,1.5\n1,1.2\n2,1.", [0, 1])):
        path.write_text(text)
        run_files.trim_history(tmp_path, 5)
        assert [row["epoch"] for row in run_files.read_history(tmp_path)] == epochs, text


@pytest.mark.slow
def test_a_run_killed_in_its_first_epoch_finishes_when_run_again(
    tiny_dataset, tmp_path, uninterrupted
):
    """Killed there, a run used to leave an empty history.csv that every later attempt crashed
    on.
    """
    run_dir = tmp_path / "run"
    killed = _signalled("step", 0, "SIGKILL", tiny_dataset, run_dir)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (run_dir / run_files.HISTORY_FILE).read_text() == ""
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed and finished" in done.stdout
    _assert_finished_as(run_dir, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize(
    "point, epoch, signame",
    [
        ("step", 1, "SIGKILL"),
        ("step", 0, "SIGINT"),
        ("backup", 0, "SIGKILL"),
        ("backup", 1, "SIGINT"),
        ("checkpoint", 0, "SIGKILL"),
    ],
)
def test_a_run_killed_anywhere_finishes_when_run_again(
    tiny_dataset, tmp_path, uninterrupted, point, epoch, signame
):
    run_dir = tmp_path / "run"
    killed = _signalled(point, epoch, signame, tiny_dataset, run_dir)
    # Ctrl-C ends the command with 130 and one line; SIGKILL ends the process.
    expected = 130 if signame == "SIGINT" else -signal.SIGKILL
    assert killed.returncode == expected, killed.stderr[-2000:]
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_finished_as(run_dir, uninterrupted)


@pytest.mark.slow
def test_an_encrypted_run_killed_mid_epoch_ends_as_the_plain_uninterrupted_run(
    tiny_dataset, tmp_path, uninterrupted
):
    """Its backup is every variable in one encrypted array file, not Keras' weights file: the
    resumed run must still end with the uninterrupted run's weights and history.
    """
    run_dir, key = tmp_path / "run", crypto.make_key(tmp_path / "key")
    sealed = ("--encrypt-key-file", str(tmp_path / "key"))
    killed = _signalled("step", 1, "SIGKILL", tiny_dataset, run_dir, *sealed)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (run_dir / run_files.BACKUP_DIR).is_dir()
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir, *sealed))
    assert done.returncode == 0, done.stderr[-3000:]
    with crypto.keyed(key):
        _assert_finished_as(run_dir, uninterrupted)


@pytest.mark.slow
def test_without_deterministic_ops_a_resumed_run_ends_as_near_as_a_rerun(tiny_dataset, tmp_path):
    """Without `--deterministic`, round-off may differ from run to run. A run killed in its second
    epoch and resumed sees the clips the uninterrupted run saw, so every epoch's losses stay
    within the spread of a rerun of the same command, not as far away as other shuffles take them.
    """

    def losses(run_dir):
        rows = run_files.read_history(run_dir)
        assert [int(row["epoch"]) for row in rows] == list(range(EPOCHS))
        return np.array([[float(row["loss"]), float(row["val_loss"])] for row in rows])

    runs = []
    for name in ("first", "rerun"):
        done = vlm_tf("train", *_train_args(tiny_dataset, tmp_path / name, deterministic=False))
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(losses(tmp_path / name))
    resumed = tmp_path / "resumed"
    killed = _signalled("step", 1, "SIGKILL", tiny_dataset, resumed, deterministic=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    done = vlm_tf("train", *_train_args(tiny_dataset, resumed, deterministic=False))
    assert done.returncode == 0, done.stderr[-3000:]
    spread = np.abs(runs[1] - runs[0]).max()
    # Resumed on epoch 0's shuffle again (as before epochs were keyed), the losses of epochs 1 and
    # 2 moved by about 1e-2.
    assert np.abs(losses(resumed) - runs[0]).max() <= 10 * spread + 1e-4, (losses(resumed), runs)


@pytest.mark.slow
def test_a_run_stopped_by_a_full_disk_finishes_once_there_is_room(
    tiny_dataset, small_disk, uninterrupted
):
    # Room for the run's header, logs and first best model; not for its first backup as well.
    disk = small_disk(2 * 1024 * 1024)
    run_dir = disk / "run"
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir))
    assert done.returncode == 2, done.stderr[-3000:]
    assert_one_line_error(done, "No space left on device", str(run_dir))
    small_disk.grow(disk, 64 * 1024 * 1024)
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_finished_as(run_dir, uninterrupted)


def test_a_second_writer_is_refused_and_a_dead_ones_lock_taken_over(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    first = _signalled("stall", 0, "SIGKILL", tiny_dataset, run_dir, stdout=subprocess.DEVNULL)
    try:
        lock = run_dir / atomic.LOCK_FILE
        deadline = time.monotonic() + 120
        while not (run_dir / run_files.HISTORY_FILE).exists() and first.poll() is None:
            assert time.monotonic() < deadline, "the first run never started its epochs"
            time.sleep(0.2)
        assert lock.read_text().strip() == str(first.pid)
        second = vlm_tf("train", *_train_args(tiny_dataset, run_dir))
        assert second.returncode == 1
        assert_one_line_error(second, str(run_dir), f"pid {first.pid}")
    finally:
        first.kill()
        first.wait()
    # The holder is dead; its lock file stays, its lock does not.
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_whole_finished_run(run_dir)


def test_an_unrelated_folder_is_refused_without_a_lock_file_left_in_it(tiny_dataset, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    done = vlm_tf("train", *_train_args(tiny_dataset, folder))
    assert_one_line_error(done, str(folder), "not empty")
    assert os.listdir(folder) == ["holiday.jpg"]


def test_a_diverged_run_exits_1_naming_the_epoch_and_step(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    done = vlm_tf("train", *_train_args(tiny_dataset, run_dir, "--learning-rate", "inf"))
    assert done.returncode == 1
    assert_one_line_error(done, "diverged", "at epoch 1, step")
    assert "finished" not in done.stdout
    assert not (run_dir / run_files.MODEL_FILE).exists()
    # Nothing of the diverged epoch was kept: no row, no backup, no "best" model.
    assert run_files.read_history(run_dir) == []
    assert not (run_dir / run_files.BACKUP_DIR).exists()


@pytest.mark.slow
def test_an_export_killed_midway_leaves_nothing_the_next_one_trips_on(classify_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(classify_run[0], run_dir)
    # The SavedModel written whole under its temporary name, the process killed before the rename.
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import os, signal, sys
                from vlm_tf.cli import main

                rename = os.replace

                def replace(source, target, *args, **kwargs):
                    if os.path.basename(target) == "saved_model":
                        os.kill(os.getpid(), signal.SIGKILL)
                    return rename(source, target, *args, **kwargs)

                os.replace = replace
                sys.exit(main(["export", sys.argv[1]]))
                """
            ),
            str(run_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert any(name.startswith(atomic.PARTIAL_PREFIX) for name in os.listdir(run_dir))
    assert not (run_dir / run_files.SAVED_MODEL_DIR).exists()
    done = vlm_tf("export", run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run_dir / run_files.SAVED_MODEL_DIR / "saved_model.pb").is_file()
    assert not [name for name in os.listdir(run_dir) if name.startswith(atomic.PARTIAL_PREFIX)]
