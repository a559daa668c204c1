"""Generated clips: `generate` writes a run's clips as videos (a class GAN's, a folder per class;
a text_to_video run's, from prompts, with a JSON beside each), `score-generated` judges them (a
classifier's accuracy and Fréchet distance; an attributes run's agreement with the prompts).
"""

from __future__ import annotations

import json
import os

from vlm_tf.cli.common import CommandError, number_type, positive_int, say


def cmd_generate(args):
    from vlm_tf.inference import load_run
    from vlm_tf.tasks.base import GenerationRequest

    # An empty folder will do (a user may have made it); one with files in it is never added to.
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise CommandError(f"{args.out} already exists and is not empty; choose another folder")
    run = load_run(args.run_dir)
    request = GenerationRequest(
        per_class=args.per_class,
        prompts=tuple(args.prompt or ()),
        prompts_from=args.prompts_from,
        per_prompt=args.per_prompt,
        first_frame=args.first_frame,
        first_frames=args.first_frames,
        seed=args.seed,
        truncation=args.truncation,
        rerank=args.rerank,
    )
    say("\n".join(run.task_object().generate(run, args.out, request)))


def cmd_score_generated(args):
    from vlm_tf.inference import load_run

    judge = load_run(args.classifier_run)
    text_run = args.text_run or _text_run_of(args.generated_dir)
    report = judge.task_object().score_generated(
        judge,
        args.generated_dir,
        args.real,
        reference_dir=args.reference,
        text_run=load_run(text_run) if text_run else None,
    )
    say(json.dumps(report.to_dict()) if args.json else "\n".join(report.lines()))


def _text_run_of(generated_dir):
    """The video_text run named in the first generated clip's JSON (`text_run`), if it exists:
    prompted clips say which run embedded their words.
    """
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
    p.add_argument(
        "--truncation",
        type=number_type(float, lambda v: v >= 0, "a number of 0 or more"),
        default=1.0,
        metavar="T",
        help=(
            "a text_gan run: draw its noise with standard deviation T; below 1, clips truer to "
            "the prompt and less varied (0.5 lifted motion from 0.52 to 0.60 in docs/design.md) "
            "(default: %(default)s)"
        ),
    )
    p.add_argument(
        "--rerank",
        type=positive_int,
        default=1,
        metavar="K",
        help=(
            "a text_to_video run: draw K candidates of each clip and keep the one its video_text "
            "run (the one given to train as --text-run) finds nearest the prompt, as DALL·E "
            "reranks by CLIP; K times the drawing (default: %(default)s: the first drawn)"
        ),
    )
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
