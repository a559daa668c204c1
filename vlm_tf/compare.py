"""Every classifier on the same data, budget and seed: one table of accuracy, size, cost and speed.

    OUT_DIR/<model>/          a full `vlm-tf train` run folder per model
    OUT_DIR/comparison.json   one row per finished model, written after each

A comparison stopped part-way continues where it stopped: rows already in
`comparison.json` are kept, and an unfinished run folder resumes.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

from vlm_tf import atomic, crypto
from vlm_tf.data import lists
from vlm_tf.training import config as run_files

COMPARISON_FILE = "comparison.json"
COLUMNS = (
    ("model", "model", "{}"),
    ("test_accuracy", "test acc", "{:.3f}"),
    ("best_val_accuracy", "val acc", "{:.3f}"),
    ("params", "params", "{:,}"),
    ("gflops_per_clip", "GFLOPs/clip", "{:.3f}"),
    ("train_clips_per_s", "train clips/s", "{:.1f}"),
    ("train_minutes", "minutes", "{:.1f}"),
)


def _median_throughput(run_dir):
    """Median `train_clips_per_s` over the epochs after the first (which also traces and
    compiles).
    """
    values = [
        row["train_clips_per_s"]
        for row in run_files.read_history(run_dir)
        if "train_clips_per_s" in row
    ]
    return statistics.median(values[1:] or values)


def compare_models(data_dir, out_dir, models, config, *, progress=None, test_data=None):
    """Trains each of `models` with `config` (its `model` field replaced) and evaluates it on
    `DATA_DIR/test` (list data: its test part, `vlm_tf.data.lists`), or on `test_data`.

    Optimizer fields `config` leaves at None follow each model's recipe
    (`RunConfig.resolved`), so the budget (data, epochs, batch, seed) is the
    same for all and each model trains the way it is meant to.

    Returns the rows, one dict per model with the keys of `COLUMNS`
    (accuracy on the held-out test split; validation picked the checkpoint),
    its config and `skipped`: the files its training or evaluation could not
    read, with the reason (`progress` names each once).
    """
    from vlm_tf.inference import evaluate_directory, load_run
    from vlm_tf.models.flops import count_flops
    from vlm_tf.training.loop import best_validation_accuracy, train, with_started_execution

    data_dir = os.fspath(data_dir)
    if test_data is None and os.path.isfile(data_dir) and data_dir.lower().endswith(".txt"):
        raise ValueError(
            f"{data_dir}: compare trains on a split's train list and scores on its test list; "
            "give the UCF101-style folder that holds both"
        )
    # List data (a CSV file, a UCF101-style folder) holds its test part itself.
    if test_data is not None:
        test_dir = os.fspath(test_data)
    elif lists.is_list_source(data_dir):
        test_dir = data_dir
    else:
        test_dir = os.path.join(data_dir, "test")
    if not os.path.exists(test_dir):
        raise FileNotFoundError(
            f"{test_dir}: no such directory (compare scores every model on held-out clips in "
            "DATA_DIR/test)"
        )
    # Each model with its own recipe where `config` leaves the optimizer open.
    configs = {name: dataclasses.replace(config, model=name).resolved() for name in models}
    os.makedirs(out_dir, exist_ok=True)
    # With a key in use, the table and every run under it are encrypted.
    crypto.seal(out_dir)
    table_path = os.path.join(out_dir, COMPARISON_FILE)
    done = (
        {row["model"]: row for row in atomic.read_json(table_path)["rows"]}
        if os.path.isfile(table_path)
        else {}
    )
    rows = []
    for name in models:
        if name in done and done[name]["config"] == configs[name].to_dict():
            rows.append(done[name])
            continue
        run_dir = os.path.join(out_dir, name)
        if progress:
            progress(f"training {name} for {config.epochs} epochs into {run_dir}")
        skipped = []
        if os.path.isfile(os.path.join(run_dir, run_files.MODEL_FILE)):
            # Trained before the comparison was interrupted; its time is unknown.
            minutes = None
        else:
            started = time.perf_counter()
            skipped += train(data_dir, run_dir, configs[name], verbose=0).skipped
            minutes = (time.perf_counter() - started) / 60
        run = load_run(run_dir)
        # The run folder holds the precision and XLA setting `auto` settled on.
        if run.config != with_started_execution(configs[name], run.config):
            raise ValueError(
                f"{run_dir} holds a run with other settings; choose a new output folder"
            )
        report = evaluate_directory(run, test_dir)
        # Every model reads the same files: what one skipped, the row says, and progress once.
        skipped += [item for item in report["skipped"] if item not in skipped]
        if progress:
            for item in skipped:
                if not any(item in other.get("skipped", ()) for other in rows):
                    progress(f"skipped {item['path']}: {item['reason']}")
        row = {
            "model": name,
            "test_accuracy": report["accuracy"],
            "best_val_accuracy": best_validation_accuracy(run_dir),
            "params": run.model.count_params(),
            "gflops_per_clip": count_flops(run.model, num_frames=config.num_frames) / 1e9,
            "train_clips_per_s": _median_throughput(run_dir),
            "train_minutes": minutes,
            "config": configs[name].to_dict(),
            "skipped": skipped,
        }
        rows.append(row)
        done[name] = row
        atomic.write_json(
            table_path, {"data_dir": os.path.abspath(data_dir), "rows": list(done.values())}
        )
        if progress:
            progress(format_table([row]).splitlines()[-1])
    return rows


def format_table(rows):
    """The rows as a Markdown table, in `COLUMNS` order."""
    lines = [
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                "-" if row[key] is None else fmt.format(row[key]) for key, _, fmt in COLUMNS
            )
            + " |"
        )
    return "\n".join(lines)
