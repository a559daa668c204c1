"""Detection from a pretrained trunk: the detector on a preset's backbone against from scratch.

    python benchmarks/detect_transfer.py [--preset cnn_lstm_motion] [--videos 40,150] [--seeds 2]

For each size of dataset (`--videos` over all splits, 70/15/15, drawn by
`vlm_tf.data.detection` per seed at 48 px) it trains, as `vlm-tf train
--task detect` does:

    scratch_default  the default detector (detect_cnn_rnn), from random weights
    scratch          the detector built on the preset's backbone (detect_cnn_lstm), from random
                     weights
    init             the same detector, its trunk from the preset (`--init PRESET`)

and prints mAP@0.5, class-agnostic mAP@0.5 and MOTA on the test split
(mean ± sd over the seeds, seconds per run), with background subtraction's
beside them. A run finished before is not run again, so an interrupted
benchmark continues where it stopped.
"""

import argparse
import json
import os
import statistics
import sys
import time

METHODS = ("scratch_default", "scratch", "init")
SCORES = ("map50", "map50_agnostic", "mota")


def run_one(method, data, run_dir, args, seed):
    from vlm_tf.inference import load_run
    from vlm_tf.models.presets import describe_init
    from vlm_tf.models.registry import default_model, model_on_backbone
    from vlm_tf.tasks.options import DetectOptions
    from vlm_tf.training import RunConfig, train

    on_backbone = model_on_backbone("detect", describe_init(args.preset)["model_name"])
    config = RunConfig(
        model=default_model("detect") if method == "scratch_default" else on_backbone,
        epochs=args.epochs,
        num_frames=args.frames,
        image_size=args.size,
        seed=seed,
        precision="float32",
        jit="off",
        options=DetectOptions(init=args.preset if method == "init" else None),
    )
    result_path = os.path.join(run_dir, "transfer_result.json")
    if os.path.isfile(result_path):
        # A run an interrupted benchmark finished: its figures stand.
        with open(result_path) as f:
            return json.load(f)
    start = time.perf_counter()
    train(data, run_dir, config, verbose=0)
    seconds = time.perf_counter() - start
    run = load_run(run_dir)
    report = run.task_object().evaluate(run, os.path.join(data, "test")).to_dict()
    result = {key: float(report[key]) for key in SCORES}
    result["baseline"] = {key: float(report["baseline"][key]) for key in SCORES}
    result["seconds"] = seconds
    with open(result_path, "w") as f:
        json.dump(result, f)
    return result


def cell(values, digits=3):
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cnn_lstm_motion", help="a preset name, folder or run")
    parser.add_argument("--work", default="detect-transfer-work", help="datasets and runs")
    parser.add_argument("--videos", default="40,150", help="dataset sizes, videos over all splits")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")

    from vlm_tf.data.detection import write_detection_dataset

    preset_tag = os.path.basename(os.path.normpath(args.preset))
    results = []
    for videos in [int(n) for n in args.videos.split(",")]:
        for seed in range(args.seeds):
            data = os.path.join(args.work, f"data-{videos}-{seed}")
            if not os.path.isdir(os.path.join(data, "test")):
                write_detection_dataset(
                    data, videos=videos, num_frames=16, size=args.size, seed=100 + seed
                )
            for method in methods:
                owner = preset_tag if method == "init" else "scratch"
                run_dir = os.path.join(args.work, "runs", owner, f"{videos}-{seed}-{method}")
                done = run_one(method, data, run_dir, args, seed)
                results.append({"videos": videos, "seed": seed, "method": method, **done})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(
        f"detection on the test split, mean ± sd over {args.seeds} seeds (seconds per run); "
        f"{args.size} px, {args.epochs} epochs"
    )
    print(f"{'videos':>6}  {'method':<16}  " + "  ".join(f"{key:>15}" for key in SCORES))
    for videos in [int(n) for n in args.videos.split(",")]:
        rows = [r for r in results if r["videos"] == videos]
        for method in methods:
            mine = [r for r in rows if r["method"] == method]
            seconds = statistics.mean(r["seconds"] for r in mine)
            print(
                f"{videos:>6}  {method:<16}  "
                + "  ".join(f"{cell([r[key] for r in mine]):>15}" for key in SCORES)
                + f"  ({seconds:.0f} s)"
            )
        baseline = [r["baseline"] for r in rows if r["method"] == methods[0]]
        print(
            f"{videos:>6}  {'background':<16}  "
            + "  ".join(f"{cell([b[key] for b in baseline]):>15}" for key in SCORES)
        )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
