"""Restoration (chapter 6: §6.4 enhancement, §6.6 super-resolution, §6.7 denoising) on any folder of
videos.

Training pairs are made on the fly (`vlm_tf.data.restoration`): a clean
clip is read, degraded with a seeded draw, and the model learns to give
back the clean centre frame of each window, by squared error on [0, 255]
pixels with PSNR and SSIM as metrics; the epoch with the best validation
PSNR becomes `model.keras`. `evaluate` scores the run next to the classical
baselines (`vlm_tf.baselines`) on the same degraded clips; `apply` restores
a whole video at its own size.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

# The restorer's layers, registered for loading an `--init` run's model.keras.
import vlm_tf.layers  # noqa: F401
from vlm_tf import atomic, baselines
from vlm_tf.data.decode import probe_video, read_frames, write_video
from vlm_tf.data.degrade import degrade
from vlm_tf.data.restoration import centre_targets, restoration_pairs, sliding_windows
from vlm_tf.data.splits import list_videos, video_split
from vlm_tf.export import export_restorer
from vlm_tf.metrics.image import as_pixels, frame_scores, psnr, ssim
from vlm_tf.models.presets import RUN_MODEL_FILE, describe_init, find_init
from vlm_tf.models.registry import RESTORATION_TASKS, get_model_spec
from vlm_tf.tasks.base import Report, Task, TaskData, skipped_lines, skipped_of
from vlm_tf.tasks.tensorboard import EpochImages
from vlm_tf.visualize import clip_montage, enlarge

SAMPLE_CLIPS = 4
# Windows restored per model call when a whole video is restored.
RESTORE_BATCH = 16
# Frames per second of a written video whose input did not say.
DEFAULT_FPS = 10.0


@dataclasses.dataclass(eq=False)
class RestorationReport(Report):
    """`evaluate`'s report on a denoise, superres or enhance run (`evaluate_restoration`)."""

    task: str
    psnr: float
    ssim: float
    # The best classical baseline by PSNR, and all of them (`{"psnr", "ssim", "setting"?}` by name).
    baseline: dict
    baselines: dict
    num_videos: int
    frames: int
    image_size: list
    window: int
    skipped: list
    # The degraded frames' own scores (not for super-resolution, whose frames are smaller).
    degraded: dict | None = None
    scale: int | None = None
    noise_sigma: float | None = None

    OPTIONAL = ("degraded", "scale", "noise_sigma")

    def lines(self):
        detail = {
            "denoise": f"noise σ {self.noise_sigma or 0:g} + shot noise",
            "superres": f"×{self.scale}",
            "enhance": "dark, flat, tinted",
        }[self.task]
        lines = [
            f"{self.task} ({detail}): {self.num_videos} videos, {self.frames} frames each, window "
            f"of {self.window}"
        ]
        rows = [("model", {"psnr": self.psnr, "ssim": self.ssim})]
        if self.degraded is not None:
            rows.append(("degraded input", self.degraded))
        rows += [
            (f"{name} ({scores['setting']})" if scores.get("setting") else name, scores)
            for name, scores in self.baselines.items()
        ]
        width = max(len(name) for name, _ in rows)
        for name, scores in rows:
            best = "  (best baseline)" if name.split(" ")[0] == self.baseline["name"] else ""
            lines.append(
                f"  {name:<{width}}  PSNR {scores['psnr']:6.2f} dB  SSIM {scores['ssim']:.3f}{best}"
            )
        return lines + skipped_lines(self.skipped)


@dataclasses.dataclass(eq=False)
class RestoredVideoReport(Report):
    """`apply`'s report on a restored video (`write_restored_video`); with `--degrade`, the
    result's scores against the original and the best classical baseline's.
    """

    out: str
    frames: int
    input_size: list
    output_size: list
    side_by_side: bool
    psnr: float | None = None
    ssim: float | None = None
    # {"name", "setting", "psnr", "ssim"}
    baseline: dict | None = None

    OPTIONAL = ("psnr", "ssim", "baseline")

    def lines(self):
        (height, width), (out_height, out_width) = self.input_size, self.output_size
        lines = [
            f"{self.out}: {self.frames} frames, {height}x{width} in, {out_height}x{out_width} "
            f"out{' (input | output)' if self.side_by_side else ''}"
        ]
        if self.psnr is not None:
            base = self.baseline
            lines.append(
                f"against the original: PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.3f} "
                f"({base['name']}: {base['psnr']:.2f} dB, {base['ssim']:.3f})"
            )
        return lines


