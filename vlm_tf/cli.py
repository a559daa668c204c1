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

from vlm_tf.compression import QUANTIZE_MODES
from vlm_tf.data import synthetic
from vlm_tf.data.detection import DEFAULT_DETECTION_VIDEOS
from vlm_tf.models.registry import DEFAULT_MODEL, MODELS, RESTORATION_TASKS, TASKS, default_model, get_model_spec, model_names
from vlm_tf.training.config import GAN_LOSSES, JIT_MODES, LOG_DIR, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, RECIPE_DEFAULTS, SAVED_MODEL_DIR, SCALES, STRATEGIES, RunConfig

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
_fraction = _number_type(float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")
_unit_float = _number_type(float, lambda v: 0 <= v <= 1, "a number from 0 to 1")


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
    if args.task == "detect":
        from vlm_tf.data.detection import write_detection_dataset

        manifest = write_detection_dataset(args.out_dir, videos=args.videos, num_frames=args.frames, size=args.size, seed=args.seed)
        _say(f"dataset: {args.out_dir} (detection: {len(manifest['classes'])} shape classes, 1-{manifest['max_objects']} objects a video, splits {manifest['splits']} videos)")
        return
    _make_data(args.out_dir, videos_per_class=args.videos_per_class, frames=args.frames, size=args.size, seed=args.seed)


# --- train -----------------------------------------------------------------------


def _run_config(args, **extra):
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
        **extra,
    )


def _train(data_dir, run_dir, config, verbose, **extras):
    from vlm_tf.training import train

    result = train(data_dir, run_dir, config, verbose=verbose, **extras)
    for item in result.skipped:
        _say(f"  skipped {item['path']}: {item['reason']}")
    if result.best_val_accuracy is not None:
        outcome = f"best validation accuracy {result.best_val_accuracy:.3f}"
    else:
        outcome = ", ".join(f"{key} {value:.3f}" for key, value in result.summary.items() if key != "train_clips_per_s")
    _say(f"{'resumed and finished' if result.resumed else 'finished'}: {outcome}")
    _say(f"model: {result.model_path}")
    _say(f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, LOG_DIR)}")
    return result


def _model_for_task(model, task):
    """`--model` and `--task` → the model to train: the task's default when no model is named."""
    if model is None:
        return default_model(task or "classify")
    if task is not None and get_model_spec(model).task != task:
        raise CommandError(f"--model {model} is a {get_model_spec(model).task} model, not {task}; {task} models: {', '.join(model_names(task))}")
    return model


def cmd_train(args):
    args.model = _model_for_task(args.model, args.task)
    config = _run_config(args, gan_loss=args.gan_loss, scale=args.scale, noise_sigma=args.noise_sigma)
    _train(args.data_dir, args.out, config, verbose=0 if args.quiet else 2 if not sys.stdout.isatty() else 1, profile=args.profile, cache=args.cache, strategy=args.strategy)
    if args.profile:
        _say(f"profiler trace: {os.path.join(args.out, LOG_DIR, 'profile')} (TensorBoard's Profile tab; pip install tensorboard-plugin-profile)")


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


def _print_prediction(report):
    baseline = report["baseline"]
    _say(f"next {report['predicted_frames']} frames after {report['observed_frames']} observed, {report['num_videos']} videos")
    _say(f"  model            PSNR {report['psnr']:6.2f} dB  SSIM {report['ssim']:.3f}")
    _say(f"  copy last frame  PSNR {baseline['psnr']:6.2f} dB  SSIM {baseline['ssim']:.3f}")
    _say("  PSNR by step ahead: " + " ".join(f"{v:.1f}" for v in report["psnr_by_step"]))
    for item in report["skipped"]:
        _say(f"skipped {item['path']}: {item['reason']}")


