"""Training: run configuration, precision/XLA/seed set-up, callbacks and the fit loop."""

from vlm_tf.training.config import RunConfig
from vlm_tf.training.fit import TrainResult, find_split_dirs, train

__all__ = ["RunConfig", "TrainResult", "find_split_dirs", "train"]
