"""Commands for trusting a model and its data (§8.2): `explain`, `anonymize`, `make-key`,
`decrypt`."""

from __future__ import annotations

import json
import os

from vlm_tf.cli.common import (
    CommandError,
    name_list,
    positive_int,
    print_report,
    refuse_existing,
    say,
)

# Named here, not imported from vlm_tf.tasks.explain, so that `--help` needs no TensorFlow.
METHODS = ("gradcam", "rollout", "occlusion", "integrated-gradients")


method_list = name_list("method", lambda: METHODS)


def cmd_explain(args):
    if args.score:
        if args.out is not None or args.target is not None:
            raise CommandError("--score scores every video of a folder; drop --out and --target")
        if not os.path.isdir(args.path):
            raise CommandError(
                f"{args.path}: --score expects a folder of class folders of videos with box files"
            )
        from vlm_tf.inference import load_run
        from vlm_tf.tasks.explanation_scores import score_explanations

        report = score_explanations(
            load_run(args.run_dir),
            args.path,
            methods=args.methods or ([args.method] if args.method else None),
            max_videos=args.max_videos,
            seed=args.seed,
            strict=args.strict,
        )
    else:
        if args.methods is not None or args.max_videos is not None:
            raise CommandError("--methods and --max-videos go with --score")
        if os.path.isdir(args.path):
            raise CommandError(
                f"{args.path} is a folder; explain one video with --out FILE, or score the "
                "methods on a folder of videos with box files with --score"
            )
        if not os.path.isfile(args.path):
            raise CommandError(f"{args.path}: no such file")
        if args.out is None:
            raise CommandError("explain VIDEO needs --out FILE (the video of heat maps to write)")
        refuse_existing(args.out)
        refuse_existing(os.path.splitext(args.out)[0] + ".png")
        from vlm_tf.inference import load_run
        from vlm_tf.tasks.explain import explain_video

        report = explain_video(
            load_run(args.run_dir), args.path, args.out, method=args.method, target=args.target
        )
    print_report(report, args.json)


