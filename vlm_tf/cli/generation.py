"""Generated clips: `generate` writes a run's clips as videos (a class GAN's, a folder per class;
a text_to_video run's, from prompts, with a JSON beside each), `score-generated` judges them (a
classifier's accuracy and Fréchet distance; an attributes run's agreement with the prompts).
"""

from __future__ import annotations

import json
import os

import numpy as np

from vlm_tf.cli.common import CommandError, positive_int, say


def cmd_generate(args):
    from vlm_tf.inference import load_run, write_generated_videos

    # An empty folder will do (a user may have made it); one with files in it is never added to.
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise CommandError(f"{args.out} already exists and is not empty; choose another folder")
    run = load_run(args.run_dir)
    if run.task == "text_to_video":
        return _generate_from_prompts(args, run)
    run.require(("generate", "text_to_video"), "`vlm-tf generate`")
    if args.prompt or args.prompts_from or args.first_frame or args.first_frames:
        raise CommandError(
            f"{args.run_dir} is a class-conditional gan run: --prompt, --prompts-from and "
            "--first-frame need a text_to_video run (`vlm-tf train DATA --task text_to_video`)"
        )
    paths = write_generated_videos(run, args.out, per_class=args.per_class, seed=args.seed)
    say(
        f"wrote {len(paths)} clips ({args.per_class} per class, {len(run.class_names)} classes) "
        f"to {args.out}/<class>/"
    )
    say(f"score them: vlm-tf evaluate CLASSIFIER_RUN {args.out}")


def cmd_score_generated(args):
    from vlm_tf.inference import load_run, score_generated

    judge = load_run(args.classifier_run)
    if judge.task == "attributes":
        return _score_prompted(args, judge)
    report = score_generated(judge, args.generated_dir, args.real, reference_dir=args.reference)
    if args.json:
        say(json.dumps(report.to_dict()))
        return
    say("\n".join(report.lines()))
    say(
        f"Fréchet distance to {args.real} in the classifier's {report.feature_layer} features: "
        f"{report.frechet_distance:.3f}"
    )
    if report.reference_frechet_distance is not None:
        say(
            f"  the same distance from {args.reference} (real clips): "
            f"{report.reference_frechet_distance:.3f}"
        )


def split_folders(data_dir):
    """`{"test": …, "heldout": …}` where `data_dir` is a multimodal dataset's root holding both,
    else `{None: data_dir}`: the folders a prompted command reads, by the report key they fill.
    """
    splits = {name: os.path.join(data_dir, name) for name in ("test", "heldout")}
    if all(os.path.isdir(folder) for folder in splits.values()):
        return splits
    return {None: data_dir}


def _generate_from_prompts(args, run):
    from vlm_tf.tasks.text_to_video import (
        first_frames_of,
        folder_prompts,
        is_diffusion,
        read_first_frame,
        write_prompted_videos,
    )

    if bool(args.prompt) == bool(args.prompts_from):
        raise CommandError(
            f"{args.run_dir} generates from words: give --prompt TEXT (one or more) or "
            "--prompts-from DATA, one of the two"
        )
    if (args.first_frame or args.first_frames) and not is_diffusion(run.config.model):
        raise CommandError(
            f"{args.run_dir} is a {run.config.model} run: it draws from a prompt alone; "
            "--first-frame and --first-frames need a text_diffusion run"
        )
    if args.first_frame and args.prompts_from:
        raise CommandError(
            "--first-frame goes with --prompt; with --prompts-from, --first-frames starts each "
            "clip from its own video's first frame"
        )
    if args.first_frames and not args.prompts_from:
        raise CommandError("--first-frames goes with --prompts-from DATA")
    size = run.config.image_size
    jobs = {}
    if args.prompt:
        first = None
        if args.first_frame:
            first = np.repeat(read_first_frame(args.first_frame, size)[None], len(args.prompt), 0)
        jobs[None] = (list(args.prompt), first)
    else:
        for split, folder in split_folders(args.prompts_from).items():
            paths, texts = folder_prompts(folder)
            jobs[split] = (texts, first_frames_of(paths, size) if args.first_frames else None)
    written = 0
    for split, (texts, first) in jobs.items():
        out = args.out if split is None else os.path.join(args.out, split)
        written += len(
            write_prompted_videos(
                run, out, texts, per_prompt=args.per_prompt, seed=args.seed, first_frames=first
            )
        )
    say(f"wrote {written} clips ({args.per_prompt} a prompt) to {args.out}, a JSON beside each")
    say(f"score them: vlm-tf score-generated ATTRIBUTES_RUN {args.out} --real DATA")


