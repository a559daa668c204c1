"""Commands on a video_text run: `retrieve` (videos by a caption) and `predict --prompts` (each
video's nearest prompt, zero-shot).
"""

from __future__ import annotations

import json

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
