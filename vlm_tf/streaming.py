"""Classifying a live stream frame by frame.

The last T frames' probabilities after every frame, without recomputing
the clip.

The CNN classifiers (`vlm_tf.models.cnn_lstm`, `vlm_tf.models.attention`)
encode every frame on its own up to their `frame_features` layer
`(B, T, F)`; only what comes after (the LSTM, attention, the mean) looks at
time. `StreamingClassifier` splits them there: an encoder (input →
`frame_features`) run on the new frame only, a ring buffer of the last T
feature vectors, and a head (`frame_features` → output) run on the buffer.

Frame differences (`vlm_tf.layers.FrameDifference`) make that split need
care: a clip's first frame has a zero difference, every other frame its
difference from the one before. In a sliding window the frame that starts
the window changes every step, so its feature is recomputed with a zero
difference; every other frame's feature is the one computed when it
arrived. Both come from one encoder call on the 3-frame clip [window's
first frame, previous frame, new frame]: position 0 is the first frame with
a zero difference and position 2 the new frame with its true difference
(position 1 is computed and dropped). Three frames encoded per step instead
of T; one (the new frame) without frame differences. The probabilities
equal the whole model's on the last T frames.

The video transformers have no such split: a tubelet spans two frames and
attention mixes every token of the window, so a new frame changes every
intermediate value. They, and any model whose clip length is fixed, run
whole on a ring buffer of the last T frames, which costs what a clip costs.

Until T frames have arrived the result says `ready=False` and has no
probabilities. The models would accept a shorter clip, but they learnt
from T frames spanning a whole motion, so an answer from the first few
frames would be confident about too little (and the transformers' tubelets
need an even count).

`stride` keeps every k-th frame of the source. The model learnt from T
frames sampled across whole training videos: if those had N frames at
`fps_train`, consecutive clip frames were N/T frames, or N/(T·fps_train)
seconds, apart. Choose `stride ≈ camera_fps · N / (T · fps_train)`, e.g.
1.5 × 30/10 ≈ 4 for the synthetic dataset (24 frames at 10 fps, T = 16)
seen through a 30 fps camera.
"""

from __future__ import annotations

import collections
import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from vlm_tf.data.decode import resize_frame

ENCODER_LAYER = "frame_features"
DIFFERENCE_LAYER = "frame_difference"


@dataclasses.dataclass(frozen=True)
class StreamStep:
    """What the stream says after one frame."""

    # Position of the frame in the stream, from 0.
    frame_index: int
    # False for a frame `stride` skips: the rest is then the last kept frame's.
    kept: bool
    # Whether T kept frames have arrived; before that the fields below are None.
    ready: bool
    probabilities: np.ndarray | None
    label: str | None
    probability: float | None
    # Time spent on this frame, resizing included.
    latency_ms: float


