"""Differential privacy measured: test accuracy against ε on the quickstart data.

    python benchmarks/privacy.py [--work privacy-work] [--noise 0.7,1.0,2.0] [--epochs 30]
        [--size 32] [--frames 8] [--batch-size 32]
    python benchmarks/privacy.py --linear-probe cnn_lstm_motion --size 64 --frames 16
        --learning-rate 0.01 [--noise 0.6,1.0,2.0]

On the synthetic motion set (`vlm-tf make-data`: 672 training clips, 30
epochs) one run without privacy (batch 8, `train`'s default; a linear probe
at `--batch-size`) and one by DP-SGD at each noise multiplier σ and
`--batch-size` (per-clip gradients clipped to L2 norm 1), each scored on the
144 test videos; ε is at δ = 1e-5 after every step (`RUN_DIR/privacy.json`).

By default the whole default model is trained from random weights, its clips
read at 32×32 and 8 frames: DP-SGD computes every clip's gradient on its
own, about ten times the cost of a batch's, and ε depends on the number of
clips, the batch and the steps, not on the clips' size. With
`--linear-probe PRESET` the backbone is the shipped pretrained one, frozen,
and only the new classification layer (520 weights) is trained, privately
or not. A run folder already holding `model.keras` is scored, not trained
again.
"""

import argparse
import json
import os


def run_one(data, work, noise, args):
    from vlm_tf.inference import evaluate_directory, load_run
    from vlm_tf.tasks.options import ClassifyOptions
    from vlm_tf.training import RunConfig, train

    prefix = f"probe-{args.linear_probe}-" if args.linear_probe else ""
    name = prefix + ("none" if noise is None else f"sigma{noise:g}")
    run_dir = os.path.join(work, "runs", name)
    if not os.path.isfile(os.path.join(run_dir, "model.keras")):
        private = {} if noise is None else {"dp_l2_clip": 1.0, "dp_noise_multiplier": noise}
        probe = {"init": args.linear_probe, "linear_probe": True} if args.linear_probe else {}
        # A whole model learns best without privacy at train's batch; a probe at the private one.
        batch = args.batch_size if noise is not None or args.linear_probe else None
        config = RunConfig(
            epochs=args.epochs,
            image_size=args.size,
            num_frames=args.frames,
            batch_size=batch or RunConfig().batch_size,
            learning_rate=args.learning_rate,
            options=ClassifyOptions(**private, **probe),
        )
        train(data, run_dir, config, verbose=0)
    accuracy = evaluate_directory(load_run(run_dir), os.path.join(data, "test"))["accuracy"]
    privacy_path = os.path.join(run_dir, "privacy.json")
    epsilon = None
    if os.path.isfile(privacy_path):
        with open(privacy_path) as f:
            epsilon = json.load(f)["epsilon"]
    return {
        "training": f"linear probe on {args.linear_probe}" if args.linear_probe else "whole model",
        "noise_multiplier": noise,
        "epsilon": epsilon,
        "test_accuracy": accuracy,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="privacy-work", help="data and runs")
    parser.add_argument("--noise", default="0.7,1.0,2.0", help="noise multipliers σ")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32, help="the private runs' batch")
    parser.add_argument("--learning-rate", type=float, default=None, help="train's by default")
    parser.add_argument(
        "--linear-probe", metavar="PRESET", help="train only a new head on this frozen backbone"
    )
    args = parser.parse_args()
    from vlm_tf.data.synthetic import write_dataset

    data = os.path.join(args.work, "quickstart")
    write_dataset(data)
    rows = [run_one(data, args.work, None, args)]
    for noise in (float(n) for n in args.noise.split(",")):
        rows.append(run_one(data, args.work, noise, args))
    print("| training | σ | ε at δ = 1e-5 | test accuracy |")
    print("|---|---|---|---|")
    for row in rows:
        sigma = "no privacy" if row["noise_multiplier"] is None else f"{row['noise_multiplier']:g}"
        epsilon = "∞" if row["epsilon"] is None else f"{row['epsilon']:.2f}"
        print(f"| {row['training']} | {sigma} | {epsilon} | {row['test_accuracy']:.3f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
