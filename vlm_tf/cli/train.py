"""`vlm-tf train`, `compare` and `models`: training runs, side by side, and the registry.

The options every training run takes are added here (`add_training_options`), `pretrain`'s too.

`train`'s task options (`--scale`, `--gan-loss`, ...) come from the tasks
themselves (`vlm_tf.tasks.option_fields`); the command only turns them
into the run's `RunConfig.options`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vlm_tf.cli.common import (
    CommandError,
    name_list,
    non_negative_float,
    non_negative_int,
    number_type,
    positive_float,
    positive_int,
    say,
    tensorboard_line,
)
from vlm_tf.cli.data import add_split_option, data_argument, refuse_unfinished_dataset
from vlm_tf.models.registry import (
    DEFAULT_MODEL,
    MODELS,
    default_model,
    get_model_spec,
    model_names,
    model_on_backbone,
)
from vlm_tf.tasks import TASKS, option_fields, task_of_model
from vlm_tf.training.config import (
    JIT_MODES,
    LOG_DIR,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    RECIPE_DEFAULTS,
    STRATEGIES,
    RunConfig,
)

# `--augment` → `RunConfig.augment` (`vlm_tf.data.corruptions.AUGMENTATIONS`).
AUGMENT_CHOICES = {"standard": True, "robust": "robust", "none": False}


def run_config(args, *, model, options=None):
    """The `RunConfig` of the shared training options in `args`."""
    if args.no_augment and args.augment != "standard":
        raise CommandError(f"--no-augment and --augment {args.augment} contradict; give one")
    return RunConfig(
        model=model,
        epochs=args.epochs,
        num_frames=args.frames,
        image_size=args.size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        seed=args.seed,
        augment=False if args.no_augment else AUGMENT_CHOICES[args.augment],
        precision=args.precision,
        jit=args.jit,
        deterministic=args.deterministic,
        options=options,
    )


def train_run(data_dir, run_dir, config, verbose, **extras):
    """Trains and prints what became of it: skipped files, the outcome, the model and
    TensorBoard.
    """
    from vlm_tf.tasks.privacy import privacy_line
    from vlm_tf.training import train

    result = train(data_dir, run_dir, config, verbose=verbose, **extras)
    for item in result.skipped:
        say(f"  skipped {item['path']}: {item['reason']}")
    say(f"{'resumed and finished' if result.resumed else 'finished'}: {result.outcome}")
    say(f"training {result.energy.line()}")
    privacy = privacy_line(run_dir)
    if privacy is not None:
        say(privacy)
    say(f"model: {result.model_path}")
    say(tensorboard_line(os.path.join(run_dir, LOG_DIR)))
    return result


def model_for_task(model, task):
    """`--model` and `--task` → the model to train: the task's default when no model is named."""
    if model is None:
        return default_model(task or "classify")
    if task is not None and get_model_spec(model).task != task:
        raise CommandError(
            f"--model {model} is a {get_model_spec(model).task} model, not {task}; {task} models: "
            f"{', '.join(model_names(task))}"
        )
    return model


def cmd_train(args):
    # The checks that need no TensorFlow come before its import (seconds).
    args.data_dir = data_argument(args.data_dir, args.split, "train")
    if not args.allow_incomplete:
        refuse_unfinished_dataset(args.data_dir)
    if args.init is not None:
        _take_defaults_from_init(args)
    args.frames = args.frames or RunConfig().num_frames
    model = model_for_task(args.model, args.task)
    options_class = task_of_model(model).options
    options = options_class(
        **{
            field.name: getattr(args, field.name)
            for field, _ in option_fields()
            if field.name in options_class.__dataclass_fields__
        }
    )
    verbose = 0 if args.quiet else 2 if not sys.stdout.isatty() else 1
    train_run(
        args.data_dir,
        args.out,
        run_config(args, model=model, options=options),
        verbose,
        profile=args.profile,
        cache=args.cache,
        strategy=args.strategy,
        strict=args.strict,
        data_service=args.data_service,
    )
    if args.profile:
        say(
            f"profiler trace: {os.path.join(args.out, LOG_DIR, 'profile')} (TensorBoard's Profile "
            "tab; pip install tensorboard-plugin-profile)"
        )


def _take_defaults_from_init(args):
    """`--model`, `--size` and `--frames` not given: the `--init` backbone's."""
    from vlm_tf.models.presets import describe_init

    try:
        about = describe_init(args.init)
    except (ValueError, OSError) as error:
        raise CommandError(f"--init {error}") from None
    # A detector is built on the backbone; the other tasks train the source's own model.
    on_it = model_on_backbone(args.task or "classify", about["model_name"])
    args.model = args.model or on_it or about["model_name"]
    args.size = args.size or about["image_size"][0]
    args.frames = args.frames or about["num_frames"]


model_list = name_list("classifier", model_names)


