"""SavedModel export: a model plain TensorFlow can serve, no vlm_tf import needed.

The serving signature takes what a decoder produces, `uint8` RGB frames
`(batch, time, height, width, 3)` at the model's frame size, and returns

    probabilities  float32 (batch, num_classes)
    class_index    int64   (batch,)
    class_name     string  (batch,)

The model rescales pixels itself (its `rescaling` layer), so the signature
only casts. Load it with `tf.saved_model.load(path).signatures["serving_default"]`.

The generative runs export their own signatures: a GAN's generator takes
noise and a label and returns uint8 frames (`export_generator`); the fusion
model takes uint8 frames and returns the uint8 frames it predicts next
(`export_frame_predictor`). A restoration model takes a degraded clip's
uint8 frames, of any size, and returns them restored (`export_restorer`);
a detector takes a video's uint8 frames, of any size, and returns boxes,
scores and classes per frame (`export_detector`); a video_text model embeds
uint8 clips and caption strings in one space (`export_video_text`); a
text_to_video run turns prompt strings into uint8 clips
(`export_text_to_video`).

A classifier also converts to a TFLite flatbuffer (`convert_to_tflite`):
uint8 frames `(1, time, height, width, 3)` → float32 probabilities, its
weights optionally quantized; `vlm_tf.compression.quantize` writes a run's
file and measures its accuracy, size and speed.
"""

from __future__ import annotations

import os
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic
from vlm_tf.compression import QUANTIZE_MODES

SERVING_INPUT = "frames"


def export_saved_model(model, path, *, class_names):
    """Writes `model` as a SavedModel at `path` with the uint8 serving signature above."""
    _, num_frames, height, width, channels = model.input_shape
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(
            f"{len(class_names)} class names for a model with {model.output_shape[-1]} outputs"
        )
    names = tf.constant(list(class_names))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, num_frames, height, width, channels], tf.uint8, name=SERVING_INPUT)
        ]
    )
    def serve(frames):
        probabilities = tf.cast(model(tf.cast(frames, tf.float32), training=False), tf.float32)
        return _labelled(probabilities, names)

    path = os.fspath(path)
    _write_archive(model, serve, path)
    return path


def export_generator(generator, path, *, class_names):
    """Writes a GAN's generator as a SavedModel.

    `noise` float32 `(batch, Z)` and `label` int32 `(batch,)` → uint8 `frames`
    `(batch, T, H, W, 3)`.

    The signature also returns `class_name` (string, per clip), so a served
    clip says what it was asked to show.
    """
    latent_dim = generator.input_shape[0][-1]
    names = tf.constant(list(class_names))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, latent_dim], tf.float32, name="noise"),
            tf.TensorSpec([None], tf.int32, name="label"),
        ]
    )
    def serve(noise, label):
        clips = tf.cast(generator([noise, label], training=False), tf.float32)
        return {
            "frames": tf.cast(tf.round(tf.clip_by_value(clips, 0.0, 255.0)), tf.uint8),
            "class_name": tf.gather(names, label),
        }

    path = os.fspath(path)
    _write_archive(generator, serve, path)
    return path


def export_frame_predictor(predictor, path):
    """Writes a next-frame predictor as a SavedModel.

    uint8 `frames` `(batch, observed, H, W, 3)` →
    uint8 `next_frames` `(batch, predicted, H, W, 3)`.
    """
    _, observed, height, width, channels = predictor.input_shape

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, observed, height, width, channels], tf.uint8, name=SERVING_INPUT)
        ]
    )
    def serve(frames):
        clips = tf.cast(predictor(tf.cast(frames, tf.float32), training=False), tf.float32)
        return {"next_frames": tf.cast(tf.round(tf.clip_by_value(clips, 0.0, 255.0)), tf.uint8)}

    path = os.fspath(path)
    _write_archive(predictor, serve, path)
    return path