class RestoreTask(Task):
    monitor = "val_psnr"

    @property
    def scale(self):
        """The run's upscaling factor: `--scale` for super-resolution, 1 for the others."""
        return self.options.scale if self.name == "superres" else 1

    def split(self, data_dir):
        # Any folder of videos will do, class folders or not.
        return video_split(data_dir, seed=self.config.seed)

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        config = self.config
        if config.image_size % self.options.scale:
            raise ValueError(
                f"image_size {config.image_size} does not divide by scale {self.options.scale}"
            )
        window = get_model_spec(config.model).kwargs["window"]
        common = dict(
            task=self.name,
            num_frames=window,
            image_size=self.image_size,
            batch_size=config.batch_size,
            seed=config.seed,
            scale=self.options.scale,
            noise_sigma=self.options.noise_sigma,
        )
        train_ds = restoration_pairs(train, training=True, first_epoch=first_epoch, **common)
        val_ds = restoration_pairs(val, **common)
        degraded, clean = next(iter(centre_targets(val_ds)))
        skipped = skipped_of(train_ds, val_ds)
        num_files = len(train_ds.file_paths)
        return TaskData(
            centre_targets(train_ds),
            centre_targets(val_ds),
            [],
            num_files,
            train_ds.steps_per_pass,
            skipped,
            endless=True,
            extras={
                "degraded": degraded.numpy()[:SAMPLE_CLIPS],
                "clean": clean.numpy()[:SAMPLE_CLIPS],
            },
        )

    def check_config(self):
        init = self.options.init
        if init is None:
            return
        # From the source's JSON, before the run folder is made.
        about = describe_init(init)
        kind = about["kind"]
        if kind != "run" or about["model_name"] != self.config.model:
            raise ValueError(
                f"{init}: a {about['model_name']} {'run' if kind == 'run' else 'backbone'}; this "
                f"run trains {self.config.model}, and a restorer starts from a restorer of the "
                "same model (`vlm-tf presets`)"
            )
        if self.name == "superres" and about["scale"] != self.scale:
            raise ValueError(
                f"{init}: a x{about['scale']} restorer; this run's --scale is {self.scale} (set "
                f"--scale {about['scale']})"
            )

    def build_model(self, data):
        if self.options.init is None:
            return get_model_spec(self.config.model).build(scale=self.scale)
        # A restorer has no head to replace: the whole model goes on learning (`check_config`
        # made sure it is this run's model and scale).
        _, folder = find_init(self.options.init)
        return atomic.load_model(os.path.join(folder, RUN_MODEL_FILE))

    def compile(self, model, make_optimizer, jit_compile):
        model.compile(
            optimizer=make_optimizer(),
            loss="mean_squared_error",
            metrics=[psnr, ssim],
            jit_compile=jit_compile,
        )

    def picture_callbacks(self, model, data, log_dir):
        return [
            RestoredFrames(
                data.extras["degraded"], data.extras["clean"], os.path.join(log_dir, "samples")
            )
        ]

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        self.refuse_views(run, views)
        return evaluate_restoration(run, data_dir, strict=strict)

    def apply(self, run, video, out, *, side_by_side=False, degrade=False, seed=0):
        return RestoredVideoReport(
            out=os.fspath(out),
            side_by_side=side_by_side,
            **write_restored_video(
                run, video, out, degrade_first=degrade, side_by_side=side_by_side, seed=seed
            ),
        )

    def export(self, run, path):
        export_restorer(run.model, path)
        return (
            "serving_default takes one clip's uint8 frames (time, height, width, 3), returns them "
            "restored"
        )


