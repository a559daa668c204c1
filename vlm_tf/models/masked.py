"""Masked video modelling (VideoMAE: Tong et al., 2022): a tubelet transformer's backbone learns
what motion and appearance look like from unlabeled clips, by filling in the tubes it is not shown.

    clips (B, T, H, W, 3) → the backbone's preprocessing and tubelet tokens (B, T', S, D)
      → tube mask: per clip, the same K = round(S · (1 − mask_ratio)) patches kept at every
        time step, so a hidden patch cannot be copied from its neighbour in time
      → the backbone's blocks and final norm on the kept tokens only   (B, T', K, D)
      → decoder: Dense → (B, T', K, E); a learned mask token at the S − K hidden patches,
        learned positions, `decoder_depth` space-time blocks
      → Dense → (B, T', S, t·p·p·3): every tubelet's pixels, each normalised to mean 0 and
        variance 1 (VideoMAE's target: texture and motion, not brightness)
    loss: squared error, averaged over the hidden tubelets only

The encoder sees a tenth of the tokens, so a step costs a fraction of a
classifier's; the decoder is thrown away, the backbone kept
(`MaskedVideoModel.backbone`, the same layers and weights a classifier built
on it gets). Tube masking at 90 % is VideoMAE's finding: video is so
redundant in time that a lower ratio lets the model interpolate instead of
learning.
"""

from __future__ import annotations

import keras
from keras import ops

from vlm_tf.layers.transformer import SpaceTimeBlock

# Keeps the normalised target finite on a flat patch (VideoMAE's value).
TARGET_EPSILON = 1e-6


def patchify(clips, tubelet_size, grid):
    """`(B, T, H, W, C)` in [0, 255] → `(B, T', S, t·p·q·C)` in [0, 1]: the pixels of each tubelet,
    in the token order of `TubeletEmbedding` (time steps, then patches row by row).
    """
    t, p, q = tubelet_size
    rows, cols = grid
    batch, channels = ops.shape(clips)[0], clips.shape[-1]
    steps = clips.shape[1] // t
    x = ops.cast(clips[:, : steps * t, : rows * p, : cols * q], "float32") / 255.0
    x = ops.reshape(x, (batch, steps, t, rows, p, cols, q, channels))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))
    return ops.reshape(x, (batch, steps, rows * cols, t * p * q * channels))


def unpatchify(patches, tubelet_size, grid, channels=3):
    """The inverse of `patchify`: `(B, T', S, t·p·q·C)` → `(B, T'·t, rows·p, cols·q, C)`."""
    t, p, q = tubelet_size
    rows, cols = grid
    batch, steps = ops.shape(patches)[0], patches.shape[1]
    x = ops.reshape(patches, (batch, steps, rows, cols, t, p, q, channels))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3, 6, 7))
    return ops.reshape(x, (batch, steps * t, rows * p, cols * q, channels))


def normalise_patches(patches):
    """Each tubelet to mean 0 and variance 1 over its own pixels: the reconstruction target."""
    mean = ops.mean(patches, axis=-1, keepdims=True)
    variance = ops.var(patches, axis=-1, keepdims=True)
    return (patches - mean) / ops.sqrt(variance + TARGET_EPSILON)


def tube_mask(batch, num_patches, num_kept, seed_generator):
    """Per clip, `num_kept` patch indices drawn without replacement: `(B, K)` int."""
    noise = keras.random.uniform((batch, num_patches), seed=seed_generator)
    return ops.argsort(noise, axis=-1)[:, :num_kept]


