"""Post-training quantization of a classify run's TFLite file (§8), and what it costs.

The cost is measured in accuracy, size and speed:

    quantize_run(RUN_DIR, "int8")        → RUN_DIR/model_int8.tflite
    evaluate_tflite(path, run, DATA_DIR) → {"accuracy", "num_videos", "size_bytes",
                                            "latency_ms", ...}

In every mode the file takes uint8 frames `(1, T, H, W, 3)` and returns
float32 probabilities, as the SavedModel does
(`vlm_tf.tflite.convert_to_tflite`); int8 calibrates its activations'
ranges on clips of the run's own training data, read as evaluation reads
them.
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

from vlm_tf import atomic
from vlm_tf.compression import QUANTIZE_MODES
from vlm_tf.compression.runs import training_data_dir
from vlm_tf.data.pipeline import video_dataset_from_directory
from vlm_tf.data.splits import evaluation_source
from vlm_tf.inference import load_run
from vlm_tf.tasks.classify import check_class_folders
from vlm_tf.tflite import convert_to_tflite

# Clips int8 calibrates on: within the hundred or so TFLite's guide asks for,
# and every class of the synthetic data several times over.
CALIBRATION_CLIPS = 64
# Untimed invokes first (the first call allocates and fills caches), then the timed ones.
WARMUP_INVOKES = 5
TIMED_INVOKES = 50


def tflite_path(run_dir, quantize):
    """Where a run's TFLite file goes by default: `RUN_DIR/model.tflite`.

    When quantized, `RUN_DIR/model_<quantize>.tflite`.
    """
    return os.path.join(
        os.fspath(run_dir), "model.tflite" if quantize == "none" else f"model_{quantize}.tflite"
    )


def read_calibration_clips(run, data_dir=None, *, count=CALIBRATION_CLIPS):
    """Up to `count` uint8 clips `(N, T, H, W, 3)` for int8 calibration.

    They are the run's training videos, as evaluation sees them.

    `data_dir` (its `train/` if it has one) defaults to the folder the run
    trained on (`config.json`'s `data_dir`). The videos are shuffled with
    the run's seed, so the clips mix the classes; frames are sampled
    uniformly, without augmentation, as `evaluate_directory` reads them.
    """
    data_dir = training_data_dir(run, data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"{data_dir}: no such directory; int8 calibrates on the run's training videos, "
            "point to them with --data DIR (data_dir=)"
        )
    train_dir = os.path.join(data_dir, "train")
    dataset = video_dataset_from_directory(
        train_dir if os.path.isdir(train_dir) else data_dir,
        class_names=run.class_names,
        num_frames=run.config.num_frames,
        image_size=run.image_size,
        batch_size=count,
        shuffle=True,
        seed=run.config.seed,
        sampling="uniform",
        label_maps=None,
    )
    clips, _ = next(iter(dataset))
    # Decoded frames are whole numbers in [0, 255]: the cast is exact.
    return clips.numpy().astype(np.uint8)


def quantize_run(run_dir, quantize, *, out=None, data_dir=None):
    """Writes a classify run's model as a TFLite file quantized by `quantize`; returns its path.

    `quantize` is one of `QUANTIZE_MODES`.

    `out` defaults to `tflite_path(run_dir, quantize)`, inside the run, where
    an earlier export of the same run is replaced through a temporary file
    (a killed export leaves the old file or the new one, never part of
    one). An `out` that is given and already exists is refused: it may be
    anything. `int8` calibrates on
    `read_calibration_clips(run, data_dir)`; `data_dir` is refused for the
    other modes, which read no data.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"quantize must be one of {', '.join(QUANTIZE_MODES)}, received {quantize!r}"
        )
    if data_dir is not None and quantize != "int8":
        raise ValueError(
            f"a data folder (--data) calibrates int8 only; received it with quantize {quantize!r}"
        )
    if out is not None and os.path.lexists(out):
        raise FileExistsError(
            f"{os.fspath(out)} already exists; expected the path of a new .tflite file (choose "
            "another --out or remove it)"
        )
    out = tflite_path(run_dir, quantize) if out is None else os.fspath(out)
    if os.path.isdir(out):
        raise IsADirectoryError(
            f"{out} is a folder; expected the path of the .tflite file to write"
        )
    run = load_run(run_dir)
    run.require("classify", "TFLite export")
    clips = read_calibration_clips(run, data_dir) if quantize == "int8" else None
    content = convert_to_tflite(
        run.model, num_frames=run.config.num_frames, quantize=quantize, representative_clips=clips
    )
    with atomic.replacing(out) as temporary:
        with open(temporary, "wb") as f:
            f.write(content)
    return out