def _print_restoration(report):
    detail = {"denoise": f"noise σ {report.get('noise_sigma', 0):g} + shot noise", "superres": f"×{report.get('scale')}", "enhance": "dark, flat, tinted"}[report["task"]]
    _say(f"{report['task']} ({detail}): {report['num_videos']} videos, {report['frames']} frames each, window of {report['window']}")
    rows = [("model", report)]
    if "degraded" in report:
        rows.append(("degraded input", report["degraded"]))
    rows += [(f"{name} ({scores['setting']})" if scores.get("setting") else name, scores) for name, scores in report["baselines"].items()]
    width = max(len(name) for name, _ in rows)
    for name, scores in rows:
        best = "  (best baseline)" if name.split(" ")[0] == report["baseline"]["name"] else ""
        _say(f"  {name:<{width}}  PSNR {scores['psnr']:6.2f} dB  SSIM {scores['ssim']:.3f}{best}")
    for item in report["skipped"]:
        _say(f"skipped {item['path']}: {item['reason']}")


def _print_detection(report):
    _say(f"detection: {report['num_videos']} videos, {report['num_objects']} objects; boxes scoring {report['score_threshold']:g} or more are tracked")
    rows = [("model", report), (report["baseline"]["name"], report["baseline"])]
    width = max(len(name) for name, _ in rows)
    for name, scores in rows:
        _say(f"  {name:<{width}}  mAP@0.5 {scores['map50']:.3f}  class-agnostic {scores['map50_agnostic']:.3f}  IoU {scores['mean_iou']:.3f}  ID switches {scores['id_switches']}  MOTA {scores['mota']:.3f}")
    _say("  AP@0.5 per class: " + ", ".join(f"{name} {'-' if ap is None else f'{ap:.3f}'}" for name, ap in report["ap50_per_class"].items()))
    for item in report["skipped"]:
        _say(f"skipped {item['path']}: {item['reason']}")


def _views(text):
    """`--views`: `C` or `CxS` → `(clips, crops)`."""
    parts = text.lower().split("x")
    if len(parts) > 2 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise argparse.ArgumentTypeError(f"expected CLIPS or CLIPSxCROPS with positive integers (e.g. 3x3), received {text!r}")
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 1


def cmd_evaluate(args):
    from vlm_tf.inference import evaluate_detection, evaluate_directory, evaluate_prediction, evaluate_restoration, load_run

    run = load_run(args.run_dir)
    clips, crops = args.views
    if (clips, crops) != (1, 1) and run.task != "classify":
        raise CommandError(f"--views is for classify runs; {args.run_dir} is a {run.config.model} run ({run.task})")
    if run.task == "generate":
        raise CommandError(f"{args.run_dir} is a GAN run: write clips with `vlm-tf generate {args.run_dir} --out DIR`, then score them with `vlm-tf evaluate CLASSIFIER_RUN DIR` or `vlm-tf score-generated`")
    if run.task == "predict_frames":
        report, show = evaluate_prediction(run, args.data_dir, strict=args.strict), _print_prediction
    elif run.task in RESTORATION_TASKS:
        report, show = evaluate_restoration(run, args.data_dir, strict=args.strict), _print_restoration
    elif run.task == "detect":
        report, show = evaluate_detection(run, args.data_dir, strict=args.strict), _print_detection
    else:
        report, show = evaluate_directory(run, args.data_dir, strict=args.strict, clips=clips, crops=crops), _print_evaluation
    if args.json:
        _say(json.dumps(report))
    else:
        if (clips, crops) != (1, 1):
            _say(f"{clips} clip(s) x {crops} crop(s) per video, probabilities averaged")
        show(report)


# --- generate / score-generated / predict-frames ----------------------------------------


def cmd_generate(args):
    from vlm_tf.inference import load_run, write_generated_videos

    run = load_run(args.run_dir)
    run.require("generate", "`vlm-tf generate`")
    paths = write_generated_videos(run, args.out, per_class=args.per_class, seed=args.seed)
    _say(f"wrote {len(paths)} clips ({args.per_class} per class, {len(run.class_names)} classes) to {args.out}/<class>/")
    _say(f"score them: vlm-tf evaluate CLASSIFIER_RUN {args.out}")