class StreamingClassifier:
    """Takes a stream's frames one at a time.

    After each, it returns the probabilities over the last T kept frames.

    Args:
        run_or_model: a classify run (`vlm_tf.inference.load_run`) or a
            classifier `keras.Model` taking float32 `[0, 255]` clips `(B, T, H, W, 3)`.
        num_frames: T; default the run's `num_frames` (required for a bare
            model with a free time axis).
        class_names: labels of the outputs; default the run's, or the output indices.
        stride: keep every `stride`-th frame (module docstring: how to choose it).

    `mode` is `"per_frame"` (encoder on new frames, head on the buffer) or
    `"whole_clip"` (the model on the buffer of frames), module docstring.
    """

    def __init__(self, run_or_model, *, num_frames=None, class_names=None, stride=1):
        if isinstance(run_or_model, keras.Model):
            model = run_or_model
        else:
            run_or_model.require("classify", "streaming")
            model = run_or_model.model
            num_frames = num_frames or run_or_model.config.num_frames
            class_names = class_names or run_or_model.class_names
        _, fixed_frames, height, width, _ = model.input_shape
        num_frames = num_frames or fixed_frames
        if num_frames is None or int(num_frames) < 1:
            raise ValueError(
                "num_frames must be a positive integer (the model's clip length), received "
                f"{num_frames!r}"
            )
        if fixed_frames is not None and fixed_frames != num_frames:
            raise ValueError(
                f"num_frames={num_frames}, but the model takes clips of {fixed_frames} frames"
            )
        if int(stride) < 1:
            raise ValueError(f"stride must be a positive integer, received {stride!r}")
        num_classes = model.output_shape[-1]
        class_names = (
            list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
        )
        if len(class_names) != num_classes:
            raise ValueError(
                f"{len(class_names)} class names for a model with {num_classes} outputs"
            )
        self.model = model
        self.num_frames = int(num_frames)
        self.class_names = class_names
        self.stride = int(stride)
        self.image_size = (height, width)
        layer_names = {layer.name for layer in model.layers}
        # A fixed time axis would refuse the encoder's 1- and 3-frame clips.
        self.mode = (
            "per_frame" if ENCODER_LAYER in layer_names and fixed_frames is None else "whole_clip"
        )
        self.encoder = self.head = None
        self.frame_difference = DIFFERENCE_LAYER in layer_names
        # Called eagerly, a Keras model dispatches every op from Python (an
        # LSTM step by step): a 16-frame 64×64 clip of cnn_lstm takes 108 ms
        # that way and 11 ms as a traced graph. Each callable below sees one
        # or two input shapes, so it is traced once or twice.
        if self.mode == "per_frame":
            features = model.get_layer(ENCODER_LAYER).output
            self.encoder = keras.Model(model.input, features, name=f"{model.name}_encoder")
            self.head = keras.Model(features, model.output, name=f"{model.name}_head")
            self._encode_clip, self._classify = tf.function(self.encoder), tf.function(self.head)
        else:
            self._classify = tf.function(model)
        self._warm_up()

    def _warm_up(self):
        """Traces the graphs on blank frames.

        The stream's first frames then do not wait a second for it.
        """
        blank = np.zeros((*self.image_size, 3), np.uint8)
        self.reset()
        # T + 1 kept frames reach every input shape: the lone first frame, the
        # 3-frame clip, the full window.
        for _ in range((self.num_frames + 1) * self.stride):
            self.update(blank)
        self.reset()

    def reset(self):
        """Forgets the stream: the next frame starts a new one."""
        self._frames = collections.deque(maxlen=self.num_frames)
        self._features = collections.deque(maxlen=self.num_frames)
        self._seen = 0
        self._last = None

    def update(self, frame):
        """Adds one RGB uint8 frame `(h, w, 3)` of any size and returns the `StreamStep`.

        The frame is resized as `read_frames` resizes.
        """
        start = time.perf_counter()
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"a stream frame must be uint8 RGB (height, width, 3), received {frame.dtype} "
                f"{frame.shape}"
            )
        index = self._seen
        self._seen += 1
        if index % self.stride:
            return self._step(index, False, start)
        self._frames.append(resize_frame(frame, self.image_size).astype(np.float32))
        window = self._encode() if self.mode == "per_frame" else np.stack(self._frames)
        if len(self._frames) == self.num_frames:
            probabilities = np.asarray(self._classify(window[None], training=False), np.float32)[0]
            best = int(np.argmax(probabilities))
            self._last = (probabilities, self.class_names[best], float(probabilities[best]))
        return self._step(index, True, start)

    def _encode(self):
        """Encodes the newest frame into the feature buffer.

        Returns the window's features `(n, F)`, its first with a zero difference.
        """
        frames = self._frames
        if not self.frame_difference or len(frames) == 1:
            # Alone in a clip, a frame's difference is zero: its feature is the window-start one.
            self._features.append(
                np.asarray(self._encode_clip(frames[-1][None, None], training=False))[0, 0]
            )
            return np.stack(self._features)
        encoded = np.asarray(
            self._encode_clip(np.stack([frames[0], frames[-2], frames[-1]])[None], training=False)
        )[0]
        self._features.append(encoded[2])
        return np.stack([encoded[0], *list(self._features)[1:]])

    def _step(self, index, kept, start):
        probabilities, label, probability = self._last or (None, None, None)
        return StreamStep(
            index,
            kept,
            self._last is not None,
            probabilities,
            label,
            probability,
            (time.perf_counter() - start) * 1000.0,
        )
