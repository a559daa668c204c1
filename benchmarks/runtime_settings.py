"""Training-step speed of the default model under TensorFlow's process-wide settings.

The speeds are given as ratios to the defaults.

    python benchmarks/runtime_settings.py [--steps 10]

oneDNN on or off (`TF_ENABLE_ONEDNN_OPTS`) and the sizes of TensorFlow's
thread pools are fixed when TensorFlow starts, so every setting runs in a
process of its own, one after another, each timing the same training step
(random clips, 16 frames of 64×64) after a warm-up. Batch size is measured
too, as clips per second: a larger batch is faster per clip here but
changes what training does (fewer, averaged updates), so the text's 8
stays the default whatever this prints.
"""

import argparse
import json
import os
import subprocess
import sys

STEP = r"""
import json, os, sys, time
import numpy as np
import tensorflow as tf
intra, inter, batch, steps = (int(v) for v in sys.argv[1:5])
if intra:
    tf.config.threading.set_intra_op_parallelism_threads(intra)
if inter:
    tf.config.threading.set_inter_op_parallelism_threads(inter)
from vlm_tf.models import build_model
model = build_model("cnn_lstm", num_classes=8, image_size=(64, 64))
model.compile(optimizer="adam", loss="categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (batch, 16, 64, 64, 3)).astype("float32")
y = np.eye(8, dtype="float32")[rng.integers(0, 8, batch)]
model.train_on_batch(x, y)
model.train_on_batch(x, y)
times = []
for _ in range(steps):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
print(json.dumps({"clips_per_s": batch / float(np.median(times))}))
"""

# (label, oneDNN on, intra-op threads, inter-op threads, batch); 0 threads = TensorFlow's default.
SETTINGS = [
    ("defaults (oneDNN on, TF's thread pools), batch 8", True, 0, 0, 8),
    ("oneDNN off", False, 0, 0, 8),
    ("intra-op threads 1", True, 1, 0, 8),
    ("intra-op threads 4", True, 4, 0, 8),
    ("inter-op threads 1", True, 0, 1, 8),
    ("batch 4", True, 0, 0, 4),
    ("batch 16", True, 0, 0, 16),
    ("batch 32", True, 0, 0, 32),
]


def measure(onednn, intra, inter, batch, steps):
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", STEP, str(intra), str(inter), str(batch), str(steps)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["clips_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(
        f"default model (cnn_lstm), float32, 16 frames of 64x64, {os.cpu_count()} cores, median of "
        f"{args.steps} steps, a process per setting"
    )
    base = None
    for label, onednn, intra, inter, batch in SETTINGS:
        rate = measure(onednn, intra, inter, batch, args.steps)
        base = base or rate
        print(f"{label:50s} {rate:7.1f} clips/s  {rate / base:5.2f}x the defaults", flush=True)


if __name__ == "__main__":
    main()
