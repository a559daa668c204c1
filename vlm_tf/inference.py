"""Using a finished run: load it, evaluate it on a folder, predict single videos, generate clips, predict next frames, restore videos."""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np

# Registers vlm_tf's custom layers, which model.keras files refer to by name.
import vlm_tf.layers  # noqa: F401
from vlm_tf import baselines
from vlm_tf.data import sampling
from vlm_tf.data.decode import VideoReadError, probe_video, read_frames, resize_frame, write_video
from vlm_tf.data.detection import draw_boxes
from vlm_tf.data.degrade import degrade
from vlm_tf.data.pipeline import index_directory, video_dataset_from_directory
from vlm_tf.data.views import view_dataset_from_directory
from vlm_tf.models.detection import detect_clip
from vlm_tf.models.registry import RESTORATION_TASKS, get_model_spec
from vlm_tf.tracking import clear_mot, mean_average_precision, mota
from vlm_tf.training import config as run_files
from vlm_tf.training.config import RunConfig
from vlm_tf.training.detect import BASELINE_FILE, TRACKING_FILE, annotated_videos, score_detections, track_clip, tracking_counts
from vlm_tf.training.gan import frame_quality
# Registers the restoration metrics a restorer's model.keras was compiled with.
from vlm_tf.training.restore import list_videos, restoration_pairs, sliding_windows


@dataclasses.dataclass
class Run:
    run_dir: str
    config: RunConfig
    class_names: list
    model: keras.Model

    @property
    def image_size(self):
        return (self.config.image_size, self.config.image_size)

    @property
    def task(self):
        """`classify`, `generate`, `predict_frames`, `denoise`, `superres` or `enhance` (`vlm_tf.models.registry.TASKS`)."""
        return get_model_spec(self.config.model).task

    def require(self, task, doing):
        """Raises a one-line ValueError unless the run's model does `task` (a task, or a tuple of tasks any of which will do)."""
        tasks = (task,) if isinstance(task, str) else tuple(task)
        if self.task not in tasks:
            wanted = tasks[0] if len(tasks) == 1 else f"{', '.join(tasks[:-1])} or {tasks[-1]}"
            raise ValueError(f"{self.run_dir} is a {self.config.model} run ({self.task}); {doing} needs a {wanted} run")