def export_restorer(restorer, path):
    """Writes a restoration model as a SavedModel.

    uint8 `frames` `(T, h, w, 3)`, one degraded clip of any size → uint8
    `restored` `(T, h·s, w·s, 3)`.

    Each frame is restored from the window of frames centred on it, the
    clip's first and last frames repeated past its ends, as
    `vlm_tf.inference.restore_frames` does.
    """
    from vlm_tf.data.restoration import sliding_windows

    window = restorer.input_shape[1]

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=SERVING_INPUT)]
    )
    def serve(frames):
        restored = tf.cast(
            restorer(sliding_windows(tf.cast(frames, tf.float32), window), training=False),
            tf.float32,
        )
        return {"restored": tf.cast(tf.round(tf.clip_by_value(restored, 0.0, 255.0)), tf.uint8)}

    path = os.fspath(path)
    _write_archive(restorer, serve, path)
    return path


def export_detector(detector, path, *, class_names, max_detections=20):
    """Writes a detect run's model as a SavedModel.

    uint8 `frames` `(T, H, W, 3)`, one video of any size →

        boxes        float32 (T, K, 4)  [x_min, y_min, x_max, y_max] in the frames' pixels
        scores       float32 (T, K)     best first; `vlm-tf apply` keeps those >= 0.3
        class_index  int32   (T, K)
        class_name   string  (T, K)

    with K = `max_detections`. Frames are resized to the model's size as
    `read_frames` does (area averaging to shrink, bilinear to enlarge), and
    the boxes scaled back. Tracking stays outside: it is a few lines of
    bookkeeping per frame (`vlm_tf.tracking.IoUTracker`).
    """
    from vlm_tf.models.detection import decode_detections

    _, _, height, width, _ = detector.input_shape
    names = tf.constant(list(class_names))

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=SERVING_INPUT)]
    )
    def serve(frames):
        pixels = tf.cast(frames, tf.float32)
        size = tf.shape(frames)[1:3]
        shrinking = tf.reduce_any(size > [height, width])
        resized = tf.cond(
            shrinking,
            lambda: tf.image.resize(pixels, (height, width), method="area"),
            lambda: tf.image.resize(pixels, (height, width), method="bilinear"),
        )
        outputs = detector(resized[None], training=False)[0]
        boxes, scores, classes = decode_detections(
            outputs, num_classes=len(class_names), max_detections=max_detections
        )
        scale = tf.cast(tf.stack([size[1] / width, size[0] / height] * 2), tf.float32)
        return {
            "boxes": boxes * scale,
            "scores": scores,
            "class_index": classes,
            "class_name": tf.gather(names, classes),
        }

    path = os.fspath(path)
    _write_archive(detector, serve, path)
    return path


