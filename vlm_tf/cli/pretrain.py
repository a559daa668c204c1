"""`vlm-tf pretrain` and `presets`: backbones learnt from unlabeled videos, and those shipped.

docs/transfer.md says how the shipped preset was made and what it is worth.
"""

from __future__ import annotations

import json
import os
import sys

from vlm_tf.cli.common import CommandError, number_type, say
from vlm_tf.cli.train import add_training_options, run_config, train_run
from vlm_tf.tasks.options import PRETRAIN_ENCODERS, PRETRAIN_METHODS, PretrainOptions
from vlm_tf.training.config import RunConfig


def cmd_pretrain(args):
    if not os.path.isdir(args.data_dir):
        raise CommandError(f"{args.data_dir}: no such folder (expected a folder of videos)")
    options = PretrainOptions(
        encoder=args.model or PRETRAIN_ENCODERS[args.method], mask_ratio=args.mask_ratio
    )
    verbose = 0 if args.quiet else 2 if not sys.stdout.isatty() else 1
    train_run(
        args.data_dir,
        args.out,
        run_config(args, model=PRETRAIN_METHODS[args.method], options=options),
        verbose,
        cache=args.cache,
        strategy="default",
    )
    say(f"backbone preset: vlm-tf export {args.out} --format preset, then train --init it")


def cmd_presets(args):
    from vlm_tf.models.presets import preset_rows

    rows = preset_rows()
    if args.json:
        say(json.dumps(rows))
        return
    if not rows:
        say("no presets are installed with this vlm_tf")
        return
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        if row["kind"] == "restorer":
            shape = f"{row['num_frames']} frames of any size"
        else:
            height, side = row["image_size"]
            shape = f"{row['num_frames'] or 'any'} frames of {height}x{side}"
        say(
            f"  {row['name']:<{width}}  {row['kind']} {row['backbone']}, {shape}, "
            f"{row['parameter_count'] or 0:,} params; {row['description']}"
        )
    say(
        "start training from one with `vlm-tf train DATA --init NAME`; restore a video with "
        "`vlm-tf apply --preset NAME VIDEO --out FILE` (docs/transfer.md)"
    )


def _add_pretrain(commands, defaults):
    fields = PretrainOptions.__dataclass_fields__
    p = commands.add_parser(
        "pretrain",
        help="pretrain a backbone on unlabeled videos (masked modelling, camera-motion prediction)",
        description=(
            "Self-supervised pretraining on every video under DATA_DIR, at any depth (labels, "
            "class folders and list files ignored; DATA_DIR/train and DATA_DIR/val when both "
            "exist, else 20 % held out for the validation loss). `vlm-tf make-data OUT --task "
            "pretrain` writes a corpus. Resumes like train; RUN_DIR/model.keras is the backbone, "
            "`vlm-tf export RUN_DIR --format preset` its preset (docs/transfer.md)."
        ),
    )
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument(
        "--method",
        choices=list(PRETRAIN_METHODS),
        default="masked",
        help="masked: VideoMAE's tube masking and pixel reconstruction; motion: tell the camera "
        "move (shift, zoom, turn) added to each clip (default: %(default)s)",
    )
    p.add_argument(
        "--model",
        choices=fields["encoder"].metadata["choices"],
        metavar="NAME",
        help="the classifier whose backbone is pretrained (default: "
        + ", ".join(f"{model} for {method}" for method, model in PRETRAIN_ENCODERS.items())
        + "; masked modelling takes a tubelet transformer)",
    )
    p.add_argument(
        "--mask-ratio",
        type=number_type(float, lambda v: 0 < v < 1, "a number between 0 and 1"),
        default=fields["mask_ratio"].default,
        help="the share of each clip's patches hidden (default: %(default)s)",
    )
    add_training_options(p, defaults)
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.add_argument(
        "--cache",
        metavar="memory|DIR",
        help="decode each video once and keep it in memory or as .npy files in DIR",
    )
    p.set_defaults(func=cmd_pretrain)


def _add_presets(commands):
    p = commands.add_parser(
        "presets",
        help="the pretrained backbones and restorers installed with vlm_tf, most useful first",
        description="The presets shipped in the package: backbones (`train --init NAME` puts a "
        "new head on one, `--task detect` a detector) and restorers (`apply --preset NAME` "
        "restores a video; `train --init NAME` fine-tunes one); docs/transfer.md says how each "
        "was made.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON list: name, kind (backbone or restorer), backbone, num_frames, "
        "image_size (null: any), feature_size (backbones), task and scale (restorers), "
        "parameter_count, pretrained_on, description, path",
    )
    p.set_defaults(func=cmd_presets)


def add_commands(commands):
    _add_pretrain(commands, RunConfig())
    _add_presets(commands)
