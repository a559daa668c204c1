"""The text's GAN for video (§3.3) and its CNN + RNN + GAN fusion (§3.4), as Keras models.

Three builders:

- `build_video_generator`: noise and a class label → a clip. A content code
  decodes a still background and one sprite (an RGBA object image); a
  motion path (a GRU over time) gives the sprite a pose in every frame.
- `build_video_discriminator`: a clip and its label → one real/fake logit.
  3-D convolutions over the frames next to their differences, so it judges
  motion, not only single frames; the label enters by projection (Miyato &
  Koyama, 2018).
- `build_fusion_model`: the §3.4 pseudo-code as a next-frame predictor,
  with the text's names on its parts (`CNN`, `RNN`, `Fusion`, `Generator`,
  `OutputLayer`).

All three take and give pixels in [0, 255], as the classifiers do, so a
generated clip can be written to a video file or scored by a classifier
without conversion. Training (adversarial `train_step`s, the losses of
§4.3) is in `vlm_tf.models.adversarial`.
"""

from __future__ import annotations

import math

import keras

from vlm_tf.layers import (
    ConvLSTM2D,
    FlatSprite,
    FrameDifference,
    IntegrateMotion,
    LastFrame,
    SpriteRenderer,
    TimeDistributed,
    ToPixels,
    TwoColourBackground,
    WarpLastFrame,
)

DEFAULT_LATENT_DIM = 64
DEFAULT_GAN_FRAMES = 16
DEFAULT_GAN_SIZE = 32
# The frame decoders start from a 4×4 grid and double it until the frame size.
SEED_GRID = 4
# The sprite's shape logits start here: sigmoid(2) ≈ 0.88, an opaque sprite
# from the first step, so the discriminator sees an object move at once.
SPRITE_OPACITY_BIAS = 2.0
# Per-frame velocities start small (in pose units, tanh-squashed later: 0.1
# is about 1 pixel a frame at 32 px) and random, so the classes move apart
# from the start. Adam moves a weight by about its learning rate a step,
# whatever the scale of the gradient, so the velocity is an embedding
# times VELOCITY_GAIN: at 2e-4 a step, a velocity stored as is needs some
# 25 epochs to turn round (it was still learning the classes after 14);
# times 10 it needs a few.
VELOCITY_STDDEV = 0.1
VELOCITY_GAIN = 10.0


def _check_size(image_size):
    height, width = image_size
    if (
        height != width
        or height < 2 * SEED_GRID
        or 2 ** round(math.log2(height / SEED_GRID)) * SEED_GRID != height
    ):
        raise ValueError(
            f"image_size must be square, {SEED_GRID}·2^k pixels (8, 16, 32, 64, ...), "
            f"received {tuple(image_size)}"
        )
    return round(math.log2(height / SEED_GRID))


def _check_positive(**values):
    for key, value in values.items():
        if value is None or int(value) < 1:
            raise ValueError(f"{key} must be a positive integer, received {value!r}")


def _check_condition(num_classes, condition_dim):
    if (num_classes is None) == (condition_dim is None):
        raise ValueError(
            "give one of num_classes (a label) and condition_dim (a vector), received "
            f"num_classes={num_classes!r}, condition_dim={condition_dim!r}"
        )
    if condition_dim is None:
        _check_positive(num_classes=num_classes)
    else:
        _check_positive(condition_dim=condition_dim)