def load_run(run_dir):
    """Loads `RUN_DIR/model.keras` with its config and class names."""
    run_dir = os.fspath(run_dir)
    model_path = os.path.join(run_dir, run_files.MODEL_FILE)
    config_path = os.path.join(run_dir, run_files.CONFIG_FILE)
    for path in (config_path, model_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: not found (is {run_dir} a finished `vlm-tf train` run?)")
    saved = run_files.read_json(config_path)
    return Run(run_dir, RunConfig.from_dict(saved["run"]), list(saved["class_names"]), keras.models.load_model(model_path))


def check_class_folders(run, data_dir):
    """Raises a one-line ValueError if `data_dir` has a class folder the run's model does not know: its videos could only be scored wrong."""
    unknown = sorted(set(index_directory(data_dir)[2]) - set(run.class_names))
    if unknown:
        raise ValueError(f"{data_dir}: class folder(s) {', '.join(unknown)} are not classes of this model ({', '.join(run.class_names)})")


@dataclasses.dataclass
class DirectoryPredictions:
    paths: list
    # True class indices, in `class_names` order.
    labels: np.ndarray
    # `(N, K)`: each video's probabilities, averaged over its views.
    probabilities: np.ndarray
    skipped: list
    clips: int
    crops: int


def predict_directory(run, data_dir, *, clips=1, crops=1, strict=False, batch_size=None):
    """Class probabilities of a classifier run for every video in `data_dir/<class>/<video>`, averaged over `clips` × `crops` views.

    The views are `vlm_tf.data.views`': clips spread over each segment of
    the video, the whole frame and then corner and centre crops. One of
    each is the evaluation clip `evaluate_directory` has always scored.
    Unreadable files are skipped and listed in `skipped` (or, with
    `strict=True`, the first one raises `VideoReadError`).
    """
    run.require("classify", "evaluate_directory")
    check_class_folders(run, data_dir)
    dataset = view_dataset_from_directory(
        data_dir,
        class_names=run.class_names,
        num_frames=run.config.num_frames,
        image_size=run.image_size,
        clips=clips,
        crops=crops,
        batch_size=batch_size or run.config.batch_size,
        strict=strict,
    )
    paths, labels, probabilities = [], [], []
    for views, batch_labels, batch_paths in dataset:
        # All views of a batch in one call: (B, V, T, ...) → (B·V, T, ...) → (B, V, K).
        flat = np.asarray(run.model(np.reshape(views, (-1, *views.shape[2:])), training=False), np.float32)
        probabilities.append(flat.reshape(views.shape[0], views.shape[1], -1).mean(axis=1))
        labels.append(batch_labels.numpy())
        paths += [path.decode() for path in batch_paths.numpy()]
    num_classes = len(run.class_names)
    return DirectoryPredictions(
        paths,
        np.concatenate(labels) if labels else np.zeros(0, np.int32),
        np.concatenate(probabilities) if probabilities else np.zeros((0, num_classes), np.float32),
        dataset.skipped,
        int(clips),
        int(crops),
    )


def evaluate_directory(run, data_dir, *, strict=False, batch_size=None, clips=1, crops=1):
    """Accuracy, per-class accuracy and the confusion matrix of `run` on `data_dir/<class>/<video>`.

    Each video is predicted from `clips` × `crops` views, probabilities
    averaged (`predict_directory`); the default, one clip of the whole
    frames, is the clip the run validated on. Unreadable files are skipped
    and listed in `skipped` (or, with `strict=True`, the first one raises
    `VideoReadError`).

    Returns:
        A JSON-ready dict: `accuracy`, `num_videos`, `per_class`
        (`{class: {"accuracy", "num_videos"}}`), `confusion_matrix` (rows:
        true class, columns: predicted, in `class_names` order),
        `class_names`, `views` (`{"clips", "crops"}`) and `skipped`
        (`[{"path", "reason"}]`).
    """
    predictions = predict_directory(run, data_dir, clips=clips, crops=crops, strict=strict, batch_size=batch_size)
    num_classes = len(run.class_names)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (predictions.labels, np.argmax(predictions.probabilities, axis=-1)), 1)
    totals = confusion.sum(axis=1)
    return {
        "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "num_videos": int(confusion.sum()),
        "per_class": {
            name: {"accuracy": float(confusion[k, k] / totals[k]) if totals[k] else None, "num_videos": int(totals[k])}
            for k, name in enumerate(run.class_names)
        },
        "confusion_matrix": confusion.tolist(),
        "class_names": run.class_names,
        "views": {"clips": predictions.clips, "crops": predictions.crops},
        "skipped": predictions.skipped,
    }


def read_clip(path, *, num_frames, image_size):
    """One clip of `path` as a model sees it at evaluation: uniform sampling, float32 [0, 255]."""
    # One decoding pass: every frame at model size, then the clip's indices.
    frames = read_frames(path, None, image_size)
    return frames[sampling.uniform_indices(len(frames), num_frames).numpy()].astype(np.float32)


def predict_videos(run, paths, *, top=3):
    """Label and probabilities for each of `paths`; an unreadable one gets an `error` instead."""
    results = []
    for path in paths:
        try:
            clip = read_clip(path, num_frames=run.config.num_frames, image_size=run.image_size)
        except VideoReadError as error:
            results.append({"path": os.fspath(path), "error": error.reason})
            continue
        probabilities = np.asarray(run.model(clip[None], training=False))[0]
        order = np.argsort(probabilities)[::-1][:top]
        results.append({
            "path": os.fspath(path),
            "label": run.class_names[order[0]],
            "top": [{"label": run.class_names[k], "probability": float(probabilities[k])} for k in order],
            "probabilities": {name: float(p) for name, p in zip(run.class_names, probabilities)},
        })
    return results


# --- generation (gan runs) --------------------------------------------------------

# Frames per second of written clips: the synthetic dataset's rate.
GENERATED_FPS = 10.0


def generate_clips(run, labels, *, seed=0):
    """Clips of a `gan` run for each of `labels` (class indices), from seeded noise: uint8 `(N, T, H, W, 3)`."""
    run.require("generate", "generating clips")
    labels = np.asarray(labels, np.int32).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= len(run.class_names)):
        raise ValueError(f"labels must be class indices in [0, {len(run.class_names)}), received {labels.min()}..{labels.max()}")
    latent_dim = run.model.input_shape[0][-1]
    noise = np.random.default_rng(seed).normal(size=(len(labels), latent_dim)).astype(np.float32)
    clips = run.model.predict([noise, labels], batch_size=32, verbose=0)
    return np.round(np.clip(clips, 0, 255)).astype(np.uint8)


