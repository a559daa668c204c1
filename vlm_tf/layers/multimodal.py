"""Layers of the multimodal models (`vlm_tf.models.video_text`, `vlm_tf.models.audio_visual`)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vlm_tf")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to `(B, L, D)` tokens: words of a caption, steps of a
    sound, so attention knows where (or when) each is.
    """

    def build(self, input_shape):
        self.positions = self.add_weight(
            name="positions",
            shape=(input_shape[1], input_shape[2]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, inputs):
        return inputs + ops.cast(self.positions, inputs.dtype)[None]


@keras.saving.register_keras_serializable(package="vlm_tf")
class ModalityDropout(keras.layers.Layer):
    """In training, silences the audio of a `rate` share of clips and blanks (zeros) the frames of
    another `rate` share, never both of one clip; at inference the inputs pass unchanged.
    """

    def __init__(self, rate=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate <= 0.5:
            raise ValueError(f"modality dropout must be in [0, 0.5], received {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, frames, audio, training=False):
        if not training or self.rate == 0.0:
            return frames, audio
        draw = keras.random.uniform((ops.shape(audio)[0],), seed=self.seed_generator)
        keep_audio = ops.cast(draw >= self.rate, audio.dtype)
        keep_frames = ops.cast(
            ops.logical_or(draw < self.rate, draw >= 2 * self.rate), frames.dtype
        )
        return frames * keep_frames[:, None, None, None, None], audio * keep_audio[:, None]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
