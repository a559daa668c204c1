"""The `vlm-tf` command as a user runs it: in a fresh process, reading its output and exit code."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.cli.common import kept_import_lines
from vlm_tf.models import MODELS, model_names


def test_help_lists_every_command_and_model():
    done = vlm_tf("--help")
    assert done.returncode == 0
    for command in (
        "make-data",
        "train",
        "evaluate",
        "predict",
        "export",
        "compare",
        "models",
        "quickstart",
        "generate",
        "score-generated",
        "predict-frames",
        "bench",
        "stream",
        "compress",
    ):
        assert command in done.stdout
    train_help = vlm_tf("train", "--help").stdout
    for name in MODELS:
        assert name in train_help
    for option in (
        "--epochs",
        "--frames",
        "--size",
        "--batch-size",
        "--seed",
        "--precision",
        "--jit",
        "--model",
        "--optimizer",
        "--weight-decay",
        "--warmup-epochs",
        "--gan-loss",
        "--profile",
        "--cache",
        "--strategy",
    ):
        assert option in train_help


def test_bad_arguments_and_paths_give_one_line(tmp_path):
    assert_one_line_error(
        vlm_tf("make-data", tmp_path / "d", "--video-frames", "zero"), "--video-frames", "zero"
    )
    # --frames is a clip's length everywhere; make-data's old spelling names the new one.
    assert_one_line_error(vlm_tf("make-data", tmp_path / "d", "--frames", "6"), "--video-frames")
    assert not (tmp_path / "d").exists()
    assert_one_line_error(
        vlm_tf("train", tmp_path / "nowhere", "--out", tmp_path / "run"), "nowhere"
    )
    assert_one_line_error(
        vlm_tf("train", tmp_path, "--out", tmp_path / "run", "--model", "vgg"), "vgg"
    )
    assert_one_line_error(
        vlm_tf("train", tmp_path, "--out", tmp_path / "run", "--weight-decay", "-1"),
        "--weight-decay",
        "-1",
    )
    assert_one_line_error(vlm_tf("evaluate", tmp_path / "no_run", tmp_path), "config.json")
    assert_one_line_error(vlm_tf("export", tmp_path / "no_run"), "no_run")
    assert_one_line_error(vlm_tf("bench", "--data", tmp_path / "no_videos"), "no_videos")
    assert_one_line_error(
        vlm_tf(
            "train", tmp_path, "--out", tmp_path / "run", "--task", "detect", "--cache", "memory"
        ),
        "cache",
        "detect",
    )
    assert not (tmp_path / "run").exists()


def test_make_data_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    assert_one_line_error(
        vlm_tf("make-data", tmp_path, "--videos-per-class", "3"), str(tmp_path), "not empty"
    )
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    done = vlm_tf(
        "make-data", root / "data", "--videos-per-class", "4", "--video-frames", "6", "--size", "32"
    )
    assert done.returncode == 0, done.stderr
    assert (root / "data" / "test" / "grow").is_dir()
    done = vlm_tf(
        "train",
        root / "data",
        "--out",
        root / "run",
        "--epochs",
        "1",
        "--frames",
        "4",
        "--size",
        "32",
        # Fixed: `auto` would first measure the model (tests/training/test_runtime.py tests that).
        "--precision",
        "float32",
        "--jit",
        "off",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert "tensorboard --logdir" in done.stdout
    return root


def test_evaluate_json_and_skipped_files(cli_run):
    test_dir = cli_run / "data" / "test"
    (test_dir / "grow" / "broken.mp4").write_bytes(b"\x00" * 100)
    try:
        done = vlm_tf("evaluate", cli_run / "run", test_dir, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["num_videos"] == 8
        assert {"accuracy", "per_class", "confusion_matrix", "skipped"} <= set(report)
        assert sum(map(sum, report["confusion_matrix"])) == 8
        assert report["skipped"] == [
            {
                "path": str(test_dir / "grow" / "broken.mp4"),
                "reason": report["skipped"][0]["reason"],
            }
        ]
        strict = vlm_tf("evaluate", cli_run / "run", test_dir, "--strict")
        assert_one_line_error(strict, "broken.mp4")
    finally:
        (test_dir / "grow" / "broken.mp4").unlink()


def test_evaluate_refuses_unknown_class_folders(cli_run, tmp_path):
    os.symlink(cli_run / "data" / "test" / "grow", tmp_path / "grow")
    (tmp_path / "juggling").mkdir()
    (tmp_path / "juggling" / "x.mp4").write_bytes(b"")
    assert_one_line_error(vlm_tf("evaluate", cli_run / "run", tmp_path), "juggling")


@pytest.mark.slow
def test_evaluate_averages_views(cli_run):
    test_dir = cli_run / "data" / "test"
    done = vlm_tf("evaluate", cli_run / "run", test_dir, "--views", "2x3", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["views"] == {"clips": 2, "crops": 3} and report["num_videos"] == 8
    assert_one_line_error(
        vlm_tf("evaluate", cli_run / "run", test_dir, "--views", "2x"), "--views", "2x"
    )
    assert_one_line_error(
        vlm_tf("evaluate", cli_run / "run", test_dir, "--views", "1x7"), "crops", "7"
    )


@pytest.mark.slow
def test_predict_and_export(cli_run):
    video = next((cli_run / "data" / "test" / "move_left").glob("*.mp4"))
    done = vlm_tf("predict", cli_run / "run", video, "--json", "--top", "2")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert result["path"] == str(video) and len(result["top"]) == 2
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-4
    missing = vlm_tf("predict", cli_run / "run", video, cli_run / "gone.mp4")
    assert (
        missing.returncode != 0
        and "gone.mp4" in missing.stdout
        and "Traceback" not in missing.stderr
    )

    done = vlm_tf("export", cli_run / "run", "--out", cli_run / "exported")
    assert done.returncode == 0, done.stderr
    assert (cli_run / "exported" / "saved_model.pb").is_file()
    assert_one_line_error(
        vlm_tf("export", cli_run / "run", "--out", cli_run / "exported"), "already exists"
    )


@pytest.mark.slow
def test_train_with_the_texts_gated_cell(cli_run):
    run = cli_run / "text_gated"
    done = vlm_tf(
        "train",
        cli_run / "data",
        "--out",
        run,
        "--model",
        "cnn_text_gated",
        "--epochs",
        "2",
        "--frames",
        "4",
        "--size",
        "32",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import keras

    from vlm_tf.layers import TextGatedRNNCell

    model = keras.models.load_model(run / "model.keras")
    assert isinstance(model.get_layer("text_gated1").cell, TextGatedRNNCell)
    with open(run / "history.csv") as f:
        assert len(f.read().strip().splitlines()) == 3  # header + 2 epochs
    done = vlm_tf("evaluate", run, cli_run / "data" / "test", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["num_videos"] == 8, done.stderr[-3000:]


@pytest.mark.slow
def test_compare_trains_each_model_once_and_prints_one_table(tiny_dataset, tmp_path):
    # One unreadable video in training and one in test: each row names both.
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    broken = [data / split / "grow" / "broken.mp4" for split in ("train", "test")]
    for path in broken:
        path.write_bytes(b"not a video")
    out = tmp_path / "comparison"
    args = (
        "compare",
        data,
        "--out",
        out,
        "--models",
        "cnn_mean,cnn_lstm_soft_attention",
        "--epochs",
        "2",
        "--frames",
        "4",
        "--size",
        "32",
    )
    done = vlm_tf(*args, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert [row["model"] for row in rows] == ["cnn_mean", "cnn_lstm_soft_attention"]
    for row in rows:
        assert (
            0.0 <= row["test_accuracy"] <= 1.0
            and row["params"] > 0
            and row["gflops_per_clip"] > 0
            and row["train_clips_per_s"] > 0
        )
        history = (out / row["model"] / "history.csv").read_text().splitlines()
        assert len(history) == 3 and "train_clips_per_s" in history[0]
        assert sorted(item["path"] for item in row["skipped"]) == sorted(map(str, broken)), row
    # Same command again: nothing is retrained, the same rows come back as a table.
    again = vlm_tf(*args)
    assert again.returncode == 0, again.stderr
    assert "training" not in again.stdout
    table = [line for line in again.stdout.splitlines() if line.startswith("| cnn")]
    assert [line.split("|")[1].strip() for line in table] == ["cnn_mean", "cnn_lstm_soft_attention"]
    assert f"{rows[0]['test_accuracy']:.3f}" in table[0]
    assert_one_line_error(
        vlm_tf("compare", data, "--out", out, "--models", "cnn_lstm,transformer"),
        "unknown classifier(s) transformer",
    )
    assert_one_line_error(
        vlm_tf("compare", tiny_dataset / "train", "--out", tmp_path / "x", "--models", "cnn_mean"),
        "test: no such directory",
    )


@pytest.mark.slow
def test_models_lists_parameters_and_flops():
    done = vlm_tf("models", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["model"]: row for row in json.loads(done.stdout.strip().splitlines()[-1])}
    assert set(rows) == set(model_names())
    # At 16 frames of 64x64 (512 tokens), joint attention costs more than space, then time...
    assert (
        rows["video_transformer_joint"]["gflops_per_clip"]
        > 1.3 * rows["video_transformer"]["gflops_per_clip"]
    )
    # ...and at 4 frames of 32x32 (32 tokens) less: the factorised block pays for two sets of
    # projections.
    small = {
        row["model"]: row
        for row in json.loads(
            vlm_tf("models", "--json", "--frames", "4", "--size", "32")
            .stdout.strip()
            .splitlines()[-1]
        )
    }
    assert (
        small["video_transformer_joint"]["gflops_per_clip"]
        < small["video_transformer"]["gflops_per_clip"]
    )


def test_user_errors_exit_2_and_bugs_leave_their_traceback(capsys):
    """A check of vlm_tf's own is the user's to fix; an error raised deeper (here NumPy's) is a
    bug.
    """
    from vlm_tf.cli.common import EXIT_BUG, EXIT_USER_ERROR, report_failure
    from vlm_tf.training import RunConfig

    try:
        RunConfig(epochs=0).validate()
    except ValueError as error:
        assert report_failure(error, debug=False) == EXIT_USER_ERROR
    assert (
        capsys.readouterr().err == "vlm-tf: error: epochs must be a positive integer, received 0\n"
    )

    try:
        np.zeros(3).reshape(2)
    except ValueError as error:
        assert report_failure(error, debug=False) == EXIT_BUG
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(
        "vlm-tf: internal error (a bug, please report it): ValueError: cannot"
    )
    path = lines[1].split(" is in ")[1].split(" (rerun")[0]
    with open(path, encoding="utf-8") as f:
        written = f.read()
    # The whole traceback: the frame that raised, and the error itself.
    assert "in test_user_errors_exit_2_and_bugs_leave_their_traceback" in written
    assert written.rstrip().endswith("ValueError: cannot reshape array of size 3 into shape (2,)")
    os.remove(path)


@pytest.mark.slow
def test_a_backbone_preset_starts_a_run_on_other_classes(cli_run, tmp_path):
    """`export --format preset` cuts the run's backbone; `train --init` puts a new head on it."""
    import shutil

    from vlm_tf.inference import load_run

    preset = tmp_path / "preset"
    done = vlm_tf("export", cli_run / "run", "--format", "preset", "--out", preset)
    assert done.returncode == 0, done.stderr
    assert {"config.json", "model.weights.h5", "metadata.json"} <= set(os.listdir(preset))
    # Three of the eight classes: a head of another size on the same backbone.
    data = tmp_path / "three"
    for split in ("train", "val"):
        for name in ("grow", "shrink", "move_left"):
            shutil.copytree(cli_run / "data" / split / name, data / split / name)
    common = ("--epochs", "1", "--frames", "4", "--size", "32", "--quiet")
    done = vlm_tf("train", data, "--out", tmp_path / "run", "--init", preset, *common)
    assert done.returncode == 0, done.stderr
    tuned, source = load_run(tmp_path / "run").model, load_run(cli_run / "run").model
    assert tuned.output_shape == (None, 3)
    # One epoch moves the preset's kernels only a little; a fresh start would be uncorrelated.
    start, after = (
        np.ravel(model.get_layer("lstm1").get_weights()[0]) for model in (source, tuned)
    )
    assert np.corrcoef(start, after)[0, 1] > 0.9
    wrong = vlm_tf(
        "train",
        data,
        "--out",
        tmp_path / "gru",
        "--init",
        preset,
        "--model",
        "cnn_gru",
        *common,
    )
    assert_one_line_error(wrong, "cnn_gru")
    # Refused from the preset's config.json, before the run folder is made.
    assert not os.path.exists(tmp_path / "gru")


def _python_choosing(command, variable, chosen, **fixed):
    """`python -c command` in a process of its own, with the user's `variable` unset (`chosen`
    None) or set to `chosen`, and the `fixed` variables set.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **fixed}
    env.pop(variable, None)
    if chosen is not None:
        env[variable] = chosen
    return subprocess.run(
        [sys.executable, "-c", command], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("chosen", [None, "false"])
def test_commands_pool_tensorflows_cpu_memory_unless_the_user_chose_otherwise(chosen):
    # Only a pooling (BFC) allocator keeps the statistics TensorFlow reports; oneDNN's allocator
    # keeps them whatever the choice, so it is off here.
    command = (
        "import sys, tensorflow as tf; from vlm_tf.cli import main; code = main(['models']); "
        "tf.ones(4); stats = tf.config.experimental.get_memory_info('CPU:0'); "
        "print('pooled', stats['peak'] > 0)"
    )
    done = _python_choosing(command, "TF_CPU_ALLOCATOR_USE_BFC", chosen, TF_ENABLE_ONEDNN_OPTS="0")
    if chosen is None:
        assert done.returncode == 0 and "pooled True" in done.stdout, done.stderr[-2000:]
    else:
        assert "Allocator stats not available" in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("chosen", [None, "0"])
def test_tensorflow_runs_its_onednn_kernels_unless_the_user_chose_otherwise(chosen):
    # TensorFlow's own default is off on processors without AVX-512 VNNI, BF16 or AMX.
    command = (
        "import vlm_tf; from tensorflow.python.util import _pywrap_util_port as port; "
        "print('oneDNN', port.IsMklEnabled())"
    )
    done = _python_choosing(command, "TF_ENABLE_ONEDNN_OPTS", chosen)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"oneDNN {chosen is None}" in done.stdout, done.stdout


def test_a_cpu_machine_sees_no_tensorflow_start_up_lines_and_other_lines_still_show():
    # The user's environment: no TF_CPP_MIN_LOG_LEVEL (the tests' command runner sets one).
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = "import sys; from vlm_tf.cli import main; sys.exit(main(['models']))"
    done = subprocess.run(
        [sys.executable, "-c", command], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "oneDNN" not in done.stderr and "cuda" not in done.stderr.lower(), done.stderr
    # Only the known import lines are dropped: an error of another kind is passed on.
    real = "E0000 12:00:00.0 1 op_kernel.cc:1] OP_REQUIRES failed: out of memory\n"
    noise = "I0000 12:00:00.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
    assert kept_import_lines([noise, real]) == [real]