def cmd_compare(args):
    from vlm_tf.compare import compare_models, format_table

    train_data = data_argument(args.data_dir, args.split, "train")
    test_data = data_argument(args.data_dir, args.split, "test")
    rows = compare_models(
        train_data,
        args.out,
        args.models,
        run_config(args, model=args.models[0]),
        progress=None if args.json else say,
        # A UCF101-style folder's split has a list of each; other data holds its test part.
        test_data=None if test_data == train_data else test_data,
    )
    say(json.dumps(rows) if args.json else "\n" + format_table(rows))


def cmd_models(args):
    from vlm_tf.models import build_model
    from vlm_tf.models.flops import count_flops

    rows = []
    for name in model_names():
        model = build_model(name, num_classes=8, image_size=(args.size, args.size))
        rows.append(
            {
                "model": name,
                "params": model.count_params(),
                "gflops_per_clip": count_flops(model, num_frames=args.frames) / 1e9,
                "description": MODELS[name].description,
            }
        )
    if args.json:
        say(json.dumps(rows))
        return
    say(
        f"8 classes, clips of {args.frames} frames of {args.size}x{args.size}; FLOPs of one "
        "forward pass (training costs about 3x)"
    )
    width = max(len(row["model"]) for row in rows)
    for row in rows:
        say(
            f"  {row['model']:<{width}}  {row['params']:>11,} params  "
            f"{row['gflops_per_clip']:7.3f} GFLOPs/clip"
        )


def add_training_options(p, defaults, *, init=False):
    """The `RunConfig` options `train`, `pretrain` and `compare` share (all but the model); with
    `init`, `--frames` and `--size` left unset (None) default to the `--init` backbone's.
    """
    p.add_argument(
        "--epochs", type=positive_int, default=defaults.epochs, help="(default: %(default)s)"
    )
    p.add_argument(
        "--frames",
        type=positive_int,
        default=None if init else defaults.num_frames,
        help=f"frames per clip (default: {defaults.num_frames}"
        + (", or the --init backbone's clip length)" if init else ")"),
    )
    p.add_argument(
        "--size",
        type=positive_int,
        help=(
            f"frame size in pixels (default: the model's recipe; {RECIPE_DEFAULTS['image_size']} "
            "unless the model says otherwise" + ("; or the --init backbone's)" if init else ")")
        ),
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults.batch_size,
        help="(default: %(default)s)",
    )
    # The optimizer options default to the model's recipe (RunConfig.resolved).
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help="(default: the model's recipe; adam, the text's, unless the model says otherwise)",
    )
    p.add_argument(
        "--learning-rate",
        type=positive_float,
        help=(
            "peak learning rate (default: the model's recipe; 1e-3, the text's, unless the model "
            "says otherwise)"
        ),
    )
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=defaults.lr_schedule,
        help="cosine decay over the run, or the text's constant rate (default: %(default)s)",
    )
    p.add_argument(
        "--weight-decay",
        type=non_negative_float,
        help="decoupled weight decay, adamw only (default: the model's recipe)",
    )
    p.add_argument(
        "--warmup-epochs",
        type=non_negative_int,
        help=(
            "epochs of linear learning-rate warmup, at most half the run (default: the model's "
            "recipe; 0 unless the model says otherwise)"
        ),
    )
    p.add_argument("--seed", type=int, default=defaults.seed, help="(default: %(default)s)")
    p.add_argument(
        "--augment",
        choices=list(AUGMENT_CHOICES),
        default="standard",
        help=(
            "standard: random crops and colour (and the mirrors and reversals dataset.json "
            "allows); robust: those, then corruptions (noise, blur, JPEG, light, haze, "
            "pixelation or stutter) at random strengths, for footage from real cameras and links: "
            "a classifier also learns to answer a clip and two corrupted copies alike "
            "(--consistency; docs/robustness.md); none: as --no-augment (default: standard)"
        ),
    )
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    add_execution_options(p, defaults)


def add_execution_options(p, defaults):
    """How a run computes, not what it learns: determinism, precision, XLA."""
    p.add_argument(
        "--deterministic",
        action="store_true",
        help=(
            "TensorFlow's deterministic ops: the same seed gives the same weights, and a run "
            "killed and resumed ends as one that was not (slower)"
        ),
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults.precision,
        help=(
            "auto (by device; on a CPU by a short measurement, remembered), float32, "
            "mixed_float16, mixed_bfloat16, or mixed (float16 on GPU, bfloat16 on CPU) (default: "
            "%(default)s)"
        ),
    )
    p.add_argument(
        "--jit",
        choices=JIT_MODES,
        default=defaults.jit,
        help=(
            "XLA compilation: auto (chosen with --precision auto's measurement on a CPU, Keras' "
            "choice on a GPU), on or off (default: %(default)s)"
        ),
    )


def add_task_options(p):
    """One `--option` per task option field (`vlm_tf.tasks.option_fields`), typed and checked by its
    metadata.
    """
    for field, _ in option_fields():
        metadata = field.metadata
        flag = f"--{field.name.replace('_', '-')}"
        if isinstance(field.default, bool):
            p.add_argument(flag, action="store_true", help=metadata["help"])
            continue
        kind = metadata["kind"] or type(field.default)
        if metadata["minimum"] is not None:
            minimum = metadata["minimum"]
            kind = number_type(
                kind, lambda v, low=minimum: v >= low, f"a number of {minimum:g} or more"
            )
        p.add_argument(
            flag,
            type=kind,
            choices=metadata["choices"],
            metavar=metadata["metavar"],
            default=field.default,
            help=f"{metadata['help']} (default: %(default)s)",
        )


