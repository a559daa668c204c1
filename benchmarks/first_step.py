"""A short run's fixed cost: training steps traced once (the state built before `fit`) or twice.

    python benchmarks/first_step.py [--rounds 3] [--models cnn_lstm gan]

Keras creates optimizer slots and compiled metrics in the first training
step unless a `tf.distribute` strategy of the model's own is in force; the
`tf.function` of a step that creates variables is traced a second time
without them. `vlm_tf.training.runtime.build_training_state` builds them
before `fit`. Each round trains every model for one epoch on the same tiny
synthetic dataset (8 classes, 4 training clips each, 8 frames of 32x32,
batch 8) in a fresh process, once as the loop does and once with
`build_training_state` left out, the two taking turns so a slow spell of
the machine falls on both. Prints each model's median seconds for the whole
`train()` call, how many times its step was traced, and the ratio.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

RUN = r"""
import json, os, sys, time
import keras
import vlm_tf
from vlm_tf.models.adversarial import VideoGAN
from vlm_tf.training import RunConfig, runtime, train

data, out, model, built = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
if not built:
    runtime.build_training_state = lambda *args: None
owner = VideoGAN if model == "gan" else keras.Model
step, traced = owner.train_step, []


def counted(self, batch):
    traced.append(1)  # the Python body runs only while TensorFlow traces the step
    return step(self, batch)


owner.train_step = counted
start = time.perf_counter()
config = RunConfig(model=model, epochs=1, num_frames=8, image_size=32, batch_size=8, seed=0)
train(data, out, config, verbose=0)
print(json.dumps({"seconds": time.perf_counter() - start, "traces": len(traced)}))
"""


def _one(data, out, model, built):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", RUN, data, out, model, "1" if built else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["cnn_lstm", "gan"])
    args = parser.parse_args(argv)

    from vlm_tf.data.synthetic import write_dataset

    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        write_dataset(data, videos_per_class=6, num_frames=8, size=32, seed=3)
        results = {(model, built): [] for model in args.models for built in (True, False)}
        for round_index in range(args.rounds):
            for (model, built), runs in results.items():
                out = os.path.join(work, f"{model}_{int(built)}_{round_index}")
                runs.append(_one(data, out, model, built))
    print(f"{os.cpu_count()} cores, one epoch of 4 steps, median of {args.rounds} runs")
    for model in args.models:
        built, lazy = results[model, True], results[model, False]
        before = float(np.median([r["seconds"] for r in lazy]))
        after = float(np.median([r["seconds"] for r in built]))
        print(
            f"{model:9s} state built first {after:6.2f} s ({built[0]['traces']} trace)   "
            f"left to the first step {before:6.2f} s ({lazy[0]['traces']} traces)   "
            f"{before / after:.2f}x"
        )


if __name__ == "__main__":
    main()
