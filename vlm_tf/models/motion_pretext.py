"""Camera-motion prediction: a backbone learns what motion looks like by telling how clips moved.

A transformation-prediction pretext, as RotNet predicts the rotation of an
image and speed-prediction methods the playback rate of a clip: the labels
are made by the model itself from unlabeled clips.

    clips (B, T, H, W, 3) → each clip moved by a camera drawn at random:
        content shifted by (vx, vy) pixels a frame, scaled by e^z a frame and
        turned by ω degrees a frame about the centre (each of the three moves
        present in half the clips), frames warped with reflected borders
      → the backbone → (B, F) → Dense(4) → (vx, vy, z, ω), each over its range
    loss: squared error against the drawn values

The drawn move adds to whatever the clip already shows, so the model must
measure motion, not recognise content; a clip's own motion is noise the
loss tolerates. The head is thrown away, the backbone kept
(`CameraMotionPretext.backbone`). Any registered classifier's backbone
trains this way.
"""

from __future__ import annotations

import math

import keras
from keras import ops

# The largest drawn move a frame: pixels of shift (at a 64-pixel frame, scaled with it), log-scale
# and degrees. Over 16 frames: up to 24 pixels, a factor of 1.6, 24 degrees.
MAX_SHIFT_PER_64 = 1.5
MAX_LOG_ZOOM = 0.03
MAX_DEGREES = 1.5
# The share of clips in which each of shift, zoom and turn is present.
PRESENT = 0.5


def camera_transforms(params, num_frames, height, width):
    """`(B, 4)` moves `(vx, vy, z, ω)` → `(B·T, 8)` rows of `keras.ops.image.affine_transform`:
    frame t moved by (t − centre) steps of each, about the frame's centre.

    Each row maps an output pixel to where it is sampled in the input: content
    moved by d is read from x − d, scaled by s from c + (x − c) / s, turned by
    ω from c + R(−ω)(x − c).
    """
    steps = ops.arange(num_frames, dtype="float32") - (num_frames - 1) / 2.0
    vx, vy, z, omega = (params[:, k : k + 1] * steps[None] for k in range(4))
    scale = ops.exp(-z)
    radians = omega * (math.pi / 180.0)
    cos, sin = ops.cos(radians) * scale, ops.sin(radians) * scale
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    # input = c + S·R(−ω)·(output − c) − d, written out per coefficient.
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = cx - a0 * cx - a1 * cy - vx
    b2 = cy - b0 * cx - b1 * cy - vy
    zeros = ops.zeros_like(a0)
    rows = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=-1)
    return ops.reshape(rows, (-1, 8))


@keras.saving.register_keras_serializable(package="vlm_tf")
class CameraMotionPretext(keras.Model):
    """A backbone and a 4-value head that tells the camera move added to each clip (module
    docstring).

    Called on clips it returns `(predicted, drawn)`, both `(B, 4)` over the
    moves' ranges; `compute_loss` reads them. `moved(clips)` gives the moved
    clips with their moves, to look at.
    """

    def __init__(self, backbone, *, seed=None, **kwargs):
        super().__init__(**kwargs)
        if backbone.input_shape[1] is None or None in backbone.input_shape[2:4]:
            raise ValueError("camera-motion pretraining needs a backbone for fixed clip sizes")
        self.backbone = backbone
        self.num_frames, self.height, self.width = backbone.input_shape[1:4]
        self.ranges = ops.convert_to_tensor(
            [
                MAX_SHIFT_PER_64 * self.width / 64.0,
                MAX_SHIFT_PER_64 * self.height / 64.0,
                MAX_LOG_ZOOM,
                MAX_DEGREES,
            ]
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.head = keras.layers.Dense(4, dtype="float32", name="motion")

    def moved(self, clips):
        """`(clips moved by a drawn camera, the moves (B, 4) over their ranges)`."""
        batch = ops.shape(clips)[0]
        drawn = keras.random.uniform((batch, 4), -1.0, 1.0, seed=self.seed_generator)
        present = keras.random.uniform((batch, 3), seed=self.seed_generator) < PRESENT
        present = ops.cast(ops.concatenate([present[:, :1], present], axis=1), "float32")
        drawn = drawn * present
        frames = ops.reshape(
            ops.cast(clips, "float32"), (-1, self.height, self.width, clips.shape[-1])
        )
        transforms = camera_transforms(
            drawn * self.ranges[None], self.num_frames, self.height, self.width
        )
        warped = keras.ops.image.affine_transform(frames, transforms, fill_mode="reflect")
        return ops.reshape(warped, ops.shape(clips)), drawn

    def call(self, clips, training=None):
        moved, drawn = self.moved(clips)
        return self.head(self.backbone(moved, training=training)), drawn

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        predicted, drawn = y_pred
        return ops.mean(ops.square(ops.cast(predicted, "float32") - drawn))


def build_camera_motion_pretext(
    *, encoder, num_frames, image_size=(64, 64), seed=None, name="camera_motion"
):
    """A `CameraMotionPretext` on a fresh backbone of the registered classifier `encoder`."""
    from vlm_tf.models.backbone import build_backbone

    backbone = build_backbone(encoder, image_size=tuple(image_size), num_frames=num_frames)
    model = CameraMotionPretext(backbone, seed=seed, name=name)
    model(keras.ops.zeros((1, num_frames, *image_size, 3)))
    return model
