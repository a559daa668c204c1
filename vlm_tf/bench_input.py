"""`vlm-tf bench`'s input figures (`vlm_tf.bench` puts them beside the rest).

- `bench_pipeline`: our pipeline against the tutorial's loader and against
  OpenCV alone, in a process per core and on one thread (the ceiling is the
  better of the two); and the same clips decoded by tf.data service workers,
  a process per core (`vlm_tf.data.service`).
- `bench_decode_access`: clips read one after another through a video
  against clips sampled sparsely from it, on videos with a keyframe every
  half second and with one keyframe in ten seconds (what cameras and phones
  often write).

Training samples a clip's frames across the whole video (`sampling="random"`: one frame per
segment), so each clip reads to its last frame; reading a video front to back once gives all its
clips of consecutive frames. The ratio of the two is what sparse sampling costs with the reader
the pipeline uses (`vlm_tf.data.decode.read_frames`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from vlm_tf.bench_peers import frame_generator_dataset
from vlm_tf.data.sampling import uniform_indices

# A clip as the quickstart trains on it (`vlm_tf.bench` reads these too).
NUM_FRAMES = 16
SIZE = 64
BATCH = 8


def bench_pipeline(folder, *, passes):
    """Clips/s of our pipeline, the tutorial's generator and OpenCV alone.

    On every video in `folder`, best of `passes` each.
    """
    from vlm_tf.data.pipeline import video_dataset_from_directory
    from vlm_tf.data.splits import index_directory, probe_files

    paths, labels, _ = index_directory(folder)
    counts, _ = probe_files(paths)
    common = dict(num_frames=NUM_FRAMES, image_size=(SIZE, SIZE), batch_size=BATCH, shuffle=False)
    datasets = {
        "ours": video_dataset_from_directory(folder, **common),
        "tutorial": frame_generator_dataset(
            paths, labels, num_frames=NUM_FRAMES, size=SIZE, batch_size=BATCH
        ),
        "cached": video_dataset_from_directory(folder, cache="memory", **common),
    }
    # The cached pipeline's first pass decodes and keeps every video; the
    # figure is for the epochs after it.
    clips_per_second(datasets["cached"])
    rates = {name: [] for name in datasets}
    for _ in range(passes):
        # In turns, so a machine that gets busier slows them alike.
        for name, dataset in datasets.items():
            rates[name].append(clips_per_second(dataset))
    served = measure_served_pipeline(folder, common, passes=passes)
    processes = measure_decode_ceiling(paths, counts, passes=passes)
    one_thread = measure_serial_decode(paths, counts, passes=passes)
    # Where a process per core loses to one thread (start-up, hand-over), one thread is the most
    # OpenCV gives, and the ceiling.
    ceiling = max(processes, one_thread)
    best = {name: max(values) for name, values in rates.items()}
    return {
        "pipeline_clips_per_s": best["ours"],
        "framegenerator_clips_per_s": best["tutorial"],
        "decode_ceiling_clips_per_s": ceiling,
        "decode_processes_clips_per_s": processes,
        "decode_one_thread_clips_per_s": one_thread,
        "pipeline_vs_framegenerator": best["ours"] / best["tutorial"],
        "pipeline_vs_decode_ceiling": best["ours"] / ceiling,
        "served_pipeline_clips_per_s": served,
        "served_pipeline_vs_decode_ceiling": served / ceiling,
        "cached_pipeline_clips_per_s": best["cached"],
        "cache_speedup": best["cached"] / best["ours"],
    }


def measure_served_pipeline(folder, common, *, passes):
    """Clips/s of the same clips decoded by tf.data service workers, a process per core on this
    machine (`vlm-tf data-service`, `train --data-service`), best of `passes` over the folder;
    the workers' start-up is not counted.
    """
    from vlm_tf.data import service
    from vlm_tf.data.pipeline import video_dataset_from_directory

    dispatcher = service.start_dispatcher()
    address = service.dispatcher_address(dispatcher)
    workers = service.spawn_workers(address, os.cpu_count() or 1)
    try:
        dataset = video_dataset_from_directory(folder, first_pass=0, service=address, **common)
        one_pass = dataset.take(dataset.steps_per_pass)
        # The first pass waits for the workers to start and register.
        clips_per_second(one_pass)
        return max(clips_per_second(one_pass) for _ in range(passes))
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        dispatcher.stop()


def measure_serial_decode(paths, counts, *, passes):
    """Clips/s of the pipeline's own decode function called in a loop on one thread of this process.

    Best of `passes`: what one core gives without tf.data.
    """
    from vlm_tf.data.decode import read_frames

    indices = [uniform_indices(count, NUM_FRAMES).numpy() for count in counts]
    best = 0.0
    for _ in range(passes):
        start = time.perf_counter()
        for path, wanted in zip(paths, indices):
            read_frames(path, wanted, (SIZE, SIZE), decoder_threads=1)
        best = max(best, len(paths) / (time.perf_counter() - start))
    return best


def clips_per_second(dataset):
    """Clips/s of one pass over `dataset`'s `(clips, labels)` batches, each materialised."""
    clips = 0
    start = time.perf_counter()
    for batch, _ in dataset:
        clips += int(np.asarray(batch).shape[0])
    return clips / (time.perf_counter() - start)


