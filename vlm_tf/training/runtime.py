"""Precision, XLA and seeding: process-wide settings a run makes before building its model."""

from __future__ import annotations

import keras
import tensorflow as tf


def resolve_precision(precision):
    """`"mixed"` picks float16 on a GPU (tensor cores) and bfloat16 elsewhere (no loss scaling needed)."""
    if precision != "mixed":
        return precision
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def configure(*, seed, precision="float32"):
    """Seeds Python, NumPy and TensorFlow, and sets the global dtype policy.

    Returns the policy name in force. Under `mixed_float16`, Keras wraps the
    optimizer in a `LossScaleOptimizer` at compile time.
    """
    keras.utils.set_random_seed(seed)
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def jit_compile_argument(jit):
    """The CLI's `--jit off|on|auto` as `Model.compile(jit_compile=...)`."""
    return {"off": False, "on": True, "auto": "auto"}[jit]