def cmd_score_generated(args):
    from vlm_tf.inference import load_run, score_generated

    report = score_generated(load_run(args.classifier_run), args.generated_dir, args.real, reference_dir=args.reference)
    if args.json:
        _say(json.dumps(report))
        return
    _print_evaluation(report)
    _say(f"Fréchet distance to {args.real} in the classifier's {report['feature_layer']} features: {report['frechet_distance']:.3f}")
    if "reference_frechet_distance" in report:
        _say(f"  the same distance from {args.reference} (real clips): {report['reference_frechet_distance']:.3f}")


def cmd_predict_frames(args):
    from vlm_tf.inference import load_run, write_predicted_video

    result = write_predicted_video(load_run(args.run_dir), args.video, args.out, side_by_side=args.side_by_side)
    _say(f"{args.out}: {result['observed_frames']} observed + {result['predicted_frames']} predicted frames")
    if "psnr" in result:
        _say(f"against the video's own next frames: PSNR {result['psnr']:.2f} dB (copy last frame: {result['baseline_psnr']:.2f} dB)")


def cmd_apply(args):
    from vlm_tf.inference import load_run, write_detected_video, write_restored_video

    run = load_run(args.run_dir)
    if run.task == "detect":
        if args.degrade:
            raise CommandError("--degrade is for the restoration runs; a detect run draws its boxes on VIDEO as it is")
        report = write_detected_video(run, args.video, args.out, side_by_side=args.side_by_side)
        height, width = report["size"]
        _say(f"{args.out}: {report['frames']} frames, {height}x{width}, {report['detections']} boxes in {report['tracks']} tracks{' (input | output)' if args.side_by_side else ''}")
        return
    report = write_restored_video(run, args.video, args.out, degrade_first=args.degrade, side_by_side=args.side_by_side, seed=args.seed)
    (height, width), (out_height, out_width) = report["input_size"], report["output_size"]
    _say(f"{args.out}: {report['frames']} frames, {height}x{width} in, {out_height}x{out_width} out{' (input | output)' if args.side_by_side else ''}")
    if "psnr" in report:
        base = report["baseline"]
        _say(f"against the original: PSNR {report['psnr']:.2f} dB, SSIM {report['ssim']:.3f} ({base['name']}: {base['psnr']:.2f} dB, {base['ssim']:.3f})")


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


# --- stream ----------------------------------------------------------------------


def cmd_stream(args):
    import numpy as np

    from vlm_tf.data.decode import read_frame_stream
    from vlm_tf.inference import load_run
    from vlm_tf.streaming import StreamingClassifier

    stream = StreamingClassifier(load_run(args.run_dir), stride=args.stride)
    # A whole number names a camera (0: the first), unless a file has that name.
    source = int(args.source) if args.source.isdigit() and not os.path.exists(args.source) else args.source
    frames, latencies = 0, []
    for frame in read_frame_stream(source):
        step = stream.update(frame)
        frames += 1
        if step.kept:
            latencies.append(step.latency_ms)
        if frames % args.every:
            continue
        if args.json:
            _say(json.dumps({"frame": step.frame_index, "kept": step.kept, "ready": step.ready, "label": step.label, "probability": step.probability, "latency_ms": step.latency_ms}))
        else:
            outcome = f"{step.label}  {step.probability:.3f}" if step.ready else f"(waiting for {stream.num_frames} frames)"
            _say(f"frame {step.frame_index:6d}  {outcome}  {f'{step.latency_ms:.1f} ms' if step.kept else '(skipped by --stride)'}")
    if not step.ready:
        needed = (stream.num_frames - 1) * stream.stride + 1
        raise CommandError(f"{args.source}: the stream ended after {frames} frames, before the first prediction, which needs {needed} ({stream.num_frames} kept at --stride {stream.stride})")
    summary = {
        "frames": frames,
        "kept_frames": len(latencies),
        "mode": stream.mode,
        "latency_ms": {"median": float(np.median(latencies)), "p95": float(np.percentile(latencies, 95))},
        "label": step.label,
        "probability": step.probability,
    }
    if args.json:
        _say(json.dumps({"summary": summary}))
        return
    how = "each frame encoded once, the head over the last features" if stream.mode == "per_frame" else "the whole model on the last frames"
    _say(f"{frames} frames, {len(latencies)} kept ({how}); latency per kept frame: median {summary['latency_ms']['median']:.1f} ms, 95th percentile {summary['latency_ms']['p95']:.1f} ms")
    _say(f"final: {step.label} {step.probability:.3f} (the last {stream.num_frames} kept frames)")


