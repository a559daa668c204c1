"""Scores of a classifier: accuracy, top-5 and mean class accuracy, per-class accuracy and the
confusion matrix.

Also the Fréchet distance between two sets of clip features.
"""

from __future__ import annotations

import numpy as np

# Top-5 accuracy is reported where it says more than accuracy: above five classes.
TOP_K = 5


def classification_report(labels, predictions, class_names, *, probabilities=None):
    """Accuracy, per-class accuracy and the confusion matrix of `predictions` against `labels`.

    Both hold integer labels; `probabilities` `(N, classes)`, where given,
    add top-5 accuracy (a video counts when its class is among the five most
    probable) if there are more than five classes.

    Returns a JSON-ready dict: `accuracy`, `mean_class_accuracy` (the mean
    of the per-class accuracies of the classes with videos: each class
    counts alike however many videos it has), `top5_accuracy` (`None`
    unless measured), `num_videos`, `per_class` (`{class: {"accuracy",
    "num_videos"}}`, accuracy `None` for a class with no videos),
    `confusion_matrix` (rows: true class, columns: predicted, in
    `class_names` order) and `class_names`.
    """
    num_classes = len(class_names)
    labels = np.asarray(labels, int)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, np.asarray(predictions, int)), 1)
    totals = confusion.sum(axis=1)
    seen = totals > 0
    top5 = None
    if probabilities is not None and num_classes > TOP_K and len(labels):
        best = np.argsort(-np.asarray(probabilities), axis=-1, kind="stable")[:, :TOP_K]
        top5 = float(np.mean(np.any(best == labels[:, None], axis=-1)))
    return {
        "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "mean_class_accuracy": float(np.mean(np.diag(confusion)[seen] / totals[seen]))
        if seen.any()
        else 0.0,
        "top5_accuracy": top5,
        "num_videos": int(confusion.sum()),
        "per_class": {
            name: {
                "accuracy": float(confusion[k, k] / totals[k]) if totals[k] else None,
                "num_videos": int(totals[k]),
            }
            for k, name in enumerate(class_names)
        },
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
    }


def frechet_distance(features_a, features_b):
    """‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½) between Gaussians fitted to two sets of features.

    Each set holds feature vectors `(N, F)`.

    tr (Σa Σb)^½ is the sum of the square roots of the eigenvalues of
    Σa^½ Σb Σa^½, a symmetric matrix with the same eigenvalues as Σa Σb, so
    no general matrix square root (and no SciPy) is needed.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            "need two sets of at least 2 feature vectors of the same length, received shapes "
            f"{a.shape} and {b.shape}"
        )
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sigma_b @ root_a), 0.0, None)).sum()
    return float(
        np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
        + np.trace(sigma_a)
        + np.trace(sigma_b)
        - 2.0 * cross
    )
