"""The parts of a ViViT-style video transformer.

Tubelet tokens, space-time blocks, a class-attention head.

Tokens are kept as `(B, T', S, D)`: T' time steps of S spatial patches,
so a block can attend over space within each time step, over time at each
patch, or over all of them jointly, without losing which token is where.
"""

from __future__ import annotations

import keras
from keras import ops

ATTENTION_MODES = ("factorised", "joint")


@keras.saving.register_keras_serializable(package="vlm_tf")
class TubeletEmbedding(keras.layers.Layer):
    """`(B, T, H, W, C)` → `(B, T', S, D)`: non-overlapping tubelets linearly embedded.

    Learned positions are added.

    A tubelet is `t × p × p` pixels (`tubelet_size`); its embedding is a
    `Conv3D` with kernel = stride = the tubelet, so T' = T // t and
    S = (H // p) · (W // p) (remainders are dropped, as ViViT does). The
    learned space-time position embedding is factorised, a temporal one
    `(max_frames // t, D)` plus a spatial one `(S, D)`, so a clip shorter than
    `max_frames` uses the first T' temporal rows and any length up to
    `max_frames` runs on the same weights.

    Args:
        dim: token width D.
        tubelet_size: `(t, p, p)` in frames and pixels.
        max_frames: the longest clip the temporal embedding covers.
    """

    def __init__(self, dim, tubelet_size=(2, 8, 8), max_frames=64, **kwargs):
        super().__init__(**kwargs)
        tubelet_size = tuple(int(v) for v in tubelet_size)
        if int(dim) < 1:
            raise ValueError(f"dim must be a positive integer, received {dim!r}")
        if len(tubelet_size) != 3 or min(tubelet_size) < 1:
            raise ValueError(
                "tubelet_size must be three positive integers (frames, height, width), received "
                f"{tubelet_size!r}"
            )
        if int(max_frames) < tubelet_size[0]:
            raise ValueError(
                f"max_frames must be at least the tubelet length {tubelet_size[0]}, received "
                f"{max_frames!r}"
            )
        self.dim = int(dim)
        self.tubelet_size = tubelet_size
        self.max_frames = int(max_frames)
        self.projection = keras.layers.Conv3D(
            self.dim, tubelet_size, strides=tubelet_size, name="projection", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        if len(input_shape) != 5 or None in input_shape[2:]:
            raise ValueError(
                "TubeletEmbedding expects (batch, time, height, width, channels) with known frame "
                f"size, received shape {tuple(input_shape)}"
            )
        t, p_h, p_w = self.tubelet_size
        grid = (input_shape[2] // p_h, input_shape[3] // p_w)
        if min(grid) < 1:
            raise ValueError(
                f"frames of {input_shape[2]}x{input_shape[3]} are smaller than "
                f"one {p_h}x{p_w} patch"
            )
        if input_shape[1] is not None and input_shape[1] > self.max_frames:
            raise ValueError(
                f"clips of {input_shape[1]} frames are longer than max_frames={self.max_frames}"
            )
        self.grid = grid
        self.projection.build(input_shape)
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.temporal_position = self.add_weight(
            shape=(self.max_frames // t, self.dim),
            initializer=initializer,
            name="temporal_position",
        )
        self.spatial_position = self.add_weight(
            shape=(grid[0] * grid[1], self.dim), initializer=initializer, name="spatial_position"
        )

    def call(self, inputs):
        tokens = self.projection(inputs)
        batch, steps = ops.shape(tokens)[0], ops.shape(tokens)[1]
        tokens = ops.reshape(tokens, (batch, steps, self.grid[0] * self.grid[1], self.dim))
        temporal = ops.cast(self.temporal_position[:steps], tokens.dtype)
        return (
            tokens
            + temporal[None, :, None, :]
            + ops.cast(self.spatial_position, tokens.dtype)[None, None]
        )

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] // self.tubelet_size[0]
        return (
            input_shape[0],
            steps,
            (input_shape[2] // self.tubelet_size[1]) * (input_shape[3] // self.tubelet_size[2]),
            self.dim,
        )

    def flops(self, input_shape):
        """Multiply-adds × 2 of the projection, per clip of `input_shape` (batch excluded)."""
        steps = input_shape[1] // self.tubelet_size[0]
        tubelet = (
            self.tubelet_size[0] * self.tubelet_size[1] * self.tubelet_size[2] * input_shape[-1]
        )
        return 2 * steps * self.grid[0] * self.grid[1] * tubelet * self.dim

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "tubelet_size": list(self.tubelet_size),
            "max_frames": self.max_frames,
        }


@keras.saving.register_keras_serializable(package="vlm_tf")
class SpaceTimeBlock(keras.layers.Layer):
    """A pre-norm transformer block on `(B, T', S, D)` tokens; the output has the input's shape.

    `attention="factorised"` (ViViT's factorised self-attention): attention
    over the S patches of each time step, then over the T' time steps of each
    patch, then the MLP; cost grows as T'·S² + S·T'². `"joint"`: one attention
    over all T'·S tokens, cost (T'·S)²: every token sees every other directly.

    Args:
        num_heads: attention heads; `D` must be divisible by it.
        mlp_dim: hidden width of the MLP.
        attention: `"factorised"` or `"joint"`.
        dropout: dropout on the attention weights and the MLP output.
    """

    def __init__(self, num_heads=4, mlp_dim=256, attention="factorised", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, received {attention!r}")
        if int(num_heads) < 1 or int(mlp_dim) < 1:
            raise ValueError(
                f"num_heads and mlp_dim must be positive integers, received {num_heads!r}, "
                f"{mlp_dim!r}"
            )
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.attention = attention
        self.dropout = float(dropout)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "SpaceTimeBlock expects tokens (batch, time, space, dim), received shape "
                f"{tuple(input_shape)}"
            )
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(f"token width {dim} is not divisible by num_heads={self.num_heads}")
        self.dim = dim
        # The joint block's one attention is called "space" so that both
        # kinds name their shared parts alike.
        self.space_norm, self.space_attention = self._attention_parts("space", dim)
        self.time_norm, self.time_attention = (
            self._attention_parts("time", dim) if self.attention == "factorised" else (None, None)
        )
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="mlp_norm", dtype=self.dtype_policy
        )
        self.mlp_hidden = keras.layers.Dense(
            self.mlp_dim, activation="gelu", name="mlp_hidden", dtype=self.dtype_policy
        )
        self.mlp_output = keras.layers.Dense(dim, name="mlp_output", dtype=self.dtype_policy)
        self.mlp_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.mlp_norm.build((None, None, dim))
        self.mlp_hidden.build((None, None, dim))
        self.mlp_output.build((None, None, self.mlp_dim))

    def _attention_parts(self, part, dim):
        norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name=f"{part}_norm", dtype=self.dtype_policy
        )
        attention = keras.layers.MultiHeadAttention(
            self.num_heads,
            dim // self.num_heads,
            dropout=self.dropout,
            name=f"{part}_attention",
            dtype=self.dtype_policy,
        )
        norm.build((None, None, dim))
        attention.build((None, None, dim), (None, None, dim))
        return norm, attention

    @staticmethod
    def _attend(norm, attention, sequence, training, scores):
        normed = norm(sequence)
        if scores is None:
            return sequence + attention(normed, normed, training=training)
        attended, weights = attention(
            normed, normed, return_attention_scores=True, training=training
        )
        scores.append(ops.mean(ops.cast(weights, "float32"), axis=1))
        return sequence + attended

    def _forward(self, inputs, training, scores=None):
        batch, steps, space = (ops.shape(inputs)[k] for k in range(3))
        if self.attention == "joint":
            x = self._attend(
                self.space_norm,
                self.space_attention,
                ops.reshape(inputs, (batch, steps * space, self.dim)),
                training,
                scores,
            )
        else:
            x = self._attend(
                self.space_norm,
                self.space_attention,
                ops.reshape(inputs, (batch * steps, space, self.dim)),
                training,
                scores,
            )
            x = ops.transpose(ops.reshape(x, (batch, steps, space, self.dim)), (0, 2, 1, 3))
            x = self._attend(
                self.time_norm,
                self.time_attention,
                ops.reshape(x, (batch * space, steps, self.dim)),
                training,
                scores,
            )
            x = ops.transpose(ops.reshape(x, (batch, space, steps, self.dim)), (0, 2, 1, 3))
        x = ops.reshape(x, (batch, steps, space, self.dim))
        return x + self.mlp_dropout(
            self.mlp_output(self.mlp_hidden(self.mlp_norm(x))), training=training
        )

    def call(self, inputs, training=None):
        return self._forward(inputs, training)

    def attention_weights(self, inputs):
        """The block's attention weights on `inputs`, averaged over heads, float32.

        `"joint"`: `[(B, T'·S, T'·S)]`; `"factorised"`: `[(B·T', S, S), (B·S, T', T')]`, the
        space attention within each time step, then the time attention at each patch, rows
        in the order the block reshapes them. Attention rollout
        (`vlm_tf.tasks.explain`) chains them through the blocks.
        """
        scores = []
        self._forward(inputs, False, scores)
        return scores

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def flops(self, input_shape):
        """Multiply-adds × 2 of the projections, attention products and MLP, per clip.

        The batch is excluded.
        """
        steps, space, dim = input_shape[1:]
        tokens = steps * space

        def attention(groups, length):
            # Q, K, V and output projections, then QK^T and weights·V.
            return groups * (4 * length * dim * dim + 2 * length * length * dim)

        if self.attention == "joint":
            multiply_adds = attention(1, tokens)
        else:
            multiply_adds = attention(steps, space) + attention(space, steps)
        return 2 * (multiply_adds + 2 * tokens * dim * self.mlp_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "attention": self.attention,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="vlm_tf")