def _score_prompted(args, run):
    from vlm_tf.inference import load_run
    from vlm_tf.tasks.attributes import PromptedReport, score_prompted

    generated = split_folders(args.generated_dir)
    real = split_folders(args.real)
    if set(generated) != set(real):
        raise CommandError(
            f"{args.generated_dir} and --real {args.real} must both hold test/ and heldout/ "
            "(what `generate --prompts-from DATA` writes from a multimodal dataset's root), or "
            "neither"
        )
    text_run = args.text_run or _text_run_of(args.generated_dir)
    text_run = load_run(text_run) if text_run else None
    figures = {
        split: score_prompted(run, generated[split], real[split], text_run=text_run)
        for split in generated
    }
    report = (
        PromptedReport(**figures[None])
        if None in figures
        else PromptedReport(**figures["test"], heldout=figures["heldout"])
    )
    if args.json:
        say(json.dumps(report.to_dict()))
    else:
        say("\n".join(report.lines()))


def _text_run_of(generated_dir):
    """The video_text run named in the first generated clip's JSON (`text_run`), if it exists."""
    for root, _, files in sorted(os.walk(generated_dir)):
        for name in sorted(files):
            if name.endswith(".json"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    meta = json.load(f)
                found = meta.get("text_run") if isinstance(meta, dict) else None
                return found if isinstance(found, str) and os.path.isdir(found) else None
    return None


def _add_generate(commands):
    p = commands.add_parser(
        "generate",
        help="write clips of a gan run (one folder per class) or of a text_to_video run (from "
        "prompts) as video files",
        description=(
            "A `--model gan` run: write OUT/<class>/generated_NNNN.mp4; `vlm-tf evaluate "
            "CLASSIFIER_RUN OUT` scores them. A text_to_video run: clips of --prompt or of "
            "--prompts-from DATA, each with a JSON naming its prompt and the attributes it asks "
            "for; `vlm-tf score-generated ATTRIBUTES_RUN OUT --real DATA` scores them."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    p.add_argument(
        "--per-class",
        type=positive_int,
        default=16,
        help="a gan run: clips per class (default: %(default)s)",
    )
    p.add_argument(
        "--prompt",
        nargs="+",
        metavar="TEXT",
        help='a text_to_video run: clips of these prompts, e.g. --prompt "a red star moving '
        'left", written to OUT/<the motion named>/ with a JSON beside each',
    )
    p.add_argument(
        "--prompts-from",
        metavar="DATA",
        help="a text_to_video run: one clip for the prompt of each captioned video of DATA (a "
        "multimodal dataset's root: its test/ and heldout/ splits, into OUT/test and OUT/heldout)",
    )
    p.add_argument(
        "--per-prompt",
        type=positive_int,
        default=1,
        help="a text_to_video run: clips per prompt (default: %(default)s)",
    )
    p.add_argument(
        "--first-frame",
        metavar="IMAGE",
        help="a text_diffusion run, with --prompt: start every clip from this picture (resized to "
        "the run's frames)",
    )
    p.add_argument(
        "--first-frames",
        action="store_true",
        help="a text_diffusion run, with --prompts-from: start each clip from the first frame of "
        "the video its prompt was made from",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.set_defaults(func=cmd_generate)


def _add_score_generated(commands):
    p = commands.add_parser(
        "score-generated",
        help="a classifier's accuracy on generated clips and their Fréchet distance to real ones",
        description=(
            "Evaluate CLASSIFIER_RUN on GENERATED_DIR/<class>/<video> and measure the Fréchet "
            "distance between the generated and the real clips "
            "in the classifier's features (the input of its output layer); docs/design.md has the "
            "protocol. With an attributes run as the judge, GENERATED_DIR holds prompted clips "
            "(`vlm-tf generate TEXT_TO_VIDEO_RUN --prompts-from DATA`): how often the judge sees "
            "the prompted motion and colour, how often a video_text run ranks each clip's prompt "
            "first, and the Fréchet distance in the judge's features; test/ and heldout/ "
            "reported apart when both folders hold them."
        ),
    )
    p.add_argument("classifier_run", metavar="CLASSIFIER_RUN")
    p.add_argument("generated_dir", metavar="GENERATED_DIR")
    p.add_argument(
        "--real",
        required=True,
        metavar="REAL_DIR",
        help="real clips, DIR/<class>/<video> (e.g. DATA_DIR/train; a multimodal dataset's root "
        "for prompted clips from its test/ and heldout/)",
    )
    p.add_argument(
        "--reference",
        metavar="DIR",
        help=(
            "other real clips (e.g. DATA_DIR/test): their distance to --real is the floor to "
            "compare with"
        ),
    )
    p.add_argument(
        "--text-run",
        metavar="VT_RUN",
        help="an attributes judge: the video_text run that ranks each clip's prompt among all "
        "prompts (default: the one the clips' JSON files name)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_score_generated)


def add_commands(commands):
    _add_generate(commands)
    _add_score_generated(commands)
