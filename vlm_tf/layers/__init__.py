"""Custom Keras layers, each serializable through `get_config`.

Importing this package registers every one of them, so `keras.models.load_model`
reads any model `vlm_tf.models` builds after `import vlm_tf.layers`.
"""

from vlm_tf.layers.attention import HardAttention, MultiScaleAttention, SoftAttention
from vlm_tf.layers.frame_difference import FrameDifference
from vlm_tf.layers.generative import (
    FlatSprite,
    IntegrateMotion,
    LastFrame,
    SpriteRenderer,
    ToPixels,
    TwoColourBackground,
    WarpLastFrame,
)
from vlm_tf.layers.multimodal import ModalityDropout, PositionEmbedding
from vlm_tf.layers.recurrent import LSTM, ConvLSTM2D
from vlm_tf.layers.restoration import (
    CentreFrame,
    FoldTime,
    GlobalContext,
    PixelShuffle,
    RelativeToCentre,
    Upscale,
)
from vlm_tf.layers.text_gated import TextGatedRNNCell
from vlm_tf.layers.time_distributed import TimeDistributed
from vlm_tf.layers.transformer import ClassAttentionPooling, SpaceTimeBlock, TubeletEmbedding

__all__ = [
    "CentreFrame",
    "ClassAttentionPooling",
    "ConvLSTM2D",
    "FlatSprite",
    "FoldTime",
    "FrameDifference",
    "GlobalContext",
    "HardAttention",
    "IntegrateMotion",
    "LSTM",
    "LastFrame",
    "ModalityDropout",
    "MultiScaleAttention",
    "PixelShuffle",
    "PositionEmbedding",
    "RelativeToCentre",
    "SoftAttention",
    "SpaceTimeBlock",
    "SpriteRenderer",
    "TextGatedRNNCell",
    "TimeDistributed",
    "ToPixels",
    "TubeletEmbedding",
    "TwoColourBackground",
    "Upscale",
    "WarpLastFrame",
]
