"""Classification (the text's task, §5.2): name the motion in a clip.

Training reads `DATA_DIR/train/<class>/<video>` and validates on
`DATA_DIR/val` (or 20 % of train), compiled as the text compiles (§5.2.1):
categorical cross-entropy and accuracy. TensorBoard gets the model graph,
input clips and, for models with an attention layer, which frames they
weighed. `evaluate` scores a folder of class folders, optionally averaging
several views of each video; `predict_videos` labels single files;
`score_generated` measures generated clips with a classifier.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from vlm_tf.data import sampling
from vlm_tf.data.decode import VideoReadError, read_frames
from vlm_tf.data.lists import VideoList
from vlm_tf.data.names import check_name
from vlm_tf.data.options import whole_on_every_worker
from vlm_tf.data.splits import evaluation_source, index_directory
from vlm_tf.data.views import view_dataset_from_directory
from vlm_tf.export import export_saved_model
from vlm_tf.metrics.classification import classification_report
from vlm_tf.metrics.privacy import accountant_modules
from vlm_tf.models.attention import attention_layer
from vlm_tf.models.backbone import (
    OUTPUT_LAYER,
    classifier_from_preset,
    save_backbone_preset,
)
from vlm_tf.models.consistency import make_consistent
from vlm_tf.models.registry import build_model
from vlm_tf.tasks.base import Report, Task, TaskData, skipped_lines, skipped_of
from vlm_tf.tasks.local_validation import LocalValidation
from vlm_tf.tasks.options import ROBUST_VIEWS
from vlm_tf.tasks.privacy import PrivacyBudget, privacy_settings, private_model, write_privacy
from vlm_tf.tasks.tensorboard import AttentionMaps, ClipSamples, ExplanationMaps, ModelGraph


@dataclasses.dataclass(eq=False)
class ClassificationReport(Report):
    """`evaluate`'s report on a classify run (`evaluate_directory`); `score_generated` adds the
    Fréchet fields.
    """

    accuracy: float
    # The mean of the per-class accuracies: every class counts alike.
    mean_class_accuracy: float
    num_videos: int
    # `{class: {"accuracy", "num_videos"}}`, accuracy None for a class without videos.
    per_class: dict
    # Rows: true class, columns: predicted, in `class_names` order.
    confusion_matrix: list
    class_names: list
    views: dict
    skipped: list
    # Where there are more than five classes (`classification_report`).
    top5_accuracy: float | None = None
    frechet_distance: float | None = None
    reference_frechet_distance: float | None = None
    feature_layer: str | None = None

    OPTIONAL = ("top5_accuracy", "frechet_distance", "reference_frechet_distance", "feature_layer")

    def lines(self):
        lines = []
        if (self.views["clips"], self.views["crops"]) != (1, 1):
            lines.append(
                f"{self.views['clips']} clip(s) x {self.views['crops']} crop(s) per video, "
                "probabilities averaged"
            )
        lines.append(f"accuracy {self.accuracy:.3f} on {self.num_videos} videos")
        top5 = "" if self.top5_accuracy is None else f", top-5 {self.top5_accuracy:.3f}"
        lines.append(f"mean class accuracy {self.mean_class_accuracy:.3f}{top5}")
        width = max(len(name) for name in self.class_names)
        for name, entry in self.per_class.items():
            accuracy = "   -  " if entry["accuracy"] is None else f"{entry['accuracy']:.3f}"
            lines.append(f"  {name:<{width}}  {accuracy}  ({entry['num_videos']} videos)")
        lines.append("confusion matrix (rows: true class, columns: predicted, in the order above):")
        lines += ["  " + " ".join(f"{v:4d}" for v in row) for row in self.confusion_matrix]
        if self.frechet_distance is not None:
            lines.append(
                f"Fréchet distance to the real clips in the classifier's {self.feature_layer} "
                f"features: {self.frechet_distance:.3f}"
            )
        if self.reference_frechet_distance is not None:
            lines.append(
                "  the same distance between the two real folders: "
                f"{self.reference_frechet_distance:.3f}"
            )
        return lines + skipped_lines(self.skipped)


class ClassifyTask(Task):
    caches = True
    distributes = True
    show_model = True

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0, service=None):
        config = self.config
        workers = distribution.num_workers if distribution is not None else 1
        if distribution is not None and config.batch_size % distribution.num_replicas:
            raise ValueError(
                f"batch_size {config.batch_size} is the global batch and must be a multiple of "
                f"the {distribution.num_replicas} replicas it is split among"
            )
        shard = (workers, distribution.shard_index) if workers > 1 else None
        train_ds, val_ds = self.clip_datasets(
            train,
            val,
            label_mode="categorical",
            cache=cache,
            shard=shard,
            first_epoch=first_epoch,
            views=ROBUST_VIEWS if self.consistent else 1,
            service=service,
        )
        skipped = skipped_of(train_ds, val_ds)
        num_files = len(train_ds.file_paths)
        if workers > 1:
            # Endless, sharded training files: every worker takes this many
            # steps an epoch and validates the whole set itself (LocalValidation).
            steps = train_ds.steps_per_pass
            return TaskData(
                whole_on_every_worker(train_ds),
                None,
                train_ds.class_names,
                steps * config.batch_size,
                steps,
                skipped,
                endless=True,
                extras={"validation": val_ds, "samples": train_ds},
            )
        return TaskData(
            train_ds,
            val_ds,
            train_ds.class_names,
            num_files,
            train_ds.steps_per_pass,
            skipped,
            endless=True,
            # One pass: the endless stream would never end a search for more classes than it has.
            extras={"validation": val_ds, "samples": train_ds.take(train_ds.steps_per_pass)},
        )

    def execution_probe(self, train, val):
        # The dataset's own folder walk: its classes, and a folder without videos refused before any
        # measuring.
        config = self.config
        paths, _, class_names = index_directory(train)
        num_classes = len(class_names)

        def build():
            return build_model(config.model, num_classes=num_classes, image_size=self.image_size)

        # The measurement trains steps: a model that cannot is refused before its batch is made.
        self.check_memory(build())
        rng = np.random.default_rng(config.seed)
        size = config.image_size
        batch = config.batch_size * (ROBUST_VIEWS if self.consistent else 1)
        return dict(
            # Not the number of classes: it sets the width of the last layer only, a sliver of a
            # step, and a dataset of other classes would pay for the measurement again.
            key=f"{config.model}|{config.num_frames}x{size}x{size}|batch {batch}",
            build=build,
            # A consistent run's step passes every view of the batch's clips through the model.
            inputs=rng.uniform(0, 255, (batch, config.num_frames, size, size, 3)).astype("float32"),
            targets=np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, batch)],
            loss="categorical_crossentropy",
            # Validation split off `train/` makes it fewer: enough to tell a short run.
            steps=config.epochs * math.ceil(len(paths) / config.batch_size),
        )

    def check_config(self):
        if self.private:
            # Before any work: a private run that could not state its ε is no use.
            accountant_modules()
        if self.options.init is None:
            return
        frames = self.check_init_fits(self.options.init, model=self.config.model)["num_frames"]
        # A classifier's head is built for its clips' length.
        if frames is not None and frames != self.config.num_frames:
            raise ValueError(
                f"{self.options.init}: its backbone takes clips of {frames} frames; this run's "
                f"are {self.config.num_frames} (set --frames {frames})"
            )

    @property
    def private(self):
        """Whether the run trains by DP-SGD (`vlm_tf.models.private`)."""
        return self.options.dp_l2_clip is not None

    @property
    def consistent(self):
        """Whether the run trains with AugMix's consistency loss (`vlm_tf.models.consistency`)."""
        return self.config.augment == "robust" and self.options.consistency > 0

    @property
    def saved_part(self):
        return "plain" if self.private or self.consistent else None

    def build_model(self, data):
        num_classes = len(data.class_names)
        if self.options.init is None:
            model = build_model(
                self.config.model, num_classes=num_classes, image_size=self.image_size
            )
        else:
            # Checked against the config by `check_config`; a backbone whose JSON says one
            # thing and whose weights another is refused by the loader.
            model = classifier_from_preset(
                self.options.init,
                num_classes=num_classes,
                trainable_backbone=not self.options.linear_probe,
            )
        if self.private:
            return private_model(model, self.options, self.config)
        return make_consistent(model, weight=self.options.consistency) if self.consistent else model

    def compile(self, model, make_optimizer, jit_compile):
        model.compile(
            optimizer=make_optimizer(),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )

    def metric_callbacks(self, data, log_dir):
        # Only where `fit` validates nothing (multi-worker runs): one process
        # validating twice an epoch cost a third of a short epoch.
        callbacks = [LocalValidation(data.extras["validation"])] if data.validation is None else []
        if self.private:
            settings = privacy_settings(self.options, self.config.batch_size, data.num_clips)
            callbacks.append(PrivacyBudget(settings))
        return callbacks

    def finish(self, run_dir, model, data, best_path):
        if self.private:
            settings = privacy_settings(self.options, self.config.batch_size, data.num_clips)
            write_privacy(run_dir, settings, int(model.optimizer.iterations))

    def picture_callbacks(self, model, data, log_dir):
        callbacks = [
            ModelGraph(os.path.join(log_dir, "train")),
            ClipSamples(data.extras["samples"], os.path.join(log_dir, "samples"), data.class_names),
        ]
        if attention_layer(model) is not None:
            callbacks.append(
                AttentionMaps(
                    data.extras["validation"], os.path.join(log_dir, "attention"), data.class_names
                )
            )
        if self.config.options.explain:
            callbacks.append(
                ExplanationMaps(
                    data.extras["validation"],
                    os.path.join(log_dir, "explanations"),
                    data.class_names,
                )
            )
        return callbacks

    def describe_result(self, summary):
        return f"best validation accuracy {summary.get('val_accuracy', 0.0):.3f}"

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        clips, crops = views
        return evaluate_directory(run, data_dir, strict=strict, clips=clips, crops=crops)

    def score_generated(self, run, generated_dir, real_dir, *, reference_dir=None, text_run=None):
        """The classifier's report on the class GAN's clips in `generated_dir`, with their Fréchet
        distance to `real_dir`'s (`vlm_tf.tasks.features.score_generated`).
        """
        from vlm_tf.tasks.features import score_generated

        if text_run is not None:
            raise ValueError(
                "--text-run ranks prompts for an attributes run's score; a classify run scores a "
                "class GAN's clips"
            )
        return score_generated(run, generated_dir, real_dir, reference_dir=reference_dir)

    def export(self, run, path):
        export_saved_model(run.model, path, class_names=run.class_names)
        size = run.config.image_size
        return f"serving_default takes uint8 frames (batch, time, {size}, {size}, 3)"

    def export_preset(self, run, path):
        metadata = {"source_run": os.path.abspath(run.run_dir), "class_names": run.class_names}
        save_backbone_preset(
            run.model,
            path,
            model_name=run.config.model,
            image_size=run.image_size,
            metadata=metadata,
        )
        return f"a {run.config.model} backbone; `vlm-tf train --init {path}` starts from it"


