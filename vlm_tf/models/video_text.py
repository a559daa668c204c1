"""A video-text model trained contrastively (CLIP's recipe on clips): a text encoder and a video
backbone map captions and clips into one space, where a clip lies nearest its own captions
(§8.1 ③). Written in `keras.layers` and `keras.ops` only, so it trains under JAX as well.

    tokens (B, L) int → embeddings + positions → transformer blocks → masked mean → Dense → t (B, D)
    frames (B, T, H, W, 3) → a registered backbone (B, F) → Dense → v (B, D)
    (with sound: [backbone (B, F), audio (B, S) → log-mel → convolutions → GRU (B, 64)] → Dense)
    loss = ½ [CE(s·v̂t̂ᵀ, I) + CE(s·t̂v̂ᵀ, I)],  v̂, t̂ unit vectors, s = exp(learned log-scale)

The loss is the symmetric InfoNCE of CLIP (Radford et al., 2021): in a batch of B pairs each
clip must pick its own caption among the B captions, and each caption its clip. The scale s is
a weight (1/temperature), started at 1/0.07 and held at most 100, as CLIP holds it.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from vlm_tf.layers.multimodal import PositionEmbedding

# CLIP's start and ceiling for the logits' scale.
INITIAL_TEMPERATURE = 0.07
MAX_SCALE = 100.0


def caption_vectorizer(captions, *, sequence_length=24, max_tokens=2000):
    """A `TextVectorization` layer whose vocabulary is the words of `captions`: lower case,
    punctuation stripped, one token per word, padded with 0 to `sequence_length`.
    """
    layer = keras.layers.TextVectorization(
        max_tokens=max_tokens, output_sequence_length=sequence_length, name="tokenizer"
    )
    layer.adapt(list(captions))
    return layer


def _transformer_block(x, mask, *, dim, num_heads, mlp_dim, name):
    normed = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x)
    attended = keras.layers.MultiHeadAttention(
        num_heads, dim // num_heads, name=f"{name}_attention"
    )(normed, normed, attention_mask=mask)
    x = keras.layers.Add(name=f"{name}_residual1")([x, attended])
    hidden = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
    hidden = keras.layers.Dense(mlp_dim, activation="gelu", name=f"{name}_mlp1")(hidden)
    hidden = keras.layers.Dense(dim, name=f"{name}_mlp2")(hidden)
    return keras.layers.Add(name=f"{name}_residual2")([x, hidden])


@keras.saving.register_keras_serializable(package="vlm_tf")
class MaskedMean(keras.layers.Layer):
    """The mean of `(B, L, D)` over the positions whose token is not padding (0)."""

    def call(self, inputs, tokens):
        keep = ops.cast(ops.not_equal(tokens, 0), inputs.dtype)[..., None]
        return ops.sum(inputs * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), 1.0)


def build_text_encoder(
    vocabulary_size, *, sequence_length=24, dim=64, depth=2, num_heads=4, embed_dim=64
):
    """`tokens (B, sequence_length) int → (B, embed_dim)`: embeddings and positions, `depth`
    pre-norm transformer blocks that attend over the words only, their mean, a projection.
    """
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocabulary_size, dim, name="token_embedding")(tokens)
    x = PositionEmbedding(name="position_embedding")(x)
    # Padding is neither attended to nor averaged.
    words = ops.not_equal(tokens, 0)
    mask = ops.logical_and(words[:, None, :], words[:, :, None])
    for index in range(depth):
        x = _transformer_block(
            x, mask, dim=dim, num_heads=num_heads, mlp_dim=2 * dim, name=f"text_block{index + 1}"
        )
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="text_norm")(x)
    pooled = MaskedMean(name="text_pool")(x, tokens)
    return keras.Model(
        tokens, keras.layers.Dense(embed_dim, name="text_projection")(pooled), name="text_encoder"
    )


def symmetric_info_nce(video, text, scale):
    """CLIP's loss for `(B, D)` video and text embeddings (normalised here) and the logits'
    `scale`: the mean of the clip-to-caption and caption-to-clip cross-entropies, each row's
    right answer on the diagonal.
    """
    logits = scale * ops.matmul(_unit(video), ops.transpose(_unit(text)))
    targets = ops.arange(ops.shape(logits)[0])
    video_to_text = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    text_to_video = keras.losses.sparse_categorical_crossentropy(
        targets, ops.transpose(logits), from_logits=True
    )
    return (ops.mean(video_to_text) + ops.mean(text_to_video)) / 2.0


def _unit(x):
    return x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-6)


@keras.saving.register_keras_serializable(package="vlm_tf")
class VideoTextModel(keras.Model):
    """Clips and captions into one space. Inputs `{"frames": (B, T, H, W, 3), "tokens": (B, L)}`,
    and `"audio": (B, S)` when it has a `sound_encoder`; outputs the unit embeddings
    `{"video": (B, D), "text": (B, D)}`. `fit` on such batches (no labels) minimises
    `symmetric_info_nce`; `embed_video` and `embed_text` embed one side.
    """

    def __init__(self, video_backbone, text_encoder, *, embed_dim=64, sound_encoder=None, **kwargs):
        super().__init__(**kwargs)
        self.video_backbone = video_backbone
        self.text_encoder = text_encoder
        self.sound_encoder = sound_encoder
        self.embed_dim = embed_dim
        self.video_projection = keras.layers.Dense(embed_dim, name="video_projection")
        self.log_scale = self.add_weight(
            name="log_scale",
            shape=(),
            initializer=keras.initializers.Constant(math.log(1.0 / INITIAL_TEMPERATURE)),
        )

    def scale(self):
        return ops.exp(ops.minimum(self.log_scale, math.log(MAX_SCALE)))

    def embed_video(self, frames, audio=None, training=False):
        features = ops.cast(self.video_backbone(frames, training=training), "float32")
        if self.sound_encoder is not None:
            heard = ops.cast(self.sound_encoder(audio, training=training), "float32")
            features = ops.concatenate([features, heard], axis=-1)
        return _unit(self.video_projection(features))

    def embed_frames_of_any_size(self, clips, training=False):
        """`embed_video` of pixel clips `(B, T, H, W, 3)` of any frame size, resized (bilinear) to
        the backbone's: a generator draws at its own size (the GAN's guide, generate's reranking).
        A backbone that takes any size takes them as they are.
        """
        height, width = self.video_backbone.input_shape[2:4]
        if height is None or (height, width) == tuple(clips.shape[2:4]):
            return self.embed_video(clips, training=training)
        frames = ops.shape(clips)[1]
        flat = ops.reshape(clips, (-1, *clips.shape[2:]))
        resized = ops.image.resize(flat, (height, width), interpolation="bilinear")
        return self.embed_video(
            ops.reshape(resized, (-1, frames, height, width, clips.shape[-1])), training=training
        )

    def embed_text(self, tokens, training=False):
        return _unit(ops.cast(self.text_encoder(tokens, training=training), "float32"))

    def call(self, inputs, training=False):
        return {
            "video": self.embed_video(inputs["frames"], inputs.get("audio"), training=training),
            "text": self.embed_text(inputs["tokens"], training=training),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return symmetric_info_nce(y_pred["video"], y_pred["text"], self.scale())

    def get_config(self):
        return {
            **super().get_config(),
            "video_backbone": keras.saving.serialize_keras_object(self.video_backbone),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
            "embed_dim": self.embed_dim,
            "sound_encoder": None
            if self.sound_encoder is None
            else keras.saving.serialize_keras_object(self.sound_encoder),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("video_backbone", "text_encoder", "sound_encoder"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_video_text_model(
    *,
    vocabulary_size,
    sequence_length=24,
    num_frames=None,
    image_size=(64, 64),
    encoder="cnn_lstm",
    init=None,
    embed_dim=64,
    num_samples=None,
    sample_rate=None,
    name="video_text",
):
    """A `VideoTextModel`: the backbone of `init` (a preset or run, `load_backbone`) or a fresh one
    of the registered classifier `encoder`, and a text encoder for `vocabulary_size` tokens; with
    `num_samples`, a sound encoder for that many samples at `sample_rate` beside the backbone.
    """
    from vlm_tf.models.audio_visual import build_sound_encoder
    from vlm_tf.models.backbone import build_backbone, load_backbone

    if init is not None:
        backbone = load_backbone(init)
    else:
        backbone = build_backbone(encoder, image_size=image_size, num_frames=num_frames)
    text_encoder = build_text_encoder(
        vocabulary_size, sequence_length=sequence_length, embed_dim=embed_dim
    )
    sound_encoder = None
    if num_samples is not None:
        sound_encoder = build_sound_encoder(num_samples, sample_rate=sample_rate)
    return VideoTextModel(
        backbone, text_encoder, embed_dim=embed_dim, sound_encoder=sound_encoder, name=name
    )