def export_video_text(model, path, *, tokenizer, num_samples=None):
    """Writes a video_text run's model as a SavedModel with two signatures, both returning unit
    vectors, so the dot product of a clip's and a caption's is their cosine:

        embed_video: uint8 `frames` (batch, time, height, width, 3) → float32 `embedding`
                     (and float32 `audio` (batch, num_samples) for a model that hears)
        embed_text:  string `text` (batch,)                          → float32 `embedding`

    each embedding `(batch, D)`.

    `tokenizer` (the run's `TextVectorization`) goes into the archive: a caption is served as
    words, with no vlm_tf to split them.
    """
    _, num_frames, height, width, channels = model.video_backbone.input_shape
    frames_spec = tf.TensorSpec([None, num_frames, height, width, channels], tf.uint8, "frames")

    if model.sound_encoder is None:

        @tf.function(input_signature=[frames_spec])
        def embed_video(frames):
            embedded = model.embed_video(tf.cast(frames, tf.float32))
            return {"embedding": tf.cast(embedded, tf.float32)}

    else:

        @tf.function(
            input_signature=[frames_spec, tf.TensorSpec([None, num_samples], tf.float32, "audio")]
        )
        def embed_video(frames, audio):
            embedded = model.embed_video(tf.cast(frames, tf.float32), audio)
            return {"embedding": tf.cast(embedded, tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def embed_text(text):
        return {"embedding": tf.cast(model.embed_text(tokenizer(text)), tf.float32)}

    # A layer is built by its first call; an archive takes built layers only.
    tokenizer(tf.constant([""]))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    archive.add_endpoint("embed_video", embed_video)
    archive.add_endpoint("embed_text", embed_text)
    path = os.fspath(path)
    with atomic.replacing(path) as temporary:
        archive.write_out(temporary, verbose=False)
    return path


def export_text_to_video(
    model, path, *, tokenizer, text_encoder, whitening, diffusion, steps=32, guidance=3.0
):
    """Writes a text_to_video run's generator (`diffusion=False`) or denoiser as a SavedModel that
    takes prompts as words:

        serving_default:   string `prompt` (batch,), int32 `seed` () → uint8 `frames`
                           (batch, T, H, W, 3)
        from_first_frame:  the same and uint8 `first_frame` (batch, H, W, 3), a denoiser only

    The text side goes into the archive: the run's `TextVectorization`, its copy of the frozen
    text encoder and the whitening of its condition (`{"mean", "matrix"}`), so nothing but
    TensorFlow turns a prompt into a clip. A denoiser is sampled by `steps` Euler steps with
    classifier-free guidance `guidance`, as `vlm_tf.models.video_diffusion.sample_clips` does.
    The noise is TensorFlow's stateless normal of `seed`: a prompt and a seed give the same clip
    every time, though not the clip of `vlm-tf generate`, which draws NumPy's.
    """
    mean = tf.constant(np.asarray(whitening["mean"], np.float32))
    matrix = tf.constant(np.asarray(whitening["matrix"], np.float32))
    prompt_spec = tf.TensorSpec([None], tf.string, name="prompt")
    seed_spec = tf.TensorSpec([], tf.int32, name="seed")

    def condition_of(prompt):
        embedded = tf.cast(text_encoder(tokenizer(prompt)), tf.float32)
        embedded = embedded / tf.maximum(tf.norm(embedded, axis=1, keepdims=True), 1e-12)
        return tf.matmul(embedded - mean, matrix)

    def to_pixels(clips):
        return tf.cast(tf.round(tf.clip_by_value(clips, 0.0, 255.0)), tf.uint8)

    # A layer is built by its first call; an archive takes built layers only.
    tokenizer(tf.constant([""]))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(text_encoder)
    archive.track(tokenizer)
    if not diffusion:
        latent_dim = model.input_shape[0][-1]

        @tf.function(input_signature=[prompt_spec, seed_spec])
        def serve(prompt, seed):
            noise = tf.random.stateless_normal(
                [tf.shape(prompt)[0], latent_dim], seed=tf.stack([seed, 0])
            )
            clips = model([noise, condition_of(prompt)], training=False)
            return {"frames": to_pixels(tf.cast(clips, tf.float32))}

        archive.add_endpoint("serving_default", serve)
    else:
        num_frames, height, width = model.input["noisy"].shape[1:4]

        def sample(prompt, first, mask, seed):
            condition = condition_of(prompt)
            count = tf.shape(prompt)[0]
            x = tf.random.stateless_normal(
                [count, num_frames, height, width, 3], seed=tf.stack([seed, 0])
            )
            # The unconditional half: no prompt, the same first frame.
            both = {
                "condition": tf.concat([condition, tf.zeros_like(condition)], 0),
                "first_frame": tf.concat([first, first], 0),
                "first_frame_mask": tf.concat([mask, mask], 0),
            }
            for step in tf.range(steps):
                t = 1.0 - tf.cast(step, tf.float32) / steps
                both["noisy"] = tf.concat([x, x], 0)
                both["time"] = tf.fill([2 * count], t)
                velocity = tf.cast(model(both, training=False), tf.float32)
                conditional, unconditional = velocity[:count], velocity[count:]
                x = x - (unconditional + guidance * (conditional - unconditional)) / steps
            return (x + 1.0) * 127.5

        @tf.function(input_signature=[prompt_spec, seed_spec])
        def serve(prompt, seed):
            count = tf.shape(prompt)[0]
            first = tf.zeros([count, height, width, 3])
            return {"frames": to_pixels(sample(prompt, first, tf.zeros([count]), seed))}

        @tf.function(
            input_signature=[
                prompt_spec,
                tf.TensorSpec([None, height, width, 3], tf.uint8, name="first_frame"),
                seed_spec,
            ]
        )
        def from_first_frame(prompt, first_frame, seed):
            first = tf.cast(first_frame, tf.float32)
            clips = sample(prompt, first / 127.5 - 1.0, tf.ones([tf.shape(prompt)[0]]), seed)
            # The given frame is frame 0, as `sample_clips` pastes it.
            clips = tf.concat([first[:, None], clips[:, 1:]], axis=1)
            return {"frames": to_pixels(clips)}

        archive.add_endpoint("serving_default", serve)
        archive.add_endpoint("from_first_frame", from_first_frame)
    path = os.fspath(path)
    with atomic.replacing(path) as temporary:
        archive.write_out(temporary, verbose=False)
    return path


def export_audio_visual(model, path, *, class_names, num_samples):
    """Writes an audio_visual run's model as a SavedModel whose `serving_default` takes uint8
    `frames` (batch, time, height, width, 3) and float32 `audio` (batch, num_samples) in [-1, 1],
    silence for a clip without sound, and returns the fused `probabilities`, `class_index` and
    `class_name`.
    """
    _, num_frames, height, width, channels = model.input["frames"].shape
    names = tf.constant(list(class_names))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, num_frames, height, width, channels], tf.uint8, name="frames"),
            tf.TensorSpec([None, num_samples], tf.float32, name="audio"),
        ]
    )
    def serve(frames, audio):
        logits = model({"frames": tf.cast(frames, tf.float32), "audio": audio}, training=False)
        return _labelled(tf.nn.softmax(tf.cast(logits["fused"], tf.float32)), names)

    path = os.fspath(path)
    _write_archive(model, serve, path)
    return path