class RestoredFrames(EpochImages):
    """Each epoch, for a few validation windows: the degraded centre frame | the model's | the clean
    one, in TensorBoard.
    """

    def __init__(self, degraded, clean, log_dir):
        super().__init__(log_dir)
        self.degraded = degraded
        self.clean = clean

    def images(self, epoch, logs):
        size = self.clean.shape[1:3]
        restored = np.clip(np.round(np.asarray(self.model(self.degraded, training=False))), 0, 255)
        centre = self.degraded[:, self.degraded.shape[1] // 2]
        rows = [
            clip_montage(
                np.stack(
                    [
                        enlarge(centre[k : k + 1], size)[0],
                        restored[k].astype(np.uint8),
                        self.clean[k].astype(np.uint8),
                    ]
                )
            )
            for k in range(len(self.clean))
        ]
        return {"restored/input_output_target": np.concatenate(rows, axis=0)}


# --- using a finished run ---


def restore_frames(model, frames):
    """Every frame of a degraded clip `(T, h, w, 3)` restored from the window centred on it: uint8
    `(T, h·s, w·s, 3)`.
    """
    windows = sliding_windows(np.asarray(frames, np.float32), model.input_shape[1])
    restored = [
        model(windows[k : k + RESTORE_BATCH], training=False)
        for k in range(0, len(windows), RESTORE_BATCH)
    ]
    return as_pixels(np.concatenate(restored)).astype(np.uint8)


def _scores(restored, clean):
    psnr, ssim = frame_scores(restored[None], clean[None])
    return psnr[0], ssim[0]


def evaluate_restoration(run, data_dir, *, strict=False, batch_size=None):
    """PSNR and SSIM of a restoration run on every video under `data_dir`, next to the classical
    baselines on the same clips.

    Each video gives one clip: its first `num_frames` frames (the run's
    `--frames`) at the run's frame size, degraded as in training with a
    fixed seed (`vlm_tf.data.restoration.restoration_pairs`). The model
    restores every frame from the window centred on it (`restore_frames`);
    each baseline of `vlm_tf.baselines.candidates`, at the setting that
    suits the first batch best (`vlm_tf.baselines.choose_settings`),
    restores the same degraded frames. Scores are means over every frame (`tf.image.psnr`,
    `tf.image.ssim` on RGB in [0, 255], after rounding to uint8).
    `baseline` is the best baseline by PSNR; `baselines` holds them all,
    and `degraded` the score of the degraded frames themselves (not for
    super-resolution, whose frames are smaller).
    """
    run.require(RESTORATION_TASKS, "evaluate_restoration")
    config, options = run.config, run.config.options
    dataset = restoration_pairs(
        list_videos(data_dir),
        task=run.task,
        num_frames=config.num_frames,
        image_size=run.image_size,
        scale=options.scale,
        noise_sigma=options.noise_sigma,
        batch_size=batch_size or config.batch_size,
        seed=config.seed,
        strict=strict,
    )
    methods = None
    scores = {}
    for degraded_batch, clean_batch in dataset:
        degraded_batch, clean_batch = degraded_batch.numpy().astype(np.uint8), clean_batch.numpy()
        if methods is None:
            # Each baseline at its best setting, chosen on the first batch.
            methods = baselines.choose_settings(
                baselines.candidates(run.task, scale=options.scale), degraded_batch, clean_batch
            )
        for degraded, clean in zip(degraded_batch, clean_batch):
            guesses = {
                "model": restore_frames(run.model, degraded),
                **{name: function(degraded) for name, (_, function) in methods.items()},
            }
            if run.task != "superres":
                guesses["degraded"] = degraded
            for name, guess in guesses.items():
                psnr, ssim = _scores(guess, clean)
                scores.setdefault(name, ([], []))
                scores[name][0].append(psnr)
                scores[name][1].append(ssim)
    means = {
        name: {"psnr": float(np.concatenate(p).mean()), "ssim": float(np.concatenate(q).mean())}
        for name, (p, q) in scores.items()
    }
    for name, (setting, _) in methods.items():
        if setting:
            means[name]["setting"] = setting
    model = means.pop("model")
    degraded = means.pop("degraded", None)
    best = max(means, key=lambda name: means[name]["psnr"])
    return RestorationReport(
        task=run.task,
        psnr=model["psnr"],
        ssim=model["ssim"],
        baseline={"name": best, **means[best]},
        baselines=means,
        num_videos=len(dataset.file_paths),
        frames=int(config.num_frames),
        image_size=list(run.image_size),
        window=int(run.model.input_shape[1]),
        skipped=dataset.skipped,
        degraded=degraded,
        scale=int(options.scale) if run.task == "superres" else None,
        noise_sigma=float(options.noise_sigma) if run.task == "denoise" else None,
    )


def write_restored_video(
    run, path, out, *, degrade_first=False, side_by_side=False, seed=0, fps=None
):
    """Restores every frame of the video at `path` (at its own size) and writes the result to `out`.

    With `degrade_first`, the video is first degraded the way the run was
    trained (to see what the model does to a clean video of one's own);
    the report then has the PSNR and SSIM of the result against the
    original, and of the task's best classical baseline. With
    `side_by_side`, each written frame is input | output (a smaller input
    enlarged by repeating pixels). `fps` defaults to the input's.
    """
    run.require(RESTORATION_TASKS, "restoring a video")
    info = probe_video(path)
    frames = read_frames(path)
    scale = run.config.options.scale if run.task == "superres" else 1
    report = {"frames": len(frames), "input_size": list(frames.shape[1:3])}
    if degrade_first:
        clean = frames
        if scale > 1:
            height, width = (n - n % scale for n in frames.shape[1:3])
            clean = frames[:, :height, :width]
        degraded = degrade(
            clean[None].astype(np.float32),
            [seed, 0],
            run.task,
            scale=scale,
            noise_sigma=run.config.options.noise_sigma,
        )
        frames = np.asarray(degraded[0]).astype(np.uint8)
    restored = restore_frames(run.model, frames)
    report["output_size"] = list(restored.shape[1:3])
    if degrade_first:
        psnr, ssim = _scores(restored, clean)
        report.update(psnr=float(psnr.mean()), ssim=float(ssim.mean()))
        best = None
        for name, (setting, method) in baselines.choose_settings(
            baselines.candidates(run.task, scale=scale), [frames], [clean]
        ).items():
            base_psnr, base_ssim = _scores(method(frames), clean)
            if best is None or base_psnr.mean() > best["psnr"]:
                best = {
                    "name": name,
                    "setting": setting,
                    "psnr": float(base_psnr.mean()),
                    "ssim": float(base_ssim.mean()),
                }
        report["baseline"] = best
    if side_by_side:
        shown = enlarge(frames, restored.shape[1:3])
        restored = np.concatenate([shown, restored], axis=2)
    write_video(out, restored, fps=fps or info.fps or DEFAULT_FPS)
    return report
