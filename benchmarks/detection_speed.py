"""Detection training speed: how its input reaches the model, and TensorFlow's CPU allocator.

    python benchmarks/detection_speed.py [--rounds 2] [--videos 200]

Writes a detection dataset (`make-data --task detect`'s generator, 64×64,
16 frames a clip, the `train --task detect` defaults), then times one
epoch of the default detector's training in a process of its own for each
setting, the settings taking turns round after round so a slow spell of
the machine falls on all of them:

- input: the task's `DetectionClips` (a `keras.utils.PyDataset` handing
  float32 clips to `fit`, which Keras wraps in a `tf.data` generator)
  against the same batches made by a generator of our own in tf.data's
  thread and handed over as uint8, a quarter of the bytes;
- allocator: TensorFlow's BFC allocator on the CPU
  (`TF_CPU_ALLOCATOR_USE_BFC=true`, what `vlm-tf` sets) against the C
  library's `malloc`, which maps and unmaps every tensor above 32 MB afresh
  (the detector's first activations are 67 MB a batch);

and the default classifier's training step (random clips, as
benchmarks/runtime_settings.py) under both allocators. Prints the median
clips/s of each setting and the ratios.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

DETECT = r"""
import glob, json, sys, time
import keras, numpy as np, tensorflow as tf
from vlm_tf.data import detection_clips
from vlm_tf.models.detection import build_video_detector, detection_loss

data, feed = sys.argv[1], sys.argv[2]
videos, _ = detection_clips.annotated_videos(sorted(glob.glob(f"{data}/train/*.mp4")))
names = detection_clips.detection_classes(videos)
clips = detection_clips.DetectionClips(
    videos, names, num_frames=16, image_size=(64, 64), batch_size=8, training=True
)


class FloatBatches(keras.utils.PyDataset):
    def __len__(self):
        return len(clips)

    def __getitem__(self, index):
        frames, targets = clips[index]
        return frames.astype(np.float32), targets

    def on_epoch_end(self):
        clips.on_epoch_end()


def as_dataset():
    # The same batches made in tf.data's thread, two ahead, the clips handed over as uint8.
    spec = (
        tf.TensorSpec((None, 16, 64, 64, 3), tf.uint8),
        tf.TensorSpec((None, 16, 16, 16, len(names) + 5), tf.float32),
    )

    def one_epoch():
        for index in range(len(clips)):
            frames, targets = clips[index]
            yield frames.astype(np.uint8), targets
        clips.on_epoch_end()

    dataset = tf.data.Dataset.from_generator(one_epoch, output_signature=spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(clips))).prefetch(2)


source = as_dataset() if feed == "dataset" else FloatBatches()
model = build_video_detector(len(names))
model.compile(optimizer="adam", loss=detection_loss)
model.fit(source, epochs=1, verbose=0)  # traces the step and warms the allocator
start = time.perf_counter()
model.fit(source, epochs=1, verbose=0)
print(json.dumps({"clips_per_s": len(videos) / (time.perf_counter() - start)}))
"""

CLASSIFY = r"""
import json, time
import numpy as np
from vlm_tf.models import build_model
model = build_model("cnn_lstm", num_classes=8, image_size=(64, 64))
model.compile(optimizer="adam", loss="categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (8, 16, 64, 64, 3)).astype("float32")
y = np.eye(8, dtype="float32")[rng.integers(0, 8, 8)]
for _ in range(3):
    model.train_on_batch(x, y)
times = []
for _ in range(20):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
print(json.dumps({"clips_per_s": 8 / float(np.median(times))}))
"""

# (label, script, its arguments, TF_CPU_ALLOCATOR_USE_BFC)
SETTINGS = [
    ("detector, tf.data uint8, BFC allocator", DETECT, ["dataset"], "true"),
    ("detector, tf.data uint8, malloc", DETECT, ["dataset"], "false"),
    ("detector, PyDataset float32, malloc (before)", DETECT, ["pydataset"], "false"),
    ("detector, PyDataset float32, BFC allocator (now)", DETECT, ["pydataset"], "true"),
    ("default classifier step, BFC allocator (now)", CLASSIFY, [], "true"),
    ("default classifier step, malloc (before)", CLASSIFY, [], "false"),
]


def measure(script, args, bfc, data):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CPU_ALLOCATOR_USE_BFC": bfc}
    done = subprocess.run(
        [sys.executable, "-c", script, data, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["clips_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--videos", type=int, default=200)
    args = parser.parse_args()
    from vlm_tf.data.detection import write_detection_dataset

    with tempfile.TemporaryDirectory() as data:
        write_detection_dataset(data, videos=args.videos, num_frames=24, size=64, seed=0)
        rates = {label: [] for label, *_ in SETTINGS}
        for round_ in range(args.rounds):
            for label, script, script_args, bfc in SETTINGS:
                rates[label].append(measure(script, script_args, bfc, data))
                print(f"round {round_ + 1}: {label}: {rates[label][-1]:.2f} clips/s", flush=True)
    median = {label: float(np.median(values)) for label, values in rates.items()}
    print()
    for label, rate in median.items():
        print(f"{label:56s} {rate:7.2f} clips/s")
    label = [label for label, *_ in SETTINGS]
    print(f"detector, now / before: {median[label[3]] / median[label[2]]:.2f}x")
    print(f"  uint8 from tf.data / PyDataset, BFC: {median[label[0]] / median[label[3]]:.2f}x")
    print(f"  uint8 from tf.data, BFC / malloc: {median[label[0]] / median[label[1]]:.2f}x")
    print(
        f"default classifier, BFC / malloc: {median[SETTINGS[4][0]] / median[SETTINGS[5][0]]:.2f}x"
    )


if __name__ == "__main__":
    main()
