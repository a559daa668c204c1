"""Denoising, super-resolution and enhancement (chapter 6) as a user runs them: `vlm-tf train
--task`, `evaluate`, `apply`, `export`; the classical baselines; the metrics.
"""

import json

import numpy as np
import pytest
from helpers import assert_one_line_error, call_signature_in_subprocess, vlm_tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vlm_tf import baselines
from vlm_tf.data import read_frames, write_video
from vlm_tf.data.degrade import add_noise
from vlm_tf.data.restoration import restoration_pairs, sliding_windows
from vlm_tf.data.splits import video_split
from vlm_tf.data.synthetic import render_clip
from vlm_tf.metrics.image import psnr, psnr_ceiling, ssim

SIZE, FRAMES = 32, 8


def _clip(label="move_right", seed=0, num_frames=FRAMES, size=SIZE):
    return render_clip(label, num_frames=num_frames, size=size, seed=seed)[0]


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """A flat folder of 12 videos (no class folders, no splits), as a user's own footage might
    be.
    """
    root = tmp_path_factory.mktemp("footage")
    labels = ("move_right", "move_up", "grow", "rotate_cw")
    for k in range(12):
        write_video(root / f"clip_{k:02d}.mp4", _clip(labels[k % 4], seed=k))
    return root


def test_psnr_and_ssim_metrics_are_tf_image_on_rounded_pixels():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (2, 16, 16, 3)).astype(np.float32)
    guess = truth + rng.normal(0, 5, truth.shape).astype(np.float32)
    rounded = np.clip(np.round(guess), 0, 255)
    mse = ((rounded - truth) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(psnr(truth, guess), 10 * np.log10(255.0**2 / mse), rtol=1e-5)
    # An exact match scores as one value one level off, not infinity.
    one_off = truth.copy()
    one_off[:, 0, 0, 0] = np.where(truth[:, 0, 0, 0] > 0, truth[:, 0, 0, 0] - 1, 1)
    np.testing.assert_allclose(psnr(truth, truth), psnr_ceiling((16, 16, 3)), rtol=1e-6)
    np.testing.assert_allclose(psnr(truth, one_off), psnr_ceiling((16, 16, 3)), rtol=1e-5)
    # Two flat frames: no variance, so SSIM is its luminance term alone,
    # (2 μx μy + C1) / (μx² + μy² + C1) with C1 = (0.01 · 255)²; 119.6 is
    # rounded to 120 first (unrounded would give 0.98420). TF's float32
    # variances of flat frames are off zero by ~1e-3, hence the tolerance.
    c1 = (0.01 * 255) ** 2
    flat = np.full((1, 16, 16, 3), 100.0, np.float32)
    np.testing.assert_allclose(
        ssim(flat, flat + 19.6), (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), rtol=2e-4
    )


def test_sliding_windows_repeat_the_end_frames():
    frames = np.arange(4)[:, None, None, None] * np.ones((4, 2, 2, 3))
    windows = np.asarray(sliding_windows(frames, 5))[:, :, 0, 0, 0]
    np.testing.assert_array_equal(
        windows, [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3], [1, 2, 3, 3, 3]]
    )


def test_a_flat_folder_splits_into_training_and_validation(video_folder):
    train, val = video_split(video_folder)
    assert len(train) == 10 and len(val) == 2 and not set(train) & set(val)
    assert sorted(train + val) == sorted(str(p) for p in video_folder.glob("*.mp4"))


