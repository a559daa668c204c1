"""A ViViT-style video transformer: what a 2026 reader means by a "video large model" (§1, §2.3).

Arnab et al., "ViViT: A Video Vision Transformer" (2021): tubelet tokens,
learned space-time positions, transformer blocks that attend over space and
time. The sizes run from `tiny` (trains on 2 CPU cores in minutes) to
ViViT's `base`; `vlm_tf.models.flops.count_flops` gives the cost of each.
"""

from __future__ import annotations

import keras

from vlm_tf.layers.transformer import (
    ATTENTION_MODES,
    ClassAttentionPooling,
    SpaceTimeBlock,
    TubeletEmbedding,
)
from vlm_tf.models.cnn_lstm import apply_input_preprocessing

POOLING = ("class_attention", "mean")
# Token width, blocks, heads, MLP width. `base` is ViViT-B (ViT-Base).
SIZES = {
    "tiny": dict(dim=64, depth=4, num_heads=4, mlp_dim=128),
    "small": dict(dim=384, depth=12, num_heads=6, mlp_dim=1536),
    "base": dict(dim=768, depth=12, num_heads=12, mlp_dim=3072),
}


def build_video_transformer(
    *,
    num_classes,
    num_frames=None,
    image_size=(64, 64),
    channels=3,
    size="tiny",
    dim=None,
    depth=None,
    num_heads=None,
    mlp_dim=None,
    tubelet_size=(2, 8, 8),
    attention="factorised",
    pooling="class_attention",
    max_frames=64,
    dropout=0.0,
    frame_difference=False,
    rescale=True,
    name="video_transformer",
):
    """Builds input → tubelet tokens → space-time blocks → pooled token → dense → output.

    Shape flow (tiny, 16 frames of 64×64, tubelets 2×8×8):

        (B, 16, 64, 64, 3) → Rescaling → TubeletEmbedding "tubelet_embedding" → (B, 8, 64, 64)
          (T' = 16/2 time steps of S = (64/8)² patches, D = 64, + temporal and spatial positions)
        → SpaceTimeBlock × depth "block1"... → (B, 8, 64, 64)
        → LayerNormalization "final_norm"
        → ClassAttentionPooling "attention" → (B, 64) + weights (B, 8, 64);
          or mean over tokens "token_mean"
        → Dense(num_classes, softmax) "output_layer" → (B, num_classes)

    Args:
        num_classes, num_frames, image_size, channels, rescale: as in `build_cnn_lstm`.
        size: `"tiny"`, `"small"` or `"base"` (`SIZES`); `dim`, `depth`,
            `num_heads`, `mlp_dim` override single values of it.
        tubelet_size: `(t, p, p)`: frames and pixels per token.
        attention: `"factorised"` (space, then time, in every block) or
            `"joint"` (all tokens at once).
        pooling: `"class_attention"` (a learned class token reads all tokens;
            its weights show which tubelets mattered) or `"mean"`.
        max_frames: the longest clip the model takes.
        dropout: dropout in the blocks and before the output layer.
        frame_difference: give the tubelets frame differences as extra channels.
        name: model name.
    """
    # === Config checks ===
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, received {size!r}")
    if num_classes is None or int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, received {num_classes!r}")
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, received {attention!r}")
    if pooling not in POOLING:
        raise ValueError(f"pooling must be one of {POOLING}, received {pooling!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), received {dropout!r}")
    given = dict(dim=dim, depth=depth, num_heads=num_heads, mlp_dim=mlp_dim)
    hyper = {
        key: int(value) if value is not None else SIZES[size][key] for key, value in given.items()
    }
    if min(hyper.values()) < 1:
        raise ValueError(f"dim, depth, num_heads and mlp_dim must be positive, received {hyper}")
    if hyper["dim"] % hyper["num_heads"]:
        raise ValueError(f"dim={hyper['dim']} is not divisible by num_heads={hyper['num_heads']}")

    # === Inputs ===
    inputs = keras.Input(shape=(num_frames, *image_size, channels), name="input_layer")
    x = apply_input_preprocessing(inputs, rescale=rescale, frame_difference=frame_difference)

    # === Layers: tokens → space-time blocks ===
    x = TubeletEmbedding(
        hyper["dim"], tubelet_size=tubelet_size, max_frames=max_frames, name="tubelet_embedding"
    )(x)
    for block in range(1, hyper["depth"] + 1):
        x = SpaceTimeBlock(
            hyper["num_heads"],
            hyper["mlp_dim"],
            attention=attention,
            dropout=dropout,
            name=f"block{block}",
        )(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)

    # === Layers: pooled token → dense output ===
    if pooling == "class_attention":
        x, _ = ClassAttentionPooling(hyper["num_heads"], name="attention")(x)
    else:
        # Averages over time steps and patches alike: (B, T', S, D) → (B, D).
        x = keras.layers.GlobalAveragePooling2D(name="token_mean")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="output_layer"
    )(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name=name)
