"""The `vlm-tf` command: thin wrappers over vlm_tf's modules.

TensorFlow is imported only by the sub-command that needs it, so `--help`
and argument errors answer at once. Every expected failure (bad argument,
missing file, unreadable video, a folder that would be overwritten) ends in
one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vlm_tf.data import synthetic
from vlm_tf.models.registry import DEFAULT_MODEL, MODELS
from vlm_tf.training.config import JIT_MODES, LOG_DIR, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, SAVED_MODEL_DIR, RunConfig

DATA_DEFAULTS = {
    "videos_per_class": synthetic.DEFAULT_VIDEOS_PER_CLASS,
    "frames": synthetic.DEFAULT_NUM_FRAMES,
    "size": synthetic.DEFAULT_SIZE,
    "seed": 0,
}
QUICKSTART_DIR = "vlm_tf_quickstart"
EXIT_ERROR = 1


class CommandError(Exception):
    """An expected failure, reported as one line."""


def _number_type(kind, accepts, wanted):
    """An argparse `type`: `text` as `kind`, refused with `expected <wanted>` unless `accepts(value)`."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, received {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, received {text!r}")
        return value

    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number_type(int, lambda v: v >= 0, "an integer of 0 or more")
_positive_float = _number_type(float, lambda v: v > 0, "a positive number")
_non_negative_float = _number_type(float, lambda v: v >= 0, "a number of 0 or more")


def _say(*parts):
    print(*parts, flush=True)


# --- make-data -------------------------------------------------------------------


def _make_data(out_dir, *, videos_per_class, frames, size, seed):
    from vlm_tf.data.synthetic import write_dataset

    interactive = sys.stderr.isatty()

    def progress(done, total):
        # One line rewritten in a terminal; a line per quarter in a log file.
        if interactive and (done == total or done % 40 == 0):
            print(f"\r  wrote {done}/{total} videos", end="\n" if done == total else "", file=sys.stderr, flush=True)
        elif not interactive and done % max(1, total // 4) == 0:
            print(f"  wrote {done}/{total} videos", file=sys.stderr, flush=True)

    manifest = write_dataset(out_dir, videos_per_class=videos_per_class, num_frames=frames, size=size, seed=seed, progress=progress)
    _say(f"dataset: {out_dir} ({len(manifest['classes'])} classes, splits {manifest['splits']} videos per class)")
    return manifest


def cmd_make_data(args):
    _make_data(args.out_dir, videos_per_class=args.videos_per_class, frames=args.frames, size=args.size, seed=args.seed)


# --- train -----------------------------------------------------------------------


def _run_config(args):
    return RunConfig(
        model=args.model,
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
        augment=not args.no_augment,
        precision=args.precision,
        jit=args.jit,
    )


def _train(data_dir, run_dir, config, verbose):
    from vlm_tf.training import train

    result = train(data_dir, run_dir, config, verbose=verbose)
    for item in result.skipped:
        _say(f"  skipped {item['path']}: {item['reason']}")
    _say(f"{'resumed and finished' if result.resumed else 'finished'}: best validation accuracy {result.best_val_accuracy:.3f}")
    _say(f"model: {result.model_path}")
    _say(f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, LOG_DIR)}")
    return result


def cmd_train(args):
    _train(args.data_dir, args.out, _run_config(args), verbose=0 if args.quiet else 2 if not sys.stdout.isatty() else 1)


# --- evaluate / predict ----------------------------------------------------------------


def _print_evaluation(report):
    _say(f"accuracy {report['accuracy']:.3f} on {report['num_videos']} videos")
    width = max(len(name) for name in report["class_names"])
    for name, entry in report["per_class"].items():
        accuracy = "   -  " if entry["accuracy"] is None else f"{entry['accuracy']:.3f}"
        _say(f"  {name:<{width}}  {accuracy}  ({entry['num_videos']} videos)")
    _say("confusion matrix (rows: true class, columns: predicted, in the order above):")
    for row in report["confusion_matrix"]:
        _say("  " + " ".join(f"{v:4d}" for v in row))
    for item in report["skipped"]:
        _say(f"skipped {item['path']}: {item['reason']}")


def cmd_evaluate(args):
    from vlm_tf.inference import evaluate_directory, load_run

    report = evaluate_directory(load_run(args.run_dir), args.data_dir, strict=args.strict)
    if args.json:
        _say(json.dumps(report))
    else:
        _print_evaluation(report)


def cmd_predict(args):
    from vlm_tf.inference import load_run, predict_videos

    results = predict_videos(load_run(args.run_dir), args.videos, top=args.top)
    if args.json:
        _say(json.dumps(results))
    else:
        for result in results:
            if "error" in result:
                _say(f"{result['path']}: unreadable ({result['error']})")
            else:
                ranked = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in result["top"])
                _say(f"{result['path']}: {result['label']}  ({ranked})")
    if any("error" in result for result in results):
        raise CommandError(f"{sum('error' in r for r in results)} of {len(results)} videos could not be read")


