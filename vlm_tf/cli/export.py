"""`vlm-tf export` and `compress`: a run as a SavedModel or TFLite file, and made smaller."""

from __future__ import annotations

import contextlib
import os

from vlm_tf import atomic, crypto
from vlm_tf.cli.common import CommandError, fraction, positive_float, positive_int, say, unit_float
from vlm_tf.compression import QUANTIZE_MODES
from vlm_tf.models.registry import model_names
from vlm_tf.training.config import PRESET_DIR, SAVED_MODEL_DIR


def export_run(run_dir, out, *, export_format="saved_model", quantize="none", data_dir=None):
    """Writes the run's SavedModel (the task's signature), a classifier's TFLite file or its
    backbone preset; returns its path.
    """
    sealed = crypto.sealed_folder(out or run_dir)
    if sealed is not None:
        raise CommandError(
            f"{sealed} is encrypted, and an export is written in the clear to be served or "
            "shared: name an --out outside it"
        )
    if export_format == "tflite":
        from vlm_tf.compression.quantize import quantize_run

        with _writing_into(run_dir, out):
            path = quantize_run(run_dir, quantize, out=out, data_dir=data_dir)
        say(
            f"TFLite: {path} ({os.path.getsize(path) / 1e6:.2f} MB, quantization {quantize}; "
            "takes uint8 frames (1, time, height, width, 3), returns float32 probabilities)"
        )
        return path
    if quantize != "none" or data_dir is not None:
        raise CommandError("--quantize and --data apply to --format tflite only")
    from vlm_tf.inference import load_run

    out = out or os.path.join(run_dir, PRESET_DIR if export_format == "preset" else SAVED_MODEL_DIR)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise CommandError(f"{out} already exists; choose another --out or remove it")
    run = load_run(run_dir)
    with _writing_into(run_dir, out):
        if export_format == "preset":
            say(f"backbone preset: {out} ({run.task_object().export_preset(run, out)})")
        else:
            say(f"SavedModel: {out} ({run.task_object().export(run, out)})")
    return out


@contextlib.contextmanager
def _writing_into(run_dir, out):
    """Holds the run's lock while an export writes inside the run folder (where `out` is None or
    points); an export elsewhere only reads the run.
    """
    inside = out is None or os.path.commonpath(
        [os.path.abspath(run_dir), os.path.abspath(out)]
    ) == os.path.abspath(run_dir)
    if not inside or not os.path.isdir(run_dir):
        yield
        return
    with atomic.exclusive(run_dir):
        # A killed export's half-written folder is nobody's now.
        atomic.remove_partials(run_dir)
        yield


def cmd_export(args):
    export_run(
        args.run_dir,
        args.out,
        export_format=args.format,
        quantize=args.quantize,
        data_dir=args.data,
    )


def cmd_compress(args):
    if args.method == "quantize":
        if args.quantize == "none":
            raise CommandError("--method quantize needs --quantize float16, dynamic or int8")
        result = export_run(
            args.run_dir,
            args.out,
            export_format="tflite",
            quantize=args.quantize,
            data_dir=args.data,
        )
        compressed = (args.run_dir, args.quantize)
    elif args.method == "prune":
        from vlm_tf.compression.pruning import prune_run

        report = prune_run(
            args.run_dir,
            args.data,
            sparsity=args.sparsity,
            epochs=args.epochs or 2,
            out=args.out,
            verbose=0 if args.quiet else 2,
        )
        result = report["run_dir"]
        say(
            f"pruned to {report['sparsity']:.1%} zeros; validation accuracy "
            f"{report['val_accuracy_before']:.3f} → {report['val_accuracy']:.3f}; "
            f"weights gzip {report['unpruned_gzip_bytes'] / 1e6:.2f} → "
            f"{report['gzip_bytes'] / 1e6:.2f} MB"
        )
        compressed = (result, "none")
    else:
        from vlm_tf.compression.distillation import distill_run

        report = distill_run(
            args.run_dir,
            args.data,
            student_model=args.student,
            epochs=args.epochs,
            temperature=args.temperature,
            alpha=args.alpha,
            out=args.out,
            verbose=0 if args.quiet else 2,
        )
        result = report["run_dir"]
        say(
            f"student {report['student_model']} ({report['student_params']:,} parameters, teacher "
            f"{report['teacher_params']:,}): "
            f"best validation accuracy {report['best_val_accuracy']:.3f}, teacher "
            f"{report['teacher_val_accuracy']:.3f}"
        )
        compressed = (result, "none")
    if args.method != "quantize":
        say(f"run: {result} (compression.json; `vlm-tf evaluate`, `predict`, `export` take it)")
    if args.evaluate:
        from vlm_tf.compression.measure import format_rows, measure_run

        rows = [
            {"name": f"{args.run_dir} (float32 TFLite)", **measure_run(args.run_dir, args.evaluate)}
        ]
        suffix = f" ({compressed[1]})" if compressed[1] != "none" else ""
        rows.append(
            {
                "name": f"{compressed[0]}{suffix}",
                **measure_run(
                    compressed[0], args.evaluate, quantize=compressed[1], calibration_dir=args.data
                ),
            }
        )
        say(f"on {args.evaluate}, each as a TFLite file (latency: one interpreter thread):")
        say(format_rows(rows))