# --- export ----------------------------------------------------------------------


def _export(run_dir, out, *, export_format="saved_model", quantize="none", data_dir=None):
    if export_format == "tflite":
        from vlm_tf.compression.quantize import quantize_run

        path = quantize_run(run_dir, quantize, out=out, data_dir=data_dir)
        _say(f"TFLite: {path} ({os.path.getsize(path) / 1e6:.2f} MB, quantization {quantize}; takes uint8 frames (1, time, height, width, 3), returns float32 probabilities)")
        return path
    if quantize != "none" or data_dir is not None:
        raise CommandError("--quantize and --data apply to --format tflite only")
    from vlm_tf.export import export_detector, export_frame_predictor, export_generator, export_restorer, export_saved_model
    from vlm_tf.inference import load_run

    out = out or os.path.join(run_dir, SAVED_MODEL_DIR)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise CommandError(f"{out} already exists; choose another --out or remove it")
    run = load_run(run_dir)
    size = run.config.image_size
    if run.task == "generate":
        export_generator(run.model, out, class_names=run.class_names)
        _say(f"SavedModel: {out} (serving_default takes noise float32 (batch, {run.model.input_shape[0][-1]}) and label int32 (batch,), returns uint8 frames)")
    elif run.task in RESTORATION_TASKS:
        export_restorer(run.model, out)
        _say(f"SavedModel: {out} (serving_default takes one clip's uint8 frames (time, height, width, 3), returns them restored)")
    elif run.task == "detect":
        export_detector(run.model, out, class_names=run.class_names)
        _say(f"SavedModel: {out} (serving_default takes one video's uint8 frames (time, height, width, 3), returns boxes, scores, class_index, class_name per frame)")
    elif run.task == "predict_frames":
        export_frame_predictor(run.model, out)
        _say(f"SavedModel: {out} (serving_default takes uint8 frames (batch, {run.model.input_shape[1]}, {size}, {size}, 3), returns the next {run.model.output_shape[1]})")
    else:
        export_saved_model(run.model, out, class_names=run.class_names)
        _say(f"SavedModel: {out} (serving_default takes uint8 frames (batch, time, {size}, {size}, 3))")
    return out


def cmd_export(args):
    _export(args.run_dir, args.out, export_format=args.format, quantize=args.quantize, data_dir=args.data)


# --- compress ----------------------------------------------------------------------


