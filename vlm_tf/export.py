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

A classifier also converts to a TFLite flatbuffer: `vlm_tf.tflite`.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic

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
    write_archive(model, serve, path)
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
    write_archive(generator, serve, path)
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
    write_archive(predictor, serve, path)
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
    write_archive(restorer, serve, path)
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
    write_archive(detector, serve, path)
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
    return write_out(archive, path)


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
    return write_out(archive, path)


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
    write_archive(model, serve, path)
    return path


def _labelled(probabilities, names):
    """A classifier signature's outputs: the probabilities, the likeliest class's index and name."""
    index = tf.argmax(probabilities, axis=-1)
    return {
        "probabilities": probabilities,
        "class_index": index,
        "class_name": tf.gather(names, index),
    }


def write_archive(model, serve, path):
    """Writes a SavedModel of `model`'s weights with `serve` as its `serving_default` signature."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    write_out(archive, path)


def write_out(archive, path):
    """Writes an `ExportArchive` to `path` through a temporary folder (a half-written SavedModel
    would look finished); returns the path.
    """
    path = os.fspath(path)
    with atomic.replacing(path) as temporary:
        archive.write_out(temporary, verbose=False)
    return path
