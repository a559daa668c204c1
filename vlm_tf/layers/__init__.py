"""Custom Keras layers, each serializable through `get_config`."""

from vlm_tf.layers.time_distributed import TimeDistributed

__all__ = ["TimeDistributed"]
