"""Video restoration for chapter 6.

Denoising (§6.7), super-resolution (§6.6) and enhancement (§6.4).

`build_video_restorer` takes a window of degraded frames and returns the
clean centre frame. It is fully convolutional: trained on small frames, it
restores a video of any size. Shape flow, for a window of T frames, output
frames of H × W and an upscaling factor s (1 unless super-resolving):

    window (B, T, H/s, W/s, 3), pixels in [0, 255]
      → Rescaling to [0, 1] → [RelativeToCentre] → FoldTime (B, H/s, W/s, 3T)
      → Conv 3×3 (F) ReLU → GlobalContext → (Conv 3×3 (F) ReLU) × (depth − 2)
      → Conv 3×3 (3·s², zero start) → PixelShuffle(s) → (B, H, W, 3) residual × 255
    + CentreFrame (B, H/s, W/s, 3) → bicubic upsampling by s
    = the restored centre frame (B, H, W, 3)

The network learns what to add to the degraded centre frame (upscaled
first when super-resolving), so it starts as the identity, or as bicubic
upscaling, and only has to learn the correction (the residual learning of
VDSR, Kim et al., 2016). With `window=1` it is the single-frame variant,
the same network without temporal context; the docs give both figures.

With `relative=True` the neighbours enter as differences from the centre
frame, so a network that ignores them is the single-frame one. For ×2
super-resolution, stacked as they are, five frames trained slower than one
and ended behind it (15 epochs: 38.26 dB against 39.47); as differences
they end ahead. For denoising the plain stack does better, the clean frame
being close to the frames' average. The registry sets it per task
(docs/design.md, "Restoration").

The text (§6.4) says enhancement uses a GAN. A GAN's loss rewards texture
that looks right over the true pixels, which lowers PSNR and SSIM, the
figures this task is scored on; so these models train on the squared error
alone (`vlm_tf.tasks.restore`).
"""

from __future__ import annotations

import keras

from vlm_tf.layers import (
    CentreFrame,
    FoldTime,
    GlobalContext,
    PixelShuffle,
    RelativeToCentre,
    Upscale,
)

DEFAULT_WINDOW = 5


def build_video_restorer(
    *, window=DEFAULT_WINDOW, scale=1, filters=48, depth=6, relative=True, name="video_restorer"
):
    """Builds the restorer: `(B, window, h, w, 3)` → `(B, h·scale, w·scale, 3)`.

    Pixels are in [0, 255]; h and w may be any.

    Args:
        window: frames in (odd, so that one is the centre; 1 for the single-frame variant).
        scale: upscaling factor (1 for denoising and enhancement, 2 or 4 for super-resolution).
        filters: channels of the convolutions.
        depth: convolutions in all (at least 2).
        relative: give the network every frame but the centre one as its
            difference from the centre frame (`RelativeToCentre`); `False`
            stacks the frames as they are.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of frames, received {window}")
    if depth < 2:
        raise ValueError(f"depth must be at least 2, received {depth}")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, received {scale}")
    frames = keras.Input((window, None, None, 3), name="frames")
    x = keras.layers.Rescaling(1 / 255.0, name="to_unit")(frames)
    if relative:
        x = RelativeToCentre(name="relative_to_centre")(x)
    x = FoldTime(name="fold_time")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv_1")(x)
    x = GlobalContext(name="global_context")(x)
    for k in range(2, depth):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv_{k}")(x)
    x = keras.layers.Conv2D(
        3 * scale * scale, 3, padding="same", kernel_initializer="zeros", name=f"conv_{depth}"
    )(x)
    if scale > 1:
        x = PixelShuffle(scale, name="pixel_shuffle")(x)
    residual = keras.layers.Rescaling(255.0, name="to_pixels")(x)
    centre = CentreFrame(name="centre_frame")(frames)
    if scale > 1:
        centre = Upscale(scale, name="upscale")(centre)
    restored = keras.layers.Add(name="restored")([centre, residual])
    return keras.Model(frames, restored, name=name)
