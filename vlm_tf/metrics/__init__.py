"""The scores vlm_tf measures by, one place each.

- `classification`: accuracy, per-class accuracy, confusion matrix; the
  Fréchet distance between clip features (how far generated clips are from real ones).
- `image`: PSNR and SSIM of restored or predicted frames (Keras metrics and per-frame scores).
- `detection`: IoU, mAP@0.5 (PASCAL VOC) and CLEAR MOT's counts and MOTA.

`image` needs TensorFlow and loads on first use; the other two are NumPy.
"""

import importlib

from vlm_tf.metrics.classification import classification_report, frechet_distance
from vlm_tf.metrics.detection import (
    average_precision,
    box_iou,
    clear_mot,
    mean_average_precision,
    mota,
)

_IMAGE_NAMES = ("capped_psnr", "frame_quality", "psnr", "psnr_ceiling", "ssim")


def __getattr__(name):
    if name in _IMAGE_NAMES:
        return getattr(importlib.import_module("vlm_tf.metrics.image"), name)
    raise AttributeError(f"module 'vlm_tf.metrics' has no attribute {name!r}")


__all__ = [
    "average_precision",
    "box_iou",
    "capped_psnr",
    "classification_report",
    "clear_mot",
    "frame_quality",
    "frechet_distance",
    "mean_average_precision",
    "mota",
    "psnr",
    "psnr_ceiling",
    "ssim",
]