def _add_export(commands):
    p = commands.add_parser(
        "export",
        help=(
            "write a SavedModel taking uint8 RGB frames (a GAN run: noise and label), or a "
            "classifier's TFLite file, optionally quantized"
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--format",
        choices=["saved_model", "tflite", "preset"],
        default="saved_model",
        help=(
            "tflite: classify runs, uint8 frames (1, time, height, width, 3) in, float32 "
            "probabilities out, built-in ops only; preset: a classify run's backbone (the model "
            "without its head) as a folder `train --init` starts from (default: %(default)s)"
        ),
    )
    p.add_argument(
        "--quantize",
        choices=QUANTIZE_MODES,
        default="none",
        help=(
            "tflite: float16 weights, dynamic (int8 weights), or int8 weights and activations "
            "calibrated on the run's training videos (default: %(default)s)"
        ),
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help=(
            "--quantize int8: calibrate on the videos of DIR (its train/ if it has one) instead "
            "of the run's data folder"
        ),
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help=(
            f"(default: RUN_DIR/{SAVED_MODEL_DIR}; preset: RUN_DIR/{PRESET_DIR}; tflite: "
            "RUN_DIR/model.tflite, or "
            "RUN_DIR/model_QUANTIZE.tflite)"
        ),
    )
    p.set_defaults(func=cmd_export)


def _add_compress(commands):
    p = commands.add_parser(
        "compress",
        help=(
            "make a classify run smaller: quantize its TFLite file, prune it while fine-tuning, "
            "or distil it into a smaller student"
        ),
        description=(
            "quantize: RUN_DIR/model_QUANTIZE.tflite (as `export --format tflite --quantize`); "
            "prune: RUN_DIR_prunedNN, a run with SPARSITY of its "
            "kernels at zero; distill: RUN_DIR_distilled_STUDENT, a smaller model trained on the "
            "run's data with the run as its teacher "
            "(--alpha 1: the same student without the teacher, the baseline). With --evaluate DIR, "
            "both models are scored as TFLite files "
            "on DIR: accuracy, size, gzip size, latency (docs/compression.md)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--method", choices=["quantize", "prune", "distill"], required=True)
    p.add_argument(
        "--out",
        metavar="PATH",
        help=(
            "the .tflite file (quantize) or the new run folder (prune, distill); default beside "
            "RUN_DIR as above"
        ),
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help=(
            "the training data (DIR/train, DIR/val) to fine-tune, distil or calibrate int8 on "
            "(default: the run's own data folder)"
        ),
    )
    p.add_argument(
        "--evaluate",
        metavar="DIR",
        help=(
            "score the run and its compressed form on DIR/<class>/<video> (e.g. DATA_DIR/test) "
            "and print a table"
        ),
    )
    p.add_argument(
        "--quantize",
        choices=QUANTIZE_MODES,
        default="none",
        help="quantize: float16, dynamic or int8",
    )
    _add_compress_method_options(p)
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.set_defaults(func=cmd_compress)


def _add_compress_method_options(p):
    """`compress`'s options of pruning and distillation."""
    p.add_argument(
        "--sparsity",
        type=fraction,
        default=0.5,
        help="prune: the fraction of kernel weights set to zero (default: %(default)s)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        help=(
            "prune: fine-tuning epochs (default: 2); distill: the student's epochs (default: the "
            "run's)"
        ),
    )
    p.add_argument(
        "--student",
        default="cnn_lstm_narrow",
        choices=model_names(),
        metavar="NAME",
        help="distill: the student model (default: %(default)s)",
    )
    p.add_argument(
        "--temperature",
        type=positive_float,
        default=2.0,
        help="distill: the softmax temperature T (default: %(default)s)",
    )
    p.add_argument(
        "--alpha",
        type=unit_float,
        default=0.1,
        help=(
            "distill: the weight of the labels' loss; 1 - alpha goes to the teacher's (default: "
            "%(default)s)"
        ),
    )


def add_commands(commands):
    _add_export(commands)
    _add_compress(commands)
