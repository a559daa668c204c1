"""`vlm-tf bench`: how fast vlm_tf is, as ratios measured side by side in one run.

Every figure is put next to what a user would otherwise run, on the same
files and shapes, in the same process (or, for the decode ceiling, a
process without TensorFlow started by this one):

- input: `video_dataset_from_directory` against the TensorFlow video
  tutorial's loader (a Python generator decoding one video at a time,
  frames formatted with `tf.image`, wrapped in `Dataset.from_generator`),
  and against OpenCV alone decoding and resizing the same clips, in a
  process per core and on one thread: the better of the two is the most any
  loader built on OpenCV can deliver here; and clips read sequentially
  against clips sampled sparsely from long videos with short and long
  keyframe intervals (`vlm_tf.bench_input`);
- training: clips per second of one training step of the default model and
  of the text's §5.2.1 network, and the FLOP/s that achieves (counted from
  the model: forward and backward, 3× the forward pass) as a share of a
  float32 matrix product measured in the same run;
- a real training step fed by the pipeline, and the share of it spent
  waiting for data, decoding every epoch and from `cache="memory"`;
- precision and XLA: clips per second of each, and what `--precision auto`
  / `--jit auto` pick from those figures;
- the default detector's training, fed as `train --task detect` feeds it
  (`vlm_tf.bench_detection`);
- the exported SavedModel's latency on one clip;
- peers: both models built the same way in PyTorch and trained as a strong
  PyTorch user would (eager float32, autocast bfloat16, channels-last,
  `torch.compile`), and the same Keras models under the JAX backend, where
  each is installed; ours against the fastest (`vlm_tf.bench_peers`).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import numpy as np

from vlm_tf.bench_detection import bench_detection, detection_lines
from vlm_tf.bench_input import (
    BATCH,
    NUM_FRAMES,
    SIZE,
    bench_decode_access,
    bench_pipeline,
    decode_access_lines,
)
from vlm_tf.bench_peers import (
    compare_with_peers,
    peer_batch,
    peer_lines,
)
from vlm_tf.energy import EnergyMeter

TEXT_MODEL = "cnn_lstm_text"
# Memory traffic of a training step per number its forward pass keeps: written and read once
# going forward, read again, and its gradient written and read, going back.
TRAFFIC_PER_ACTIVATION = 5

# (videos per class written, passes over them, timed training steps, timed serving calls)
SIZES = {"full": (24, 5, 12, 30), "quick": (4, 2, 3, 5)}


def run_bench(*, quick=False, data_dir=None, work_dir=None, progress=None):
    """Runs every measurement; returns the figures as a dict (`vlm-tf bench --json` prints it).

    Args:
        quick: small sizes (a smoke run: a minute; the ratios are noisy).
        data_dir: a folder of `<class>/<video>` files to read instead of
            writing the synthetic set (a `train` split inside it is used if present).
        work_dir: where the synthetic set and the SavedModel go; a temporary folder by default.
        progress: optional callable taking a line of text.
    """
    say = progress or (lambda line: None)
    videos_per_class, passes, train_steps, serve_calls = SIZES["quick" if quick else "full"]
    meter = EnergyMeter().start()
    with tempfile.TemporaryDirectory(prefix="vlm_tf_bench_") as scratch:
        work_dir = os.fspath(work_dir or scratch)
        if data_dir is None:
            from vlm_tf.data.synthetic import write_dataset

            say(f"writing {videos_per_class * 8} synthetic videos")
            data_dir = os.path.join(work_dir, "data")
            write_dataset(data_dir, videos_per_class=videos_per_class, seed=0)
        folder = _class_folder(data_dir)
        report = {
            "machine": machine_description(),
            "quick": bool(quick),
            "data": folder,
            "clip": [NUM_FRAMES, SIZE, SIZE, 3],
            "batch": BATCH,
        }

        say("input pipeline")
        report.update(bench_pipeline(folder, passes=passes))
        say("decode access: sequential and sparse")
        os.makedirs(os.path.join(work_dir, "access"), exist_ok=True)
        report.update(
            bench_decode_access(
                os.path.join(work_dir, "access"),
                videos=2 if quick else 4,
                num_frames=NUM_FRAMES,
                size=SIZE,
                passes=passes,
            )
        )
        say("matrix-product ceiling")
        report["matmul_gflops"] = {
            dtype: measure_matmul_gflops(dtype) for dtype in ("float32", _mixed_dtype())
        }
        say("memory bandwidth")
        report["memory_gbs"] = measure_memory_gbs()
        say("training steps")
        report.update(
            bench_training(report["matmul_gflops"], report["memory_gbs"], steps=train_steps)
        )
        say("training fed by the pipeline")
        report.update(
            bench_input_stall(
                folder, steps=max(train_steps, 8), execution=report["precision_xla"]["auto"]
            )
        )
        say("detector training")
        report.update(
            bench_detection(os.path.join(work_dir, "detection"), videos=12 if quick else 68)
        )
        say("serving")
        report["serve_ms_per_clip"] = bench_serving(
            os.path.join(work_dir, "saved_model"), calls=serve_calls
        )
        say("peers: PyTorch, Keras on JAX")
        report.update(
            compare_with_peers(
                report["train_clips_per_s"],
                *_batch(),
                steps=train_steps,
                text_model=TEXT_MODEL,
                text_float32=report["train_clips_per_s_float32"][TEXT_MODEL],
                quick=quick,
            )
        )
    _check_limits_against_peers(report)
    report["energy"] = meter.read().to_dict()
    return report


def _check_limits_against_peers(report):
    """A roofline that a measured rate exceeds (ours or a peer's) is not a limit: the activations
    it counts as memory traffic stayed in the caches. There the compute ceiling is the limit
    again, and `limit_note` says why.
    """
    notes = []
    for name, limits in report["train_limits"].items():
        rates = {"ours": report["train_clips_per_s"][name], **(report["peers"].get(name) or {})}
        who = max(rates, key=rates.get)
        if report["limit_kind"][name] == "roofline" and rates[who] > limits["roofline"]:
            report["limit_kind"][name] = "ceiling"
            report["train_share_of_limit"][name] = report["train_utilisation"][name]
            trained = "ours trained" if who == "ours" else "a peer trained"
            notes.append(
                f"{name}: {trained} at {rates[who]:.0f} clips/s, above the "
                f"{limits['roofline']:.0f} the roofline allows, so the ceiling is its limit"
            )
    report["limit_note"] = "; ".join(notes) or None


def machine_description():
    import keras
    import tensorflow as tf

    from vlm_tf.training.runtime import has_gpu, machine_key

    return {
        "cpu": machine_key().split("|")[0],
        "cores": os.cpu_count(),
        "gpu": has_gpu(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def _class_folder(data_dir):
    data_dir = os.fspath(data_dir)
    train = os.path.join(data_dir, "train")
    return train if os.path.isdir(train) else data_dir


# --- compute -----------------------------------------------------------------------


def measure_memory_gbs(*, megabytes=256, repeats=10):
    """GB/s an elementwise TensorFlow op moves (a float32 array of `megabytes` read and written
    once: `x * 2`), best of `repeats`: the memory side of the roofline.
    """
    import tensorflow as tf

    x = tf.random.normal((megabytes * 2**20 // 4,))
    double = tf.function(lambda x: x * 2.0)
    double(x).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        double(x).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * megabytes * 2**20 / best / 1e9


def measure_matmul_gflops(dtype, *, n=2048, repeats=10):
    """GFLOP/s of an `n`×`n` matrix product in TensorFlow, best of `repeats`.

    This is the machine's compute ceiling for dense work.
    """
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _batch():
    return peer_batch((BATCH, NUM_FRAMES, SIZE, SIZE, 3), 8)


def _builder(name):
    from vlm_tf.models import build_model

    return lambda: build_model(name, num_classes=8, image_size=(SIZE, SIZE))


def _mixed_dtype():
    """The 16-bit type mixed precision computes in on this device."""
    from vlm_tf.training.runtime import resolve_precision

    return resolve_precision("mixed").split("_")[1]


def bench_training(ceiling_gflops, memory_gbs, *, steps):
    """Training throughput of the default model and the text's network.

    Each is measured under every precision / XLA candidate.

    Utilisation is the FLOP/s achieved under the `auto` pick divided by the
    matrix-product ceiling of the type it computes in (`ceiling_gflops`, by dtype name).

    The limit a step can reach is the lower of that ceiling and the roofline of memory
    traffic: the bytes a clip moves (`TRAFFIC_PER_ACTIVATION` times what its forward pass keeps,
    at the compute type's size) at `memory_gbs`. `limit_kind` says which ("ceiling" or
    "roofline") and `train_share_of_limit` how much of it the step reaches.
    """
    from vlm_tf.models.flops import count_activations, count_flops
    from vlm_tf.models.registry import DEFAULT_MODEL
    from vlm_tf.training import runtime

    x, y = _batch()
    mixed = f"mixed_{_mixed_dtype()}"
    candidates = (runtime.BASELINE, ("float32", "on"), (mixed, "off"), (mixed, "on"))
    result = {
        "train_clips_per_s": {},
        "train_clips_per_s_float32": {},
        "train_gflops_per_clip": {},
        "train_utilisation": {},
        "train_joules_per_clip": {},
        "train_bytes_per_clip": {},
        "train_share_of_limit": {},
        "limit_kind": {},
        "train_limits": {},
        "precision_xla": {},
    }
    for name in (DEFAULT_MODEL, TEXT_MODEL):
        meter = EnergyMeter().start()
        rates = runtime.measure_training_rates(
            _builder(name),
            x,
            y,
            loss="categorical_crossentropy",
            candidates=candidates,
            rounds=max(3, steps // 2),
        )
        picked = runtime.pick_fastest(rates)
        rate = rates["/".join(picked)]
        # The mean power over every setting's steps, spent at the picked setting's rate.
        result["train_joules_per_clip"][name] = meter.read().watts / rate
        # Forward and backward: about three forward passes.
        flops = 3 * count_flops(_builder(name)(), num_frames=NUM_FRAMES)
        result["precision_xla"][name] = {
            **{key: round(value, 2) for key, value in rates.items()},
            "auto": "/".join(picked),
        }
        result["train_clips_per_s"][name] = rate
        result["train_clips_per_s_float32"][name] = rates["/".join(runtime.BASELINE)]
        result["train_gflops_per_clip"][name] = flops / 1e9
        compute_dtype = "float32" if picked[0] == "float32" else picked[0].split("_")[1]
        result["train_utilisation"][name] = rate * flops / 1e9 / ceiling_gflops[compute_dtype]
        moved = TRAFFIC_PER_ACTIVATION * count_activations(_builder(name)(), num_frames=NUM_FRAMES)
        moved *= 4 if compute_dtype == "float32" else 2
        limits = {
            "ceiling": ceiling_gflops[compute_dtype] * 1e9 / flops,
            "roofline": memory_gbs * 1e9 / moved,
        }
        kind = min(limits, key=limits.get)
        result["train_limits"][name] = limits
        result["train_bytes_per_clip"][name] = moved
        result["limit_kind"][name] = kind
        result["train_share_of_limit"][name] = rate / limits[kind]
    result["precision_xla"]["auto"] = result["precision_xla"][DEFAULT_MODEL]["auto"]
    return result


def bench_input_stall(folder, *, steps, execution):
    """A real training step of the default model fed by the augmented, shuffled training pipeline.

    Measured decoding every epoch, and from `cache="memory"`, in alternating blocks of steps.

    Returns clips/s for each and, for the uncached one, the share of the
    time spent waiting for a batch. On a machine whose cores the training
    step already fills, decoding slows the step without making it wait,
    which the two rates show and the waiting share does not.
    """
    import keras

    from vlm_tf.data.pipeline import video_dataset_from_directory
    from vlm_tf.models.registry import DEFAULT_MODEL

    precision, jit = execution.split("/")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = _builder(DEFAULT_MODEL)()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=jit == "on")
    streams = {}
    for name, cache in (("train_with_pipeline", None), ("train_with_cached_pipeline", "memory")):
        dataset = video_dataset_from_directory(
            folder,
            num_frames=NUM_FRAMES,
            image_size=(SIZE, SIZE),
            batch_size=BATCH,
            label_mode="categorical",
            seed=0,
            augment=True,
            cache=cache,
        )
        if cache is not None:
            for _ in dataset:  # the first epoch fills the cache
                pass
        streams[name] = iter(dataset.repeat())
    waited = {name: 0.0 for name in streams}
    total = {name: 0.0 for name in streams}
    clips = {name: 0 for name in streams}
    # In alternating blocks of steps, so that a machine getting busier (or cooler) slows both
    # alike; the first steps of each trace the model and fill the prefetch buffer.
    block = 4
    for round_ in range(max(steps // block, 1) + 1):
        for name, batches in streams.items():
            for _ in range(block):
                start = time.perf_counter()
                x, y = next(batches)
                ready = time.perf_counter()
                model.train_on_batch(x, y)
                end = time.perf_counter()
                if round_ > 0:
                    waited[name] += ready - start
                    total[name] += end - start
                    clips[name] += int(x.shape[0])
    result = {f"{name}_clips_per_s": clips[name] / total[name] for name in streams}
    result["input_stall_fraction"] = waited["train_with_pipeline"] / total["train_with_pipeline"]
    result["cached_training_vs_uncached"] = (
        result["train_with_cached_pipeline_clips_per_s"] / result["train_with_pipeline_clips_per_s"]
    )
    return result


def bench_serving(path, *, calls):
    """Median milliseconds of the exported SavedModel's `serving_default` on one uint8 clip."""
    import tensorflow as tf

    from vlm_tf.data.synthetic import CLASS_NAMES
    from vlm_tf.export import export_saved_model
    from vlm_tf.models.registry import DEFAULT_MODEL

    export_saved_model(_builder(DEFAULT_MODEL)(), path, class_names=list(CLASS_NAMES))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    clip = tf.constant(_batch()[0][:1].astype("uint8"))
    serve(frames=clip)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        serve(frames=clip)["probabilities"].numpy()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


# --- report ------------------------------------------------------------------------


def format_report(report):
    """The figures as the table `vlm-tf bench` prints."""
    m = report["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {'a GPU' if m['gpu'] else 'no GPU'}; "
        f"TensorFlow {m['tensorflow']}, Keras {m['keras']}",
        f"clips of {NUM_FRAMES} frames at {SIZE}x{SIZE}, batch {BATCH}"
        f"{' (quick: small sizes, noisy ratios)' if report['quick'] else ''}",
        "",
        "input (clips/s, every video of the folder, batches materialised)",
        f"  vlm_tf video_dataset_from_directory   {report['pipeline_clips_per_s']:8.1f}",
        f"  tutorial FrameGenerator               {report['framegenerator_clips_per_s']:8.1f}   "
        f"ours {report['pipeline_vs_framegenerator']:.2f}x",
        f"  OpenCV alone, a process per core      {report['decode_processes_clips_per_s']:8.1f}",
        f"  OpenCV alone, one thread              {report['decode_one_thread_clips_per_s']:8.1f}",
        f"  the decode ceiling (the better)       {report['decode_ceiling_clips_per_s']:8.1f}   "
        f"ours {report['pipeline_vs_decode_ceiling']:.2f} of it",
        f"  vlm_tf, tf.data service workers       {report['served_pipeline_clips_per_s']:8.1f}   "
        f"{report['served_pipeline_vs_decode_ceiling']:.2f} of the ceiling",
        f"  vlm_tf, cache='memory' (later epochs) {report['cached_pipeline_clips_per_s']:8.1f}   "
        f"{report['cache_speedup']:.2f}x uncached",
        "",
        "matrix product 2048x2048: "
        + ", ".join(
            f"{dtype} {gflops:.0f} GFLOP/s" for dtype, gflops in report["matmul_gflops"].items()
        ),
        "training step (clips/s for each precision / XLA; "
        "auto = what --precision auto --jit auto picks)",
    ]
    for name, rates in report["precision_xla"].items():
        if name == "auto":
            continue
        figures = "  ".join(f"{key} {value:.1f}" for key, value in rates.items() if key != "auto")
        lines.append(f"  {name:<14s} {figures}  auto: {rates['auto']}")
        lines.append(
            f"  {'':<14s} {report['train_clips_per_s'][name]:.1f} clips/s x "
            f"{report['train_gflops_per_clip'][name]:.2f} GFLOP = "
            f"{report['train_utilisation'][name]:.2f} of the matmul ceiling in its compute type, "
            f"{report['train_joules_per_clip'][name]:.2f} J a clip"
        )
        lines.append(
            f"  {'':<14s} {report['train_bytes_per_clip'][name] / 1e6:.0f} MB moved a clip at "
            f"{report['memory_gbs']:.0f} GB/s: the {report['limit_kind'][name]} limits it; "
            f"{report['train_share_of_limit'][name]:.2f} of that limit"
        )
    lines += [
        f"training fed by the pipeline: {report['train_with_pipeline_clips_per_s']:.1f} clips/s, "
        f"waiting for data {100 * report['input_stall_fraction']:.1f} % of the time; "
        f"from cache='memory': {report['train_with_cached_pipeline_clips_per_s']:.1f} clips/s "
        f"({report['cached_training_vs_uncached']:.2f}x)",
        *detection_lines(report),
        f"SavedModel serving: {report['serve_ms_per_clip']:.1f} ms per clip",
    ]
    if report.get("limit_note"):
        lines.append(f"limits: {report['limit_note']}")
    lines += decode_access_lines(report)
    lines += peer_lines(report)
    energy = report["energy"]
    how = "measured by RAPL" if energy["method"] == "measured" else "estimated from CPU time"
    lines.append(
        f"energy of this benchmark: {energy['joules'] / 1000:.2f} kJ, {energy['co2_grams']:.2f} g "
        f'CO2 ({how}; docs/design.md, "Energy")'
    )
    return "\n".join(lines)
