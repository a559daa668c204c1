"""Picture and sound (§8.1 ③): `vlm-tf train DATA --task audio_visual` classifies clips by their
frames and their sound track together (`vlm_tf.models.audio_visual`).

The label is a video's class folder; with `--label-attribute NAME` it is the folder joined by `+`
to the attribute NAME in the JSON file beside the video. On a folder that `make-data --task
multimodal` wrote, `--label-attribute sound` makes the task neither modality solves alone: the
motion is the folder (the picture shows all of it; the sound only its up, down, grow and shrink,
through pitch and loudness) and the timbre is the attribute (only the sound has it), 24 classes.

The whole clip is seen and heard: frames are taken evenly across each video, and the sound
track is decoded whole (`vlm_tf.data.audio`), cut or padded with silence to the length most
training videos have (`audio.json` in the run folder). A video without a sound track is heard as
silence, the rule `read_audio` documents; training refuses a folder in which no video has sound.
Clips are cropped at random and nothing else: a flip would swap a left-moving object's picture
without its sound.

`evaluate` reports the fused accuracy and an ablation: each modality's own head (`video_only`,
`audio_only`), and the fused answer with the sound silenced (`fused_without_audio`) or the picture
blanked (`fused_without_picture`).
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np

from vlm_tf import atomic
from vlm_tf.data.audio import DEFAULT_SAMPLE_RATE, read_audio, read_sound
from vlm_tf.data.names import check_name
from vlm_tf.data.pipeline import make_clip_dataset
from vlm_tf.data.splits import list_videos, probe_files, readable_videos
from vlm_tf.export import export_audio_visual

# Registers the model's layers, which a run's model.keras names.
from vlm_tf.models import audio_visual as _model  # noqa: F401
from vlm_tf.models.registry import get_model_spec
from vlm_tf.tasks.base import (
    Report,
    Task,
    TaskData,
    evenly_spaced_clips,
    skipped_lines,
    skipped_of,
)

AUDIO_FILE = "audio.json"
OUTPUTS = ("fused", "video", "audio")
# The uni-modal heads' share of the loss, beside the fused head's 1.
UNIMODAL_WEIGHT = 0.5


def labelled_videos(folder, label_attribute=None):
    """`(paths, labels)` of the videos under `folder`'s class folders: the folder's name, joined
    by `+` to the `label_attribute` of the JSON file beside the video when one is named (a
    one-line error for a video without it).
    """
    paths, labels = list_videos(folder), []
    for path in paths:
        label = os.path.basename(os.path.dirname(path))
        if label_attribute is not None:
            meta_path = os.path.splitext(path)[0] + ".json"
            try:
                with open(meta_path, encoding="utf-8") as f:
                    value = json.load(f)["attributes"][label_attribute]
            except (OSError, ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{meta_path}: expected a JSON file with attributes.{label_attribute} beside "
                    f"{os.path.basename(path)} (--label-attribute {label_attribute}; `vlm-tf "
                    "make-data OUT --task multimodal` writes such files)"
                ) from None
            label = f"{label}+{check_name(str(value), source=meta_path, what=label_attribute)}"
        labels.append(label)
    return paths, labels


def known_videos(paths, labels, class_names):
    """`(paths, labels, skipped)`: the videos whose label is one of `class_names`, and a
    `{"path", "reason"}` for each other (a rare combination no training video had).
    """
    kept = [(path, label) for path, label in zip(paths, labels) if label in class_names]
    skipped = [
        {"path": path, "reason": f"its label {label} is not among the run's labels"}
        for path, label in zip(paths, labels)
        if label not in class_names
    ]
    return [path for path, _ in kept], [label for _, label in kept], skipped


class AudioVisualTask(Task):
    monitor = "val_fused_accuracy"
    caches = True

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        label_attribute = self.options.label_attribute
        paths, labels = labelled_videos(train, label_attribute)
        class_names = sorted(set(labels))
        sound, has_sound = read_sound(paths, DEFAULT_SAMPLE_RATE)
        if not has_sound.any():
            raise ValueError(
                f"{train}: no video has a sound track; audio_visual learns from picture and sound "
                "(`vlm-tf make-data OUT --task multimodal` writes videos with sound)"
            )
        train_ds = self.clips(
            paths, labels, sound, class_names, cache=cache, first_epoch=first_epoch
        )
        val_paths, val_labels, unknown = known_videos(
            *labelled_videos(val, label_attribute), class_names
        )
        val_sound = read_sound(val_paths, DEFAULT_SAMPLE_RATE, sound.shape[1])[0]
        val_ds = self.clips(val_paths, val_labels, val_sound, class_names, cache=cache)
        return TaskData(
            train_ds,
            val_ds,
            class_names,
            train_ds.num_clips,
            train_ds.steps_per_pass,
            skipped_of(train_ds, val_ds) + unknown,
            endless=True,
            extras={"num_samples": sound.shape[1], "sample_rate": DEFAULT_SAMPLE_RATE},
        )

    def clips(self, paths, labels, sound, class_names, *, cache=None, first_epoch=None):
        """Batches `({"frames", "audio"}, {"fused", "video", "audio"} labels)` of the readable
        videos among `paths`, each with its row of `sound`.
        """
        import tensorflow as tf

        training = first_epoch is not None
        readable, counts, skipped = readable_videos(paths)
        row_of = {path: row for row, path in enumerate(paths)}
        rows = [row_of[path] for path in readable]
        clips = make_clip_dataset(
            readable,
            rows,
            counts,
            class_names=[str(row) for row in range(len(paths))],
            num_frames=self.config.num_frames,
            image_size=self.image_size,
            batch_size=self.config.batch_size,
            shuffle=training,
            seed=self.config.seed,
            # Frames across the whole video, as the sound is the whole track.
            sampling_mode="uniform",
            augment="crop" if training else False,
            cache=cache,
            first_pass=first_epoch,
        )
        sound_table = tf.constant(sound, tf.float32)
        label_table = tf.constant([class_names.index(label) for label in labels], tf.int32)

        def pair(frames, row):
            label = tf.gather(label_table, row)
            return (
                {"frames": frames, "audio": tf.gather(sound_table, row)},
                {name: label for name in OUTPUTS},
            )

        dataset = clips.map(pair)
        dataset.skipped, dataset.failed, dataset.num_clips = skipped, clips.failed, len(rows)
        dataset.steps_per_pass = getattr(clips, "steps_per_pass", None)
        return dataset

    def build_model(self, data):
        return get_model_spec(self.config.model).build(
            num_classes=len(data.class_names),
            num_samples=data.extras["num_samples"],
            sample_rate=data.extras["sample_rate"],
            num_frames=self.config.num_frames,
            image_size=self.image_size,
            init=self.options.init,
            fusion=self.options.fusion,
            modality_dropout=self.options.modality_dropout,
            seed=self.config.seed,
        )

    def compile(self, model, make_optimizer, jit_compile):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(
            optimizer=make_optimizer(),
            loss={name: loss for name in OUTPUTS},
            loss_weights={"fused": 1.0, "video": UNIMODAL_WEIGHT, "audio": UNIMODAL_WEIGHT},
            metrics={name: ["accuracy"] for name in OUTPUTS},
            jit_compile=jit_compile,
        )

    def finish(self, run_dir, model, data, best_path):
        write_audio_settings(run_dir, data.extras["num_samples"], data.extras["sample_rate"])

    def describe_result(self, summary):
        return (
            f"validation accuracy {summary.get('val_fused_accuracy', float('nan')):.3f} fused, "
            f"{summary.get('val_video_accuracy', float('nan')):.3f} picture alone, "
            f"{summary.get('val_audio_accuracy', float('nan')):.3f} sound alone"
        )

    # --- a finished run ---

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        self.refuse_views(run, views)
        test = os.path.join(data_dir, "test")
        folder = test if os.path.isdir(test) else data_dir
        paths, labels, unknown = known_videos(
            *labelled_videos(folder, self.options.label_attribute), run.class_names
        )
        if not paths:
            raise ValueError(
                f"{folder}: no video there has one of the run's labels "
                f"({', '.join(run.class_names)})"
            )
        truth = np.array([run.class_names.index(label) for label in labels])
        num_samples, sample_rate = audio_settings(run)
        sound = read_sound(paths, sample_rate, num_samples)[0]
        readable, counts, unreadable = readable_videos(paths, strict=strict)
        row_of = {path: row for row, path in enumerate(paths)}
        clips = make_clip_dataset(
            readable,
            [row_of[path] for path in readable],
            counts,
            class_names=[str(row) for row in range(len(paths))],
            num_frames=run.config.num_frames,
            image_size=run.image_size,
            batch_size=run.config.batch_size,
        )
        # Each batch three times: as it is, with the sound silenced, with the picture blanked.
        found = {name: [] for name in ("fused", "video", "audio", "silenced", "blanked")}
        rows = []
        for frames, row in clips:
            row = np.asarray(row)
            audio = sound[row]
            full = _logits(run, frames, audio)
            for name in OUTPUTS:
                found[name].append(full[name].argmax(axis=1))
            found["silenced"].append(_logits(run, frames, np.zeros_like(audio))["fused"].argmax(1))
            blank = np.zeros_like(np.asarray(frames))
            found["blanked"].append(_logits(run, blank, audio)["fused"].argmax(axis=1))
            rows.append(row)
        rows = np.concatenate(rows)
        accuracy = {
            name: float(np.mean(np.concatenate(answers) == truth[rows]))
            for name, answers in found.items()
        }
        return AudioVisualReport(
            num_videos=len(rows),
            skipped=(unknown + unreadable) or None,
            fusion=self.options.fusion,
            accuracy=accuracy["fused"],
            ablation={
                "video_only": accuracy["video"],
                "audio_only": accuracy["audio"],
                "fused": accuracy["fused"],
                "fused_without_audio": accuracy["silenced"],
                "fused_without_picture": accuracy["blanked"],
            },
        )

    def predict(self, run, paths, *, top=3):
        """Label and probabilities for each video, from its picture and sound; a video without a
        sound track is answered from its picture alone, with a `note` saying so.
        """
        num_samples, sample_rate = audio_settings(run)
        results = []
        for path in paths:
            _, skipped = probe_files([path])
            if skipped:
                results.append({"path": os.fspath(path), "error": skipped[0]["reason"]})
                continue
            track = read_audio(path, sample_rate=sample_rate, seconds=num_samples / sample_rate)
            logits = _logits(run, _frames(run, [path]), track.samples[None])["fused"][0]
            probabilities = np.exp(logits - logits.max())
            probabilities /= probabilities.sum()
            order = np.argsort(probabilities)[::-1][:top]
            result = {
                "path": os.fspath(path),
                "label": run.class_names[order[0]],
                "top": [
                    {"label": run.class_names[k], "probability": float(probabilities[k])}
                    for k in order
                ],
                "probabilities": dict(zip(run.class_names, map(float, probabilities))),
            }
            if not track.has_sound:
                result["note"] = (
                    f"{os.fspath(path)} has no sound track: answered from its picture alone "
                    "(heard as silence)"
                )
            results.append(result)
        return results

    def export(self, run, path):
        num_samples, _ = audio_settings(run)
        export_audio_visual(run.model, path, class_names=run.class_names, num_samples=num_samples)
        return (
            f"serving_default takes uint8 frames (batch, time, height, width, 3) and float32 audio "
            f"(batch, {num_samples}) in [-1, 1] (silence for a clip without sound); returns "
            "probabilities, class_index and class_name"
        )


def write_audio_settings(run_dir, num_samples, sample_rate):
    """Writes what a run's model hears, `audio.json`: its samples a clip and their rate."""
    atomic.write_json(
        os.path.join(run_dir, AUDIO_FILE), {"sample_rate": sample_rate, "num_samples": num_samples}
    )