def _add_execution_options(p):
    """How `train` runs, never what it learns: profiling, the decoded-video cache, the strategy."""
    p.add_argument(
        "--profile",
        action="store_true",
        help="write a TensorFlow profiler trace of training steps 3-7 to RUN_DIR/logs/profile",
    )
    p.add_argument(
        "--cache",
        metavar="memory|DIR",
        help=(
            "decode each video once, at the frame size, and keep it in memory or as .npy files in "
            "DIR for later epochs (and later runs); "
            "classify, gan and fusion (default: decode every epoch)"
        ),
    )
    p.add_argument(
        "--data-service",
        metavar="HOST:PORT",
        help=(
            "have the workers of this tf.data service dispatcher (`vlm-tf data-service`) decode "
            "and augment the training clips; classify runs in one process, without --cache"
        ),
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help=(
            "tf.distribute: mirrored (this machine's GPUs, or its CPU), multiworker (one process "
            "per worker, the cluster in TF_CONFIG; docs/distributed.md), "
            "default (one device), or auto: multiworker when TF_CONFIG names a cluster, mirrored "
            "with more than one GPU, else default. --batch-size is the global batch; classify "
            "runs (default: %(default)s)"
        ),
    )


def _add_train(commands, defaults):
    width = max(len(name) for name in MODELS) + 2
    models = "\n".join(f"  {name:<{width}}{spec.description}" for name, spec in MODELS.items())
    tasks = ", ".join(f"{name} ({spec.description})" for name, spec in TASKS.items())
    p = commands.add_parser(
        "train",
        help="train a model on DATA_DIR/train (validated on DATA_DIR/val, else on 20%% of train)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train on DATA_DIR/train/<class>/<video>, validate on DATA_DIR/val (else on 20% of "
            "train; DATA_DIR/test is never used), or on lists: a UCF101-style folder or list, a "
            'Kinetics-style or path,label CSV file (docs/design.md, "Data in lists"). '
            "The restoration tasks take any folder of videos (DATA_DIR/train if there is one) and "
            "degrade them into training pairs.\n\nmodels:\n"
        )
        + models,
    )
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument(
        "--out",
        required=True,
        metavar="RUN_DIR",
        help="run folder: config, checkpoints, model, class names, TensorBoard logs",
    )
    add_split_option(p)
    p.add_argument(
        "--task",
        choices=list(TASKS),
        help=f"what to train: {tasks}; picks the task's default model (docs/design.md)",
    )
    p.add_argument(
        "--model",
        choices=list(MODELS),
        metavar="NAME",
        help=f"one of: {', '.join(MODELS)} (default: {DEFAULT_MODEL}, or the --task's first model)",
    )
    add_training_options(p, defaults, init=True)
    add_task_options(p)
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.add_argument(
        "--strict",
        action="store_true",
        help=(
            "refuse to train, before the first step, if any file would be skipped (an unreadable "
            "video, a DATA_DIR/val class folder without videos, a corrupt --cache file)"
        ),
    )
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help=(
            "train on a dataset whose dataset.json says make-data stopped before the end "
            "(refused by default)"
        ),
    )
    _add_execution_options(p)
    p.set_defaults(func=cmd_train)


def _add_compare(commands, defaults):
    p = commands.add_parser(
        "compare",
        help="train several models on the same data, budget and seed; print one table",
        description=(
            "Train each model like `vlm-tf train` into OUT_DIR/<model>, score it on "
            "DATA_DIR/test, and print test accuracy, "
            "parameters, FLOPs per clip and training clips/s. Rerun the same command to continue a "
            "stopped comparison."
        ),
    )
    p.add_argument("data_dir", metavar="DATA_DIR")
    add_split_option(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT_DIR",
        help="one run folder per model, plus comparison.json",
    )
    p.add_argument(
        "--models",
        type=model_list,
        default=model_names(),
        metavar="A,B,...",
        help="comma-separated registered classifiers (default: all of them)",
    )
    add_training_options(p, defaults)
    p.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    p.set_defaults(func=cmd_compare)


def _add_models(commands, defaults):
    p = commands.add_parser(
        "models", help="the registered classifiers with their parameters and FLOPs per clip"
    )
    p.add_argument(
        "--frames",
        type=positive_int,
        default=defaults.num_frames,
        help="frames per clip (default: %(default)s)",
    )
    p.add_argument(
        "--size",
        type=positive_int,
        default=RECIPE_DEFAULTS["image_size"],
        help="frame size in pixels (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_models)


def add_commands(commands):
    defaults = RunConfig()
    _add_train(commands, defaults)
    _add_compare(commands, defaults)
    _add_models(commands, defaults)
