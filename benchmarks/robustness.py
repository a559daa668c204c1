"""Robust training measured: accuracy clean and under corruption, `--augment standard` against
`--augment robust`.

    python benchmarks/robustness.py [--work robustness-work] [--seeds 2] [--json]

On two datasets, each trained both ways with the same seeds and scored by
`vlm-tf evaluate --corruptions` (every corruption at severities 1-5, the
corruptions' seed 0) on its test split:

    quickstart  the synthetic motion set `vlm-tf make-data` writes (8 classes, 144 test
                videos), the default model trained as `vlm-tf train` trains it (30 epochs)
    footage     the camera-motion footage of docs/transfer.md (4 classes, 160 training and
                80 test clips), the shipped backbone fine-tuned as benchmarks/transfer.py
                does with every clip (`--init cnn_lstm_motion`, 20 epochs, float32)

It prints, per dataset, clean and mean corruption accuracy (mean ± sd over
the seeds) for both, the robust run's gain, and each corruption's accuracy
(the mean over severities and seeds). Every finished run keeps its scores in
`robustness_result.json`, so an interrupted benchmark continues where it
stopped (a run folder already holding `model.keras` is scored, not trained again).
"""

import argparse
import json
import os
import statistics
import sys

DATASETS = ("quickstart", "footage")
AUGMENTS = {"standard": True, "robust": "robust"}


def prepare(work):
    from vlm_tf.data.footage import write_camera_footage
    from vlm_tf.data.synthetic import write_dataset

    quickstart, footage = os.path.join(work, "quickstart"), os.path.join(work, "footage")
    write_dataset(quickstart)
    if not os.path.isdir(os.path.join(footage, "test")):
        write_camera_footage(footage)
    return {
        "quickstart": (quickstart, os.path.join(quickstart, "test")),
        # Validation is taken from train/, as a user with train/ and test/ folders would.
        "footage": (footage, os.path.join(footage, "test")),
    }


def config_for(dataset, augment, seed):
    from vlm_tf.tasks.options import ClassifyOptions
    from vlm_tf.training import RunConfig

    if dataset == "quickstart":
        return RunConfig(seed=seed, augment=AUGMENTS[augment])
    return RunConfig(
        epochs=20,
        seed=seed,
        augment=AUGMENTS[augment],
        precision="float32",
        jit="off",
        options=ClassifyOptions(init="cnn_lstm_motion"),
    )


def run_one(dataset, augment, seed, data, test, work):
    from vlm_tf.inference import evaluate_corruptions, load_run
    from vlm_tf.training import train

    run_dir = os.path.join(work, "runs", f"{dataset}-{seed}-{augment}")
    result_path = os.path.join(run_dir, "robustness_result.json")
    if os.path.isfile(result_path):
        with open(result_path) as f:
            return json.load(f)
    if not os.path.isfile(os.path.join(run_dir, "model.keras")):
        train(data, run_dir, config_for(dataset, augment, seed), verbose=0)
    result = evaluate_corruptions(load_run(run_dir), test).to_dict()
    with open(result_path, "w") as f:
        json.dump(result, f)
    return result


def _mean_sd(values):
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="robustness-work", help="data and runs")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--json", action="store_true", help="print every run's report too")
    args = parser.parse_args()
    sources = prepare(args.work)
    results = []
    for dataset in args.datasets.split(","):
        for seed in range(args.seeds):
            for augment in AUGMENTS:
                done = run_one(dataset, augment, seed, *sources[dataset], args.work)
                # The report's own `seed` is the corruptions': kept as `corruption_seed`, and `seed`
                # is the run's training seed.
                results.append(
                    {
                        **done,
                        "dataset": dataset,
                        "augment": augment,
                        "seed": seed,
                        "corruption_seed": done["seed"],
                    }
                )
                summary = {k: done[k] for k in ("clean_accuracy", "mean_corruption_accuracy")}
                print(json.dumps({"dataset": dataset, "augment": augment, "seed": seed, **summary}),
                      file=sys.stderr, flush=True)  # fmt: skip
    for dataset in args.datasets.split(","):
        rows = {a: [r for r in results if r["dataset"] == dataset and r["augment"] == a]
                for a in AUGMENTS}  # fmt: skip
        print(f"\n{dataset}: {len(rows['standard'])} seed(s), "
              f"{rows['standard'][0]['num_videos']} test videos")  # fmt: skip
        print(f"  {'augment':<9}  {'clean':>13}  {'mean corruption':>15}")
        for augment, runs in rows.items():
            clean = _mean_sd([r["clean_accuracy"] for r in runs])
            mean = _mean_sd([r["mean_corruption_accuracy"] for r in runs])
            print(f"  {augment:<9}  {clean:>13}  {mean:>15}")
        gains = {
            key: [r[key] - s[key] for r, s in zip(rows["robust"], rows["standard"])]
            for key in ("clean_accuracy", "mean_corruption_accuracy")
        }
        print(f"  robust - standard: clean {_mean_sd(gains['clean_accuracy'])}, "
              f"mean corruption {_mean_sd(gains['mean_corruption_accuracy'])}")  # fmt: skip
        print(f"  {'corruption':<16}  standard  robust  (mean over severities and seeds)")
        for name in rows["standard"][0]["corruptions"]:
            cells = [
                statistics.mean(
                    statistics.mean(r["corruptions"][name].values()) for r in rows[augment]
                )
                for augment in AUGMENTS
            ]
            print(f"  {name:<16}  {cells[0]:8.3f}  {cells[1]:6.3f}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
