"""Commands on a finished run: `evaluate`, `apply`, `predict`, `stream`, `predict-frames`
(`generate` and `score-generated` are `vlm_tf.cli.generation`'s).

`evaluate` and `apply` ask the run's task (`Run.task_object()`) for the
work and the report; the others serve one kind of run and say so when given
another.
"""

from __future__ import annotations

import json
import os
import sys

from vlm_tf.cli import multimodal
from vlm_tf.cli.common import (
    CommandError,
    corruption_list,
    positive_int,
    print_report,
    refuse_existing,
    say,
    severity_list,
    views,
)
from vlm_tf.cli.data import add_split_option, data_argument, refuse_unfinished_dataset


def cmd_evaluate(args):
    # Before TensorFlow is imported, so the refusal comes at once.
    args.data_dir = data_argument(args.data_dir, args.split, "test")
    if not args.allow_incomplete:
        refuse_unfinished_dataset(args.data_dir)
    if args.corruptions is not None and args.views != (1, 1):
        raise CommandError("--corruptions scores the one clip `evaluate` scores; drop --views")
    from vlm_tf.energy import EnergyMeter
    from vlm_tf.inference import evaluate_corruptions, load_run

    run = load_run(args.run_dir)
    meter = EnergyMeter().start()
    if args.corruptions is not None:
        report = evaluate_corruptions(
            run,
            args.data_dir,
            corruptions=args.corruptions or None,
            severities=args.severities,
            seed=args.seed,
            strict=args.strict,
        )
    else:
        report = run.task_object().evaluate(
            run, args.data_dir, strict=args.strict, views=args.views
        )
    print_report(report, args.json, energy=meter.read(clips=report.get("num_videos")))


def cmd_apply(args):
    if (args.run_dir is None) == (args.preset is None):
        raise CommandError(
            "apply takes RUN_DIR VIDEO or --preset NAME VIDEO (`vlm-tf presets` lists the "
            "restorers)"
        )
    run_dir = args.run_dir
    if args.preset is not None:
        from vlm_tf.models.presets import find_restorer

        try:
            run_dir = find_restorer(args.preset)
        except OSError as error:
            raise CommandError(f"--preset {error}") from None
    refuse_existing(args.out)
    from vlm_tf.inference import load_run

    run = load_run(run_dir)
    report = run.task_object().apply(
        run,
        args.video,
        args.out,
        side_by_side=args.side_by_side,
        degrade=args.degrade,
        seed=args.seed,
    )
    print_report(report, args.json)


def cmd_predict_frames(args):
    from vlm_tf.inference import load_run, write_predicted_video

    refuse_existing(args.out)
    result = write_predicted_video(
        load_run(args.run_dir), args.video, args.out, side_by_side=args.side_by_side
    )
    say(
        f"{args.out}: {result['observed_frames']} observed + {result['predicted_frames']} "
        "predicted frames"
    )
    if "psnr" in result:
        say(
            f"against the video's own next frames: PSNR {result['psnr']:.2f} dB (copy last frame: "
            f"{result['baseline_psnr']:.2f} dB)"
        )


def cmd_predict(args):
    if args.prompts:
        return multimodal.cmd_predict_by_prompts(args)
    from vlm_tf.inference import load_run

    run = load_run(args.run_dir)
    results = run.task_object().predict(run, args.videos, top=args.top)
    # On stderr: the label is still printed, and --json's output stays one object.
    for result in results:
        if "note" in result:
            print(f"note: {result['note']}", file=sys.stderr)
    if args.json:
        say(json.dumps(results))
    else:
        for result in results:
            if "error" in result:
                say(f"{result['path']}: unreadable ({result['error']})")
            else:
                ranked = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in result["top"])
                say(f"{result['path']}: {result['label']}  ({ranked})")
    if any("error" in result for result in results):
        raise CommandError(
            f"{sum('error' in r for r in results)} of {len(results)} videos could not be read"
        )


