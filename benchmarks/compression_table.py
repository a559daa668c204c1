"""Every compression method on one trained run, measured alike: the table of docs/compression.md.

    python benchmarks/compression_table.py RUN_DIR TEST_DIR --work DIR
        [--prune-epochs 2] [--distill-epochs N]

Each model is scored as the TFLite file it would ship as
(`vlm_tf.compression.measure.measure_run`): accuracy on TEST_DIR, file size,
gzip size, interpreter latency on one thread, in one run so the latencies
are side by side. The rows: the run itself (float32), its three quantized
files, the run pruned to 50 % and 80 % while fine-tuning, and the default
student trained with the run as its teacher (also as int8) and, as the
baseline, without.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vlm_tf.compression.distillation import distill_run  # noqa: E402
from vlm_tf.compression.measure import format_rows, measure_run  # noqa: E402
from vlm_tf.compression.pruning import prune_run  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("test_dir")
    parser.add_argument("--work", required=True, help="folder for the pruned and distilled runs")
    parser.add_argument("--prune-epochs", type=int, default=2)
    parser.add_argument("--distill-epochs", type=int, help="(default: the run's own)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    rows = [{"name": "the run (float32)", **measure_run(args.run_dir, args.test_dir)}]
    for mode in ("float16", "dynamic", "int8"):
        rows.append(
            {"name": f"quantized {mode}", **measure_run(args.run_dir, args.test_dir, quantize=mode)}
        )
    for sparsity in (0.5, 0.8):
        pruned = prune_run(
            args.run_dir,
            sparsity=sparsity,
            epochs=args.prune_epochs,
            out=os.path.join(args.work, f"pruned{round(sparsity * 100)}"),
        )
        rows.append(
            {
                "name": f"pruned {sparsity:.0%} (measured {pruned['sparsity']:.1%})",
                **measure_run(pruned["run_dir"], args.test_dir),
            }
        )
    for alpha, name in ((0.1, "student with teacher"), (1.0, "student without teacher")):
        student = distill_run(
            args.run_dir,
            epochs=args.distill_epochs,
            alpha=alpha,
            out=os.path.join(args.work, f"student_alpha{alpha}"),
        )
        rows.append(
            {
                "name": f"{name} ({student['student_model']})",
                **measure_run(student["run_dir"], args.test_dir),
            }
        )
        if alpha < 1.0:
            # The methods combine: the distilled student, quantized.
            rows.append(
                {
                    "name": f"{name} ({student['student_model']}), int8",
                    **measure_run(student["run_dir"], args.test_dir, quantize="int8"),
                }
            )
    print(format_rows(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
