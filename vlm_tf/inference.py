"""Using a finished run: load it, evaluate it on a folder, predict single videos."""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np

# Registers vlm_tf's custom layers, which model.keras files refer to by name.
import vlm_tf.layers  # noqa: F401
from vlm_tf.data import sampling
from vlm_tf.data.decode import VideoReadError, read_frames
from vlm_tf.data.pipeline import index_directory, video_dataset_from_directory
from vlm_tf.training import config as run_files
from vlm_tf.training.config import RunConfig


@dataclasses.dataclass
class Run:
    run_dir: str
    config: RunConfig
    class_names: list
    model: keras.Model

    @property
    def image_size(self):
        return (self.config.image_size, self.config.image_size)


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


def evaluate_directory(run, data_dir, *, strict=False, batch_size=None):
    """Accuracy, per-class accuracy and the confusion matrix of `run` on `data_dir/<class>/<video>`.

    Unreadable files are skipped and listed in `skipped` (or, with
    `strict=True`, the first one raises `VideoReadError`).

    Returns:
        A JSON-ready dict: `accuracy`, `num_videos`, `per_class`
        (`{class: {"accuracy", "num_videos"}}`), `confusion_matrix` (rows:
        true class, columns: predicted, in `class_names` order),
        `class_names` and `skipped` (`[{"path", "reason"}]`).
    """
    folders = set(index_directory(data_dir)[2])
    unknown = sorted(folders - set(run.class_names))
    if unknown:
        raise ValueError(f"{data_dir}: class folder(s) {', '.join(unknown)} are not classes of this model ({', '.join(run.class_names)})")
    dataset = video_dataset_from_directory(
        data_dir,
        class_names=run.class_names,
        num_frames=run.config.num_frames,
        image_size=run.image_size,
        batch_size=batch_size or run.config.batch_size,
        shuffle=False,
        strict=strict,
    )
    num_classes = len(run.class_names)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    # Labels travel with their clips, so a file dropped mid-way cannot
    # misalign predictions and labels.
    for clips, labels in dataset:
        predicted = np.argmax(run.model(clips, training=False), axis=-1)
        np.add.at(confusion, (labels.numpy(), predicted), 1)
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
        "skipped": dataset.skipped,
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
