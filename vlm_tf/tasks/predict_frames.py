"""Next-frame prediction (§3.4): the text's CNN + RNN + GAN fusion, made a predictor of a clip's
next frames.

The model observes the first half of each clip and predicts the second
(`vlm_tf.models.adversarial.FramePredictionGAN`: squared error plus a small
adversarial term); the predictor with the best validation PSNR is the
run's `model.keras`. TensorBoard gets, every epoch, predicted frames under
the true ones. `evaluate` scores PSNR and SSIM next to copying the last
observed frame; `write_predicted_video` writes a video's continuation.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from vlm_tf.data.decode import read_frames, write_video
from vlm_tf.data.pipeline import video_dataset_from_directory
from vlm_tf.export import export_frame_predictor
from vlm_tf.metrics.image import as_pixels, frame_scores
from vlm_tf.models.adversarial import FramePredictionGAN
from vlm_tf.models.registry import get_model_spec
from vlm_tf.models.video_gan import build_video_discriminator
from vlm_tf.tasks.base import Report, skipped_lines
from vlm_tf.tasks.generate import GENERATED_FPS, SAMPLE_CLIPS, AdversarialTask
from vlm_tf.tasks.tensorboard import EpochImages
from vlm_tf.visualize import clip_montage


@dataclasses.dataclass(eq=False)
class PredictionReport(Report):
    """`evaluate`'s report on a fusion run (`evaluate_prediction`)."""

    psnr: float
    ssim: float
    baseline: dict
    psnr_by_step: list
    baseline_psnr_by_step: list
    num_videos: int
    observed_frames: int
    predicted_frames: int
    image_size: list
    skipped: list

    def lines(self):
        return [
            f"next {self.predicted_frames} frames after {self.observed_frames} observed, "
            f"{self.num_videos} videos",
            f"  model            PSNR {self.psnr:6.2f} dB  SSIM {self.ssim:.3f}",
            f"  copy last frame  PSNR {self.baseline['psnr']:6.2f} dB  SSIM "
            f"{self.baseline['ssim']:.3f}",
            "  PSNR by step ahead: " + " ".join(f"{v:.1f}" for v in self.psnr_by_step),
            *skipped_lines(self.skipped),
        ]


class PredictFramesTask(AdversarialTask):
    monitor = "val_psnr"
    saved_part = "predictor"
    # Prediction needs one frame period between frames (the GAN learns the
    # clips a classifier sees: segments spanning the whole video).
    sampling = "random_consecutive"

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        data = super().make_data(
            train, val, cache=cache, distribution=distribution, first_epoch=first_epoch
        )
        data.extras["sample_clips"] = np.concatenate(
            [clips.numpy() for clips, _ in data.validation.take(1)]
        )[:SAMPLE_CLIPS]
        return data

    def build_model(self, data):
        config = self.config
        observed = config.num_frames // 2
        if observed < 1:
            raise ValueError(
                "the fusion model needs clips of at least 2 frames (half observed, half "
                f"predicted), received num_frames={config.num_frames}"
            )
        predictor = get_model_spec(config.model).build(
            observed_frames=observed,
            predicted_frames=config.num_frames - observed,
            image_size=self.image_size,
        )
        discriminator = build_video_discriminator(
            num_classes=None, num_frames=config.num_frames, image_size=self.image_size
        )
        return FramePredictionGAN(predictor, discriminator)

    def picture_callbacks(self, model, data, log_dir):
        return [PredictedFrames(data.extras["sample_clips"], os.path.join(log_dir, "samples"))]

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        self.refuse_views(run, views)
        return evaluate_prediction(run, data_dir, strict=strict)

    def export(self, run, path):
        export_frame_predictor(run.model, path)
        size = run.config.image_size
        return (
            f"serving_default takes uint8 frames (batch, {run.model.input_shape[1]}, {size}, "
            f"{size}, 3), returns the next {run.model.output_shape[1]}"
        )


class PredictedFrames(EpochImages):
    """Each epoch, for a few validation clips: the observed frames, then the true next frames above
    the predicted ones.
    """

    def __init__(self, clips, log_dir):
        super().__init__(log_dir)
        self.clips = clips

    def images(self, epoch, logs):
        observed_frames = self.model.observed_frames
        observed, future = (
            self.clips[:, :observed_frames],
            self.clips[:, observed_frames : observed_frames + self.model.predicted_frames],
        )
        predicted = np.asarray(self.model.predictor(observed, training=False))
        images = {}
        for k in range(len(self.clips)):
            top = clip_montage(
                np.concatenate([observed[k], future[k]]),
                max_frames=len(observed[k]) + len(future[k]),
            )
            bottom = clip_montage(
                np.concatenate([observed[k], predicted[k]]),
                max_frames=len(observed[k]) + len(predicted[k]),
            )
            images[f"predicted/{k}"] = np.concatenate([top, bottom], axis=0)
        return images


