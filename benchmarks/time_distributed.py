"""Training-step time of the default CNN-LSTM with Keras' TimeDistributed vs vlm_tf's.

    python benchmarks/time_distributed.py [--steps 20] [--frames 16] [--size 64]

Both models have the same layers and weights; only the wrapper differs.
Keras' wrapper gets a static time axis (its dynamic-time path gives wrong
values, docs/design.md), so it runs its per-frame Python loop. The two are
timed alternately in one process and the ratio printed.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vlm_tf.layers import FrameDifference, TimeDistributed  # noqa: E402


def build(wrapper, frames, size):
    inputs = keras.Input((frames, size, size, 3))
    x = FrameDifference()(keras.layers.Rescaling(1 / 255)(inputs))
    for filters in (16, 32, 64):
        x = wrapper(keras.layers.Conv2D(filters, 3, activation="relu"))(x)
        x = wrapper(keras.layers.MaxPooling2D(2))(x)
    x = wrapper(keras.layers.Flatten())(x)
    outputs = keras.layers.Dense(8, activation="softmax")(keras.layers.LSTM(64)(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch_size, args.frames, args.size, args.size, 3)).astype(
        "float32"
    )
    y = np.eye(8, dtype="float32")[rng.integers(0, 8, args.batch_size)]
    models = {
        "keras.layers.TimeDistributed": build(keras.layers.TimeDistributed, args.frames, args.size),
        "vlm_tf.layers.TimeDistributed": build(TimeDistributed, args.frames, args.size),
    }
    models["vlm_tf.layers.TimeDistributed"].set_weights(
        models["keras.layers.TimeDistributed"].get_weights()
    )
    times = {name: [] for name in models}
    for model in models.values():
        model.train_on_batch(x, y)  # trace and warm up
    for _ in range(args.steps):
        for name, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(t)) * 1000 for name, t in times.items()}
    for name, ms in medians.items():
        print(f"{name:32s} {ms:8.1f} ms / training step (median of {args.steps})")
    ratio = medians["keras.layers.TimeDistributed"] / medians["vlm_tf.layers.TimeDistributed"]
    print(f"speed-up of vlm_tf's wrapper: {ratio:.2f}x")


if __name__ == "__main__":
    main()
