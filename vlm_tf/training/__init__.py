"""Training: run configuration, precision/XLA/seed set-up, callbacks and the fit loop.

`train` and `TrainResult` load on first use, so the CLI can read
`RunConfig` defaults for `--help` without importing TensorFlow.
"""

from vlm_tf.training.config import RunConfig


def __getattr__(name):
    if name in ("train", "TrainResult", "find_split_dirs"):
        from vlm_tf.training import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'vlm_tf.training' has no attribute {name!r}")


__all__ = ["RunConfig", "TrainResult", "find_split_dirs", "train"]