# --- using a finished run ---


def evaluate_prediction(run, data_dir, *, strict=False, batch_size=None):
    """PSNR and SSIM of a fusion run's predicted frames against the true ones, next to the
    copy-last-frame baseline.

    Every video in `data_dir/<class>/<video>` gives one clip: its first
    `observed + predicted` frames, at the run's frame size. The model sees
    the first `observed`; its next `predicted` frames, rounded to uint8 as a
    video would store them, are compared with the true ones, frame by frame
    (`tf.image.psnr`, `tf.image.ssim` with its default 11×11 Gaussian
    window, on RGB in [0, 255]). The baseline repeats the last observed
    frame. Figures are means over every predicted frame; `psnr_by_step` is
    the mean PSNR k frames ahead.
    """
    run.require("predict_frames", "evaluate_prediction")
    observed, predicted = run.model.input_shape[1], run.model.output_shape[1]
    dataset = video_dataset_from_directory(
        data_dir,
        num_frames=observed + predicted,
        image_size=run.image_size,
        batch_size=batch_size or run.config.batch_size,
        shuffle=False,
        sampling="consecutive",
        strict=strict,
    )
    scores = {"model": ([], []), "baseline": ([], [])}
    for clips, _ in dataset:
        clips = clips.numpy()
        seen, truth = clips[:, :observed], clips[:, observed:]
        guesses = {
            "model": as_pixels(run.model(seen, training=False)),
            "baseline": np.repeat(seen[:, -1:], predicted, axis=1),
        }
        for name, guess in guesses.items():
            psnr, ssim = frame_scores(guess, truth)
            scores[name][0].append(psnr)
            scores[name][1].append(ssim)
    (psnr, ssim), (base_psnr, base_ssim) = (
        (np.concatenate(p), np.concatenate(q)) for p, q in scores.values()
    )
    return PredictionReport(
        psnr=float(psnr.mean()),
        ssim=float(ssim.mean()),
        baseline={
            "name": "copy_last_frame",
            "psnr": float(base_psnr.mean()),
            "ssim": float(base_ssim.mean()),
        },
        psnr_by_step=psnr.mean(axis=0).tolist(),
        baseline_psnr_by_step=base_psnr.mean(axis=0).tolist(),
        num_videos=int(len(psnr)),
        observed_frames=int(observed),
        predicted_frames=int(predicted),
        image_size=list(run.image_size),
        skipped=dataset.skipped,
    )


def predict_next_frames(run, path):
    """A fusion run on one video: its first frames at the run's size, the frames predicted after
    them, and the true ones (as many as the video has).

    Returns uint8 `(observed, predicted, truth)`; `truth` may be shorter than
    `predicted`, or empty, when the video ends.
    """
    run.require("predict_frames", "predict_next_frames")
    observed, predicted = run.model.input_shape[1], run.model.output_shape[1]
    frames = read_frames(path, None, run.image_size)
    if len(frames) < observed:
        raise ValueError(f"{os.fspath(path)}: {len(frames)} frames; this model observes {observed}")
    seen = frames[:observed]
    guess = as_pixels(run.model(seen[None].astype(np.float32), training=False))[0].astype(np.uint8)
    return seen, guess, frames[observed : observed + predicted]


def write_predicted_video(run, path, out, *, side_by_side=False, fps=GENERATED_FPS):
    """Writes `out`: the observed frames of `path`, then the predicted ones (with `side_by_side`,
    each frame as truth | model).

    Returns the frame counts and, when the video has the frames to compare
    with, the PSNR of the prediction and of copying the last frame.
    """
    seen, guess, truth = predict_next_frames(run, path)
    if side_by_side:
        # Where the video has ended, its side stays black.
        truth_padded = np.zeros_like(guess)
        truth_padded[: len(truth)] = truth
        frames = np.concatenate(
            [np.concatenate([seen, seen], axis=2), np.concatenate([truth_padded, guess], axis=2)]
        )
    else:
        frames = np.concatenate([seen, guess])
    write_video(out, frames, fps=fps)
    result = {"observed_frames": len(seen), "predicted_frames": len(guess)}
    if len(truth):
        result["psnr"] = float(frame_scores(guess[None, : len(truth)], truth[None])[0].mean())
        result["baseline_psnr"] = float(
            frame_scores(np.repeat(seen[None, -1:], len(truth), axis=1), truth[None])[0].mean()
        )
    return result
