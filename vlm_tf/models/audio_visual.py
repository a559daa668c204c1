"""Picture and sound together (§8.1 ③): a clip's frames and its sound track, each encoded on its
own, fused three ways. Written in `keras.layers` and `keras.ops` only, so it trains under JAX too.

    frames (B, T, H, W, 3) → a registered backbone (B, F) → Dense → v (B, D)
    audio (B, S) → log-mel (B, S/160, 64) → Conv1D ×3, stride 2 → tokens a (B, S/1280, D)
                                                                  → GRU → s (B, D)

    early:            [v, s] → MLP → logits              (fused features)
    late:             head_v(v) + head_a(s)              (fused decisions: a product of experts)
    cross_attention:  v asks a's steps: [v, MHA(v, a + positions)] → MLP → logits

Every variant also has a head on each modality alone (`video` and `audio` outputs), trained beside
the fused one as gradient blending's uni-modal heads are (Wang et al., 2020): each encoder must
carry its own modality's evidence rather than lean on the other's, and the run reports what each
modality alone reaches without training two more models. Modality dropout (`ModalityDropout`)
silences the sound or blanks the picture of some training clips, so a clip without sound still
gets the answer its picture supports: silence is exactly what `vlm_tf.data.audio.read_audio`
gives for a file without a sound track.
"""

from __future__ import annotations

import keras
from keras import ops

from vlm_tf.layers.multimodal import ModalityDropout, PositionEmbedding
from vlm_tf.models.registry import AV_FUSIONS as FUSIONS

# 25 ms windows (512 samples at 16 kHz) every 10 ms, speech recognition's usual framing.
FFT_LENGTH, HOP_LENGTH, MEL_BINS = 512, 160, 64


def build_audio_encoder(num_samples, *, sample_rate, dim=64):
    """`audio (B, num_samples) float32 in [-1, 1] → tokens (B, N, dim)`: a log-mel spectrogram
    (dB, scaled to about unit range), then three strided 1-D convolutions over time, the mel bins
    as channels. Nothing normalises a step on its own until the last: loudness, which follows
    the object's size, would be divided away.
    """
    audio = keras.Input((num_samples,), name="audio")
    mel = keras.layers.MelSpectrogram(
        fft_length=FFT_LENGTH,
        sequence_stride=HOP_LENGTH,
        sampling_rate=sample_rate,
        num_mel_bins=MEL_BINS,
        min_freq=60.0,
        max_freq=sample_rate / 2,
        name="log_mel",
    )(audio)
    # MelSpectrogram gives (B, bins, steps); convolutions run along time.
    x = keras.layers.Permute((2, 1), name="time_major")(mel)
    x = keras.layers.Rescaling(1 / 40.0, name="db_scale")(x)
    for index in range(3):
        x = keras.layers.Conv1D(
            dim, 5, strides=2, padding="same", activation="gelu", name=f"audio_conv{index + 1}"
        )(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="audio_norm")(x)
    return keras.Model(audio, x, name="audio_encoder")


def build_sound_encoder(num_samples, *, sample_rate, dim=64):
    """`audio (B, num_samples) → (B, dim)`: `build_audio_encoder`'s tokens summarised in order by
    a GRU, the sound side of a clip for models that need one vector (`vlm_tf.models.video_text`).
    """
    audio = keras.Input((num_samples,), name="audio")
    tokens = build_audio_encoder(num_samples, sample_rate=sample_rate, dim=dim)(audio)
    summary = keras.layers.GRU(dim, name="audio_summary")(tokens)
    return keras.Model(audio, summary, name="sound_encoder")


def build_audio_visual_model(
    *,
    num_classes,
    num_samples,
    sample_rate,
    num_frames=None,
    image_size=(64, 64),
    encoder="cnn_lstm",
    init=None,
    fusion="late",
    modality_dropout=0.2,
    dim=64,
    seed=None,
    name="audio_visual",
):
    """The audio-visual classifier: inputs `{"frames": (B, T, H, W, 3) float32 in [0, 255],
    "audio": (B, num_samples) float32}`, outputs the logits `{"fused", "video", "audio"}`, each
    `(B, num_classes)`. The clip side is the backbone of `init` (a preset or run) or a fresh one of
    the registered classifier `encoder`.
    """
    from vlm_tf.models.backbone import build_backbone, load_backbone

    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, received {fusion!r}")
    if init is not None:
        backbone = load_backbone(init)
    else:
        backbone = build_backbone(encoder, image_size=image_size, num_frames=num_frames)
    frames = keras.Input(backbone.input_shape[1:], name="frames")
    audio = keras.Input((num_samples,), name="audio")
    seen, heard = ModalityDropout(modality_dropout, seed=seed, name="modality_dropout")(
        frames, audio
    )
    video = keras.layers.Dense(dim, activation="gelu", name="video_projection")(
        ops.cast(backbone(seen), "float32")
    )
    tokens = build_audio_encoder(num_samples, sample_rate=sample_rate, dim=dim)(heard)
    # The sound's summary must keep order: a pitch that rises is an object moving up, one that
    # falls moving down, and a mean over time cannot tell them apart.
    sound = keras.layers.GRU(dim, name="audio_summary")(tokens)
    video_logits = keras.layers.Dense(num_classes, name="video_head")(video)
    audio_logits = keras.layers.Dense(num_classes, name="audio_head")(sound)
    if fusion == "late":
        fused = keras.layers.Add(name="fused_head")([video_logits, audio_logits])
    else:
        if fusion == "early":
            joint = keras.layers.Concatenate(name="joint")([video, sound])
        else:
            keys = PositionEmbedding(name="audio_positions")(tokens)
            query = keras.layers.Reshape((1, dim), name="video_query")(video)
            attended = keras.layers.MultiHeadAttention(4, dim // 4, name="cross_attention")(
                query, keys
            )
            attended = keras.layers.Flatten(name="attended")(attended)
            joint = keras.layers.Concatenate(name="joint")([video, attended])
        hidden = keras.layers.Dense(2 * dim, activation="gelu", name="fusion_mlp")(joint)
        hidden = keras.layers.Dropout(0.2, name="fusion_dropout")(hidden)
        fused = keras.layers.Dense(num_classes, name="fused_head")(hidden)
    return keras.Model(
        {"frames": frames, "audio": audio},
        {"fused": fused, "video": video_logits, "audio": audio_logits},
        name=name,
    )