def audio_settings(run):
    """`(num_samples, sample_rate)` the run's model hears (`audio.json`)."""
    settings = atomic.read_json(os.path.join(run.run_dir, AUDIO_FILE))
    return int(settings["num_samples"]), int(settings["sample_rate"])


def _frames(run, paths):
    """`(N, T, H, W, 3)` float32 clips of `paths` (a few: they are held in memory)."""
    return np.concatenate([np.asarray(frames) for frames, _ in evenly_spaced_clips(run, paths)[1]])


def _logits(run, frames, sound):
    """The model's logits `{"fused", "video", "audio"}` for a batch of clips and their sound."""
    # A functional model takes a dict of tensors, not a mix of tensors and arrays.
    inputs = {"frames": frames, "audio": sound}
    outputs = run.model({k: keras.ops.convert_to_tensor(v) for k, v in inputs.items()})
    return {name: np.asarray(outputs[name], np.float32) for name in OUTPUTS}


@dataclasses.dataclass
class AudioVisualReport(Report):
    num_videos: int
    fusion: str
    accuracy: float
    ablation: dict
    skipped: list | None = None

    OPTIONAL = ("skipped",)

    def lines(self):
        a = self.ablation
        return skipped_lines(self.skipped or []) + [
            f"{self.num_videos} videos, {self.fusion} fusion: accuracy {self.accuracy:.3f}",
            f"  picture alone {a['video_only']:.3f}, sound alone {a['audio_only']:.3f}; fused "
            f"with the sound silenced {a['fused_without_audio']:.3f}, with the picture blanked "
            f"{a['fused_without_picture']:.3f}",
        ]