# --- using a finished run ---


def check_class_folders(run, data_dir):
    """Raises a one-line ValueError if `data_dir` has a class folder (a list, a class) the run's
    model does not know: its videos could only be scored wrong, or for a class name that would
    lead out of it.
    """
    # load_run has checked a run folder's names; a Run made in code has not.
    for name in run.class_names:
        check_name(name, source=run.run_dir, what="class name")
    data = evaluation_source(data_dir)
    unknown = sorted(set(index_directory(data)[2]) - set(run.class_names))
    if unknown:
        what = "class(es)" if isinstance(data, VideoList) else "class folder(s)"
        raise ValueError(
            f"{data}: {what} {', '.join(unknown)} are not classes of this model "
            f"({', '.join(run.class_names)})"
        )


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
    """Class probabilities of a classifier run for every video in `data_dir/<class>/<video>` (or
    the test part of list-file data, `vlm_tf.data.lists`), averaged over `clips` × `crops` views.

    The views are `vlm_tf.data.views`': clips spread over each segment of
    the video, the whole frame and then corner and centre crops. One of
    each is the evaluation clip `evaluate_directory` has always scored.
    Unreadable files are skipped and listed in `skipped` (or, with
    `strict=True`, the first one raises `VideoReadError`).
    """
    run.require("classify", "evaluate_directory")
    data = evaluation_source(data_dir)
    check_class_folders(run, data)
    dataset = view_dataset_from_directory(
        data,
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
        flat = np.asarray(
            run.model(np.reshape(views, (-1, *views.shape[2:])), training=False), np.float32
        )
        probabilities.append(flat.reshape(views.shape[0], views.shape[1], -1).mean(axis=1))
        labels.append(batch_labels.numpy())
        paths += [path.decode() for path in batch_paths.numpy()]
    # A file that probed well and failed while its views were decoded was dropped by the
    # dataset (a TensorFlow warning the CLI hides): it is skipped, and said so, like the rest.
    predicted = set(paths)
    skipped = list(dataset.skipped) + [
        {"path": path, "reason": "failed while its views were decoded"}
        for path in dataset.file_paths
        if path not in predicted
    ]
    if not paths:
        first = f", first: {skipped[0]['path']} ({skipped[0]['reason']})" if skipped else ""
        raise ValueError(f"{data_dir}: none of its videos could be evaluated{first}")
    return DirectoryPredictions(
        paths,
        np.concatenate(labels),
        np.concatenate(probabilities),
        skipped,
        int(clips),
        int(crops),
    )


def evaluate_directory(run, data_dir, *, strict=False, batch_size=None, clips=1, crops=1):
    """Accuracy, per-class accuracy and the confusion matrix of `run` on `data_dir/<class>/<video>`
    (or on the test part of list-file data: `vlm_tf.data.lists`).

    Each video is predicted from `clips` × `crops` views, probabilities
    averaged (`predict_directory`); the default, one clip of the whole
    frames, is the clip the run validated on. Unreadable files are skipped
    and listed in `skipped` (or, with `strict=True`, the first one raises
    `VideoReadError`).

    Returns:
        A `ClassificationReport`: `accuracy`, `mean_class_accuracy`,
        `top5_accuracy` (more than five classes), `num_videos`, `per_class`
        (`{class: {"accuracy", "num_videos"}}`), `confusion_matrix` (rows:
        true class, columns: predicted, in `class_names` order),
        `class_names`, `views` (`{"clips", "crops"}`) and `skipped`
        (`[{"path", "reason"}]`).
    """
    predictions = predict_directory(
        run, data_dir, clips=clips, crops=crops, strict=strict, batch_size=batch_size
    )
    scores = classification_report(
        predictions.labels,
        np.argmax(predictions.probabilities, axis=-1),
        run.class_names,
        probabilities=predictions.probabilities,
    )
    return ClassificationReport(
        **scores,
        views={"clips": predictions.clips, "crops": predictions.crops},
        skipped=predictions.skipped,
    )


def read_clip(path, *, num_frames, image_size):
    """One clip of `path` as a model sees it at evaluation: uniform sampling, float32 [0, 255]."""
    # One decoding pass: every frame at model size, then the clip's indices.
    return _evaluation_clip(read_frames(path, None, image_size), num_frames)


def _evaluation_clip(frames, num_frames):
    return frames[sampling.uniform_indices(len(frames), num_frames).numpy()].astype(np.float32)


def predict_videos(run, paths, *, top=3):
    """Label and probabilities for each of `paths`; an unreadable one gets an `error` instead.

    A file of fewer than 2 frames (a still image, which OpenCV reads as a
    one-frame video) is still labelled, as a user may want, but its result
    carries a `note` saying it is not a clip: the model sees one frame
    repeated, without the motion it tells classes apart by.
    """
    results = []
    for path in paths:
        try:
            frames = read_frames(path, None, run.image_size)
        except VideoReadError as error:
            results.append({"path": os.fspath(path), "error": error.reason})
            continue
        clip = _evaluation_clip(frames, run.config.num_frames)
        probabilities = np.asarray(run.model(clip[None], training=False))[0]
        order = np.argsort(probabilities)[::-1][:top]
        result = {
            "path": os.fspath(path),
            "label": run.class_names[order[0]],
            "top": [
                {"label": run.class_names[k], "probability": float(probabilities[k])} for k in order
            ],
            "probabilities": {name: float(p) for name, p in zip(run.class_names, probabilities)},
        }
        if len(frames) < 2:
            result["note"] = (
                f"{os.fspath(path)} is not a clip ({len(frames)} frame(s)); the label is a guess "
                f"from one still frame repeated {run.config.num_frames} times, without motion"
            )
        results.append(result)
    return results


def feature_layer(model):
    """The layer whose output the classifier's `output_layer` reads (`lstm1` in the default
    model).
    """
    features = model.get_layer(OUTPUT_LAYER).input
    return next(layer for layer in model.layers if layer.output is features)