class ClassAttentionPooling(keras.layers.Layer):
    """A learned class token attends over all tokens: `(B, T', S, D)` → `(B, D)`.

    The weights are `(B, T', S)`.

    ViViT prepends a class token to the sequence; with factorised attention
    there is no single sequence to prepend it to, so the class token reads
    the finished tokens through one cross-attention instead (as CaiT's class
    attention does). Its weights, averaged over heads, say which tubelets
    the prediction came from.
    """

    def __init__(self, num_heads=4, **kwargs):
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"num_heads must be a positive integer, received {num_heads!r}")
        self.num_heads = int(num_heads)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "ClassAttentionPooling expects tokens (batch, time, space, dim), received shape "
                f"{tuple(input_shape)}"
            )
        self.dim = input_shape[-1]
        if self.dim % self.num_heads:
            raise ValueError(
                f"token width {self.dim} is not divisible by num_heads={self.num_heads}"
            )
        self.class_token = self.add_weight(
            shape=(1, 1, self.dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="class_token",
        )
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="norm", dtype=self.dtype_policy
        )
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, self.dim // self.num_heads, name="attention", dtype=self.dtype_policy
        )
        self.norm.build((None, None, self.dim))
        self.attention.build((None, 1, self.dim), (None, None, self.dim))

    def call(self, inputs, training=None):
        batch, steps, space = (ops.shape(inputs)[k] for k in range(3))
        tokens = self.norm(ops.reshape(inputs, (batch, steps * space, self.dim)))
        query = ops.broadcast_to(ops.cast(self.class_token, tokens.dtype), (batch, 1, self.dim))
        pooled, scores = self.attention(
            query, tokens, return_attention_scores=True, training=training
        )
        weights = ops.reshape(ops.mean(ops.cast(scores, "float32"), axis=1), (batch, steps, space))
        return ops.squeeze(pooled, axis=1), weights

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1]), tuple(input_shape[:3])

    def flops(self, input_shape):
        steps, space, dim = input_shape[1:]
        tokens = steps * space
        # Q and output projections for one token, K and V for all, then the products.
        return 2 * (2 * dim * dim + 2 * tokens * dim * dim + 2 * tokens * dim)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}
