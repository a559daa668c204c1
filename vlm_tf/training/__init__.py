"""Training: run configuration, precision/XLA/seed set-up, callbacks and the one loop every task
trains with.

`train` and `TrainResult` load on first use, so the CLI can read
`RunConfig` defaults for `--help` without importing TensorFlow.
"""

from vlm_tf.training.config import RunConfig


def __getattr__(name):
    if name in ("train", "TrainResult"):
        from vlm_tf.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'vlm_tf.training' has no attribute {name!r}")


__all__ = ["RunConfig", "TrainResult", "train"]
