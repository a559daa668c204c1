"""The GAN and the fusion model as a user runs them: `vlm-tf train`, `generate`, `score-generated`,
`predict-frames`, `evaluate`, `export`.
"""

import json
import shutil

import numpy as np
import pytest
from helpers import assert_one_line_error, call_signature_in_subprocess, vlm_tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# Registers the layers the GAN's model.keras names, which the test loads itself.
from vlm_tf import layers as _layers  # noqa: F401
from vlm_tf.data import read_frames, write_video
from vlm_tf.metrics import frechet_distance

FRAMES, SIZE = 8, 32
# The acceptance run (slow): data, clip length, classifier and GAN budgets.
ACCEPTANCE_VIDEOS_PER_CLASS = 80
# Clips of 8 frames, not the default 16: every motion shows in 8 frames, and the GAN trains in
# half the time. Measured with this file's budgets on 2 cores (2026-12-05): 8 frames, classifier
# 0.65 on validation, generated clips named right 0.40 of 128, fusion +0.29 dB over copying the
# last frame, 4.8 min (seed 1 of all three: 0.62, 0.34, +0.33 dB); 16 frames 0.75, 0.37,
# +0.33 dB, 7.7 min.
ACCEPTANCE_FRAMES = 8
ACCEPTANCE_CLASSIFIER_EPOCHS = 12
# Judged on 64 generated clips of 16 frames (bar 0.25): 12 epochs 0.33, 16 epochs 0.375 (263 s on
# 2 cores, 2026-12-02), 20 the design notes' run; 16 keeps a margin at 80 % of 20's time.
ACCEPTANCE_GAN_EPOCHS = 16
ACCEPTANCE_FUSION_EPOCHS = 4
ACCEPTANCE_PSNR_MARGIN_DB = 0.1


def _tags(log_dir, kind):
    accumulator = EventAccumulator(
        str(log_dir), size_guidance={"tensors": 0, "images": 0, "scalars": 0}
    )
    accumulator.Reload()
    return accumulator.Tags()[kind]