@keras.saving.register_keras_serializable(package="vlm_tf")
class MaskedVideoModel(keras.Model):
    """A backbone with a light decoder, trained to reconstruct masked tubelets (module docstring).

    Args:
        backbone: a tubelet transformer's backbone (`vlm_tf.models.backbone.build_backbone` of a
            `video_transformer` model): a layer "tubelet_embedding", `SpaceTimeBlock`s and
            "final_norm"; clips of a fixed length.
        mask_ratio: the share of patches hidden in every clip, in (0, 1).
        decoder_dim, decoder_depth, decoder_heads, decoder_mlp_dim: the decoder's size.
        seed: seeds the masks.

    Called on clips it returns `(predicted, target, hidden)`: the predicted
    and true normalised tubelets `(B, T', S, P)` and which patches were hidden
    `(B, S)`, 1.0 where hidden; `compute_loss` reads those.
    """

    def __init__(
        self,
        backbone,
        *,
        mask_ratio=0.9,
        decoder_dim=64,
        decoder_depth=1,
        decoder_heads=4,
        decoder_mlp_dim=128,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), received {mask_ratio!r}")
        layer_names = [layer.name for layer in backbone.layers]
        if "tubelet_embedding" not in layer_names or "final_norm" not in layer_names:
            raise ValueError(
                f"masked video modelling needs a tubelet transformer's backbone (layers "
                f"'tubelet_embedding' and 'final_norm'); {backbone.name!r} has {layer_names}"
            )
        embedding = backbone.get_layer("tubelet_embedding")
        if backbone.input_shape[1] is None:
            raise ValueError("masked video modelling needs a backbone built for a fixed num_frames")
        self.backbone = backbone
        self.mask_ratio = float(mask_ratio)
        self.tubelet_size = embedding.tubelet_size
        self.grid = embedding.grid
        self.num_patches = self.grid[0] * self.grid[1]
        self.num_kept = max(1, round(self.num_patches * (1.0 - self.mask_ratio)))
        self.steps = backbone.input_shape[1] // self.tubelet_size[0]
        # The backbone's own layers, shared: what this model trains is the backbone.
        self.embed = keras.Model(backbone.input, embedding.output, name="tokens")
        self.blocks = [layer for layer in backbone.layers if isinstance(layer, SpaceTimeBlock)]
        self.final_norm = backbone.get_layer("final_norm")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.decoder_config = dict(
            decoder_dim=decoder_dim,
            decoder_depth=decoder_depth,
            decoder_heads=decoder_heads,
            decoder_mlp_dim=decoder_mlp_dim,
        )
        self.decoder_input = keras.layers.Dense(decoder_dim, name="decoder_input")
        self.mask_token = self.add_weight(
            shape=(decoder_dim,),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="mask_token",
        )
        self.temporal_position = self.add_weight(
            shape=(self.steps, decoder_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="decoder_temporal_position",
        )
        self.spatial_position = self.add_weight(
            shape=(self.num_patches, decoder_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="decoder_spatial_position",
        )
        self.decoder_blocks = [
            SpaceTimeBlock(decoder_heads, decoder_mlp_dim, name=f"decoder_block{i + 1}")
            for i in range(decoder_depth)
        ]
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        t, p, q = self.tubelet_size
        self.decoder_output = keras.layers.Dense(
            t * p * q * 3, dtype="float32", name="decoder_output"
        )

    def encode_visible(self, clips, kept, training=None):
        """The backbone on the kept patches only: `(B, T', K, D)`."""
        tokens = self.embed(clips, training=training)
        index = ops.broadcast_to(
            kept[:, None, :, None],
            (ops.shape(tokens)[0], self.steps, self.num_kept, tokens.shape[-1]),
        )
        x = ops.take_along_axis(tokens, index, axis=2)
        for block in self.blocks:
            x = block(x, training=training)
        return self.final_norm(x)

    def call(self, clips, training=None):
        batch = ops.shape(clips)[0]
        kept = tube_mask(batch, self.num_patches, self.num_kept, self.seed_generator)
        encoded = self.decoder_input(self.encode_visible(clips, kept, training=training))
        # Each kept token back at its patch, the mask token everywhere else.
        placed = ops.cast(ops.one_hot(kept, self.num_patches), encoded.dtype)
        x = ops.einsum("bks,btkd->btsd", placed, encoded)
        visible = ops.sum(placed, axis=1)
        x = x + (1.0 - visible)[:, None, :, None] * ops.cast(self.mask_token, x.dtype)
        x = (
            x
            + ops.cast(self.temporal_position, x.dtype)[None, :, None]
            + ops.cast(self.spatial_position, x.dtype)[None, None]
        )
        for block in self.decoder_blocks:
            x = block(x, training=training)
        predicted = self.decoder_output(self.decoder_norm(x))
        target = normalise_patches(patchify(clips, self.tubelet_size, self.grid))
        return predicted, target, 1.0 - ops.cast(visible, "float32")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        predicted, target, hidden = y_pred
        per_tubelet = ops.mean(ops.square(ops.cast(predicted, "float32") - target), axis=-1)
        weights = ops.broadcast_to(hidden[:, None, :], ops.shape(per_tubelet))
        return ops.sum(per_tubelet * weights) / ops.maximum(ops.sum(weights), 1.0)

    def reconstruct(self, clips):
        """`(clips with the hidden tubelets grey, reconstructions, hidden)`: the first two
        `(B, T, H, W, 3)` in [0, 255], the hidden tubelets predicted and put back at each
        tubelet's true mean and spread (as VideoMAE shows them), the kept ones as they were;
        `hidden` `(B, S)` as `call` gives it.
        """
        predicted, _, hidden = self(clips, training=False)
        patches = patchify(clips, self.tubelet_size, self.grid)
        mean = ops.mean(patches, axis=-1, keepdims=True)
        spread = ops.sqrt(ops.var(patches, axis=-1, keepdims=True) + TARGET_EPSILON)
        restored = ops.clip(ops.cast(predicted, "float32") * spread + mean, 0.0, 1.0)
        hidden = hidden[:, None, :, None]
        grey = ops.ones_like(patches) * 0.5
        masked = unpatchify(patches * (1.0 - hidden) + grey * hidden, self.tubelet_size, self.grid)
        filled = unpatchify(
            patches * (1.0 - hidden) + restored * hidden, self.tubelet_size, self.grid
        )
        return masked * 255.0, filled * 255.0, hidden[:, 0, :, 0]


def build_masked_video_model(
    *, encoder, num_frames, image_size=(64, 64), mask_ratio=0.9, seed=None, name="video_mae"
):
    """A `MaskedVideoModel` on a fresh backbone of the registered classifier `encoder` (a tubelet
    transformer), for clips of `num_frames` frames of `image_size`.
    """
    from vlm_tf.models.backbone import build_backbone

    backbone = build_backbone(encoder, image_size=tuple(image_size), num_frames=num_frames)
    model = MaskedVideoModel(backbone, mask_ratio=mask_ratio, seed=seed, name=name)
    model(keras.ops.zeros((1, num_frames, *image_size, 3)))
    return model