def _labelled(probabilities, names):
    """A classifier signature's outputs: the probabilities, the likeliest class's index and name."""
    index = tf.argmax(probabilities, axis=-1)
    return {
        "probabilities": probabilities,
        "class_index": index,
        "class_name": tf.gather(names, index),
    }


def _write_archive(model, serve, path):
    """Writes a SavedModel of `model`'s weights with `serve` as its `serving_default` signature."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    # Through a temporary folder: a half-written SavedModel would look finished.
    with atomic.replacing(path) as temporary:
        archive.write_out(temporary, verbose=False)


class TFLiteConversionError(ValueError):
    """The model needs ops outside TFLite's built-in set; `ops` names them."""

    def __init__(self, message, ops):
        super().__init__(message)
        self.ops = ops


def convert_to_tflite(
    model, *, num_frames, select_tf_ops=False, quantize="none", representative_clips=None
):
    """Converts `model` to a TFLite flatbuffer.

    The flatbuffer takes uint8 frames `(1, num_frames, H, W, 3)` → float32
    probabilities.

    With `select_tf_ops=False` only TFLite's built-in ops are allowed, so the
    file runs on any TFLite interpreter; a model that needs more raises
    `TFLiteConversionError` naming the TensorFlow ops it needs (pass
    `select_tf_ops=True` to embed them, at the cost of the Flex delegate).
    The model goes through a SavedModel with that fixed signature: converting
    a concrete function of a Keras 3 model directly leaves its weights as
    uninitialised variables in the flatbuffer.

    `quantize` is one of `vlm_tf.compression.QUANTIZE_MODES`: `float16`
    stores the weights in 16 bits, `dynamic` in 8 (activations are quantized
    on the fly where a kernel can), `int8` stores weights and activations in
    8 bits, each activation's range calibrated on `representative_clips`,
    uint8 clips `(num_frames, H, W, 3)` like those the model will see (its
    training data); an op without an int8 kernel would stay float between a
    dequantize and a quantize (TFLite's standard fallback: in the registered
    classifiers, only the transformers' CONV_3D and their layer norms' NEG,
    docs/design.md). Under `int8` recurrent layers are unrolled over the
    `num_frames` steps (`_tflite_copy`); a mixed-precision model converts as its
    float32 copy.

    The interface is the same in every mode, the SavedModel's: uint8 frames
    in, float32 probabilities out, so a quantized file drops in where the
    float one was. Under `int8` the quantization happens inside, after the
    input's cast and before the softmax's output is dequantized: callers
    need not learn the file's scales and zero points, and the cost of the
    two conversions is two elementwise ops against a whole network.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"quantize must be one of {', '.join(QUANTIZE_MODES)}, received {quantize!r}"
        )
    if (quantize == "int8") != (representative_clips is not None):
        raise ValueError(
            "representative_clips are needed for quantize='int8' and only for it (received "
            f"quantize={quantize!r}, representative_clips "
            f"{'given' if representative_clips is not None else 'missing'})"
        )
    _, _, height, width, channels = model.input_shape
    if quantize == "int8":
        clips = _calibration_clips(representative_clips, (num_frames, height, width, channels))
    model = _tflite_copy(model, num_frames, unroll=quantize == "int8")

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, num_frames, height, width, channels], tf.uint8, name=SERVING_INPUT)
        ]
    )
    def serve(frames):
        return {
            "probabilities": tf.cast(model(tf.cast(frames, tf.float32), training=False), tf.float32)
        }

    with tempfile.TemporaryDirectory() as directory:
        _write_archive(model, serve, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
            [tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else []
        )
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.representative_dataset = lambda: ([clip[None]] for clip in clips)
        try:
            return converter.convert()
        except (
            Exception
        ) as error:  # the converter's own ConverterError, from a module that is not public
            ops = sorted(set(re.findall(r"\btf\.([A-Z][A-Za-z0-9]+)\b", str(error))))
            raise TFLiteConversionError(
                f"{model.name} needs TensorFlow ops outside TFLite's built-in set: "
                f"{', '.join(ops) or str(error).splitlines()[0]}",
                ops,
            ) from None


def _tflite_copy(model, num_frames, *, unroll):
    """`model` as TFLite converts it: in float32 throughout.

    Its recurrent layers are unrolled over `num_frames` if `unroll`; `model`
    itself is returned when it is that already.

    A model trained in mixed precision (`--precision auto` picks mixed
    bfloat16 on an AVX-512 CPU) keeps its weights in float32 but computes
    in bfloat16, and its LSTM's loop then holds bfloat16 tensor lists,
    which only the Flex delegate runs (`TensorListReserve`); the float32
    copy converts with built-in ops, and quantization decides the file's
    precision from there.

    Unrolling is for int8 calibration: TensorFlow's calibrator crashes the
    process (a segmentation fault, tensorflow/tensorflow#75140, open since
    2.14) logging the outputs of the WHILE loop a Keras 3 LSTM, GRU or RNN
    becomes. Only the model's own layers are looked at (a recurrent layer
    inside a wrapper such as `Bidirectional` would keep its loop); the
    registered classifiers have theirs at the top. The float modes keep the
    loop: unrolled, each step multiplies its input by the input kernel, where
    `vlm_tf.layers.LSTM` otherwise does it once for all steps, and on wide
    inputs (cnn_lstm_text's) that made the float file 6x slower.
    """
    mixed = any(layer.dtype_policy.compute_dtype != "float32" for layer in model.layers)
    unroll = unroll and any(isinstance(layer, keras.layers.RNN) for layer in model.layers)
    if not (mixed or unroll):
        return model

    def clone(layer):
        config = {**layer.get_config(), "dtype": "float32"}
        if unroll and isinstance(layer, keras.layers.RNN):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    frames = num_frames if unroll else model.input_shape[1]
    copy = keras.models.clone_model(
        model,
        input_tensors=keras.Input(shape=(frames, *model.input_shape[2:])),
        clone_function=clone,
    )
    copy.set_weights(model.get_weights())
    return copy


def _calibration_clips(clips, shape):
    """`clips` as one uint8 array `(N, *shape)`, checked.

    A calibration on the wrong pixels would quietly give wrong ranges.
    """
    clips = np.asarray(list(clips) if not isinstance(clips, np.ndarray) else clips)
    if clips.ndim != 5 or clips.shape[1:] != tuple(shape) or len(clips) == 0:
        raise ValueError(
            f"representative_clips must be clips of shape {tuple(shape)}, at least one, received "
            f"an array of shape {clips.shape}"
        )
    if clips.dtype != np.uint8:
        raise ValueError(
            "representative_clips must be uint8 frames, as the model's input is, received "
            f"{clips.dtype}"
        )
    return clips
