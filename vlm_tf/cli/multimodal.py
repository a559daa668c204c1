"""Commands on a video_text run: `retrieve` (videos by a caption) and `predict --prompts` (each
video's nearest prompt, zero-shot); and the prompted side of `generate` (a text_to_video run) and
`score-generated` (an attributes run judging prompted clips).
"""

from __future__ import annotations

import json
import os

import numpy as np

from vlm_tf.cli.common import CommandError, positive_int, say


def cmd_retrieve(args):
    from vlm_tf.inference import load_run
    from vlm_tf.tasks.video_text import retrieve

    found = retrieve(load_run(args.run_dir), args.text, args.data_dir, top=args.top)
    if args.json:
        say(json.dumps(found))
        return
    for rank, item in enumerate(found, 1):
        say(f"{rank:3d}. {item['similarity']:.3f}  {item['path']}")


def cmd_predict_by_prompts(args):
    from vlm_tf.inference import load_run
    from vlm_tf.tasks.video_text import classify_by_prompts

    try:
        results = classify_by_prompts(load_run(args.run_dir), args.videos, args.prompts)
    except ValueError as error:
        raise CommandError(str(error)) from None
    if args.json:
        say(json.dumps(results))
        return
    for result in results:
        ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
        say(
            f"{result['path']}: {result['label']}  ("
            + ", ".join(f"{prompt!r} {p:.3f}" for prompt, p in ranked[: args.top])
            + ")"
        )


def split_folders(data_dir):
    """`{"test": …, "heldout": …}` where `data_dir` is a multimodal dataset's root holding both,
    else `{None: data_dir}`: the folders a prompted command reads, by the report key they fill.
    """
    splits = {name: os.path.join(data_dir, name) for name in ("test", "heldout")}
    if all(os.path.isdir(folder) for folder in splits.values()):
        return splits
    return {None: data_dir}


def cmd_generate_from_prompts(args, run):
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


def cmd_score_prompted(args, run):
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


def add_prompts_option(parser):
    """`predict`'s `--prompts`: zero-shot by a video_text run."""
    parser.add_argument(
        "--prompts",
        nargs="+",
        metavar="TEXT",
        help="a video_text run: name each VIDEO by the prompt its clip is nearest (zero-shot), "
        'e.g. --prompts "something moving left" "something growing"',
    )


def add_commands(commands):
    p = commands.add_parser(
        "retrieve",
        help="the videos of a folder nearest a caption, by a video_text run",
        description="Rank the videos under DATA_DIR (any depth) by how near each clip's embedding "
        "lies to TEXT's, with a video_text run (`train --task video_text`).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--text", required=True, help='the caption, e.g. "a red star moving left"')
    p.add_argument(
        "--top", type=positive_int, default=5, help="videos listed (default: %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_retrieve)
