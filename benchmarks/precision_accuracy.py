"""Whether training in mixed bfloat16 keeps the quickstart's accuracy: the quickstart's training
in float32 and in mixed bfloat16, same data and seeds, each scored on the test split.

    python benchmarks/precision_accuracy.py WORK_DIR [--seeds 0 1] [--epochs 30]

WORK_DIR gets the quickstart's dataset (`vlm-tf make-data`, its defaults) and a run for every
precision and seed. Prints each run's test accuracy and the mean difference; `--precision auto`
picks mixed bfloat16 wherever it measures it faster (docs/benchmarks.md, "Precision and XLA").
"""

import argparse
import json
import os
import subprocess
import sys

PRECISIONS = ("float32", "mixed_bfloat16")


def vlm_tf(*args):
    command = [sys.executable, "-m", "vlm_tf.cli", *map(str, args)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    data = os.path.join(args.work_dir, "data")
    if not os.path.isdir(data):
        vlm_tf("make-data", data)
    accuracy = {precision: [] for precision in PRECISIONS}
    for seed in args.seeds:
        for precision in PRECISIONS:
            run = os.path.join(args.work_dir, f"{precision}_seed{seed}")
            if not os.path.isfile(os.path.join(run, "model.keras")):
                vlm_tf(
                    "train", data, "--out", run, "--epochs", args.epochs, "--seed", seed,
                    "--precision", precision, "--jit", "off", "--quiet",
                )  # fmt: skip
            report = json.loads(vlm_tf("evaluate", run, os.path.join(data, "test"), "--json"))
            accuracy[precision].append(report["accuracy"])
            print(f"seed {seed}  {precision:<15s} test accuracy {report['accuracy']:.3f}")
    differences = [b - f for f, b in zip(accuracy["float32"], accuracy["mixed_bfloat16"])]
    print(
        f"mixed_bfloat16 - float32: {sum(differences) / len(differences):+.3f} on average "
        f"over {len(differences)} seeds"
    )


if __name__ == "__main__":
    main()
