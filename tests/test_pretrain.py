"""Pretraining on unlabeled videos and starting from what it learned: `make-data --task pretrain`,
`vlm-tf pretrain`, presets and `train --init`, through the command line on real files.
"""

import json
import os

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vlm_tf.data.corpus import HELD_OUT_PICTURES, write_pretraining_corpus
from vlm_tf.data.decode import probe_video

# Clips of 4 frames of 32x32: the machinery, not what it learns.
TINY = ("--frames", "4", "--size", "32", "--batch-size", "4", "--precision", "float32")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    done = vlm_tf("make-data", root, "--task", "pretrain", "--videos", "20", "--seed", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("pretrain") / "run"
    done = vlm_tf("pretrain", corpus, "--out", run, "--epochs", "4", *TINY, "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    return run, done


def test_the_corpus_is_real_pictures_and_footage_in_mixed_formats(corpus):
    manifest = json.loads((corpus / "dataset.json").read_text())
    assert manifest["complete"] and manifest["splits"] == {"train": 18, "val": 2}
    sources = manifest["sources"]
    # What the installed packages ship, less what is kept for measuring transfer.
    assert len(sources["photographs"]) >= 10 and sources["footage"]
    assert not set(HELD_OUT_PICTURES) & set(sources["photographs"])
    clips = manifest["clips"]
    assert {clip["kind"] for clip in clips} == {"camera", "footage", "generator"}
    assert len({clip["codec"] for clip in clips}) >= 3
    assert len({tuple(clip["size"]) for clip in clips}) >= 3
    for clip in clips:
        info = probe_video(corpus / clip["path"])
        assert (info.width, info.height) == tuple(clip["size"])
        assert info.num_frames == clip["frames"]
    # The same arguments give the same corpus, left as it is.
    again = write_pretraining_corpus(corpus, videos=20, seed=4)
    assert again["clips"] == clips


@pytest.mark.slow
def test_pretraining_loss_falls_and_tensorboard_shows_what_was_filled_in(pretrained):
    run, done = pretrained
    assert "pretraining loss" in done.stdout and "hidden tubes" in done.stdout
    from vlm_tf.training import config as run_files

    losses = [row["loss"] for row in run_files.read_history(run)]
    assert len(losses) == 4
    assert losses[-1] < 0.95 * losses[0], losses
    accumulator = EventAccumulator(str(run / "logs" / "samples"), size_guidance={"tensors": 0})
    accumulator.Reload()
    images = accumulator.Tensors("reconstruction/clip_masked_filled")
    assert [event.step for event in images] == [0, 1, 2, 3]


@pytest.mark.slow
def test_a_pretrained_backbone_starts_a_classifier_by_preset_and_by_run(
    pretrained, tiny_dataset, tmp_path
):
    run, _ = pretrained
    preset = tmp_path / "preset"
    done = vlm_tf("export", run, "--format", "preset", "--out", preset)
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads((preset / "config.json").read_text())
    assert (config["model_name"], config["num_frames"]) == ("video_transformer_mean", 4)
    metadata = json.loads((preset / "metadata.json").read_text())
    assert metadata["pretraining"]["method"] == "masked"

    from vlm_tf.models.backbone import load_backbone

    clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 32, 32, 3)).astype("float32")
    reference = np.asarray(load_backbone(preset)(clips))
    np.testing.assert_allclose(np.asarray(load_backbone(run)(clips)), reference, atol=1e-6)
    for source in (preset, run):
        probe = tmp_path / f"probe_{source.name}"
        # --model, --size and --frames come from the backbone; a linear probe keeps it as it was.
        done = vlm_tf(
            "train", tiny_dataset, "--out", probe, "--init", source, "--linear-probe",
            "--epochs", "1", "--batch-size", "8", "--precision", "float32", "--quiet",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        trained = json.loads((probe / "config.json").read_text())["run"]
        assert (trained["model"], trained["num_frames"], trained["image_size"]) == (
            "video_transformer_mean", 4, 32,
        )  # fmt: skip
        np.testing.assert_allclose(np.asarray(load_backbone(probe)(clips)), reference, atol=1e-5)


@pytest.mark.slow
def test_a_pretrain_run_has_no_saved_model_or_evaluation_only_its_preset(pretrained, tmp_path):
    run, _ = pretrained
    done = vlm_tf("export", run, "--out", tmp_path / "saved")
    assert_one_line_error(done, str(run), "--format preset")
    done = vlm_tf("evaluate", run, tmp_path)
    assert_one_line_error(done, str(run), "pretrain", "no `evaluate`")
    assert not (tmp_path / "saved").exists()


@pytest.mark.slow
def test_a_backbone_that_does_not_fit_the_run_is_refused_in_one_line(
    pretrained, tiny_dataset, tmp_path
):
    run, _ = pretrained
    common = ("--epochs", "1", "--precision", "float32", "--quiet")
    done = vlm_tf("train", tiny_dataset, "--out", tmp_path / "a", "--init", run, "--frames", "8")
    assert_one_line_error(done, str(run), "clips of 4 frames", "--frames 4")
    done = vlm_tf("train", tiny_dataset, "--out", tmp_path / "b", "--init", run, "--size", "64")
    assert_one_line_error(done, str(run), "32x32", "--size")
    done = vlm_tf("train", tiny_dataset, "--out", tmp_path / "c", "--init", "no-such-preset")
    assert_one_line_error(done, "no-such-preset", "no such preset or folder", "vlm-tf presets")
    done = vlm_tf("train", tiny_dataset, "--out", tmp_path / "d", "--linear-probe", *common)
    assert_one_line_error(done, "linear_probe", "init")
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_pretraining_refuses_what_it_cannot_train(corpus, tmp_path):
    done = vlm_tf("pretrain", tmp_path / "none", "--out", tmp_path / "run")
    assert_one_line_error(done, str(tmp_path / "none"), "no such folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    done = vlm_tf("pretrain", empty, "--out", tmp_path / "run", *TINY)
    assert_one_line_error(done, str(empty), "no video files")
    done = vlm_tf("pretrain", corpus, "--out", tmp_path / "run", "--size", "4", "--frames", "4")
    assert_one_line_error(done, "image_size", "at least 16", "received 4")
    assert not (tmp_path / "run").exists()
    assert os.listdir(empty) == []


def test_the_shipped_preset_is_listed_loads_by_name_and_is_the_file_its_provenance_names():
    import hashlib

    from vlm_tf.models import VideoBackbone, load_backbone
    from vlm_tf.models.presets import shipped_presets

    done = vlm_tf("presets", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    row = rows["cnn_lstm_motion"]
    assert (row["backbone"], row["num_frames"], row["image_size"]) == ("cnn_lstm", None, [64, 64])
    assert row["parameter_count"] > 100_000 and "unlabeled" in row["pretrained_on"]
    folder = shipped_presets()["cnn_lstm_motion"]
    metadata = json.loads(open(os.path.join(folder, "metadata.json")).read())
    with open(os.path.join(folder, "model.weights.h5"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == metadata["weights_sha256"]
    assert any(command.startswith("vlm-tf pretrain") for command in metadata["commands"])
    assert os.path.getsize(os.path.join(folder, "model.weights.h5")) < 25e6
    clips = np.random.default_rng(0).uniform(0, 255, (2, 8, 64, 64, 3)).astype("float32")
    by_name = np.asarray(VideoBackbone.from_preset("cnn_lstm_motion")(clips))
    np.testing.assert_allclose(np.asarray(load_backbone(folder)(clips)), by_name, atol=1e-6)


@pytest.mark.slow
def test_the_shipped_preset_beats_random_weights_on_a_few_clips_of_foreign_footage(tmp_path):
    """Camera moves over pictures pretraining never saw, encoded by FFmpeg, six clips a class."""
    from vlm_tf.data.footage import write_camera_footage

    data = write_camera_footage(tmp_path / "footage", train_per_class=6, test_per_class=5, seed=1)
    common = ("--epochs", "20", "--seed", "1", "--precision", "float32", "--jit", "off", "--quiet")
    accuracies = {}
    for name, start in (("scratch", ()), ("preset", ("--init", "cnn_lstm_motion"))):
        done = vlm_tf("train", data, "--out", tmp_path / name, *start, *common)
        assert done.returncode == 0, done.stderr[-2000:]
        done = vlm_tf("evaluate", tmp_path / name, data / "test", "--json")
        accuracies[name] = json.loads(done.stdout)["accuracy"]
    # Four classes: chance is 0.25.
    assert accuracies["preset"] >= accuracies["scratch"] + 0.2, accuracies
