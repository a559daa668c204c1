"""Training the chapter-6 restoration models: denoising, super-resolution, enhancement.

Training pairs are made on the fly from any folder of videos
(`restoration_pairs`): a clean clip is read, degraded by
`vlm_tf.data.degrade` with a seeded draw, and the model learns to give back
the clean centre frame of each window. Fresh noise every epoch in training;
the same degradation on every pass in validation and evaluation.
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic
from vlm_tf.data.degrade import degrade
from vlm_tf.data.pipeline import VIDEO_EXTENSIONS, list_video_files, make_clip_dataset, probe_files
from vlm_tf.models.registry import RESTORATION_TASKS, get_model_spec
from vlm_tf.training import config as run_files
from vlm_tf.training.callbacks import ResumableBackup, SaveModel, TrainingThroughput, clip_montage
from vlm_tf.training.gan import capped_psnr
from vlm_tf.training.fit import VALIDATION_FALLBACK_SPLIT, TrainResult, best_validation_accuracy, make_optimizer, write_run_header
from vlm_tf.training.runtime import jit_compile_argument

SAMPLE_CLIPS = 4


def list_videos(directory):
    """Every video file under `directory`, at any depth, sorted (class folders are welcome but not needed)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such directory (expected a folder of videos)")
    paths = list_video_files(directory)
    if not paths:
        raise ValueError(f"{directory}: no video files found (expected files ending in one of {', '.join(VIDEO_EXTENSIONS)})")
    return paths


def video_split(data_dir, seed=0):
    """`(train_paths, val_paths)`: DATA_DIR/train and DATA_DIR/val; without val/, 20 % of train/; without train/, 20 % of every video under DATA_DIR.

    DATA_DIR/test is never used for validation, as for the classifiers.
    """
    data_dir = os.fspath(data_dir)
    train_dir, val_dir = os.path.join(data_dir, "train"), os.path.join(data_dir, "val")
    if os.path.isdir(train_dir) and os.path.isdir(val_dir):
        return list_videos(train_dir), list_videos(val_dir)
    paths = list_videos(train_dir if os.path.isdir(train_dir) else data_dir)
    order = np.random.default_rng(seed).permutation(len(paths))
    held = int(round(VALIDATION_FALLBACK_SPLIT * len(paths)))
    if held == 0 or held == len(paths):
        raise ValueError(f"{data_dir}: {len(paths)} video(s) cannot be split into training and validation; add videos or a val/ folder")
    return [paths[i] for i in sorted(order[held:])], [paths[i] for i in sorted(order[:held])]


