import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import TINY_CLASSIFY, write_fading_dataset
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vlm_tf.data.synthetic import CLASS_NAMES
from vlm_tf.training import RunConfig, train

TINY = dict(model="cnn_lstm", num_frames=4, image_size=32, batch_size=8)


def _history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _events(log_dir):
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0, "images": 0})
    accumulator.Reload()
    return accumulator


@pytest.fixture
def tiny_run(classify_run):
    return classify_run[:2]


def test_run_folder_holds_everything(tiny_run):
    run_dir, result = tiny_run
    for name in (
        "config.json",
        "class_names.json",
        "model.keras",
        "checkpoints/best.keras",
        "history.csv",
    ):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "backup").exists(), "a finished run leaves no backup behind"
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["epochs"] == 2 and saved["class_names"] == sorted(CLASS_NAMES)
    assert json.loads((run_dir / "class_names.json").read_text()) == sorted(CLASS_NAMES)
    rows = _history(run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert result.epochs_run == 2 and not result.resumed
    assert result.best_val_accuracy == max(float(r["val_accuracy"]) for r in rows)


def test_tensorboard_logs_read_back(tiny_run):
    run_dir, _ = tiny_run
    train_events = _events(run_dir / "logs" / "train")
    scalars = {
        tag: [e.step for e in train_events.Tensors(tag)] for tag in train_events.Tags()["tensors"]
    }
    assert scalars["epoch_loss"] == [0, 1] and scalars["epoch_accuracy"] == [0, 1]
    assert any(tag.startswith("conv1") and "histogram" in tag for tag in scalars), sorted(scalars)
    assert train_events.Tags()["graph"], "the model graph is written"
    validation = _events(run_dir / "logs" / "validation")
    assert {"epoch_loss", "epoch_accuracy"} <= set(validation.Tags()["tensors"])
    samples = _events(run_dir / "logs" / "samples")
    image_tags = samples.Tags()["tensors"]
    assert len(image_tags) == 4 and all(tag.startswith("input_clips/") for tag in image_tags)
    # An image summary stores [width, height, PNG...]: one montage of the clip's frames of 32 px.
    width, height = samples.Tensors(image_tags[0])[0].tensor_proto.string_val[:2]
    assert (int(width), int(height)) == (TINY_CLASSIFY["num_frames"] * 32, 32)


def test_same_seed_same_run(tiny_run, tiny_dataset, tmp_path):
    run_dir, _ = tiny_run
    again = tmp_path / "again"
    train(tiny_dataset, again, RunConfig(**TINY_CLASSIFY), verbose=0)
    for a, b in zip(_history(run_dir), _history(again)):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4)
        assert a["val_accuracy"] == b["val_accuracy"]


def test_folders_are_never_overwritten(tiny_run, tiny_dataset, tmp_path):
    run_dir, _ = tiny_run
    with pytest.raises(ValueError, match="already holds a finished run"):
        train(tiny_dataset, run_dir, RunConfig(**TINY_CLASSIFY), verbose=0)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not empty"):
        train(tiny_dataset, mine, RunConfig(epochs=1, **TINY), verbose=0)
    assert (mine / "thesis.tex").read_text() == "precious"


