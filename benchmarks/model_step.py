"""Training-step time of every registered model, as a ratio to the default.

    python benchmarks/model_step.py [--steps 10] [--frames 16] [--size 64] [--models NAME ...]

The models are timed in turn, one step each per round, in one process, so
a busy machine slows them alike and the ratios stay meaningful.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from vlm_tf.models import build_model, model_names  # noqa: E402
from vlm_tf.models.registry import DEFAULT_MODEL  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=model_names(), choices=model_names())
    args = parser.parse_args()
    names = [DEFAULT_MODEL] + [name for name in args.models if name != DEFAULT_MODEL]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch_size, args.frames, args.size, args.size, 3)).astype(
        "float32"
    )
    y = np.eye(8, dtype="float32")[rng.integers(0, 8, args.batch_size)]
    models = {}
    for name in names:
        models[name] = build_model(name, num_classes=8, image_size=(args.size, args.size))
        models[name].compile(optimizer="adam", loss="categorical_crossentropy")
        models[name].train_on_batch(x, y)  # trace and warm up
    times = {name: [] for name in names}
    for _ in range(args.steps):
        for name, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    base = float(np.median(times[DEFAULT_MODEL]))
    print(
        f"batch {args.batch_size}, {args.frames} frames of {args.size}x{args.size}, median of "
        f"{args.steps} steps"
    )
    width = max(map(len, names))
    for name in names:
        median = float(np.median(times[name]))
        print(
            f"{name:{width}s} {models[name].count_params():>10,d} params "
            f"{median * 1000:8.1f} ms / step  {median / base:5.2f}x {DEFAULT_MODEL}"
        )


if __name__ == "__main__":
    main()