def write_generated_videos(run, out_dir, *, per_class, seed=0, fps=GENERATED_FPS, extension=".mp4"):
    """Writes `per_class` generated clips of every class as `out_dir/<class>/generated_NNNN<extension>`.

    The layout is a dataset's, so `vlm-tf evaluate CLASSIFIER_RUN out_dir`
    scores the clips with a classifier. Class k's clips come from the noise
    stream `(seed, k)`: asking for more clips adds to a class without
    changing the ones already written by the same seed. Returns the paths.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ValueError(f"{out_dir} already exists and is not empty; choose another folder")
    if int(per_class) < 1:
        raise ValueError(f"per_class must be a positive integer, received {per_class!r}")
    paths = []
    for label, name in enumerate(run.class_names):
        clips = generate_clips(run, np.full(per_class, label), seed=[seed, label])
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
        for index, clip in enumerate(clips):
            paths.append(write_video(os.path.join(out_dir, name, f"generated_{index:04d}{extension}"), clip, fps=fps))
    return paths


def clip_features(run, data_dir, *, batch_size=None):
    """Feature vectors of a classifier run for every clip in `data_dir/<class>/<video>`: the input of its output layer, `(N, F)`.

    This is the feature space of `frechet_distance`; for the default model
    it is the LSTM's last state (64 values).
    """
    run.require("classify", "clip_features")
    probe = keras.Model(run.model.inputs, feature_layer(run.model).output)
    dataset = video_dataset_from_directory(
        data_dir, num_frames=run.config.num_frames, image_size=run.image_size, batch_size=batch_size or run.config.batch_size, shuffle=False
    )
    return np.concatenate([np.asarray(probe(clips, training=False), np.float64) for clips, _ in dataset])


def frechet_distance(features_a, features_b):
    """‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½) between Gaussians fitted to two sets of feature vectors `(N, F)`.

    tr (Σa Σb)^½ is the sum of the square roots of the eigenvalues of
    Σa^½ Σb Σa^½, a symmetric matrix with the same eigenvalues as Σa Σb, so
    no general matrix square root (and no SciPy) is needed.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two sets of at least 2 feature vectors of the same length, received shapes {a.shape} and {b.shape}")
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sigma_b @ root_a), 0.0, None)).sum()
    return float(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * cross)


def score_generated(classifier_run, generated_dir, real_dir, *, reference_dir=None):
    """How well a classifier trained on real clips recognises generated ones, and how far apart the two sets are.

    Returns the classifier's `evaluate_directory` report on `generated_dir`
    with `frechet_distance` (generated vs `real_dir`, in the classifier's
    feature space) added and, given `reference_dir` (other real clips, e.g.
    the test split against the training split), `reference_frechet_distance`:
    the distance two real samples already have, the floor to compare with.
    """
    report = evaluate_directory(classifier_run, generated_dir)
    real = clip_features(classifier_run, real_dir)
    report["frechet_distance"] = frechet_distance(real, clip_features(classifier_run, generated_dir))
    if reference_dir is not None:
        report["reference_frechet_distance"] = frechet_distance(real, clip_features(classifier_run, reference_dir))
    report["feature_layer"] = feature_layer(classifier_run.model).name
    return report


def feature_layer(model):
    """The layer whose output the classifier's `output_layer` reads (`lstm1` in the default model)."""
    features = model.get_layer("output_layer").input
    return next(layer for layer in model.layers if layer.output is features)


# --- next-frame prediction (fusion runs) -------------------------------------------


def _frame_quality(predicted, truth):
    return tuple(np.asarray(values) for values in frame_quality(predicted, truth))


def _as_pixels(clips):
    """Model output → what a video file would hold: uint8 values, as float32."""
    return np.round(np.clip(np.asarray(clips), 0, 255)).astype(np.float32)