# --- export ----------------------------------------------------------------------


def _export(run_dir, out):
    from vlm_tf.export import export_saved_model
    from vlm_tf.inference import load_run

    out = out or os.path.join(run_dir, SAVED_MODEL_DIR)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise CommandError(f"{out} already exists; choose another --out or remove it")
    run = load_run(run_dir)
    export_saved_model(run.model, out, class_names=run.class_names)
    _say(f"SavedModel: {out} (serving_default takes uint8 frames (batch, time, {run.config.image_size}, {run.config.image_size}, 3))")
    return out


def cmd_export(args):
    _export(args.run_dir, args.out)


# --- compare / models -----------------------------------------------------------


def _model_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(unknown) or repr(text)}; registered models: {', '.join(MODELS)}")
    return names


def cmd_compare(args):
    from vlm_tf.training.compare import compare_models, format_table

    config = _run_config(argparse.Namespace(**{**vars(args), "model": args.models[0]}))
    rows = compare_models(args.data_dir, args.out, args.models, config, progress=None if args.json else _say)
    _say(json.dumps(rows) if args.json else "\n" + format_table(rows))


def cmd_models(args):
    from vlm_tf.models import build_model
    from vlm_tf.models.flops import count_flops

    rows = []
    for name, spec in MODELS.items():
        model = build_model(name, num_classes=8, image_size=(args.size, args.size))
        rows.append({"model": name, "params": model.count_params(), "gflops_per_clip": count_flops(model, num_frames=args.frames) / 1e9, "description": spec.description})
    if args.json:
        _say(json.dumps(rows))
        return
    _say(f"8 classes, clips of {args.frames} frames of {args.size}x{args.size}; FLOPs of one forward pass (training costs about 3x)")
    width = max(len(row["model"]) for row in rows)
    for row in rows:
        _say(f"  {row['model']:<{width}}  {row['params']:>11,} params  {row['gflops_per_clip']:7.3f} GFLOPs/clip")


# --- quickstart ------------------------------------------------------------------


def cmd_quickstart(args):
    from vlm_tf.inference import evaluate_directory, load_run
    from vlm_tf.training.config import MODEL_FILE

    data_dir = os.path.join(args.out, "data")
    run_dir = os.path.join(args.out, "run")
    _say(f"[1/4] making the synthetic dataset in {data_dir}")
    _make_data(data_dir, videos_per_class=args.videos_per_class, frames=DATA_DEFAULTS["frames"], size=DATA_DEFAULTS["size"], seed=DATA_DEFAULTS["seed"])
    config = RunConfig(epochs=args.epochs)
    if os.path.isfile(os.path.join(run_dir, MODEL_FILE)):
        _say(f"[2/4] {run_dir} already holds a finished run; using it")
    else:
        _say(f"[2/4] training {config.model} for {config.epochs} epochs into {run_dir}")
        _train(data_dir, run_dir, config, verbose=2)
    _say(f"[3/4] evaluating on {os.path.join(data_dir, 'test')}")
    report = evaluate_directory(load_run(run_dir), os.path.join(data_dir, "test"))
    _print_evaluation(report)
    saved_model = os.path.join(run_dir, SAVED_MODEL_DIR)
    _say("[4/4] exporting")
    if os.path.isdir(saved_model) and os.listdir(saved_model):
        _say(f"SavedModel: {saved_model} (already exported)")
    else:
        _export(run_dir, saved_model)
    _say("")
    _say(f"test accuracy: {report['accuracy']:.3f} on {report['num_videos']} videos")
    _say(f"TensorBoard:   tensorboard --logdir {os.path.join(run_dir, LOG_DIR)}")
    _say(f"SavedModel:    {saved_model}")
    _say(f"Keras model:   {os.path.join(run_dir, MODEL_FILE)}")


# --- parser ----------------------------------------------------------------------