# The decode ceiling runs in a process of its own that never imports
# TensorFlow: decode.py is loaded from its file, not through the package.
_CEILING_SCRIPT = r"""
import importlib.util, json, multiprocessing, os, sys, time
spec = importlib.util.spec_from_file_location("decode", sys.argv[1])
decode = importlib.util.module_from_spec(spec)
sys.modules["decode"] = decode
spec.loader.exec_module(decode)
job = json.load(sys.stdin)

def read(item):
    path, indices = item
    return decode.read_frames(path, indices, (job["size"], job["size"]), decoder_threads=1).shape[0]

if __name__ == "__main__":
    items = list(zip(job["paths"], job["indices"]))
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        pool.map(abs, range(os.cpu_count()))
        best = 0.0
        for _ in range(job["passes"]):
            start = time.perf_counter()
            clips = len(pool.map(read, items, chunksize=1))
            best = max(best, clips / (time.perf_counter() - start))
    print(json.dumps({"clips_per_s": best, "tensorflow_loaded": "tensorflow" in sys.modules}))
"""


def measure_decode_ceiling(paths, counts, *, passes):
    """Clips/s of OpenCV alone (one process per core, no TensorFlow).

    It decodes and resizes the clips our pipeline reads.
    """
    from vlm_tf.data import decode

    job = {
        "paths": list(paths),
        "indices": [uniform_indices(count, NUM_FRAMES).numpy().tolist() for count in counts],
        "size": SIZE,
        "passes": passes,
    }
    done = subprocess.run(
        [sys.executable, "-c", _CEILING_SCRIPT, decode.__file__],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            "the decode-ceiling process failed: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    result = json.loads(done.stdout)
    if result["tensorflow_loaded"]:
        raise RuntimeError(
            "the decode-ceiling process imported TensorFlow; it must measure OpenCV alone"
        )
    return result["clips_per_s"]


# Ten seconds of 320x240 video at 25 frames a second, as a phone clip is small.
FRAMES, FPS, HEIGHT, WIDTH = 250, 25, 240, 320
# A keyframe every half second (what streaming encoders use) and one in the whole video.
KEYFRAME_INTERVALS = {"short_gop": 12, "long_gop": FRAMES}


def write_gop_video(path, *, keyframe_interval, seed):
    """A video of a drifting texture with a moving square, H.264 with a keyframe every
    `keyframe_interval` frames and no B-frames; PyAV writes it.
    """
    import av

    rng = np.random.default_rng(seed)
    texture = rng.uniform(0, 255, (HEIGHT // 8, WIDTH // 8, 3))
    texture = np.kron(texture, np.ones((8, 8, 1))).astype(np.uint8)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.gop_size = keyframe_interval
        stream.options = {"bf": "0", "sc_threshold": "0", "preset": "veryfast"}
        for t in range(FRAMES):
            frame = np.roll(texture, (t, 2 * t), axis=(0, 1))
            top, left = (3 * t) % (HEIGHT - 40), (5 * t) % (WIDTH - 40)
            frame[top : top + 40, left : left + 40] = (240, 60, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def bench_decode_access(work_dir, *, videos, num_frames, size, passes):
    """Clips/s read sequentially and sampled sparsely, for each of `KEYFRAME_INTERVALS`:
    `{"decode_access": {interval: {"sequential_clips_per_s", "sparse_clips_per_s"}},
    "decode_sparse_vs_sequential": {interval: ratio}}`; without PyAV, both None and a
    `decode_access_note`.
    """
    try:
        import av  # noqa: F401 - only whether it is there
    except ImportError:
        note = "PyAV is not installed (pip install av): decode access not measured"
        return {
            "decode_access": None,
            "decode_sparse_vs_sequential": None,
            "decode_access_note": note,
        }
    from vlm_tf.data.decode import read_frames
    from vlm_tf.data.sampling import random_indices

    access = {}
    for name, interval in KEYFRAME_INTERVALS.items():
        paths = [
            write_gop_video(
                os.path.join(work_dir, f"{name}_{i}.mp4"), keyframe_interval=interval, seed=i
            )
            for i in range(videos)
        ]
        clips_per_video = FRAMES // num_frames
        sparse = [
            [random_indices(FRAMES, num_frames, [i, k]).numpy() for k in range(clips_per_video)]
            for i in range(videos)
        ]
        best_sequential = best_sparse = 0.0
        for _ in range(passes):
            start = time.perf_counter()
            for path in paths:
                read_frames(path, None, (size, size), decoder_threads=1)
            best_sequential = max(
                best_sequential, videos * clips_per_video / (time.perf_counter() - start)
            )
            start = time.perf_counter()
            for path, clips in zip(paths, sparse):
                for indices in clips:
                    read_frames(path, indices, (size, size), decoder_threads=1)
            best_sparse = max(best_sparse, videos * clips_per_video / (time.perf_counter() - start))
        access[name] = {
            "sequential_clips_per_s": best_sequential,
            "sparse_clips_per_s": best_sparse,
        }
    return {
        "decode_access": access,
        "decode_sparse_vs_sequential": {
            name: rates["sparse_clips_per_s"] / rates["sequential_clips_per_s"]
            for name, rates in access.items()
        },
        "decode_access_note": None,
    }


def decode_access_lines(report):
    """`vlm-tf bench`'s lines for `bench_decode_access`'s figures."""
    if report["decode_access"] is None:
        return [f"decode access: {report['decode_access_note']}"]
    lines = [f"decode access ({FRAMES}-frame {WIDTH}x{HEIGHT} H.264 videos; clips/s, one thread)"]
    for name, rates in report["decode_access"].items():
        lines.append(
            f"  keyframe every {KEYFRAME_INTERVALS[name]:>3d} frames: sequential "
            f"{rates['sequential_clips_per_s']:7.1f}, sparse {rates['sparse_clips_per_s']:7.1f} "
            f"({report['decode_sparse_vs_sequential'][name]:.2f} of sequential)"
        )
    return lines