def evaluate_prediction(run, data_dir, *, strict=False, batch_size=None):
    """PSNR and SSIM of a fusion run's predicted frames against the true ones, next to the copy-last-frame baseline.

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
        guesses = {"model": _as_pixels(run.model(seen, training=False)), "baseline": np.repeat(seen[:, -1:], predicted, axis=1)}
        for name, guess in guesses.items():
            psnr, ssim = _frame_quality(guess, truth)
            scores[name][0].append(psnr)
            scores[name][1].append(ssim)
    (psnr, ssim), (base_psnr, base_ssim) = ((np.concatenate(p), np.concatenate(q)) for p, q in scores.values())
    return {
        "psnr": float(psnr.mean()),
        "ssim": float(ssim.mean()),
        "baseline": {"name": "copy_last_frame", "psnr": float(base_psnr.mean()), "ssim": float(base_ssim.mean())},
        "psnr_by_step": psnr.mean(axis=0).tolist(),
        "baseline_psnr_by_step": base_psnr.mean(axis=0).tolist(),
        "num_videos": int(len(psnr)),
        "observed_frames": int(observed),
        "predicted_frames": int(predicted),
        "image_size": list(run.image_size),
        "skipped": dataset.skipped,
    }


def predict_next_frames(run, path):
    """A fusion run on one video: its first frames at the run's size, the frames predicted after them, and the true ones (as many as the video has).

    Returns uint8 `(observed, predicted, truth)`; `truth` may be shorter than
    `predicted`, or empty, when the video ends.
    """
    run.require("predict_frames", "predict_next_frames")
    observed, predicted = run.model.input_shape[1], run.model.output_shape[1]
    frames = read_frames(path, None, run.image_size)
    if len(frames) < observed:
        raise ValueError(f"{os.fspath(path)}: {len(frames)} frames; this model observes {observed}")
    seen = frames[:observed]
    guess = _as_pixels(run.model(seen[None].astype(np.float32), training=False))[0].astype(np.uint8)
    return seen, guess, frames[observed : observed + predicted]


def write_predicted_video(run, path, out, *, side_by_side=False, fps=GENERATED_FPS):
    """Writes `out`: the observed frames of `path`, then the predicted ones (with `side_by_side`, each frame as truth | model).

    Returns the frame counts and, when the video has the frames to compare
    with, the PSNR of the prediction and of copying the last frame.
    """
    seen, guess, truth = predict_next_frames(run, path)
    if side_by_side:
        # Where the video has ended, its side stays black.
        truth_padded = np.zeros_like(guess)
        truth_padded[: len(truth)] = truth
        frames = np.concatenate([np.concatenate([seen, seen], axis=2), np.concatenate([truth_padded, guess], axis=2)])
    else:
        frames = np.concatenate([seen, guess])
    write_video(out, frames, fps=fps)
    result = {"observed_frames": len(seen), "predicted_frames": len(guess)}
    if len(truth):
        result["psnr"] = float(_frame_quality(guess[None, : len(truth)], truth[None])[0].mean())
        result["baseline_psnr"] = float(_frame_quality(np.repeat(seen[None, -1:], len(truth), axis=1), truth[None])[0].mean())
    return result


# --- restoration (denoise, superres and enhance runs) ---------------------------------

# Windows restored per model call when a whole video is restored.
RESTORE_BATCH = 16


def restore_frames(model, frames):
    """Every frame of a degraded clip `(T, h, w, 3)` restored from the window centred on it: uint8 `(T, h·s, w·s, 3)`."""
    windows = sliding_windows(np.asarray(frames, np.float32), model.input_shape[1])
    restored = [model(windows[k : k + RESTORE_BATCH], training=False) for k in range(0, len(windows), RESTORE_BATCH)]
    return _as_pixels(np.concatenate(restored)).astype(np.uint8)


def _scores(restored, clean):
    psnr, ssim = _frame_quality(restored[None], clean[None])
    return psnr[0], ssim[0]


def evaluate_restoration(run, data_dir, *, strict=False, batch_size=None):
    """PSNR and SSIM of a restoration run on every video under `data_dir`, next to the classical baselines on the same clips.

    Each video gives one clip: its first `num_frames` frames (the run's
    `--frames`) at the run's frame size, degraded as in training with a
    fixed seed (`vlm_tf.training.restore.restoration_pairs`). The model
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
    config = run.config
    dataset = restoration_pairs(
        list_videos(data_dir),
        task=run.task,
        num_frames=config.num_frames,
        image_size=run.image_size,
        scale=config.scale,
        noise_sigma=config.noise_sigma,
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
            methods = baselines.choose_settings(baselines.candidates(run.task, scale=config.scale), degraded_batch, clean_batch)
        for degraded, clean in zip(degraded_batch, clean_batch):
            guesses = {"model": restore_frames(run.model, degraded), **{name: function(degraded) for name, (_, function) in methods.items()}}
            if run.task != "superres":
                guesses["degraded"] = degraded
            for name, guess in guesses.items():
                psnr, ssim = _scores(guess, clean)
                scores.setdefault(name, ([], []))
                scores[name][0].append(psnr)
                scores[name][1].append(ssim)
    means = {name: {"psnr": float(np.concatenate(p).mean()), "ssim": float(np.concatenate(q).mean())} for name, (p, q) in scores.items()}
    for name, (setting, _) in methods.items():
        if setting:
            means[name]["setting"] = setting
    model = means.pop("model")
    degraded = means.pop("degraded", None)
    best = max(means, key=lambda name: means[name]["psnr"])
    report = {
        "task": run.task,
        "psnr": model["psnr"],
        "ssim": model["ssim"],
        "baseline": {"name": best, **means[best]},
        "baselines": means,
        "num_videos": len(dataset.file_paths),
        "frames": int(config.num_frames),
        "image_size": list(run.image_size),
        "window": int(run.model.input_shape[1]),
        "skipped": dataset.skipped,
    }
    if degraded is not None:
        report["degraded"] = degraded
    if run.task == "superres":
        report["scale"] = int(config.scale)
    elif run.task == "denoise":
        report["noise_sigma"] = float(config.noise_sigma)
    return report


def write_restored_video(run, path, out, *, degrade_first=False, side_by_side=False, seed=0, fps=None):
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
    scale = run.config.scale if run.task == "superres" else 1
    report = {"frames": len(frames), "input_size": list(frames.shape[1:3])}
    if degrade_first:
        clean = frames
        if scale > 1:
            height, width = (n - n % scale for n in frames.shape[1:3])
            clean = frames[:, :height, :width]
        degraded = degrade(clean[None].astype(np.float32), [seed, 0], run.task, scale=scale, noise_sigma=run.config.noise_sigma)
        frames = np.asarray(degraded[0]).astype(np.uint8)
    restored = restore_frames(run.model, frames)
    report["output_size"] = list(restored.shape[1:3])
    if degrade_first:
        psnr, ssim = _scores(restored, clean)
        report.update(psnr=float(psnr.mean()), ssim=float(ssim.mean()))
        best = None
        for name, (setting, method) in baselines.choose_settings(baselines.candidates(run.task, scale=scale), [frames], [clean]).items():
            base_psnr, base_ssim = _scores(method(frames), clean)
            if best is None or base_psnr.mean() > best["psnr"]:
                best = {"name": name, "setting": setting, "psnr": float(base_psnr.mean()), "ssim": float(base_ssim.mean())}
        report["baseline"] = best
    if side_by_side:
        shown = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)
        restored = np.concatenate([shown, restored], axis=2)
    write_video(out, restored, fps=fps or info.fps or GENERATED_FPS)
    return report