def cmd_compress(args):
    if args.method == "quantize":
        if args.quantize == "none":
            raise CommandError("--method quantize needs --quantize float16, dynamic or int8")
        result = _export(args.run_dir, args.out, export_format="tflite", quantize=args.quantize, data_dir=args.data)
        compressed = (args.run_dir, args.quantize)
    elif args.method == "prune":
        from vlm_tf.compression.pruning import prune_run

        report = prune_run(args.run_dir, args.data, sparsity=args.sparsity, epochs=args.epochs or 2, out=args.out, verbose=0 if args.quiet else 2)
        result = report["run_dir"]
        _say(f"pruned to {report['sparsity']:.1%} zeros; validation accuracy {report['val_accuracy_before']:.3f} → {report['val_accuracy']:.3f}; "
             f"weights gzip {report['unpruned_gzip_bytes'] / 1e6:.2f} → {report['gzip_bytes'] / 1e6:.2f} MB")
        compressed = (result, "none")
    else:
        from vlm_tf.compression.distillation import distill_run

        report = distill_run(args.run_dir, args.data, student_model=args.student, epochs=args.epochs, temperature=args.temperature, alpha=args.alpha,
                             out=args.out, verbose=0 if args.quiet else 2)
        result = report["run_dir"]
        _say(f"student {report['student_model']} ({report['student_params']:,} parameters, teacher {report['teacher_params']:,}): "
             f"best validation accuracy {report['best_val_accuracy']:.3f}, teacher {report['teacher_val_accuracy']:.3f}")
        compressed = (result, "none")
    if args.method != "quantize":
        _say(f"run: {result} (compression.json; `vlm-tf evaluate`, `predict`, `export` take it)")
    if args.evaluate:
        from vlm_tf.compression.measure import format_rows, measure_run

        rows = [{"name": f"{args.run_dir} (float32 TFLite)", **measure_run(args.run_dir, args.evaluate)}]
        rows.append({"name": f"{compressed[0]}{f' ({compressed[1]})' if compressed[1] != 'none' else ''}", **measure_run(compressed[0], args.evaluate, quantize=compressed[1], calibration_dir=args.data)})
        _say(f"on {args.evaluate}, each as a TFLite file (latency: one interpreter thread):")
        _say(format_rows(rows))


# --- compare / models -----------------------------------------------------------


def _model_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    classifiers = model_names()
    unknown = [name for name in names if name not in classifiers]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown classifier(s) {', '.join(unknown) or repr(text)}; registered classifiers: {', '.join(classifiers)}")
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
    for name in model_names():
        spec = MODELS[name]
        model = build_model(name, num_classes=8, image_size=(args.size, args.size))
        rows.append({"model": name, "params": model.count_params(), "gflops_per_clip": count_flops(model, num_frames=args.frames) / 1e9, "description": spec.description})
    if args.json:
        _say(json.dumps(rows))
        return
    _say(f"8 classes, clips of {args.frames} frames of {args.size}x{args.size}; FLOPs of one forward pass (training costs about 3x)")
    width = max(len(row["model"]) for row in rows)
    for row in rows:
        _say(f"  {row['model']:<{width}}  {row['params']:>11,} params  {row['gflops_per_clip']:7.3f} GFLOPs/clip")


# --- bench -----------------------------------------------------------------------