def _decoder(x, *, steps, filters, out_channels, prefix, bias=0.0):
    """`(B, 4, 4, C)` → `(B, 4·2^steps, 4·2^steps, out_channels)`.

    (upsample ×2 → conv 3×3 → batch norm → ReLU) × steps → conv 3×3.
    """
    for step in range(1, steps + 1):
        width = max(filters // 2 ** (step - 1), 16)
        name = f"{prefix}_block{step}"
        x = keras.layers.UpSampling2D(2, name=f"{name}_up")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Conv2D(
        out_channels,
        3,
        padding="same",
        bias_initializer=keras.initializers.Constant(bias),
        name=f"{prefix}_out",
    )(x)


def _seed_grid(content, filters, prefix):
    x = keras.layers.Dense(SEED_GRID * SEED_GRID * filters, use_bias=False, name=f"{prefix}_seed")(
        content
    )
    x = keras.layers.Reshape((SEED_GRID, SEED_GRID, filters), name=f"{prefix}_grid")(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}_seed_bn")(x)
    return keras.layers.ReLU(name=f"{prefix}_seed_relu")(x)


def build_video_generator(
    *,
    num_classes=None,
    condition_dim=None,
    latent_dim=DEFAULT_LATENT_DIM,
    num_frames=DEFAULT_GAN_FRAMES,
    image_size=(DEFAULT_GAN_SIZE, DEFAULT_GAN_SIZE),
    filters=128,
    motion_units=128,
    background_colour_share=1.0,
    name="Generator",
):
    """Builds the §3.3 `Generator`: `[noise (B, Z), label (B,)]` → clip `(B, T, H, W, 3)`.

    Pixels are in [0, 255].

    Shape flow (Z = latent_dim, U = motion_units, F = filters):

        label → Embedding → (B, Z);  code = [noise, embedding] → (B, 2Z)
        content = Dense(code) → (B, 2F)
        background: Dense(content) → (B, 4, 4, F) → decoder → pattern (B, 8, 8, 1)
                    + two colours Dense(content) → (B, 6)  → TwoColourBackground → (B, H, W, 3)
        sprite:     Dense(content) → (B, 4, 4, F) → decoder → shape (B, H, W, 1)
                    + one colour Dense(content) → (B, 3)   → FlatSprite → (B, H, W, 4)
        motion:     velocity = Embedding(label) · 10 → (B, 4)                 one motion per class
                    residual = Dense(GRU(RepeatVector(T)(code))) → (B, T, 4)
                    pose = IntegrateMotion([Dense(code), velocity, residual])
                           → (B, T, 4)   x, y, log-scale, angle
                    offset = Dense(code) → (B, 2)        the sprite's distance from its pivot
        clip = SpriteRenderer([background, sprite, pose, offset]) → (B, T, H, W, 3) → pixels

    Each decoder doubles the 4×4 grid (upsample, 3×3 conv, batch norm,
    ReLU), halving the filters each time.

    The generator draws one object (the sprite) and moves it over a still
    background: a layered design in the manner of VGAN's static background
    (Vondrick et al., 2016) and MoCoGAN's motion codes (Tulyakov et al.,
    2018), with the motion made explicit. Each choice answers a failure
    seen while training on 2 CPU cores (docs/design.md):

    - A decoder that paints every frame collapsed to one still texture for
      every class.
    - With a full-resolution background, the sprite faded and the objects
      were painted into the still background: the background is two colours
      mixed by an 8×8 pattern, as the data's are, so sharp edges can only
      come from the sprite. The sprite starts opaque (its shape logits
      start at +2) and has one flat colour, as the data's objects do.
    - A motion path that had to learn motion from a GRU let it die out
      within five epochs. Each class now has a velocity of its own (in x,
      y, log-scale and angle), integrated over the frames, and the GRU adds
      a per-clip residual: every class of the data (moving, growing,
      shrinking, turning) is a steady velocity, and the class loss moves
      eight small vectors instead of a recurrent network.

    Given `condition_dim` instead of `num_classes`, the generator is
    conditioned on a vector, a caption's embedding (`vlm_tf.tasks.text_to_video`):
    `[noise, condition (B, D)]`, with Dense layers where the label's
    embeddings were. The velocity is then a linear map of the caption's
    embedding, so a caption the generator never saw moves its sprite as
    the nearby ones do.

    Args:
        num_classes: labels the generator is conditioned on.
        condition_dim: length of the condition vector, in `num_classes`' place.
        latent_dim: length of the noise vector Z.
        num_frames: frames per generated clip.
        image_size: `(H, W)`, square and 4·2^k pixels.
        filters: width of the 4×4 seed grid of both decoders.
        motion_units: units of the motion GRU.
        background_colour_share: how much of its colour the background keeps, the rest its
            grey (`TwoColourBackground`).
        name: model name.
    """
    # === Config checks ===
    steps = _check_size(image_size)
    _check_condition(num_classes, condition_dim)
    _check_positive(
        latent_dim=latent_dim, num_frames=num_frames, filters=filters, motion_units=motion_units
    )

    # === Inputs ===
    noise = keras.Input((latent_dim,), name="noise")
    velocity_init = keras.initializers.RandomNormal(stddev=VELOCITY_STDDEV / VELOCITY_GAIN)
    if condition_dim is None:
        label = keras.Input((), dtype="int32", name="label")
        embedding = keras.layers.Embedding(num_classes, latent_dim, name="class_embedding")(label)
        velocity = keras.layers.Embedding(
            num_classes, 4, embeddings_initializer=velocity_init, name="class_velocity"
        )(label)
    else:
        label = keras.Input((condition_dim,), name="condition")
        embedding = keras.layers.Dense(latent_dim, name="condition_embedding")(label)
        velocity = keras.layers.Dense(
            4, kernel_initializer=velocity_init, name="condition_velocity"
        )(label)

    # === Layers: codes ===
    code = keras.layers.Concatenate(name="code")([noise, embedding])
    content = keras.layers.Dense(2 * filters, activation="relu", name="content")(code)

    # === Layers: a still two-colour background and one flat-coloured sprite ===
    pattern = _decoder(
        _seed_grid(content, filters, "background"),
        steps=1,
        filters=filters,
        out_channels=1,
        prefix="background",
    )
    pattern = keras.layers.Activation("sigmoid", name="background_pattern")(pattern)
    colours = keras.layers.Dense(6, activation="tanh", name="background_colours")(content)
    background = TwoColourBackground(
        image_size, colour_share=background_colour_share, name="background"
    )([pattern, colours])
    shape = _decoder(
        _seed_grid(content, filters, "sprite"),
        steps=steps,
        filters=filters,
        out_channels=1,
        prefix="sprite",
        bias=SPRITE_OPACITY_BIAS,
    )
    sprite = FlatSprite(name="sprite")(
        [keras.layers.Dense(3, name="sprite_colour")(content), shape]
    )

    # === Layers: the motion path, one pose per frame ===
    velocity = keras.layers.Rescaling(VELOCITY_GAIN, name="velocity_gain")(velocity)
    motion = keras.layers.RepeatVector(num_frames, name="repeat_code")(code)
    motion = keras.layers.GRU(motion_units, return_sequences=True, name="motion")(motion)
    # Weights of 0.3 give residuals of order 1, which IntegrateMotion scales to
    # a few hundredths a frame.
    residual = keras.layers.Dense(
        4, kernel_initializer=keras.initializers.RandomNormal(stddev=0.3), name="motion_residual"
    )(motion)
    pose = IntegrateMotion(name="pose")(
        [keras.layers.Dense(4, name="mean_pose")(code), velocity, residual]
    )

    # Zero at first: the sprite starts centred on its pivot and moves off it where a turn asks.
    offset = keras.layers.Dense(2, kernel_initializer="zeros", name="pivot_offset")(code)

    # === Functional Model ===
    clip = SpriteRenderer(name="renderer")([background, sprite, pose, offset])
    return keras.Model([noise, label], ToPixels(name="pixels")(clip), name=name)


def build_video_discriminator(
    *,
    num_classes=None,
    condition_dim=None,
    heads=None,
    num_frames=DEFAULT_GAN_FRAMES,
    image_size=(DEFAULT_GAN_SIZE, DEFAULT_GAN_SIZE),
    filters=32,
    name="Discriminator",
):
    """Builds the §3.3 `Discriminator`: `[clip, label]` → `[real/fake logit, class logits]`.

    `clip (B, T, H, W, 3)` in [0, 255] and `label (B,)`; the logits are
    `(B, 1)` and `(B, K)`.

    With `num_classes=None` it is unconditional: the clip alone → the real/fake logit.
    With `condition_dim` instead, `[clip, condition (B, D)]` → `[logit, *head
    logits]`: the condition enters the logit by projection through a Dense
    layer, and `heads` (`{name: number of values}`, e.g. a caption's motion
    and colour) each get an auxiliary classifier.

    Shape flow (F = filters):

        clip → [−1, 1] → FrameDifference → (B, T, H, W, 6)
        → Conv3D(F, 3×4×4, stride 1×2×2) → (B, T, H/2, W/2, F)
          (space only: keep every step of the motion)
        → Conv3D(2F, 4×4×4, stride 2) → Conv3D(4F, …) → … until H/16 → (B, T', h, w, F')
        → flatten → (B, D)
        logit = Dense(1)(features) + ⟨Embedding(label), features⟩   the projection term
        class_logits = Dense(K)(features)                           the auxiliary classifier

    The logit is D's pre-sigmoid score: D(x) of §4.3 is sigmoid(logit).
    Leaky ReLU and layer normalisation (per clip, so a batch of fakes is
    not normalised with a batch of real clips) keep gradients flowing to the
    generator.
    """
    # === Config checks ===
    steps = _check_size(image_size)
    _check_positive(num_frames=num_frames, filters=filters)
    if num_classes is not None:
        _check_positive(num_classes=num_classes)
    if condition_dim is not None:
        _check_condition(num_classes, condition_dim)
        heads = dict(heads or {})
        _check_positive(**{f"heads[{head!r}]": count for head, count in heads.items()})

    # === Inputs ===
    clip = keras.Input((num_frames, *image_size, 3), name="clip")

    # === Layers: 3-D convolutions over frames and their differences ===
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(clip)
    x = FrameDifference(name="frame_difference")(x)
    x = keras.layers.Conv3D(filters, (3, 4, 4), strides=(1, 2, 2), padding="same", name="conv1")(x)
    x = keras.layers.LeakyReLU(0.2, name="conv1_lrelu")(x)
    for block in range(2, steps + 1):
        width = filters * 2 ** (block - 1)
        strides = (2 if x.shape[1] >= 4 else 1, 2, 2)
        x = keras.layers.Conv3D(width, 4, strides=strides, padding="same", name=f"conv{block}")(x)
        x = keras.layers.LayerNormalization(axis=(-4, -3, -2, -1), name=f"conv{block}_ln")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{block}_lrelu")(x)
    features = keras.layers.Flatten(name="features")(x)

    # === Layers: unconditional score + class projection ===
    score = keras.layers.Dense(1, dtype="float32", name="score")(features)
    if condition_dim is not None:
        condition = keras.Input((condition_dim,), name="condition")
        embedding = keras.layers.Dense(features.shape[-1], name="condition_embedding")(condition)
        projection = keras.layers.Dot(axes=-1, dtype="float32", name="projection")(
            [embedding, features]
        )
        logit = keras.layers.Add(dtype="float32", name="logit")([score, projection])
        # AC-GAN's classifier, one per named attribute of the clip.
        head_logits = [
            keras.layers.Dense(count, dtype="float32", name=f"{head}_logits")(features)
            for head, count in heads.items()
        ]
        return keras.Model([clip, condition], [logit, *head_logits], name=name)
    if num_classes is None:
        return keras.Model(clip, score, name=name)
    label = keras.Input((), dtype="int32", name="label")
    embedding = keras.layers.Embedding(num_classes, features.shape[-1], name="class_embedding")(
        label
    )
    projection = keras.layers.Dot(axes=-1, dtype="float32", name="projection")(
        [embedding, features]
    )
    logit = keras.layers.Add(dtype="float32", name="logit")([score, projection])
    # An auxiliary classifier (AC-GAN, Odena et al., 2017): which class the clip shows.
    class_logits = keras.layers.Dense(num_classes, dtype="float32", name="class_logits")(features)

    # === Functional Model ===
    return keras.Model([clip, label], [logit, class_logits], name=name)


def build_fusion_model(
    *,
    observed_frames=8,
    predicted_frames=8,
    image_size=(DEFAULT_GAN_SIZE, DEFAULT_GAN_SIZE),
    filters=(32, 64),
    rnn_units=64,
    name="fusion",
):
    """Builds §3.4's CNN + RNN + GAN fusion as a next-frame predictor.

    `X (B, T, H, W, 3)` → the next K frames `(B, K, H, W, 3)`, pixels
    [0, 255].

    The text's pseudo-code, with its names on the layers:

        X_space      = CNN(X)                            (B, T, h, w, F)
                       conv stride 2 per frame, h = H / 2^blocks
        X_time       = RNN(X_space)                      (B, h, w, U)
                       ConvLSTM2D over the T maps, the last state
        X_multimodal = Fusion([X_space[:, -1], X_time])  (B, h, w, F+U)
                       the last frame's features next to the dynamics
        X_fake       = Generator(X_multimodal)           (B, K, H, W, 6)
                       upsample back to H × W: colour, mask, flow per frame
        Y            = OutputLayer([X_fake, X])          (B, K, H, W, 3)
                       WarpLastFrame

    Two readings of the text are fixed here (docs/errata.md §3.4): the RNN
    reads the CNN's feature maps, not raw pixels, and it is a convolutional
    LSTM, so the state keeps where things are, which a prediction of where
    they go next needs. The GAN part of §3.4 is in training: the generator
    is trained with a reconstruction loss plus a discriminator's
    (`vlm_tf.models.adversarial.FramePredictionGAN`).
    """
    # === Config checks ===
    filters = (filters,) if isinstance(filters, int) else tuple(filters)
    _check_positive(
        observed_frames=observed_frames, predicted_frames=predicted_frames, rnn_units=rnn_units
    )
    if not filters or any(int(f) < 1 for f in filters):
        raise ValueError(
            f"filters must be a positive int or a non-empty sequence of them, received {filters!r}"
        )
    height, width = image_size
    scale = 2 ** len(filters)
    if height % scale or width % scale:
        raise ValueError(
            f"image_size={tuple(image_size)} must be divisible by {scale} for {len(filters)} "
            "stride-2 conv block(s)"
        )

    # === Inputs ===
    X = keras.Input((observed_frames, height, width, 3), name="X")

    # === Layers: CNN, spatial features of every frame ===
    CNN = keras.Sequential(name="CNN")
    CNN.add(keras.Input((observed_frames, height, width, 3)))
    CNN.add(keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling"))
    for block, block_filters in enumerate(filters, start=1):
        CNN.add(
            TimeDistributed(
                keras.layers.Conv2D(block_filters, 3, strides=2, padding="same", activation="relu"),
                name=f"conv{block}",
            )
        )
    X_space = CNN(X)

    # === Layers: RNN over the frames' maps, Fusion ===
    X_time = ConvLSTM2D(rnn_units, 3, padding="same", name="RNN")(X_space)
    last_space = LastFrame(name="last_frame_features")(X_space)
    X_multimodal = keras.layers.Concatenate(name="Fusion")([last_space, X_time])

    # === Layers: Generator, back to frames ===
    Generator = keras.Sequential(name="Generator")
    Generator.add(keras.Input(X_multimodal.shape[1:]))
    for block, block_filters in enumerate(reversed(filters), start=1):
        Generator.add(keras.layers.UpSampling2D(2, name=f"up{block}"))
        Generator.add(
            keras.layers.Conv2D(
                block_filters, 3, padding="same", activation="relu", name=f"conv{block}"
            )
        )
    # Starts at zero: no flow, a mask of 0.02: the copy-last baseline, nearly.
    Generator.add(
        keras.layers.Conv2D(
            predicted_frames * 6, 3, padding="same", kernel_initializer="zeros", name="frames"
        )
    )
    Generator.add(keras.layers.Reshape((height, width, predicted_frames, 6), name="split_frames"))
    Generator.add(keras.layers.Permute((3, 1, 2, 4), name="time_first"))
    X_fake = Generator(X_multimodal)

    # === Functional Model ===
    Y = WarpLastFrame(name="OutputLayer")([X_fake, X])
    return keras.Model(X, Y, name=name)
