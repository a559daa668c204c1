"""Run folders and video caches encrypted at rest (`--encrypt-key-file`, `vlm_tf.crypto`): a real
`vlm-tf train` in a process of its own, its every file read back, and nothing in the clear left on
the disk, its temporary folder included (slow: the quick loop keeps the key and file checks).
"""

import base64
import json
import os
import subprocess
import sys

import pytest
from helpers import TINY_CLASSIFY, assert_one_line_error, vlm_tf

from vlm_tf import atomic, crypto
from vlm_tf.training import config as run_files

# What the run's files hold in the clear: a class name, a history column, a TensorBoard tag, and
# the magic numbers of a .keras archive, a NumPy array and an HDF5 weights file.
CLEAR = (b"move_left", b"val_accuracy", b"epoch_loss", b"PK\x03\x04", b"\x93NUMPY", b"\x89HDF")


@pytest.fixture(scope="module")
def sealed(tiny_dataset, tmp_path_factory):
    """`(root, key)`: `root/run` and `root/cache` written by an encrypted `vlm-tf train`, whose
    temporary files went to `root/tmp`.
    """
    root = tmp_path_factory.mktemp("sealed")
    key = crypto.make_key(root / "key")
    (root / "tmp").mkdir()
    config = TINY_CLASSIFY
    command = [
        sys.executable, "-m", "vlm_tf.cli", "train", str(tiny_dataset),
        "--out", str(root / "run"), "--cache", str(root / "cache"),
        "--encrypt-key-file", str(root / "key"),
        "--model", config["model"], "--epochs", str(config["epochs"]),
        "--frames", str(config["num_frames"]), "--size", str(config["image_size"]),
        "--batch-size", str(config["batch_size"]), "--precision", "float32", "--jit", "off",
        "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, key


def _files(folder):
    return [os.path.join(parent, name) for parent, _, names in os.walk(folder) for name in names]


@pytest.mark.slow
def test_every_file_of_an_encrypted_run_and_cache_is_ciphertext_and_none_is_left_in_the_clear(
    sealed, tiny_dataset
):
    root, _ = sealed
    run, cache = root / "run", root / "cache"
    names = {os.path.relpath(path, run) for path in _files(run)}
    assert {run_files.MODEL_FILE, run_files.HISTORY_FILE, run_files.CONFIG_FILE} <= names
    assert any(name.startswith(run_files.LOG_DIR + os.sep) for name in names), names
    videos = [path for path in _files(tiny_dataset / "train") if path.endswith(".mp4")]
    assert len(_files(cache)) >= len(videos) - 1
    for path in _files(run) + _files(cache):
        if os.path.basename(path) in (crypto.MARKER, ".lock"):
            continue
        data = open(path, "rb").read()
        assert data.startswith(crypto.MAGIC), path
        assert not any(clear in data for clear in CLEAR), path
    # TensorFlow and Keras write their own temporary files (traced code); none holds the run's.
    for path in _files(root / "tmp"):
        data = open(path, "rb").read()
        assert not any(clear in data for clear in CLEAR), path


@pytest.mark.slow
def test_an_encrypted_run_reads_back_with_its_key_and_is_refused_in_one_line_without_it(
    sealed, tiny_dataset, tmp_path
):
    root, key = sealed
    run, test_dir = root / "run", tiny_dataset / "test"
    with crypto.keyed(key):
        rows = run_files.read_history(run)
    assert [row["epoch"] for row in rows] == list(range(TINY_CLASSIFY["epochs"]))

    done = vlm_tf("evaluate", run, test_dir, "--json", "--encrypt-key-file", root / "key")
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"accuracy"' in done.stdout

    assert_one_line_error(vlm_tf("evaluate", run, test_dir), str(run), "--encrypt-key-file")
    crypto.make_key(tmp_path / "other")
    wrong = vlm_tf("evaluate", run, test_dir, "--encrypt-key-file", tmp_path / "other")
    assert_one_line_error(wrong, str(tmp_path / "other"), "is not the key of", str(run))
    assert_one_line_error(
        vlm_tf("export", run, "--encrypt-key-file", root / "key"), str(run), "--out outside"
    )


@pytest.mark.slow
def test_decrypt_writes_tensorboard_logs_tensorflow_reads_back(sealed, tmp_path):
    import tensorflow as tf

    root, _ = sealed
    logs = root / "run" / run_files.LOG_DIR
    assert_one_line_error(vlm_tf("decrypt", logs, tmp_path / "logs"), "--encrypt-key-file")
    done = vlm_tf("decrypt", logs, tmp_path / "logs", "--encrypt-key-file", root / "key", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["files"] == len(_files(logs))
    tags = {
        value.tag
        for path in _files(tmp_path / "logs" / "validation")
        for event in tf.compat.v1.train.summary_iterator(path)
        for value in event.summary.value
    }
    assert {"epoch_loss", "epoch_accuracy"} <= tags, tags
    assert_one_line_error(
        vlm_tf("decrypt", logs, root / "run" / "copy", "--encrypt-key-file", root / "key"),
        "inside the encrypted folder",
    )


def test_a_changed_byte_is_found_and_the_file_named(tmp_path):
    path = tmp_path / "run" / run_files.CONFIG_FILE
    with crypto.keyed(crypto.Key(os.urandom(crypto.KEY_BYTES))):
        crypto.seal(tmp_path / "run")
        atomic.write_json(path, {"run": {"epochs": 3}})
        assert atomic.read_json(path) == {"run": {"epochs": 3}}
        data = bytearray(path.read_bytes())
        data[-20] ^= 1
        path.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="config.json: cannot be decrypted"):
            crypto.read_bytes(path)


def test_key_files_in_each_form_give_one_key_and_bad_ones_are_refused(tmp_path):
    secret = os.urandom(crypto.KEY_BYTES)
    forms = {"raw": secret, "hex": secret.hex().encode(), "base64": base64.b64encode(secret)}
    ids = set()
    for name, content in forms.items():
        (tmp_path / name).write_bytes(content + (b"\n" if name != "raw" else b""))
        ids.add(crypto.load_key(tmp_path / name).key_id)
    assert len(ids) == 1
    (tmp_path / "short").write_bytes(secret.hex()[:-2].encode())
    with pytest.raises(ValueError, match="short: expected a 256-bit key"):
        crypto.load_key(tmp_path / "short")
    made = vlm_tf("make-key", tmp_path / "new", "--json")
    assert made.returncode == 0, made.stderr
    assert oct(os.stat(tmp_path / "new").st_mode & 0o777) == "0o600"
    assert_one_line_error(vlm_tf("make-key", tmp_path / "new"), "new: already exists")
    assert_one_line_error(
        vlm_tf("evaluate", tmp_path, tmp_path, "--encrypt-key-file", tmp_path / "missing"),
        "missing: key file not found",
    )


def test_a_plain_run_folder_is_not_encrypted_halfway(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / run_files.CONFIG_FILE).write_text("{}")
    with crypto.keyed(crypto.Key(os.urandom(32))):
        with pytest.raises(ValueError, match="written without encryption"):
            crypto.seal(tmp_path / "run")
    assert not (tmp_path / "run" / crypto.MARKER).exists()
