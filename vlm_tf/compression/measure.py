"""One yardstick for every compression method.

The model is measured as the TFLite file it would ship as, scored on the
same videos.

Pruning leaves a dense model of the same shape (its gain is zeros that
compress), distillation a smaller model, quantization a smaller file of the
same model: comparing them needs one measure of each. `measure_run` converts
a classify run's model to TFLite (float32, or quantized) and reports

    accuracy     on DATA_DIR/<class>/<video>, the clips `evaluate_directory` scores
    tflite_bytes the file's size
    gzip_bytes   the file gzip-compressed: what a download or a zipped app
                 carries, and where a pruned model's zeros pay off
    latency_ms   the median TFLite interpreter invoke on one clip, one thread
    params       the Keras model's parameters

`vlm-tf compress RUN_DIR --method ... --evaluate DIR` prints these for the
run and for what compressing it made; `benchmarks/compression_table.py` fills
the table in docs/compression.md.
"""

from __future__ import annotations

import gzip
import os

from vlm_tf.compression.quantize import evaluate_tflite, read_calibration_clips
from vlm_tf.inference import load_run
from vlm_tf.tflite import convert_to_tflite


def measure_run(run_or_dir, data_dir, *, quantize="none", calibration_dir=None):
    """The row of a classify run (a folder, or a loaded `Run`) on `data_dir`.

    Its model is written as a TFLite file quantized by `quantize`, and
    evaluated.

    `calibration_dir` is where int8 calibration clips come from (default:
    the run's training data, as `quantize_run` reads it).
    """
    run = load_run(run_or_dir) if isinstance(run_or_dir, (str, os.PathLike)) else run_or_dir
    run.require("classify", "measure_run")
    clips = read_calibration_clips(run, calibration_dir) if quantize == "int8" else None
    content = convert_to_tflite(
        run.model, num_frames=run.config.num_frames, quantize=quantize, representative_clips=clips
    )
    report = evaluate_tflite(content, run, data_dir)
    return {
        "run_dir": os.path.abspath(run.run_dir),
        "model": run.config.model,
        "quantize": quantize,
        "accuracy": report["accuracy"],
        "num_videos": report["num_videos"],
        "params": int(run.model.count_params()),
        "tflite_bytes": report["size_bytes"],
        "gzip_bytes": len(gzip.compress(content, compresslevel=9)),
        "latency_ms": report["latency_ms"],
        "agreement_with_keras": report["agreement"],
    }


def format_rows(rows):
    """`rows` (`{"name": ..., **measure_run(...)}`) as a Markdown table.

    The first row is the reference for the ratios.
    """
    first = rows[0]
    lines = [
        "| model | params | accuracy | TFLite MB | gzip MB | latency ms | gzip size vs first | "
        "latency vs first |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['params']:,} | {row['accuracy']:.3f} | "
            f"{row['tflite_bytes'] / 1e6:.2f} | {row['gzip_bytes'] / 1e6:.2f} "
            f"| {row['latency_ms']:.2f} | {row['gzip_bytes'] / first['gzip_bytes']:.2f} | "
            f"{row['latency_ms'] / first['latency_ms']:.2f} |"
        )
    return "\n".join(lines)
