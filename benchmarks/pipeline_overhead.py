"""What the input pipeline costs without decoding anything, beside what decoding costs.

    python benchmarks/pipeline_overhead.py [--videos-per-class 24] [--passes 3]

`vlm-tf bench` puts the pipeline (`video_dataset_from_directory`) against
OpenCV alone in a process per core, the decode ceiling. This script asks
where the rest goes: the pipeline's tf.data graph (file names → frame indices
→ batch → one `tf.numpy_function` a batch → cast to float32 → prefetch, read
as `vlm-tf bench` reads it) with the decoder replaced by a function that
returns ready clips, as float32 and as uint8; the graph the pipeline had
before stop 47 (a `tf.numpy_function` a clip, then batch) likewise; and the
same graph with no Python at all (constant clips made by a TensorFlow op).
Then the pipeline itself and the decode ceiling, measured as `vlm-tf bench`
measures them, on the same synthetic videos in the same run. Best of
`--passes` each.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vlm_tf.bench_input import (  # noqa: E402
    BATCH,
    NUM_FRAMES,
    SIZE,
    clips_per_second,
    measure_decode_ceiling,
    measure_serial_decode,
)
from vlm_tf.data.pipeline import video_dataset_from_directory  # noqa: E402
from vlm_tf.data.sampling import uniform_indices  # noqa: E402
from vlm_tf.data.splits import index_directory, probe_files  # noqa: E402
from vlm_tf.data.synthetic import write_dataset  # noqa: E402

CLIP = (NUM_FRAMES, SIZE, SIZE, 3)


def stand_in_pipeline(paths, counts, source, dtype, per):
    """The pipeline's graph with `source` in the decoder's place: `"python"` (a
    `tf.numpy_function` returning a copy of ready clips) or `"op"` (`tf.zeros`), called once a
    `per` (`"batch"`, as the pipeline does, or `"clip"`, as it did); `(clips, frame counts)` in
    the pipeline's `(clips, labels)` place.
    """

    def decode(paths, indices, shape):
        if source == "python":
            ready = np.zeros(shape, np.uint8)
            clips = tf.numpy_function(lambda p, i: ready.copy(), [paths, indices], tf.uint8)
        else:
            clips = tf.zeros(shape, tf.uint8)
        return tf.cast(tf.ensure_shape(clips, shape), dtype)

    def choose(path, count):
        return path, uniform_indices(count, NUM_FRAMES), count

    files = tf.data.Dataset.from_tensor_slices((tf.constant(paths), tf.constant(counts, tf.int64)))
    chosen = files.map(choose, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if per == "clip":
        clips = chosen.map(
            lambda path, indices, count: (decode(path, indices, CLIP), count),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return clips.batch(BATCH).prefetch(tf.data.AUTOTUNE)
    # The stand-in's batches are all whole: BATCH divides the videos written.
    batches = chosen.batch(BATCH).map(
        lambda path, indices, count: (decode(path, indices, (BATCH, *CLIP)), count),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return batches.prefetch(tf.data.AUTOTUNE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos-per-class", type=int, default=24)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        write_dataset(root, videos_per_class=args.videos_per_class, seed=0)
        folder = os.path.join(root, "train")
        paths, _, _ = index_directory(folder)
        counts, _ = probe_files(paths)
        rows = {
            f"no decoding, {source} a {per}, {dtype.name}": stand_in_pipeline(
                paths, counts, source, dtype, per
            )
            for per in ("batch", "clip")
            for source in ("op", "python")
            for dtype in (tf.float32, tf.uint8)
        }
        rows["the pipeline (decoding, float32)"] = video_dataset_from_directory(
            folder, num_frames=NUM_FRAMES, image_size=(SIZE, SIZE), batch_size=BATCH
        )
        rates = {
            label: max(clips_per_second(dataset) for _ in range(args.passes))
            for label, dataset in rows.items()
        }
        rates["decode ceiling: OpenCV, a process per core"] = measure_decode_ceiling(
            paths, counts, passes=args.passes
        )
        rates["decode ceiling: OpenCV, one thread"] = measure_serial_decode(
            paths, counts, passes=args.passes
        )
    print(f"{len(paths)} videos, clips of {CLIP}, batches of {BATCH}, {os.cpu_count()} cores")
    for label, rate in rates.items():
        print(f"{label:48s} {rate:8.0f} clips/s")


if __name__ == "__main__":
    main()