def _add_explain(commands):
    p = commands.add_parser(
        "explain",
        help=(
            "where and when a classify run looked: heat maps over VIDEO's frames written as a "
            "video and a frame grid, with each frame's importance; or, with --score, how well "
            "each method finds the objects of a folder of videos with box files"
        ),
        description=(
            "Explain the class a classify run gives VIDEO (or --target's) by --method, over the "
            "clip `evaluate` reads. Writes FILE (each frame beside its heat map) and FILE's name "
            "with .png (the frames, the heat maps and a bar per frame for how much removing it "
            "lowers the class's probability). With --score: the pointing game, the heat inside "
            "the boxes, and deletion/insertion curves of every method on DIR's videos, next to "
            "a random and a centre map (docs/explanations.md)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("path", metavar="VIDEO|DIR", help="a video, or with --score a folder")
    p.add_argument("--out", metavar="FILE", help="the video to write (.mp4, .avi, ...)")
    p.add_argument(
        "--method",
        choices=METHODS,
        help="gradcam, rollout (transformers only), occlusion or integrated-gradients (default: "
        "rollout for a transformer, integrated-gradients for every other model)",
    )
    p.add_argument("--target", metavar="CLASS", help="the class to explain (default: the label)")
    p.add_argument(
        "--score",
        action="store_true",
        help="score the methods on DIR/<class>/<video> files that have box files (make-data's)",
    )
    p.add_argument(
        "--methods",
        type=method_list,
        metavar="LIST",
        help="with --score: the methods, separated by commas (default: every one that applies)",
    )
    p.add_argument(
        "--max-videos",
        type=positive_int,
        metavar="N",
        help="with --score: this many videos, spread over the folder (default: all)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="with --score: the random baselines' seed (default: 0)"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="with --score: stop at the first unreadable video or box file instead of skipping it",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_explain)


def cmd_anonymize(args):
    if not os.path.exists(args.source):
        raise CommandError(f"{args.source}: no such file or directory")
    faces = args.faces or not args.people
    from vlm_tf.anonymize import anonymize_folder, anonymize_video

    if os.path.isdir(args.source):
        if os.path.isfile(args.out):
            raise CommandError(f"{args.source} is a folder: OUT must be a folder too, not a file")
        reports = anonymize_folder(
            args.source, args.out, faces=faces, people=args.people, method=args.method
        )
    else:
        refuse_existing(args.out)
        reports = [
            anonymize_video(
                args.source, args.out, faces=faces, people=args.people, method=args.method
            )
        ]
    summaries = [
        {key: value for key, value in report.items() if key != "hidden"} for report in reports
    ]
    if args.json:
        say(json.dumps(summaries))
        return
    for summary in summaries:
        say(
            f"{summary['out']}: {summary['frames_hidden']} of {summary['frames']} frames with "
            f"something hidden ({summary['frames_with_detections']} with a detection), "
            f"{summary['method']}; per frame: {os.path.splitext(summary['out'])[0]}.json"
        )


def _add_anonymize(commands):
    p = commands.add_parser(
        "anonymize",
        help="write videos with faces (and people) hidden, and what was hidden in each frame",
        description=(
            "Hide the faces (--faces, the default) and/or whole people (--people) of a video, or "
            "of every video under a folder, by MediaPipe's face and pose detectors (read from "
            "the mediapipe 0.10.21 wheel: pip install --no-deps mediapipe==0.10.21). Writes OUT "
            "(the video, or the folder's videos at the same places) and beside each a .json of "
            "the boxes hidden in every frame. Sound is not carried over."
        ),
    )
    p.add_argument("source", metavar="IN", help="a video, or a folder of videos")
    p.add_argument("out", metavar="OUT", help="the video (or, for a folder, the folder) to write")
    p.add_argument("--faces", action="store_true", help="hide faces (the default)")
    p.add_argument("--people", action="store_true", help="hide whole people")
    p.add_argument(
        "--method",
        choices=("blur", "pixelate", "box"),
        default="blur",
        help="how a box is hidden (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON list, a summary per video")
    p.set_defaults(func=cmd_anonymize)


def cmd_make_key(args):
    from vlm_tf import crypto

    key = crypto.make_key(args.key_file)
    if args.json:
        say(json.dumps({"key_file": os.path.abspath(args.key_file), "key_id": key.key_id}))
    else:
        say(
            f"{args.key_file}: a new {crypto.CIPHER} key, id {key.key_id}; keep it apart from "
            "the data"
        )


def _add_make_key(commands):
    p = commands.add_parser(
        "make-key",
        help="write a new random key for --encrypt-key-file",
        description=(
            "Write a new random 256-bit key to KEY_FILE (64 hex digits, readable by its owner "
            "only; an existing file is never overwritten). Any command given "
            "--encrypt-key-file KEY_FILE writes the run folders and video caches it makes "
            "encrypted with AES-256-GCM and reads encrypted ones back; keep the file apart "
            "from the data: without it nothing written with it can be read."
        ),
    )
    p.add_argument("key_file", metavar="KEY_FILE", help="the key file to write")
    p.add_argument("--json", action="store_true", help="print the key's id as JSON")
    p.set_defaults(func=cmd_make_key)


def cmd_decrypt(args):
    from vlm_tf import atomic, crypto

    source, out = os.fspath(args.source), os.fspath(args.out)
    if not os.path.exists(source):
        raise CommandError(f"{source}: no such file or folder")
    sealed = crypto.sealed_folder(source)
    if sealed is None:
        raise CommandError(f"{source} is not in an encrypted folder; there is nothing to decrypt")
    refuse_existing(out)
    inside = crypto.sealed_folder(out)
    if inside is not None:
        raise CommandError(f"{out} is inside the encrypted folder {inside}")
    crypto.key_for(source)
    if os.path.isfile(source):
        files = {out: source}
    else:
        files = {
            os.path.join(out, os.path.relpath(os.path.join(parent, name), source)): os.path.join(
                parent, name
            )
            for parent, _, names in os.walk(source)
            for name in names
            if name not in (crypto.MARKER, atomic.LOCK_FILE)
            and not name.startswith(atomic.PARTIAL_PREFIX)
        }
    for destination, path in sorted(files.items()):
        atomic.write_bytes(destination, crypto.read_bytes(path))
    if args.json:
        say(json.dumps({"out": os.path.abspath(out), "files": len(files), "folder": sealed}))
        return
    say(
        f"{out}: {len(files)} file(s) of {sealed} decrypted, in the clear (for TensorBoard, say); "
        "remove them when done"
    )


def _add_decrypt(commands):
    p = commands.add_parser(
        "decrypt",
        help="write a plain copy of a file or folder of an encrypted run (for TensorBoard)",
        description=(
            "Write OUT, a decrypted copy of SOURCE: a file or folder inside a run folder or video "
            "cache written with --encrypt-key-file (its logs/ for TensorBoard, say). Every vlm-tf "
            "command reads encrypted runs as they are; this is for other programs, and what it "
            "writes is in the clear."
        ),
    )
    p.add_argument("source", metavar="SOURCE", help="a file or folder of an encrypted run")
    p.add_argument("out", metavar="OUT", help="the file or folder to write (must not exist)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=cmd_decrypt)


def add_key_option(parser):
    """`--encrypt-key-file`, which every command takes (`vlm_tf.crypto`)."""
    parser.add_argument(
        "--encrypt-key-file",
        metavar="KEY",
        help=(
            "encrypt the run folders and video caches this command makes with the key in KEY "
            "(AES-256-GCM; `vlm-tf make-key KEY` writes one), and read encrypted ones back"
        ),
    )


def add_commands(commands):
    _add_explain(commands)
    _add_anonymize(commands)
    _add_make_key(commands)
    _add_decrypt(commands)
