"""Custom Keras layers, each serializable through `get_config`."""

from vlm_tf.layers.attention import HardAttention, MultiScaleAttention, SoftAttention
from vlm_tf.layers.frame_difference import FrameDifference
from vlm_tf.layers.text_gated import TextGatedRNNCell
from vlm_tf.layers.time_distributed import TimeDistributed

__all__ = ["FrameDifference", "HardAttention", "MultiScaleAttention", "SoftAttention", "TextGatedRNNCell", "TimeDistributed"]