def cmd_stream(args):
    import numpy as np

    from vlm_tf.data.decode import read_frame_stream
    from vlm_tf.inference import load_run
    from vlm_tf.streaming import StreamingClassifier

    stream = StreamingClassifier(load_run(args.run_dir), stride=args.stride)
    # A whole number names a camera (0: the first), unless a file has that name.
    source = (
        int(args.source)
        if args.source.isdigit() and not os.path.exists(args.source)
        else args.source
    )
    frames, latencies = 0, []
    for frame in read_frame_stream(source):
        step = stream.update(frame)
        frames += 1
        if step.kept:
            latencies.append(step.latency_ms)
        if frames % args.every:
            continue
        if args.json:
            say(
                json.dumps(
                    {
                        "frame": step.frame_index,
                        "kept": step.kept,
                        "ready": step.ready,
                        "label": step.label,
                        "probability": step.probability,
                        "latency_ms": step.latency_ms,
                    }
                )
            )
        else:
            outcome = (
                f"{step.label}  {step.probability:.3f}"
                if step.ready
                else f"(waiting for {stream.num_frames} frames)"
            )
            say(
                f"frame {step.frame_index:6d}  {outcome}  "
                f"{f'{step.latency_ms:.1f} ms' if step.kept else '(skipped by --stride)'}"
            )
    if not step.ready:
        needed = (stream.num_frames - 1) * stream.stride + 1
        raise CommandError(
            f"{args.source}: the stream ended after {frames} frames, before the first prediction, "
            f"which needs {needed} ({stream.num_frames} kept at --stride {stream.stride})"
        )
    summary = {
        "frames": frames,
        "kept_frames": len(latencies),
        "mode": stream.mode,
        "latency_ms": {
            "median": float(np.median(latencies)),
            "p95": float(np.percentile(latencies, 95)),
        },
        "label": step.label,
        "probability": step.probability,
    }
    if args.json:
        say(json.dumps({"summary": summary}))
        return
    how = (
        "each frame encoded once, the head over the last features"
        if stream.mode == "per_frame"
        else "the whole model on the last frames"
    )
    say(
        f"{frames} frames, {len(latencies)} kept ({how}); latency per kept frame: median "
        f"{summary['latency_ms']['median']:.1f} ms, 95th percentile "
        f"{summary['latency_ms']['p95']:.1f} ms"
    )
    say(f"final: {step.label} {step.probability:.3f} (the last {stream.num_frames} kept frames)")


