"""The same `vlm-tf train` from two source trees, taking turns, on the same data and machine.

    git worktree add /tmp/before <commit>
    python benchmarks/train_ab.py /tmp/before . DATA_DIR --rounds 2 -- \
        --epochs 10 --precision mixed_bfloat16 --jit off

Each round trains once with each tree (`PYTHONPATH` pointing at it) into a
fresh folder and prints the wall clock, the median `train_clips_per_s` of
the run's epochs and its last `val_accuracy`; the last line is the ratio of
the median wall clocks. Turns alternate, so drift of the machine hits both.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time


def train_once(source, data_dir, out, train_args):
    env = {**os.environ, "PYTHONPATH": os.path.abspath(source), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "vlm_tf.cli", "train", data_dir, "--out", out, "--quiet"]
    start = time.perf_counter()
    subprocess.run(command + train_args, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    with open(os.path.join(out, "history.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    rate = statistics.median(float(row["train_clips_per_s"]) for row in rows)
    return wall, rate, float(rows[-1]["val_accuracy"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="source tree A (a folder holding vlm_tf/)")
    parser.add_argument("after", help="source tree B")
    parser.add_argument("data_dir")
    parser.add_argument("--rounds", type=int, default=2)
    # Everything after `--` is train's own options.
    split = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)
    args = parser.parse_args(sys.argv[1:split])
    train_args = sys.argv[split + 1 :]
    walls = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as work:
        for round_ in range(1, args.rounds + 1):
            for side in ("before", "after"):
                out = os.path.join(work, f"{side}{round_}")
                wall, rate, accuracy = train_once(
                    getattr(args, side), args.data_dir, out, train_args
                )
                walls[side].append(wall)
                print(
                    f"{side:6s} round {round_}: {wall:6.1f} s, median {rate:6.1f} clips/s, "
                    f"val accuracy {accuracy:.3f}",
                    flush=True,
                )
    before, after = statistics.median(walls["before"]), statistics.median(walls["after"])
    print(f"median wall clock: before {before:.1f} s, after {after:.1f} s, {before / after:.2f}x")


if __name__ == "__main__":
    main()