def test_evaluation_pairs_are_the_same_every_pass(video_folder):
    paths = sorted(str(p) for p in video_folder.glob("*.mp4"))[:4]
    dataset = restoration_pairs(
        paths,
        task="superres",
        num_frames=5,
        image_size=(SIZE, SIZE),
        scale=4,
        noise_sigma=0.0,
        batch_size=4,
    )
    (small, clean), (again, _) = next(iter(dataset)), next(iter(dataset))
    assert small.shape == (4, 5, SIZE // 4, SIZE // 4, 3) and clean.shape == (4, 5, SIZE, SIZE, 3)
    np.testing.assert_array_equal(small, again)
    noisy = restoration_pairs(
        paths,
        task="denoise",
        num_frames=5,
        image_size=(SIZE, SIZE),
        scale=2,
        noise_sigma=15.0,
        batch_size=4,
    )
    (a, _), (b, _) = next(iter(noisy)), next(iter(noisy))
    np.testing.assert_array_equal(a, b)


def test_non_local_means_removes_noise_and_its_strength_is_chosen():
    clean = np.stack([_clip(seed=s) for s in range(2)]).astype(np.float32)
    noisy = np.asarray(add_noise(clean, [0, 1], sigma=15.0)).astype(np.uint8)
    chosen = baselines.choose_settings(baselines.candidates("denoise"), noisy, clean)
    assert set(chosen) == {"nlm", "nlm_multi"}
    for name, (setting, method) in chosen.items():
        restored = method(noisy[0])
        assert restored.shape == noisy[0].shape and restored.dtype == np.uint8
        assert ((restored - clean[0]) ** 2).mean() < 0.5 * ((noisy[0] - clean[0]) ** 2).mean(), name
        # The chosen strength beats the weakest one tried.
        weakest = baselines.candidates("denoise")[name][f"h={baselines.NLM_STRENGTHS[0]:g}"](
            noisy[0]
        )
        assert ((restored - clean[0]) ** 2).mean() <= ((weakest - clean[0]) ** 2).mean(), setting


def test_bicubic_and_equalisation_baselines_keep_shape_and_type():
    frames = _clip().astype(np.uint8)
    assert baselines.bicubic(frames[:, ::2, ::2], 2).shape == frames.shape
    for method in (baselines.clahe, baselines.equalize_histogram, baselines.auto_levels):
        out = method(frames // 4)
        assert out.shape == frames.shape and out.dtype == np.uint8
        # Spread over the range again: a dark clip comes out brighter.
        assert out.mean() > (frames // 4).mean()
    # Auto levels stretches each channel to the full range: a cast goes.
    tinted = (frames * np.array([1.0, 0.6, 0.3])).astype(np.uint8)
    levelled = baselines.auto_levels(tinted).reshape(-1, 3)
    assert np.all(np.percentile(levelled, 99, axis=0) >= 250) and np.all(
        np.percentile(levelled, 1, axis=0) <= 5
    )


@pytest.fixture(scope="module")
def superres_run(video_folder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("superres") / "run"
    done = vlm_tf(
        "train",
        video_folder,
        "--task",
        "superres",
        "--out",
        run_dir,
        "--epochs",
        2,
        "--frames",
        FRAMES,
        "--size",
        SIZE,
        "--batch-size",
        4,
        "--quiet",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "val_psnr" in done.stdout
    return run_dir


def test_training_logs_psnr_and_input_output_target_frames(superres_run):
    config = json.loads((superres_run / "config.json").read_text())["run"]
    assert config["model"] == "superres_window" and config["scale"] == 2
    accumulator = EventAccumulator(
        str(superres_run / "logs" / "validation"), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    assert {"epoch_psnr", "epoch_ssim"} <= set(accumulator.Tags()["tensors"])
    samples = EventAccumulator(str(superres_run / "logs" / "samples"), size_guidance={"tensors": 0})
    samples.Reload()
    assert samples.Tags()["tensors"] == ["restored/input_output_target"]
    image = samples.Tensors("restored/input_output_target")
    assert len(image) == 2


def test_evaluate_reports_model_and_baseline_on_the_same_clips(superres_run, video_folder):
    done = vlm_tf("evaluate", superres_run, video_folder, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["task"] == "superres" and report["scale"] == 2 and report["num_videos"] == 12
    assert report["baseline"]["name"] == "bicubic" and set(report["baselines"]) == {"bicubic"}
    # Two epochs from a bicubic start: near bicubic, whatever side of it.
    assert abs(report["psnr"] - report["baseline"]["psnr"]) < 3.0
    text = vlm_tf("evaluate", superres_run, video_folder)
    assert "bicubic (x2)" in text.stdout and "(best baseline)" in text.stdout


@pytest.mark.slow
def test_apply_writes_a_real_video_twice_the_size(superres_run, video_folder, tmp_path):
    source = sorted(video_folder.glob("*.mp4"))[0]
    out = tmp_path / "restored.mp4"
    done = vlm_tf("apply", superres_run, source, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    frames = read_frames(out)
    assert frames.shape == (FRAMES, 2 * SIZE, 2 * SIZE, 3)
    side = tmp_path / "side.mp4"
    done = vlm_tf("apply", superres_run, source, "--out", side, "--side-by-side", "--degrade")
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_frames(side).shape == (FRAMES, SIZE, 2 * SIZE, 3)
    assert "against the original: PSNR" in done.stdout and "bicubic" in done.stdout


def test_apply_and_train_fail_in_one_line(superres_run, video_folder, tmp_path):
    assert_one_line_error(
        vlm_tf("apply", superres_run, tmp_path / "missing.mp4", "--out", tmp_path / "o.mp4"),
        "missing.mp4",
    )
    assert_one_line_error(
        vlm_tf(
            "train",
            video_folder,
            "--task",
            "denoise",
            "--model",
            "superres_window",
            "--out",
            tmp_path / "r",
        ),
        "superres_window",
        "denoise models",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(
        vlm_tf("train", empty, "--task", "enhance", "--out", tmp_path / "r2"),
        str(empty),
        "no video files",
    )


def test_evaluate_skips_a_corrupt_video_and_scores_the_rest(superres_run, video_folder, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for source in sorted(video_folder.glob("*.mp4"))[:3]:
        (folder / source.name).write_bytes(source.read_bytes())
    (folder / "broken.mp4").write_bytes(b"not a video")
    done = vlm_tf("evaluate", superres_run, folder, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["num_videos"] == 3 and [item["path"] for item in report["skipped"]] == [
        str(folder / "broken.mp4")
    ]


@pytest.mark.slow
def test_restorer_exports_and_serves_clips_of_any_size_in_plain_tensorflow(superres_run, tmp_path):
    from vlm_tf.inference import load_run, restore_frames

    done = vlm_tf("export", superres_run, "--out", tmp_path / "saved_model")
    assert done.returncode == 0, done.stderr[-3000:]
    frames = np.random.default_rng(0).integers(0, 256, (6, 12, 20, 3), dtype=np.uint8)
    served = call_signature_in_subprocess(str(tmp_path / "saved_model"), frames=frames)["restored"]
    assert served.dtype == np.uint8 and served.shape == (6, 24, 40, 3)
    expected = restore_frames(load_run(superres_run).model, frames)
    assert np.abs(served.astype(int) - expected.astype(int)).max() <= 1


# The acceptance runs (slow): one small dataset, each task's default model.
# Denoising starts slowest (8 epochs left it at 27.0 dB, under non-local
# means' 28.3; 20 epochs passed it in PSNR, not in SSIM).
ACCEPTANCE_VIDEOS_PER_CLASS = 30
ACCEPTANCE_EPOCHS = {"denoise": 30, "superres": 8, "enhance": 8}
ACCEPTANCE_SIZE = 32


@pytest.fixture(scope="module")
def acceptance_data(tmp_path_factory):
    from vlm_tf.data.synthetic import write_dataset

    data = tmp_path_factory.mktemp("restoration_acceptance") / "data"
    write_dataset(
        data,
        videos_per_class=ACCEPTANCE_VIDEOS_PER_CLASS,
        num_frames=16,
        size=ACCEPTANCE_SIZE,
        seed=2,
    )
    return data


@pytest.mark.slow
@pytest.mark.parametrize("task", ["denoise", "superres", "enhance"])
def test_restoration_beats_its_classical_baseline(task, acceptance_data, tmp_path):
    """The issue's acceptance: on held-out videos each task's model beats the best classical method
    in PSNR and SSIM.
    """
    from vlm_tf.inference import evaluate_restoration, load_run
    from vlm_tf.models.registry import default_model
    from vlm_tf.training import RunConfig, train

    config = RunConfig(
        model=default_model(task),
        epochs=ACCEPTANCE_EPOCHS[task],
        image_size=ACCEPTANCE_SIZE,
        seed=0,
    )
    run = train(acceptance_data, tmp_path / task, config, verbose=0)
    report = evaluate_restoration(load_run(run.run_dir), acceptance_data / "test")
    assert report["num_videos"] == len(list((acceptance_data / "test").glob("*/*.mp4")))
    assert report["psnr"] > report["baseline"]["psnr"], report
    assert report["ssim"] > report["baseline"]["ssim"], report
