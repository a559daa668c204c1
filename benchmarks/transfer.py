"""Few-shot transfer: training from scratch against starting from a pretrained backbone.

    python benchmarks/transfer.py --preset vlm-mae-tiny [--shots 2,4,8,16,all] [--seeds 3]

On camera-motion footage pretraining never saw (`vlm_tf.data.footage`: four
camera moves over held-out photographs and video stills, encoded by FFmpeg's
encoders; 40 training and 20 test clips per class, written once into
`--work`), for N clips per class (drawn per seed from the training clips) it
trains, as a user would with `vlm-tf train` (validation taken from the N
clips, the best epoch kept):

    scratch_default  the default model (cnn_lstm), from random weights
    scratch          the preset's own architecture, from random weights
    probe            the preset's backbone frozen, a new head (`--init P --linear-probe`)
    finetune         the preset's backbone and a new head, all trained (`--init P`)

and prints test accuracy (mean ± sd over the seeds) and training seconds per
run, one row per N; `--json` prints every run as well. Decoded clips are
cached in `--work` and shared by every run; a run finished before is not
run again, so an interrupted benchmark continues where it stopped.
"""

import argparse
import csv
import json
import os
import statistics
import sys
import time

import numpy as np

METHODS = ("scratch_default", "scratch", "probe", "finetune")


def subset_list(footage, shots, seed, out):
    """A `path,label` CSV of `shots` training clips per class (every one for "all")."""
    rng = np.random.default_rng(seed)
    rows = []
    train = os.path.join(footage, "train")
    for label in sorted(os.listdir(train)):
        names = sorted(os.listdir(os.path.join(train, label)))
        if shots != "all":
            names = [names[i] for i in sorted(rng.choice(len(names), int(shots), replace=False))]
        rows += [(os.path.abspath(os.path.join(train, label, name)), label) for name in names]
    with open(out, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return out


def run_one(method, data, test_dir, run_dir, preset, args, seed):
    from vlm_tf.inference import load_run
    from vlm_tf.models.presets import describe_init
    from vlm_tf.tasks.options import ClassifyOptions
    from vlm_tf.training import RunConfig, train

    about = describe_init(preset)
    model = "cnn_lstm" if method == "scratch_default" else about["model_name"]
    options = ClassifyOptions(
        init=preset if method in ("probe", "finetune") else None,
        linear_probe=method == "probe",
    )
    config = RunConfig(
        model=model,
        epochs=args.epochs,
        # A backbone for any clip length gets the default one.
        num_frames=about["num_frames"] or RunConfig().num_frames,
        image_size=about["image_size"][0],
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        seed=seed,
        precision="float32",
        jit="off",
        options=options,
    )
    result_path = os.path.join(run_dir, "transfer_result.json")
    if os.path.isfile(result_path):
        # A run an interrupted benchmark finished: its figures stand.
        with open(result_path) as f:
            return json.load(f)
    start = time.perf_counter()
    train(data, run_dir, config, verbose=0, cache=os.path.join(args.work, "cache"))
    seconds = time.perf_counter() - start
    run = load_run(run_dir)
    result = {
        "accuracy": float(run.task_object().evaluate(run, test_dir)["accuracy"]),
        "seconds": seconds,
    }
    with open(result_path, "w") as f:
        json.dump(result, f)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="a preset name, folder or run (--init)")
    parser.add_argument("--work", default="transfer-work", help="footage, cache and runs")
    parser.add_argument("--shots", default="2,4,8,16,all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--learning-rate", type=float, help="every run's (default: the model's recipe)"
    )
    parser.add_argument("--warmup-epochs", type=int, help="every run's (default: the recipe's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")

    from vlm_tf.data.footage import write_camera_footage

    footage = os.path.join(args.work, "footage")
    if not os.path.isdir(os.path.join(footage, "test")):
        write_camera_footage(footage)
    preset_tag = os.path.basename(os.path.normpath(args.preset))
    results = []
    for shots in args.shots.split(","):
        for seed in range(args.seeds):
            data = subset_list(footage, shots, seed, os.path.join(args.work, f"{shots}-{seed}.csv"))
            for method in methods:
                # Runs from scratch serve any preset; the others are the preset's own.
                owner = "scratch" if method.startswith("scratch") else preset_tag
                if args.learning_rate is not None or args.warmup_epochs is not None:
                    owner += f"-lr{args.learning_rate}-warmup{args.warmup_epochs}"
                run_dir = os.path.join(args.work, "runs", owner, f"{shots}-{seed}-{method}")
                done = run_one(
                    method, data, os.path.join(footage, "test"), run_dir, args.preset, args, seed
                )
                results.append({"shots": shots, "seed": seed, "method": method, **done})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(f"test accuracy, mean ± sd over {args.seeds} seeds (seconds per run); 4 classes")
    print(f"{'clips/class':>11}  " + "  ".join(f"{method:>22}" for method in methods))
    for shots in args.shots.split(","):
        cells = []
        for method in methods:
            rows = [r for r in results if r["shots"] == shots and r["method"] == method]
            accuracies = [r["accuracy"] for r in rows]
            spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
            seconds = statistics.mean(r["seconds"] for r in rows)
            cells.append(f"{statistics.mean(accuracies):.2f} ± {spread:.2f} ({seconds:4.0f} s)")
        print(f"{shots:>11}  " + "  ".join(f"{cell:>22}" for cell in cells))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
