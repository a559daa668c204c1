"""A classifier's features of clips, and generated clips scored by a classifier (§3.3's GAN, judged
by what a model trained on real clips recognises and how far apart the two sets lie).
"""

from __future__ import annotations

import dataclasses

from vlm_tf.data.pipeline import video_dataset_from_directory
from vlm_tf.metrics.classification import frechet_distance
from vlm_tf.models.backbone import backbone_of, clip_features_from
from vlm_tf.tasks.classify import evaluate_directory, feature_layer


def clip_features(run, data_dir, *, batch_size=None):
    """Feature vectors of a classifier run for every clip in `data_dir/<class>/<video>`: the input
    of its output layer, `(N, F)`.

    This is the feature space of `frechet_distance`, the run's backbone
    (`vlm_tf.models.backbone`); for the default model the LSTM's last state (64 values).
    """
    return _features_and_skipped(run, data_dir, batch_size=batch_size)[0]


def _features_and_skipped(run, data_dir, *, batch_size=None):
    """`clip_features`, and the files it could not read (`[{"path", "reason"}]`)."""
    run.require("classify", "clip_features")
    dataset = video_dataset_from_directory(
        data_dir,
        num_frames=run.config.num_frames,
        image_size=run.image_size,
        batch_size=batch_size or run.config.batch_size,
        shuffle=False,
    )
    features = clip_features_from(backbone_of(run.model), dataset)
    return features, list(dataset.skipped) + list(dataset.failed)


def score_generated(classifier_run, generated_dir, real_dir, *, reference_dir=None):
    """How well a classifier trained on real clips recognises generated ones, and how far apart the
    two sets are.

    Returns the classifier's `evaluate_directory` report on `generated_dir`
    with `frechet_distance` (generated vs `real_dir`, in the classifier's
    feature space) added and, given `reference_dir` (other real clips, e.g.
    the test split against the training split), `reference_frechet_distance`:
    the distance two real samples already have, the floor to compare with.
    Its `skipped` names the unreadable files of every folder read.
    """
    report = evaluate_directory(classifier_run, generated_dir)
    real, skipped = _features_and_skipped(classifier_run, real_dir)
    generated, _ = _features_and_skipped(classifier_run, generated_dir)
    reference = None
    if reference_dir is not None:
        reference_features, more = _features_and_skipped(classifier_run, reference_dir)
        reference = frechet_distance(real, reference_features)
        skipped += more
    return dataclasses.replace(
        report,
        frechet_distance=frechet_distance(real, generated),
        reference_frechet_distance=reference,
        feature_layer=feature_layer(classifier_run.model).name,
        # The generated folder's own unreadable files are the report's already.
        skipped=report.skipped + skipped,
    )