def cmd_bench(args):
    from vlm_tf.bench import format_report, run_bench

    report = run_bench(quick=args.quick, data_dir=args.data, progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    _say(json.dumps(report) if args.json else format_report(report))


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
    p.add_argument("--size", type=_positive_int, help=f"frame size in pixels (default: the model's recipe; {RECIPE_DEFAULTS['image_size']} unless the model says otherwise)")
    p.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size, help="(default: %(default)s)")
    # The optimizer options default to the model's recipe (RunConfig.resolved).
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="(default: the model's recipe; adam, the text's, unless the model says otherwise)")
    p.add_argument("--learning-rate", type=_positive_float, help="peak learning rate (default: the model's recipe; 1e-3, the text's, unless the model says otherwise)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule, help="cosine decay over the run, or the text's constant rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=_non_negative_float, help="decoupled weight decay, adamw only (default: the model's recipe)")
    p.add_argument("--warmup-epochs", type=_non_negative_int, help="epochs of linear learning-rate warmup, at most half the run (default: the model's recipe; 0 unless the model says otherwise)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="(default: %(default)s)")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision, help="auto (by device; on a CPU by a short measurement, remembered), float32, mixed_float16, mixed_bfloat16, or mixed (float16 on GPU, bfloat16 on CPU) (default: %(default)s)")
    p.add_argument("--jit", choices=JIT_MODES, default=defaults.jit, help="XLA compilation: auto (chosen with --precision auto's measurement on a CPU, Keras' choice on a GPU), on or off (default: %(default)s)")


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
    p.add_argument("--task", choices=["classify", "detect"], default="classify",
                   help="classify: the eight motion classes; detect: OUT_DIR/{train,val,test}/clip_NNNN.mp4 with 1-3 moving shapes each and their boxes (default: %(default)s)")
    p.add_argument("--videos", type=_positive_int, default=DEFAULT_DETECTION_VIDEOS, help="--task detect: videos over all splits, 70/15/15 (default: %(default)s)")
    p.set_defaults(func=cmd_make_data)

    width = max(len(name) for name in MODELS) + 2
    models = "\n".join(f"  {name:<{width}}{spec.description}" for name, spec in MODELS.items())
    p = commands.add_parser("train", help="train a model on DATA_DIR/train (validated on DATA_DIR/val, else on 20%% of train)",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Train on DATA_DIR/train/<class>/<video>, validate on DATA_DIR/val (else on 20% of train; DATA_DIR/test is never used). "
                                        "The restoration tasks take any folder of videos (DATA_DIR/train if there is one) and degrade them into training pairs.\n\nmodels:\n" + models)
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: config, checkpoints, model, class names, TensorBoard logs")
    p.add_argument("--task", choices=TASKS, help="what to train: classify (the default), generate (gan), predict_frames (fusion), detect (videos with a box file each, "
                                                 "vlm_tf.data.detection), or a chapter-6 restoration task on any folder of videos: denoise, superres, enhance "
                                                 "(docs/design.md, \"Detection\" and \"Restoration\"); picks the task's default model")
    p.add_argument("--model", choices=list(MODELS), metavar="NAME", help=f"one of: {', '.join(MODELS)} (default: {DEFAULT_MODEL}, or the --task's first model)")
    _add_training_options(p, defaults)
    p.add_argument("--scale", type=int, choices=SCALES, default=defaults.scale, help="superres: the upscaling factor; its training pairs are blurred and shrunk by it (default: %(default)s)")
    p.add_argument("--noise-sigma", type=_non_negative_float, default=defaults.noise_sigma, help="denoise: the std of the Gaussian noise, in 0-255 pixel values, added to the shot noise (default: %(default)s)")
    p.add_argument("--gan-loss", choices=GAN_LOSSES, default=defaults.gan_loss, help="generator loss of gan and fusion: the non-saturating -log D(G(z)), or the text's D(E(x)) - D(G(z)) of §4.3.1 (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.add_argument("--profile", action="store_true", help="write a TensorFlow profiler trace of training steps 3-7 to RUN_DIR/logs/profile")
    p.add_argument("--cache", metavar="memory|DIR", help="decode each video once, at the frame size, and keep it in memory or as .npy files in DIR for later epochs (and later runs); "
                                                        "classify, gan and fusion (default: decode every epoch)")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="tf.distribute: mirrored (this machine's GPUs, or its CPU), multiworker (one process per worker, the cluster in TF_CONFIG; docs/distributed.md), "
                        "default (one device), or auto: multiworker when TF_CONFIG names a cluster, mirrored with more than one GPU, else default. "
                        "--batch-size is the global batch; classify runs (default: %(default)s)")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix on DATA_DIR/<class>/<video> (restoration and fusion runs: PSNR and SSIM; detect runs: mAP@0.5, IoU and ID switches; each against its classical baseline)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable file instead of skipping it")
    p.add_argument("--views", type=_views, default=(1, 1), metavar="C[xS]",
                   help="classify runs: average each video's probabilities over C clips (spread over each segment of the video) x S crops "
                        "(the whole frame, then 90%% crops at the corners and centre; at most 6) (default: 1x1, the clip the run validated on)")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("apply", help="restore VIDEO with a denoise, superres or enhance run, or draw a detect run's tracked boxes on it, and write the result",
                            description="Restore every frame of VIDEO (at its own size) from the frames around it, or draw the boxes, track IDs and classes a detect run finds, and write OUT.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--out", required=True, metavar="FILE", help="the video to write (.mp4, .avi, ...)")
    p.add_argument("--side-by-side", action="store_true", help="each frame as input | output")
    p.add_argument("--degrade", action="store_true", help="degrade VIDEO the way the run was trained first, and score the result against the original next to the classical baseline")
    p.add_argument("--seed", type=int, default=0, help="seed of --degrade's noise (default: %(default)s)")
    p.set_defaults(func=cmd_apply)

    p = commands.add_parser("predict", help="label and probabilities for each VIDEO")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument("--top", type=_positive_int, default=3, help="classes listed per video (default: %(default)s)")
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser("stream", help="classify a video or a camera frame by frame: the running label over the last T frames, with each frame's latency",
                            description="Read VIDEO (or the camera with that OpenCV index) frame by frame and print, after each frame, the label of the last T frames "
                                        "(the run's --frames), its probability and the frame's latency; then a summary. The CNN classifiers encode each frame once "
                                        "(vlm_tf.streaming); the transformers run on the whole window.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("source", metavar="VIDEO_OR_CAMERA_INDEX")
    p.add_argument("--json", action="store_true", help="one JSON object per printed frame, then {\"summary\": ...}")
    p.add_argument("--every", type=_positive_int, default=1, help="print every N-th frame (default: %(default)s)")
    p.add_argument("--stride", type=_positive_int, default=1,
                   help="keep every k-th frame, so that T kept frames span what a training clip spanned: about camera fps x training video frames / (T x training fps) (default: %(default)s)")
    p.set_defaults(func=cmd_stream)

    p = commands.add_parser("generate", help="write clips of a GAN run as video files, one folder per class",
                            description="Write OUT/<class>/generated_NNNN.mp4 from a `--model gan` run; `vlm-tf evaluate CLASSIFIER_RUN OUT` scores them.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    p.add_argument("--per-class", type=_positive_int, default=16, help="clips per class (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.set_defaults(func=cmd_generate)

    p = commands.add_parser("score-generated", help="a classifier's accuracy on generated clips and their Fréchet distance to real ones",
                            description="Evaluate CLASSIFIER_RUN on GENERATED_DIR/<class>/<video> and measure the Fréchet distance between the generated and the real clips "
                                        "in the classifier's features (the input of its output layer); docs/design.md has the protocol.")
    p.add_argument("classifier_run", metavar="CLASSIFIER_RUN")
    p.add_argument("generated_dir", metavar="GENERATED_DIR")
    p.add_argument("--real", required=True, metavar="REAL_DIR", help="real clips, DIR/<class>/<video> (e.g. DATA_DIR/train)")
    p.add_argument("--reference", metavar="DIR", help="other real clips (e.g. DATA_DIR/test): their distance to --real is the floor to compare with")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_score_generated)

    p = commands.add_parser("predict-frames", help="write a video's first frames and the frames a fusion run predicts after them")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--out", required=True, metavar="FILE", help="the video to write (.mp4, .avi, ...)")
    p.add_argument("--side-by-side", action="store_true", help="each frame as the video's own frame | the model's (observed frames appear twice)")
    p.set_defaults(func=cmd_predict_frames)

    p = commands.add_parser("export", help="write a SavedModel taking uint8 RGB frames (a GAN run: noise and label), or a classifier's TFLite file, optionally quantized")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=["saved_model", "tflite"], default="saved_model",
                   help="tflite: classify runs, uint8 frames (1, time, height, width, 3) in, float32 probabilities out, built-in ops only (default: %(default)s)")
    p.add_argument("--quantize", choices=QUANTIZE_MODES, default="none",
                   help="tflite: float16 weights, dynamic (int8 weights), or int8 weights and activations calibrated on the run's training videos (default: %(default)s)")
    p.add_argument("--data", metavar="DIR", help="--quantize int8: calibrate on the videos of DIR (its train/ if it has one) instead of the run's data folder")
    p.add_argument("--out", metavar="PATH", help=f"(default: RUN_DIR/{SAVED_MODEL_DIR}; tflite: RUN_DIR/model.tflite, or RUN_DIR/model_QUANTIZE.tflite)")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("compress", help="make a classify run smaller: quantize its TFLite file, prune it while fine-tuning, or distil it into a smaller student",
                            description="quantize: RUN_DIR/model_QUANTIZE.tflite (as `export --format tflite --quantize`); prune: RUN_DIR_prunedNN, a run with SPARSITY of its "
                                        "kernels at zero; distill: RUN_DIR_distilled_STUDENT, a smaller model trained on the run's data with the run as its teacher "
                                        "(--alpha 1: the same student without the teacher, the baseline). With --evaluate DIR, both models are scored as TFLite files "
                                        "on DIR: accuracy, size, gzip size, latency (docs/compression.md).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--method", choices=["quantize", "prune", "distill"], required=True)
    p.add_argument("--out", metavar="PATH", help="the .tflite file (quantize) or the new run folder (prune, distill); default beside RUN_DIR as above")
    p.add_argument("--data", metavar="DIR", help="the training data (DIR/train, DIR/val) to fine-tune, distil or calibrate int8 on (default: the run's own data folder)")
    p.add_argument("--evaluate", metavar="DIR", help="score the run and its compressed form on DIR/<class>/<video> (e.g. DATA_DIR/test) and print a table")
    p.add_argument("--quantize", choices=QUANTIZE_MODES, default="none", help="quantize: float16, dynamic or int8")
    p.add_argument("--sparsity", type=_fraction, default=0.5, help="prune: the fraction of kernel weights set to zero (default: %(default)s)")
    p.add_argument("--epochs", type=_positive_int, help="prune: fine-tuning epochs (default: 2); distill: the student's epochs (default: the run's)")
    p.add_argument("--student", default="cnn_lstm_narrow", choices=[name for name in MODELS if get_model_spec(name).task == "classify"], metavar="NAME",
                   help="distill: the student model (default: %(default)s)")
    p.add_argument("--temperature", type=_positive_float, default=2.0, help="distill: the softmax temperature T (default: %(default)s)")
    p.add_argument("--alpha", type=_unit_float, default=0.1, help="distill: the weight of the labels' loss; 1 - alpha goes to the teacher's (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.set_defaults(func=cmd_compress)

    p = commands.add_parser("compare", help="train several models on the same data, budget and seed; print one table",
                            description="Train each model like `vlm-tf train` into OUT_DIR/<model>, score it on DATA_DIR/test, and print test accuracy, "
                                        "parameters, FLOPs per clip and training clips/s. Rerun the same command to continue a stopped comparison.")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="one run folder per model, plus comparison.json")
    p.add_argument("--models", type=_model_list, default=model_names(), metavar="A,B,...", help="comma-separated registered classifiers (default: all of them)")
    _add_training_options(p, defaults)
    p.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    p.set_defaults(func=cmd_compare)

    p = commands.add_parser("models", help="the registered classifiers with their parameters and FLOPs per clip")
    p.add_argument("--frames", type=_positive_int, default=defaults.num_frames, help="frames per clip (default: %(default)s)")
    p.add_argument("--size", type=_positive_int, default=RECIPE_DEFAULTS["image_size"], help="frame size in pixels (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_models)

    p = commands.add_parser("bench", help="speed side by side: the input pipeline against the TF tutorial's loader and OpenCV alone, training against the machine's matmul ceiling, precision and XLA, serving",
                            description="Measure vlm_tf's speed as ratios against what you would otherwise run, on the same files and shapes, in one run (docs/benchmarks.md).")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of about a minute, noisy ratios")
    p.add_argument("--data", metavar="DIR", help="read this folder of <class>/<video> files (its train/ if it has one) instead of writing synthetic videos")
    p.set_defaults(func=cmd_bench)

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
