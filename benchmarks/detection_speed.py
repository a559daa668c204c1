"""Detection training speed: TensorFlow's oneDNN kernels, its CPU allocator and the ConvLSTM.

    python benchmarks/detection_speed.py [--rounds 2] [--videos 200]

Writes a detection dataset (`make-data --task detect`'s generator, 64×64,
16 frames a clip, the `train --task detect` defaults), then times one
epoch of the default detector's training, fed as the task feeds it
(`DetectionClips`, a `keras.utils.PyDataset` of float32 clips), in a
process of its own for each setting, the settings taking turns round after
round so a slow spell of the machine falls on all of them:

- oneDNN: TensorFlow's oneDNN kernels (`TF_ENABLE_ONEDNN_OPTS=1`, what
  `import vlm_tf` sets) against its Eigen kernels (`=0`, what TensorFlow
  itself chooses on a processor without AVX-512 VNNI, BF16 or AMX);
- allocator: TensorFlow's BFC allocator on the CPU
  (`TF_CPU_ALLOCATOR_USE_BFC=true`, what `vlm-tf` sets) against the C
  library's `malloc`, which maps and unmaps every tensor above 32 MB afresh
  (the detector's first activations are 67 MB a batch);
- ConvLSTM: `vlm_tf.layers.ConvLSTM2D` (every frame's input convolved at
  once, one convolution of the state a step; stop 46) against
  `keras.layers.ConvLSTM2D` (eight small convolutions a step), which the
  detector used before;

and the default classifier's training step (random clips, as
benchmarks/runtime_settings.py) in the settings before and now. Prints the
median clips/s of each setting and the ratios. (Stop 42's table, with a
tf.data feed of uint8 clips measured against the PyDataset, was printed by
this script at commit 26fd8cb.)
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
import keras
from vlm_tf.data import detection_clips
from vlm_tf.models import detection
from vlm_tf.models.detection import build_video_detector, detection_loss

data, conv_lstm = sys.argv[1], sys.argv[2]
if conv_lstm == "keras":
    # The detector as it was built before stop 46: the module's name points at Keras' layer.
    detection.ConvLSTM2D = keras.layers.ConvLSTM2D
videos, _ = detection_clips.annotated_videos(sorted(glob.glob(f"{data}/train/*.mp4")))
names = detection_clips.detection_classes(videos)
clips = detection_clips.DetectionClips(
    videos, names, num_frames=16, image_size=(64, 64), batch_size=8, training=True
)
model = build_video_detector(len(names))
model.compile(optimizer="adam", loss=detection_loss)
model.fit(clips, epochs=1, verbose=0)  # traces the step and warms the allocator
start = time.perf_counter()
model.fit(clips, epochs=1, verbose=0)
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

# (label, script, TF_ENABLE_ONEDNN_OPTS, TF_CPU_ALLOCATOR_USE_BFC, the ConvLSTM)
SETTINGS = [
    ("detector, Eigen kernels, malloc (before stop 42)", DETECT, "0", "false", "keras"),
    ("detector, Eigen kernels, BFC allocator", DETECT, "0", "true", "keras"),
    ("detector, oneDNN, malloc", DETECT, "1", "false", "keras"),
    ("detector, oneDNN, BFC allocator (stop 44)", DETECT, "1", "true", "keras"),
    ("detector, oneDNN, BFC, vlm_tf's ConvLSTM (now)", DETECT, "1", "true", "vlm_tf"),
    ("default classifier step, Eigen kernels, malloc (before)", CLASSIFY, "0", "false", "-"),
    ("default classifier step, oneDNN, BFC allocator (now)", CLASSIFY, "1", "true", "-"),
]


def measure(script, onednn, bfc, conv_lstm, data):
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": onednn,
        "TF_CPU_ALLOCATOR_USE_BFC": bfc,
    }
    done = subprocess.run(
        [sys.executable, "-c", script, data, conv_lstm],
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
            for label, script, onednn, bfc, conv_lstm in SETTINGS:
                rates[label].append(measure(script, onednn, bfc, conv_lstm, data))
                print(f"round {round_ + 1}: {label}: {rates[label][-1]:.2f} clips/s", flush=True)
    median = {label: float(np.median(values)) for label, values in rates.items()}
    print()
    for label, rate in median.items():
        print(f"{label:56s} {rate:7.2f} clips/s")
    label = [label for label, *_ in SETTINGS]
    before, now = median[label[0]], median[label[4]]
    print(f"detector, now / before: {now / before:.2f}x")
    print(f"  oneDNN alone: {median[label[2]] / before:.2f}x")
    print(f"  BFC alone: {median[label[1]] / before:.2f}x")
    print(f"  BFC with oneDNN: {median[label[3]] / median[label[2]]:.2f}x")
    print(f"  vlm_tf's ConvLSTM, with both: {now / median[label[3]]:.2f}x")
    print(f"default classifier, now / before: {median[label[6]] / median[label[5]]:.2f}x")


if __name__ == "__main__":
    main()