@pytest.fixture(scope="module")
def gan_run(tiny_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("gan") / "run"
    done = vlm_tf(
        "train",
        tiny_dataset,
        "--model",
        "gan",
        "--out",
        run_dir,
        "--epochs",
        2,
        "--frames",
        FRAMES,
        "--size",
        SIZE,
        "--quiet",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finished: " in done.stdout and "d_loss" in done.stdout
    return run_dir


@pytest.mark.slow
def test_gan_run_logs_losses_and_generated_clips(gan_run):
    assert {"epoch_d_loss", "epoch_g_loss"} <= set(_tags(gan_run / "logs" / "train", "tensors"))
    images = _tags(gan_run / "logs" / "samples", "tensors")
    assert len([tag for tag in images if tag.startswith("generated/")]) == 8


@pytest.mark.slow
def test_generate_writes_videos_a_classifier_reads(gan_run, tiny_dataset, tmp_path):
    out = tmp_path / "generated"
    done = vlm_tf("generate", gan_run, "--out", out, "--per-class", 2, "--seed", 5)
    assert done.returncode == 0, done.stderr[-3000:]
    videos = sorted(out.glob("*/*.mp4"))
    assert len(videos) == 16 and {video.parent.name for video in videos} == {
        p.name for p in (tiny_dataset / "train").iterdir() if p.is_dir()
    }
    assert read_frames(videos[0]).shape == (FRAMES, SIZE, SIZE, 3)
    # The same seed gives the same clips.
    again = tmp_path / "again"
    assert (
        vlm_tf("generate", gan_run, "--out", again, "--per-class", 2, "--seed", 5).returncode == 0
    )
    np.testing.assert_array_equal(
        read_frames(again / videos[0].relative_to(out)), read_frames(videos[0])
    )
    assert_one_line_error(vlm_tf("generate", gan_run, "--out", out), str(out), "not empty")
    assert_one_line_error(vlm_tf("evaluate", gan_run, out), "GAN run", "vlm-tf generate")


@pytest.mark.slow
def test_generator_exports_and_serves_in_plain_tensorflow(gan_run, tmp_path):
    import keras

    done = vlm_tf("export", gan_run, "--out", tmp_path / "saved_model")
    assert done.returncode == 0, done.stderr[-3000:]
    noise = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    labels = np.array([0, 3, 7], np.int32)
    served = call_signature_in_subprocess(str(tmp_path / "saved_model"), noise=noise, label=labels)
    assert served["frames"].dtype == np.uint8 and served["frames"].shape == (
        3,
        FRAMES,
        SIZE,
        SIZE,
        3,
    )
    expected = np.asarray(keras.models.load_model(gan_run / "model.keras")([noise, labels]))
    assert np.abs(served["frames"].astype(np.float32) - expected).max() <= 0.51
    names = json.loads((gan_run / "class_names.json").read_text())
    assert [name.decode() for name in served["class_name"]] == [names[k] for k in labels]


@pytest.mark.slow
def test_score_generated_reports_accuracy_and_frechet_distance(
    gan_run, classify_run, tiny_dataset, tmp_path
):
    classifier = classify_run[0]
    generated = tmp_path / "generated"
    assert vlm_tf("generate", gan_run, "--out", generated, "--per-class", 2).returncode == 0
    # An unreadable video among the reference clips is named, not silently left out.
    reference = tmp_path / "reference"
    shutil.copytree(tiny_dataset / "test", reference)
    broken = reference / "grow" / "broken.mp4"
    broken.write_bytes(b"not a video")
    done = vlm_tf(
        "score-generated",
        classifier,
        generated,
        "--real",
        tiny_dataset / "train",
        "--reference",
        reference,
        "--json",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["num_videos"] == 16 and 0.0 <= report["accuracy"] <= 1.0
    assert [item["path"] for item in report["skipped"]] == [str(broken)], report["skipped"]
    assert report["feature_layer"] == "lstm1"
    assert report["frechet_distance"] >= 0.0 and report["reference_frechet_distance"] >= 0.0
    done = vlm_tf("score-generated", classifier, generated, "--real", tiny_dataset / "train")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"features: {report['frechet_distance']:.3f}" in done.stdout
    # Each run's task says what it can do: a GAN judges nothing, a classifier generates nothing.
    assert_one_line_error(
        vlm_tf("score-generated", gan_run, generated, "--real", tiny_dataset / "train"),
        str(gan_run),
        "classify run",
    )
    assert_one_line_error(
        vlm_tf("generate", classifier, "--out", tmp_path / "none"), "gan or text_to_video run"
    )


@pytest.fixture(scope="module")
def fusion_run(tiny_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fusion") / "run"
    done = vlm_tf(
        "train",
        tiny_dataset,
        "--model",
        "fusion",
        "--out",
        run_dir,
        "--epochs",
        1,
        "--frames",
        FRAMES,
        "--size",
        SIZE,
        "--quiet",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "val_psnr" in done.stdout
    return run_dir


@pytest.mark.slow
def test_fusion_evaluate_compares_with_copying_the_last_frame(fusion_run, tiny_dataset):
    done = vlm_tf("evaluate", fusion_run, tiny_dataset / "test", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (
        report["num_videos"] == 8
        and report["observed_frames"] == 4
        and report["predicted_frames"] == 4
    )
    assert len(report["psnr_by_step"]) == 4
    assert report["baseline"]["name"] == "copy_last_frame" and report["baseline"]["psnr"] > 10.0
    assert 0.0 < report["ssim"] <= 1.0
    assert {"epoch_psnr", "epoch_reconstruction"} <= set(
        _tags(fusion_run / "logs" / "train", "tensors")
    )
    assert any(
        tag.startswith("predicted/") for tag in _tags(fusion_run / "logs" / "samples", "tensors")
    )


@pytest.mark.slow
def test_predict_frames_writes_observed_then_predicted_frames(fusion_run, tiny_dataset, tmp_path):
    video = next((tiny_dataset / "test").glob("*/*.mp4"))
    out = tmp_path / "predicted.mp4"
    done = vlm_tf("predict-frames", fusion_run, video, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "copy last frame" in done.stdout
    assert read_frames(out).shape == (FRAMES, SIZE, SIZE, 3)
    side = tmp_path / "side.mp4"
    assert (
        vlm_tf("predict-frames", fusion_run, video, "--out", side, "--side-by-side").returncode == 0
    )
    assert read_frames(side).shape == (FRAMES, SIZE, 2 * SIZE, 3)

    short = write_video(tmp_path / "short.mp4", np.zeros((2, SIZE, SIZE, 3), np.uint8))
    assert_one_line_error(
        vlm_tf("predict-frames", fusion_run, short, "--out", tmp_path / "x.mp4"),
        "short.mp4",
        "observes 4",
    )
    assert_one_line_error(
        vlm_tf("predict-frames", fusion_run, tmp_path / "missing.mp4", "--out", tmp_path / "y.mp4"),
        "missing.mp4",
    )


@pytest.mark.slow
def test_fusion_exports_and_serves_in_plain_tensorflow(fusion_run, tiny_dataset, tmp_path):
    import keras

    assert vlm_tf("export", fusion_run, "--out", tmp_path / "saved_model").returncode == 0
    frames = read_frames(next((tiny_dataset / "test").glob("*/*.mp4")), None, (SIZE, SIZE))[
        None, :4
    ]
    served = call_signature_in_subprocess(str(tmp_path / "saved_model"), frames=frames)
    assert served["next_frames"].dtype == np.uint8 and served["next_frames"].shape == (
        1,
        4,
        SIZE,
        SIZE,
        3,
    )
    expected = np.asarray(
        keras.models.load_model(fusion_run / "model.keras")(frames.astype(np.float32))
    )
    assert np.abs(served["next_frames"].astype(np.float32) - expected).max() <= 0.51


def test_frechet_distance_against_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (4000, 3))
    b = rng.normal(0.0, 2.0, (4000, 3)) + np.array([1.0, 0.0, -2.0])
    # Independent coordinates: Σ (μa − μb)² + σa² + σb² − 2 σa σb per coordinate.
    sa, sb = a.std(axis=0, ddof=1), b.std(axis=0, ddof=1)
    expected = np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2) + np.sum((sa - sb) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same length"):
        frechet_distance(a, b[:, :2])


@pytest.fixture(scope="module")
def acceptance_data(tmp_path_factory):
    from vlm_tf.data.synthetic import write_dataset

    data = tmp_path_factory.mktemp("acceptance") / "data"
    write_dataset(
        data, videos_per_class=ACCEPTANCE_VIDEOS_PER_CLASS, num_frames=24, size=SIZE, seed=1
    )
    return data


@pytest.mark.slow
def test_gan_clips_are_recognised_by_a_classifier_well_above_chance(acceptance_data, tmp_path):
    """The issue's acceptance: a classifier trained on real clips names the class the GAN was asked
    for, twice as often as chance.
    """
    from vlm_tf.inference import evaluate_directory, load_run, write_generated_videos
    from vlm_tf.training import RunConfig, train

    judge = train(
        acceptance_data,
        tmp_path / "judge",
        RunConfig(
            epochs=ACCEPTANCE_CLASSIFIER_EPOCHS,
            num_frames=ACCEPTANCE_FRAMES,
            image_size=SIZE,
            seed=0,
        ),
        verbose=0,
    )
    gan = train(
        acceptance_data,
        tmp_path / "gan",
        RunConfig(model="gan", epochs=ACCEPTANCE_GAN_EPOCHS, num_frames=ACCEPTANCE_FRAMES, seed=0),
        verbose=0,
    )
    # 16 a class: at 8 (64 clips) a binomial spread of ±0.06 alone, and one whole-suite run fell to
    # 0.20 against the bar of 0.25.
    write_generated_videos(load_run(gan.run_dir), tmp_path / "generated", per_class=16, seed=0)
    report = evaluate_directory(load_run(judge.run_dir), tmp_path / "generated")
    chance = 1 / len(report["class_names"])
    assert report["num_videos"] == 128
    assert judge.best_val_accuracy > 3 * chance, judge.best_val_accuracy
    assert report["accuracy"] >= 2 * chance, report


@pytest.mark.slow
def test_fusion_predicts_better_than_copying_the_last_frame(acceptance_data, tmp_path):
    """The issue's acceptance: on held-out videos the fusion model's predicted frames beat the
    copy-last-frame baseline in PSNR and SSIM.
    """
    from vlm_tf.inference import evaluate_prediction, load_run
    from vlm_tf.training import RunConfig, train

    fusion = train(
        acceptance_data,
        tmp_path / "fusion",
        RunConfig(
            model="fusion",
            epochs=ACCEPTANCE_FUSION_EPOCHS,
            num_frames=ACCEPTANCE_FRAMES,
            seed=0,
        ),
        verbose=0,
    )
    scores = evaluate_prediction(load_run(fusion.run_dir), acceptance_data / "test")
    assert scores["num_videos"] == len(list((acceptance_data / "test").glob("*/*.mp4")))
    assert scores["psnr"] > scores["baseline"]["psnr"] + ACCEPTANCE_PSNR_MARGIN_DB, scores
    assert scores["ssim"] > scores["baseline"]["ssim"], scores