# --- detection and tracking (§6.2) ---------------------------------------------------

def score_threshold(run):
    """The detection score above which a detect run's boxes are tracked and drawn, chosen on its validation videos (`RUN_DIR/tracking.json`)."""
    return float(run_files.read_json(os.path.join(run.run_dir, TRACKING_FILE))["score_threshold"])


def detect_video(run, frames, *, threshold=None):
    """Detects and tracks objects in one video's RGB frames `(T, H, W, 3)` of any size.

    The frames are resized to the run's size for the model and the boxes
    scaled back. Returns one dict per frame: `boxes` `(K, 4)` in the
    frames' pixels, `scores`, `classes` (indices into `run.class_names`),
    best first, every candidate; and `tracked`, the indices of those at
    least `threshold` confident (the run's `score_threshold` by default)
    and not overlapping a better one by more than half, with `track_ids`,
    their identities (`vlm_tf.training.detect.track_clip`).
    """
    run.require("detect", "detect_video")
    frames = np.asarray(frames)
    height, width = frames.shape[1:3]
    resized = np.stack([resize_frame(frame, run.image_size) for frame in frames])
    scale = np.array([width / run.image_size[1], height / run.image_size[0]] * 2, np.float32)
    detections = [(boxes * scale, scores, classes) for boxes, scores, classes in detect_clip(run.model, resized, len(run.class_names))]
    tracks = track_clip(detections, score_threshold(run) if threshold is None else threshold)
    return [{"boxes": boxes, "scores": scores, "classes": classes, "tracked": kept, "track_ids": ids} for (boxes, scores, classes), (kept, ids) in zip(detections, tracks)]