def restoration_pairs(paths, *, task, num_frames, image_size, scale, noise_sigma, batch_size=8, training=False, seed=0, strict=False):
    """Batches of `(degraded, clean)` clips, `(B, T, h, w, 3)` and `(B, T, H, W, 3)`, from the videos at `paths`.

    In training each video gives a run of `num_frames` neighbouring frames
    from a random start, with a new degradation every epoch; otherwise the
    first `num_frames` and one fixed degradation (seeded by `seed`), so
    every evaluation sees the same pairs. Unreadable files are skipped
    (listed in the dataset's `skipped`) unless `strict`.
    """
    counts, skipped = probe_files(paths, strict=strict)
    readable = [(path, count) for path, count in zip(paths, counts) if count > 0]
    if not readable:
        raise ValueError(f"none of the {len(paths)} video(s) could be read; first: {skipped[0]['path']} ({skipped[0]['reason']})")
    clips = make_clip_dataset(
        [path for path, _ in readable],
        [0] * len(readable),
        [count for _, count in readable],
        class_names=["videos"],
        num_frames=num_frames,
        image_size=image_size,
        batch_size=batch_size,
        shuffle=training,
        seed=seed,
        sampling_mode="random_consecutive" if training else "consecutive",
        strict=strict,
    )
    # One degradation seed per batch, new each epoch only in training.
    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=training).batch(2)

    def pair(batch, degradation_seed):
        clean = batch[0]
        return degrade(clean, degradation_seed, task, scale=scale, noise_sigma=noise_sigma), clean

    dataset = tf.data.Dataset.zip(clips, seeds).map(pair, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    dataset.file_paths = [path for path, _ in readable]
    dataset.skipped = skipped
    return dataset


def sliding_windows(frames, window):
    """`(T, h, w, 3)` → `(T, window, h, w, 3)`: for every frame, the window of frames centred on it, the first and last frame repeated past the ends."""
    frames = tf.convert_to_tensor(frames)
    reach = window // 2
    padded = tf.concat([tf.repeat(frames[:1], reach, axis=0), frames, tf.repeat(frames[-1:], reach, axis=0)], axis=0)
    return tf.signal.frame(padded, window, 1, axis=0)


def centre_targets(dataset):
    """`(degraded window, clean window)` → `(degraded window, clean centre frame)`: what a restorer is trained on."""

    def centre(degraded, clean):
        return degraded, clean[:, clean.shape[1] // 2]

    return dataset.map(centre)


@keras.saving.register_keras_serializable(package="vlm_tf")
def psnr(y_true, y_pred):
    """PSNR in dB of each restored frame, pixels in [0, 255] (`tf.image.psnr`, an exact match capped as in `capped_psnr`), after rounding as a video file would."""
    return capped_psnr(tf.clip_by_value(tf.round(y_pred), 0.0, 255.0), tf.cast(y_true, tf.float32))


@keras.saving.register_keras_serializable(package="vlm_tf")
def ssim(y_true, y_pred):
    """SSIM of each restored frame (`tf.image.ssim`, 11×11 Gaussian window), after rounding."""
    return tf.image.ssim(tf.clip_by_value(tf.round(y_pred), 0.0, 255.0), y_true, max_val=255.0)


def _display(frames, size):
    """Frames of any size shown at `size` (nearest neighbour, so a small input's pixels stay visible)."""
    return tf.cast(tf.image.resize(frames, size, method="nearest"), tf.uint8).numpy()


class RestoredFrames(keras.callbacks.Callback):
    """Each epoch, for a few validation windows: the degraded centre frame | the model's | the clean one, in TensorBoard."""

    def __init__(self, degraded, clean, log_dir):
        super().__init__()
        self.degraded = degraded
        self.clean = clean
        self.log_dir = log_dir

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        size = self.clean.shape[1:3]
        restored = np.clip(np.round(np.asarray(self.model(self.degraded, training=False))), 0, 255)
        centre = self.degraded[:, self.degraded.shape[1] // 2]
        rows = [clip_montage(np.stack([_display(centre[k : k + 1], size)[0], restored[k].astype(np.uint8), self.clean[k].astype(np.uint8)])) for k in range(len(self.clean))]
        with self.writer.as_default():
            tf.summary.image("restored/input_output_target", np.concatenate(rows, axis=0)[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


def build_restorer(config):
    """The run's restorer, with the upscaling factor of a super-resolution run."""
    spec = get_model_spec(config.model)
    return spec.build(scale=config.scale if spec.task == "superres" else 1)


def train_restoration(data_dir, run_dir, config, train_paths, val_paths, resumed, verbose, extras):
    """Trains a denoise, superres or enhance model of a resolved `config` on the videos of `video_split` into `run_dir` (called by `vlm_tf.training.train`).

    Squared error on [0, 255] pixels, with PSNR and SSIM as metrics; the
    checkpoint with the best validation PSNR becomes `model.keras`.
    """
    spec = get_model_spec(config.model)
    if spec.task not in RESTORATION_TASKS:
        raise ValueError(f"{config.model!r} is a {spec.task} model, not a restoration model")
    if config.image_size % config.scale:
        raise ValueError(f"image_size {config.image_size} does not divide by scale {config.scale}")
    model = build_restorer(config)
    window = model.input_shape[1]
    common = dict(task=spec.task, num_frames=window, image_size=(config.image_size, config.image_size), batch_size=config.batch_size, seed=config.seed, scale=config.scale, noise_sigma=config.noise_sigma)
    train_ds = restoration_pairs(train_paths, training=True, **common)
    val_ds = restoration_pairs(val_paths, **common)
    write_run_header(run_dir, data_dir, config, [])
    model.compile(
        optimizer=make_optimizer(config, -(-len(train_ds.file_paths) // config.batch_size)),
        loss="mean_squared_error",
        metrics=[psnr, ssim],
        jit_compile=jit_compile_argument(config.jit),
    )
    degraded, clean = next(iter(centre_targets(val_ds)))
    log_dir = os.path.join(run_dir, run_files.LOG_DIR)
    best_path = os.path.join(run_dir, run_files.BEST_CHECKPOINT)
    model_path = os.path.join(run_dir, run_files.MODEL_FILE)
    backup = ResumableBackup(os.path.join(run_dir, run_files.BACKUP_DIR))
    run_files.trim_history(run_dir, backup.saved_epoch())
    callbacks = [
        TrainingThroughput(len(train_ds.file_paths)),
        SaveModel(best_path, monitor="val_psnr", initial_value=best_validation_accuracy(run_dir, "val_psnr")),
        keras.callbacks.CSVLogger(os.path.join(run_dir, run_files.HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(log_dir, write_graph=False),
        RestoredFrames(degraded.numpy()[:SAMPLE_CLIPS], clean.numpy()[:SAMPLE_CLIPS], os.path.join(log_dir, "samples")),
        *extras.callbacks,
        backup,
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(centre_targets(train_ds), validation_data=centre_targets(val_ds), epochs=config.epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    atomic.copy_file(best_path, model_path)
    backup.discard()
    rows = run_files.read_history(run_dir)
    summary = dict(max(rows, key=lambda row: row.get("val_psnr", 0.0))) if rows else {}
    summary.pop("epoch", None)
    return TrainResult(
        run_dir=run_dir,
        model_path=model_path,
        best_val_accuracy=None,
        epochs_run=len(history.history.get("loss", [])),
        resumed=resumed,
        skipped=train_ds.skipped + [s for s in val_ds.skipped if s not in train_ds.skipped],
        summary=summary,
    )