def _add_training_options(p, defaults):
    """The `RunConfig` options `train` and `compare` share (all but the model)."""
    p.add_argument("--epochs", type=_positive_int, default=defaults.epochs, help="(default: %(default)s)")
    p.add_argument("--frames", type=_positive_int, default=defaults.num_frames, help="frames per clip (default: %(default)s)")
    p.add_argument("--size", type=_positive_int, default=defaults.image_size, help="frame size in pixels (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size, help="(default: %(default)s)")
    # The optimizer options default to the model's recipe (RunConfig.resolved).
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="(default: the model's recipe; adam, the text's, unless the model says otherwise)")
    p.add_argument("--learning-rate", type=_positive_float, help="peak learning rate (default: the model's recipe; 1e-3, the text's, unless the model says otherwise)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule, help="cosine decay over the run, or the text's constant rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=_non_negative_float, help="decoupled weight decay, adamw only (default: the model's recipe)")
    p.add_argument("--warmup-epochs", type=_non_negative_int, help="epochs of linear learning-rate warmup, at most half the run (default: the model's recipe; 0 unless the model says otherwise)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="(default: %(default)s)")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision, help="float32, mixed_float16, mixed_bfloat16, or mixed (float16 on GPU, bfloat16 on CPU) (default: %(default)s)")
    p.add_argument("--jit", choices=JIT_MODES, default=defaults.jit, help="XLA compilation (default: %(default)s)")


def build_parser():
    defaults = RunConfig()
    parser = argparse.ArgumentParser(prog="vlm-tf", description="Video classification with the text's CNN-LSTM: data, training, evaluation, export.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('vlm_tf').__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("make-data", help="write the synthetic motion dataset as real video files",
                            description="Write OUT_DIR/{train,val,test}/<class>/<name>.mp4 plus a box file per video.")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--videos-per-class", type=_positive_int, default=DATA_DEFAULTS["videos_per_class"], help="videos per class over all splits, 70/15/15 (default: %(default)s)")
    p.add_argument("--frames", type=_positive_int, default=DATA_DEFAULTS["frames"], help="frames per video (default: %(default)s)")
    p.add_argument("--size", type=_positive_int, default=DATA_DEFAULTS["size"], help="frame height and width in pixels (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DATA_DEFAULTS["seed"], help="dataset seed (default: %(default)s)")
    p.set_defaults(func=cmd_make_data)

    width = max(len(name) for name in MODELS) + 2
    models = "\n".join(f"  {name:<{width}}{spec.description}" for name, spec in MODELS.items())
    p = commands.add_parser("train", help="train a model on DATA_DIR/train (validated on DATA_DIR/val, else on 20%% of train)",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Train on DATA_DIR/train/<class>/<video>, validate on DATA_DIR/val (else on 20% of train; DATA_DIR/test is never used).\n\nmodels:\n" + models)
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: config, checkpoints, model, class names, TensorBoard logs")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=list(MODELS), metavar="NAME", help=f"one of: {', '.join(MODELS)} (default: %(default)s)")
    _add_training_options(p, defaults)
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix on DATA_DIR/<class>/<video>")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable file instead of skipping it")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("predict", help="label and probabilities for each VIDEO")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument("--top", type=_positive_int, default=3, help="classes listed per video (default: %(default)s)")
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser("export", help="write a SavedModel taking uint8 RGB frames")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=["saved_model"], default="saved_model", help="(default: %(default)s)")
    p.add_argument("--out", metavar="PATH", help=f"(default: RUN_DIR/{SAVED_MODEL_DIR})")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("compare", help="train several models on the same data, budget and seed; print one table",
                            description="Train each model like `vlm-tf train` into OUT_DIR/<model>, score it on DATA_DIR/test, and print test accuracy, "
                                        "parameters, FLOPs per clip and training clips/s. Rerun the same command to continue a stopped comparison.")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="one run folder per model, plus comparison.json")
    p.add_argument("--models", type=_model_list, default=list(MODELS), metavar="A,B,...", help="comma-separated registered models (default: all of them)")
    _add_training_options(p, defaults)
    p.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    p.set_defaults(func=cmd_compare)

    p = commands.add_parser("models", help="the registered models with their parameters and FLOPs per clip")
    p.add_argument("--frames", type=_positive_int, default=defaults.num_frames, help="frames per clip (default: %(default)s)")
    p.add_argument("--size", type=_positive_int, default=defaults.image_size, help="frame size in pixels (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_models)

    p = commands.add_parser("quickstart", help="make-data + train + evaluate + export, about 10 minutes on 2 CPU cores")
    p.add_argument("--out", default=QUICKSTART_DIR, metavar="DIR", help="(default: ./%(default)s)")
    p.add_argument("--videos-per-class", type=_positive_int, default=DATA_DEFAULTS["videos_per_class"], help="(default: %(default)s)")
    p.add_argument("--epochs", type=_positive_int, default=defaults.epochs, help="(default: %(default)s)")
    p.set_defaults(func=cmd_quickstart)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # Quiet TensorFlow's C++ start-up chatter before the first import.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("vlm-tf: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, OSError) as error:
        print(f"vlm-tf: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:
        import tensorflow as tf

        if isinstance(error, tf.errors.OpError):
            print(f"vlm-tf: error: {_one_line(error.message)}", file=sys.stderr)
            return EXIT_ERROR
        raise
    return 0


def _one_line(error):
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
