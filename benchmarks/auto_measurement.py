"""What `--precision auto` costs a run on a CPU: its measurement, with and without dropping the
candidates that cannot win after their first steps. Only classify runs measure (the
other tasks take float32 without XLA), on the run's model, clips and batch: here the default model
and the text's network on 16 frames of 64x64, batch 8.

    python benchmarks/auto_measurement.py [--rounds 3] [--models M ...] [--threads 0]

`vlm_tf.training.runtime.measure_training_rates` builds, warms up and times
each precision/XLA candidate on the run's own model and batch; a candidate
whose fastest first steps are `OUT_OF_THE_RUNNING` times slower than the
fastest candidate's is timed no further. Each round measures each model once
that way and once with the drop turned off (every candidate timed in every
round, as before), each in a fresh process, the two taking turns so a slow
spell of the machine falls on both. Prints each model's median seconds, the
rates each way measured and the candidate each picks. `--threads N` runs
TensorFlow on N threads (the test suite gives each of its two workers one).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

MEASURE = r"""
import json, math, sys, time
import numpy as np
import vlm_tf
from vlm_tf.models.registry import build_model
from vlm_tf.training import runtime

name, drop = sys.argv[1], sys.argv[2] == "drop"
if not drop:
    runtime.OUT_OF_THE_RUNNING = math.inf
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (8, 16, 64, 64, 3)).astype("float32")
y = np.eye(8, dtype="float32")[rng.integers(0, 8, 8)]
start = time.perf_counter()
rates = runtime.measure_training_rates(
    lambda: build_model(name, num_classes=8, image_size=(64, 64)), x, y,
    loss="categorical_crossentropy",
)
seconds = time.perf_counter() - start
pick = "/".join(runtime.pick_fastest(rates))
print(json.dumps({"seconds": seconds, "rates": rates, "pick": pick}))
"""


def measure(name, drop, threads):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if threads:
        for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            env[variable] = str(threads)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, name, "drop" if drop else "all"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["cnn_lstm", "cnn_lstm_text"])
    parser.add_argument("--threads", type=int, default=0, help="0: TensorFlow's own choice")
    args = parser.parse_args()
    for name in args.models:
        results = {True: [], False: []}
        for _ in range(args.rounds):
            for drop in (True, False):
                results[drop].append(measure(name, drop, args.threads))
        seconds = {
            drop: float(np.median([r["seconds"] for r in runs])) for drop, runs in results.items()
        }
        for drop, label in ((False, "every candidate timed"), (True, "losers dropped")):
            last = results[drop][-1]
            rates = ", ".join(f"{k} {v:.1f}" for k, v in last["rates"].items())
            print(f"{name:9s} {label:22s} {seconds[drop]:6.1f} s  picks {last['pick']}  ({rates})")
        print(f"{name:9s} {'':22s} {seconds[False] / seconds[True]:6.2f}x shorter")


if __name__ == "__main__":
    main()
