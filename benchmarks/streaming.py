"""Per-frame cost of streaming (`vlm_tf.streaming`) against running the whole model on the window.

The two are measured side by side.

    python benchmarks/streaming.py [--frames 120]

For each model and size, one loop feeds the same frames to a
`StreamingClassifier` and, for the same window of the last T frames, to the
whole model (traced, as the stream's parts are), alternating, and prints
the median milliseconds per frame of each and their ratio. Untrained
models: the cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import collections  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vlm_tf.models import build_model  # noqa: E402
from vlm_tf.streaming import StreamingClassifier  # noqa: E402

CASES = (
    ("cnn_lstm", 64),
    ("cnn_lstm_bn_gap", 64),
    ("cnn_lstm_bn_gap", 128),
    ("cnn_soft_attention", 64),
    ("video_transformer", 64),
)


def measure(name, size, num_frames, frames):
    model = build_model(name, num_classes=8, image_size=(size, size))
    stream = StreamingClassifier(model, num_frames=num_frames)
    whole = tf.function(model)
    rng = np.random.default_rng(0)
    window = collections.deque(maxlen=num_frames)
    streamed, recomputed = [], []
    for _ in range(frames):
        frame = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        step = stream.update(frame)
        window.append(frame.astype(np.float32))
        if len(window) < num_frames:
            continue
        start = time.perf_counter()
        np.asarray(whole(np.stack(window)[None], training=False))
        recomputed.append((time.perf_counter() - start) * 1e3)
        streamed.append(step.latency_ms)
    return stream.mode, float(np.median(streamed)), float(np.median(recomputed))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="frames fed to each model")
    parser.add_argument("--num-frames", type=int, default=16, help="T, the window")
    args = parser.parse_args()
    print("| model | frame size | mode | stream ms/frame | whole model ms/frame | whole / stream |")
    print("|---|---|---|---|---|---|")
    for name, size in CASES:
        mode, streamed, recomputed = measure(name, size, args.num_frames, args.frames)
        print(
            f"| {name} | {size}x{size} | {mode} | {streamed:.2f} | {recomputed:.2f} | "
            f"{recomputed / streamed:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