def test_bad_config_and_data_dir(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        train(tiny_dataset, tmp_path / "a", RunConfig(model="vgg"), verbose=0)
    with pytest.raises(ValueError, match="precision"):
        train(tiny_dataset, tmp_path / "b", RunConfig(precision="int8"), verbose=0)
    with pytest.raises(FileNotFoundError, match="train"):
        train(tiny_dataset / "train", tmp_path / "c", RunConfig(**TINY), verbose=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_precision_and_jit_options_are_applied(tiny_dataset, tmp_path):
    import keras

    train(
        tiny_dataset,
        tmp_path / "bf16",
        RunConfig(epochs=1, precision="mixed_bfloat16", jit="on", **TINY),
        verbose=0,
    )
    assert keras.mixed_precision.global_policy().name == "float32", (
        "train() gives the caller's policy back"
    )
    model = keras.models.load_model(tmp_path / "bf16" / "model.keras")
    assert model.get_layer("lstm1").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("output_layer").dtype_policy.name == "float32"


@pytest.mark.parametrize("model", ["cnn_lstm", "gan"])
def test_a_run_traces_its_training_step_once(model, tiny_dataset, tmp_path, monkeypatch):
    """Keras leaves optimizer slots and compiled metrics to the first step, whose `tf.function` is
    then traced a second time; the loop builds them first (`build_training_state`).
    """
    import keras

    from vlm_tf.models.adversarial import VideoGAN

    owner = VideoGAN if model == "gan" else keras.Model
    traced = []
    step = owner.train_step

    def counted(self, data):
        # The Python body runs only while TensorFlow traces the step.
        traced.append(type(self).__name__)
        return step(self, data)

    monkeypatch.setattr(owner, "train_step", counted)
    options = dict(TINY, model=model, num_frames=8) if model == "gan" else TINY
    train(tiny_dataset, tmp_path / "run", RunConfig(epochs=1, **options), verbose=0)
    assert len(traced) == 1, traced


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tmp_path):
    # A task learnt in a few epochs: a resume that lost its weights or its
    # optimizer's state would end visibly behind the uninterrupted run.
    data = write_fading_dataset(tmp_path / "data")
    run_dir = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "vlm_tf.cli",
        "train",
        str(data),
        "--out",
        str(run_dir),
        "--epochs",
        "4",
        "--frames",
        "4",
        "--size",
        "32",
        "--precision",
        "float32",
        "--jit",
        "off",
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while (
        time.time() < deadline
        and not (run_dir / "history.csv").exists()
        or len(_history(run_dir)) < 2
    ):
        assert process.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(_history(run_dir))
    assert (
        2 <= done_before < 4
        and (run_dir / "backup").is_dir()
        and not (run_dir / "model.keras").exists()
    )

    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed" in resumed.stdout
    epochs = [int(r["epoch"]) for r in _history(run_dir)]
    assert epochs == [0, 1, 2, 3], epochs
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()

    # The same seed, never killed: the resumed run ends where it ends. Not to
    # the bit: a restarted process shuffles its remaining epochs afresh.
    whole = subprocess.run(
        [*command[:6], str(tmp_path / "whole"), *command[7:]], capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr[-2000:]
    last, reference = _history(run_dir)[-1], _history(tmp_path / "whole")[-1]
    assert float(reference["val_accuracy"]) >= 0.8, reference
    assert abs(float(last["val_accuracy"]) - float(reference["val_accuracy"])) <= 0.15, (
        last,
        reference,
    )
    assert abs(float(last["loss"]) - float(reference["loss"])) <= 0.15, (last, reference)


def test_test_split_is_never_used_for_validation(tmp_path):
    from vlm_tf.data.splits import find_split_dirs

    for split in ("train", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
    assert find_split_dirs(tmp_path) == (str(tmp_path / "train"), None)
    (tmp_path / "val" / "a").mkdir(parents=True)
    assert find_split_dirs(tmp_path) == (str(tmp_path / "train"), str(tmp_path / "val"))


def test_config_json_from_before_the_task_options_loads():
    """Runs written when RunConfig held every task's options (flat, all of them) load with their
    own.
    """
    from vlm_tf.tasks.options import ClassifyOptions, RestorationOptions

    old = {
        **RunConfig(model="superres_window").to_dict(),
        "gan_loss": "text",
        "scale": 4,
        "noise_sigma": 9.0,
    }
    config = RunConfig.from_dict(old)
    assert config.options == RestorationOptions(scale=4, noise_sigma=9.0)
    # Written back with the restoration options of today, `init` among them (None: from scratch).
    assert config.to_dict() == {
        **{key: value for key, value in old.items() if key != "gan_loss"},
        "init": None,
    }
    assert RunConfig.from_dict({**old, "model": "cnn_lstm"}).options == ClassifyOptions()
    with pytest.raises(ValueError, match="scale must be one of"):
        RunConfig.from_dict({**old, "scale": 3}).validate()