def _add_evaluate(commands):
    p = commands.add_parser(
        "evaluate",
        help=(
            "accuracy, mean class and top-5 accuracy, per-class accuracy and confusion matrix on "
            "DATA_DIR/<class>/<video> or the test part of list data (a UCF101-style folder or "
            "list, a CSV file) "
            "(restoration and fusion runs: PSNR and SSIM; detect runs: mAP@0.5, IoU and ID "
            "switches; each against its classical baseline)"
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_split_option(p)
    p.add_argument(
        "--strict",
        action="store_true",
        help=(
            "stop at the first unreadable file (or class folder without videos) instead of "
            "skipping it"
        ),
    )
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help=(
            "evaluate on a dataset whose dataset.json says make-data stopped before the end "
            "(refused by default)"
        ),
    )
    p.add_argument(
        "--views",
        type=views,
        default=(1, 1),
        metavar="C[xS]",
        help=(
            "classify runs: average each video's probabilities over C clips (spread over each "
            "segment of the video) x S crops "
            "(the whole frame, then 90%% crops at the corners and centre; at most 6) (default: "
            "1x1, "
            "the clip the run validated on)"
        ),
    )
    p.add_argument(
        "--corruptions",
        nargs="?",
        const="all",
        type=corruption_list,
        metavar="LIST",
        help=(
            "classify runs: accuracy clean and under real-world corruptions (noise, blur, a low "
            "bit rate through H.264 and MPEG-4, light, fog, pixelation, frames dropped, repeated, "
            "resampled or out of order), each at --severities; LIST: names separated by commas "
            "(default: all; docs/robustness.md lists them)"
        ),
    )
    p.add_argument(
        "--severities",
        type=severity_list,
        default=[1, 2, 3, 4, 5],
        metavar="A-B",
        help="with --corruptions: the severities, 1 to 5, as A-B or A,B,... (default: 1-5)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="with --corruptions: the seed of the corruptions' randomness (default: 0)",
    )
    p.set_defaults(func=cmd_evaluate)


def _add_apply(commands):
    p = commands.add_parser(
        "apply",
        help=(
            "restore VIDEO with a denoise, superres or enhance run, or draw a detect run's "
            "tracked boxes on it, and write the result"
        ),
        description=(
            "Restore every frame of VIDEO (at its own size) from the frames around it, or draw "
            "the boxes, track IDs and classes a detect run finds, and write OUT."
        ),
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", nargs="?", help="a finished run (or give --preset)"
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument(
        "--out", required=True, metavar="FILE", help="the video to write (.mp4, .avi, ...)"
    )
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="restore with a restorer shipped in the package (`vlm-tf presets`: denoise, "
        "superres_x2, superres_x4) or a preset folder, in RUN_DIR's place",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: out, frames, side_by_side; a restored video's input_size, "
        "output_size and, with --degrade, psnr, ssim and baseline {name, setting, psnr, ssim}; "
        "a detected one's size, tracks and detections",
    )
    p.add_argument("--side-by-side", action="store_true", help="each frame as input | output")
    p.add_argument(
        "--degrade",
        action="store_true",
        help=(
            "degrade VIDEO the way the run was trained first, and score the result against the "
            "original next to the classical baseline"
        ),
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of --degrade's noise (default: %(default)s)"
    )
    p.set_defaults(func=cmd_apply)


def _add_predict(commands):
    p = commands.add_parser(
        "predict",
        help=(
            "label and probabilities for each VIDEO (a still image or a one-frame video is "
            "labelled too, with a note on stderr that it is not a clip)"
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument(
        "--top",
        type=positive_int,
        default=3,
        help="classes listed per video (default: %(default)s)",
    )
    multimodal.add_prompts_option(p)
    p.set_defaults(func=cmd_predict)


def _add_stream(commands):
    p = commands.add_parser(
        "stream",
        help=(
            "classify a video or a camera frame by frame: the running label over the last T "
            "frames, with each frame's latency"
        ),
        description=(
            "Read VIDEO (or the camera with that OpenCV index) frame by frame and print, after "
            "each frame, the label of the last T frames "
            "(the run's --frames), its probability and the frame's latency; then a summary. The "
            "CNN "
            "classifiers encode each frame once "
            "(vlm_tf.streaming); the transformers run on the whole window."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("source", metavar="VIDEO_OR_CAMERA_INDEX")
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per printed frame, then {"summary": ...}',
    )
    p.add_argument(
        "--every",
        type=positive_int,
        default=1,
        help="print every N-th frame (default: %(default)s)",
    )
    p.add_argument(
        "--stride",
        type=positive_int,
        default=1,
        help=(
            "keep every k-th frame, so that T kept frames span what a training clip spanned: "
            "about camera fps x training video frames / (T x training fps) (default: %(default)s)"
        ),
    )
    p.set_defaults(func=cmd_stream)


def _add_predict_frames(commands):
    p = commands.add_parser(
        "predict-frames",
        help="write a video's first frames and the frames a fusion run predicts after them",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument(
        "--out", required=True, metavar="FILE", help="the video to write (.mp4, .avi, ...)"
    )
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="each frame as the video's own frame | the model's (observed frames appear twice)",
    )
    p.set_defaults(func=cmd_predict_frames)


def add_commands(commands):
    _add_evaluate(commands)
    _add_apply(commands)
    _add_predict(commands)
    _add_stream(commands)
    _add_predict_frames(commands)
