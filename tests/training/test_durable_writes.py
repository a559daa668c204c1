"""What a kill can leave behind: half-written files must never be read as whole ones."""

import csv
import os

import keras
import numpy as np
import pytest

from vlm_tf import atomic
from vlm_tf.training import config as run_files
from vlm_tf.training.callbacks import ResumableBackup


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "config.json"
    atomic.write_json(path, {"epochs": 3})
    with pytest.raises(RuntimeError):
        with atomic.replacing(path) as temporary:
            with open(temporary, "w") as f:
                f.write('{"epo')
            raise RuntimeError("killed mid-write")
    assert atomic.read_json(path) == {"epochs": 3}
    assert os.listdir(tmp_path) == ["config.json"]


def test_a_folder_replaces_an_empty_one(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    with atomic.replacing(target) as temporary:
        os.makedirs(temporary)
        open(os.path.join(temporary, "saved_model.pb"), "w").close()
    assert os.listdir(target) == ["saved_model.pb"] and os.listdir(tmp_path) == ["saved_model"]


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_resume_skips_a_state_a_kill_left_half_written(tmp_path):
    x, y = (
        np.random.default_rng(0).normal(size=(16, 3)).astype("float32"),
        np.ones((16, 2), "float32"),
    )
    # One batch per epoch, so epochs run in one process or two see the same data in the same order.
    fit = dict(batch_size=16, shuffle=False, verbose=0)
    backup_dir = tmp_path / "backup"
    first = _model()
    first.fit(x, y, epochs=2, **fit, callbacks=[ResumableBackup(str(backup_dir))])
    assert sorted(os.listdir(backup_dir)) == ["state-00002"], (
        "older states are removed once a newer one is whole"
    )
    # What SIGKILL during the third epoch's save leaves: a partial folder with a truncated weights
    # file.
    partial = backup_dir / f"{atomic.PARTIAL_PREFIX}4242-state-00003"
    partial.mkdir()
    (partial / ResumableBackup.WEIGHTS_FILE).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)

    backup = ResumableBackup(str(backup_dir))
    assert backup.saved_epoch() == 2
    second = _model()
    history = second.fit(x, y, epochs=3, **fit, callbacks=[backup])
    assert history.epoch == [2], "only the third epoch is left to run"
    # The weights after epoch 3 came from epoch 2's: one more epoch from the first model gives the
    # same.
    first.fit(x, y, epochs=1, **fit)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    backup.discard()
    assert not backup_dir.exists()


def test_a_backup_keeping_two_states_rewinds_to_the_older_and_names_a_missing_one(tmp_path):
    x, y = np.zeros((4, 3), "float32"), np.ones((4, 2), "float32")
    backup_dir = tmp_path / "backup"
    _model().fit(x, y, epochs=3, verbose=0, callbacks=[ResumableBackup(str(backup_dir), keep=2)])
    assert sorted(os.listdir(backup_dir)) == ["state-00002", "state-00003"]
    backup = ResumableBackup(str(backup_dir), keep=2)
    with pytest.raises(ValueError, match=f"{backup_dir} holds no saved state of epoch 1"):
        backup.rewind(1)
    backup.rewind(2)
    assert backup.saved_epoch() == 2 and sorted(os.listdir(backup_dir)) == ["state-00002"]


def test_history_is_trimmed_to_the_backed_up_epochs(tmp_path):
    path = tmp_path / run_files.HISTORY_FILE
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([["epoch", "loss"], [0, 1.5], [1, 1.2], [2, 1.1]])
    run_files.trim_history(tmp_path, 2)
    assert [row["epoch"] for row in run_files.read_history(tmp_path)] == [0.0, 1.0]