def evaluate_detection(run, data_dir, *, strict=False):
    """mAP@0.5, mean IoU, ID switches and MOTA of a detect run on every annotated video under `data_dir`, next to the background-subtraction baseline's.

    Each whole video is scored at its own size against its box file
    (`vlm_tf.data.detection`). `map50` is PASCAL VOC's all-point AP at IoU
    0.5 averaged over classes; `map50_agnostic` the same with classes
    ignored (how well boxes are found at all: the fair comparison for a
    background model, which only guesses classes from shapes);
    `mean_iou` the IoU of the true positives; `id_switches` and `mota`
    CLEAR MOT's identity switches and tracking accuracy of the tracks
    (`vlm_tf.tracking`), over all videos, from `misses` and
    `false_positives` out of `object_frames` (objects summed over frames); `score_threshold` the run's
    threshold for tracked boxes.
    Videos without a readable box file are skipped and listed.
    """
    run.require("detect", "evaluate_detection")
    videos, skipped = annotated_videos(list_videos(data_dir), strict=strict)
    if not videos:
        first = f"; first: {skipped[0]['path']} ({skipped[0]['reason']})" if skipped else ""
        raise ValueError(f"{data_dir}: no video with a readable box file{first}")
    detector = baselines.BackgroundSubtractionDetector.from_dict(run_files.read_json(os.path.join(run.run_dir, BASELINE_FILE)))
    threshold = score_threshold(run)
    detections = {"model": [], "baseline": []}
    counts = {"model": [], "baseline": []}
    truths = []
    for video in videos:
        frames = read_frames(video.path)
        truth = video.truth(run.class_names)
        truths.append(truth)
        results = detect_video(run, frames, threshold=threshold)
        detections["model"].append([(r["boxes"], r["scores"], r["classes"]) for r in results])
        counts["model"].append(clear_mot([(r["boxes"][r["tracked"]], r["track_ids"]) for r in results], [(boxes, ids) for boxes, _, ids in truth]))
        detections["baseline"].append(detector.detect(frames))
        # The background model's boxes are all tracked: it has no score to threshold.
        counts["baseline"].append(tracking_counts(detections["baseline"][-1], truth, 0.0))
    report = {"task": "detect"}
    for name, found in detections.items():
        totals = {key: sum(c[key] for c in counts[name]) for key in counts[name][0]}
        aware = score_detections(found, truths, len(run.class_names))
        agnostic = mean_average_precision(
            [(b, s, np.zeros(len(b), int)) for video in found for b, s, _ in video], [(b, np.zeros(len(b), int)) for video in truths for b, _, _ in video], 1
        )
        scores = {"map50": aware["map"], "map50_agnostic": agnostic["map"], "mean_iou": aware["mean_iou"], "id_switches": totals["id_switches"], "mota": mota(totals),
                  "misses": totals["misses"], "false_positives": totals["false_positives"], "object_frames": totals["objects"],
                  "ap50_per_class": dict(zip(run.class_names, aware["per_class"]))}
        if name == "model":
            report.update(scores, score_threshold=threshold)
        else:
            report["baseline"] = {"name": f"background subtraction ({detector.method}, threshold {detector.threshold:g}) + contour shape", **scores}
    report.update(num_videos=len(videos), num_objects=int(sum(len({i for _, _, ids in t for i in ids}) for t in truths)), skipped=skipped)
    return report


def write_detected_video(run, path, out, *, side_by_side=False, threshold=None, fps=None):
    """Writes the video at `path` with its tracked detections drawn: a box, track ID and class per object, a colour per track.

    Boxes scoring at least `threshold` (the run's `score_threshold` by
    default) are tracked and drawn. With `side_by_side`, each frame is
    input | output. Returns `{"frames", "size", "tracks", "detections"}`.
    """
    run.require("detect", "drawing detections")
    info = probe_video(path)
    frames = read_frames(path)
    results = detect_video(run, frames, threshold=threshold)
    palette = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230]])
    drawn = []
    for frame, result in zip(frames, results):
        kept = result["tracked"]
        captions = [f"{i} {run.class_names[c]}" for i, c in zip(result["track_ids"], result["classes"][kept])]
        colours = [palette[i % len(palette)] for i in result["track_ids"]]
        drawn.append(draw_boxes(frame, result["boxes"][kept], captions, colour=colours) if len(kept) else frame)
    drawn = np.stack(drawn)
    if side_by_side:
        drawn = np.concatenate([frames, drawn], axis=2)
    write_video(out, drawn, fps=fps or info.fps or GENERATED_FPS)
    return {"frames": len(frames), "size": [info.height, info.width], "tracks": len({i for r in results for i in r["track_ids"]}),
            "detections": int(sum(len(r["tracked"]) for r in results))}