def evaluate_tflite(tflite, run, data_dir, *, strict=False, num_threads=1):
    """Accuracy, size and speed of a TFLite classifier on `data_dir/<class>/<video>`.

    The classifier is a file's path or the flatbuffer's bytes.

    The clips are those `vlm_tf.inference.evaluate_directory` scores `run`
    on (the run's frame count and size, uniform sampling, the same order),
    given to the interpreter one at a time as uint8 frames. `run.model`
    classifies the same clips, so `agreement` (the fraction of clips the
    file puts in the Keras model's class) and `max_abs_difference` (of any
    probability) measure what conversion and quantization changed, apart
    from what the model gets wrong anyway. `latency_ms` is the median of
    `TIMED_INVOKES` timed `invoke()` calls on one clip after
    `WARMUP_INVOKES` untimed ones, on `num_threads` threads: the model
    alone, without decoding.

    Returns:
        A JSON-ready dict: `accuracy`, `num_videos`, `size_bytes`,
        `latency_ms`, `num_threads`, `agreement`, `max_abs_difference`,
        `confusion_matrix` (rows: true class, columns: predicted, in
        `class_names` order), `class_names` and `skipped`
        (`[{"path", "reason"}]`, the unreadable files).
    """
    run.require("classify", "evaluate_tflite")
    content = _read_flatbuffer(tflite)
    interpreter = tf.lite.Interpreter(model_content=content, num_threads=num_threads)
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    expected = (1, run.config.num_frames, *run.image_size, 3)
    if (
        source["dtype"] != np.uint8
        or tuple(source["shape"]) != expected
        or tuple(sink["shape"]) != (1, len(run.class_names))
    ):
        raise ValueError(
            f"the TFLite file takes {source['dtype'].__name__} {tuple(source['shape'])} and "
            f"returns {tuple(sink['shape'])}; "
            f"this run's clips are uint8 {expected} of {len(run.class_names)} classes"
        )
    # The clips `evaluate_directory` scores: a folder's, or the test part of list data.
    data = evaluation_source(data_dir)
    check_class_folders(run, data)
    dataset = video_dataset_from_directory(
        data,
        class_names=run.class_names,
        num_frames=run.config.num_frames,
        image_size=run.image_size,
        batch_size=run.config.batch_size,
        shuffle=False,
        strict=strict,
    )

    def classify(clip):
        interpreter.set_tensor(source["index"], clip[None])
        interpreter.invoke()
        return interpreter.get_tensor(sink["index"])[0]

    num_classes = len(run.class_names)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    agreeing, difference, timing_clip = 0, 0.0, None
    for clips, labels in dataset:
        frames = clips.numpy().astype(np.uint8)
        probabilities = np.stack([classify(clip) for clip in frames])
        reference = np.asarray(run.model(clips, training=False), np.float32)
        predicted = probabilities.argmax(axis=-1)
        np.add.at(confusion, (labels.numpy(), predicted), 1)
        agreeing += int((predicted == reference.argmax(axis=-1)).sum())
        difference = max(difference, float(np.abs(probabilities - reference).max()))
        timing_clip = frames[0] if timing_clip is None else timing_clip
    total = int(confusion.sum())
    if not total:
        raise ValueError(
            f"{data_dir}: none of the videos could be read; skipped: {dataset.skipped[0]['path']} "
            f"({dataset.skipped[0]['reason']})"
            if dataset.skipped
            else f"{data_dir}: no clip was read"
        )
    interpreter.set_tensor(source["index"], timing_clip[None])
    for _ in range(WARMUP_INVOKES):
        interpreter.invoke()
    times = []
    for _ in range(TIMED_INVOKES):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return {
        "accuracy": float(np.trace(confusion) / total),
        "num_videos": total,
        "size_bytes": len(content),
        "latency_ms": float(np.median(times) * 1e3),
        "num_threads": num_threads,
        "agreement": agreeing / total,
        "max_abs_difference": difference,
        "confusion_matrix": confusion.tolist(),
        "class_names": run.class_names,
        "skipped": dataset.skipped,
    }


def _read_flatbuffer(tflite):
    if isinstance(tflite, (bytes, bytearray)):
        return bytes(tflite)
    path = os.fspath(tflite)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no such file (expected a .tflite file, "
            "e.g. from `vlm-tf export RUN_DIR --format tflite`)"
        )
    with open(path, "rb") as f:
        return f.read()
