"""`vlm-tf make-data`: the synthetic datasets as real video files."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from vlm_tf.cli.common import CommandError, non_negative_int, positive_int, say
from vlm_tf.data import lists, synthetic
from vlm_tf.data.corpus import DEFAULT_CORPUS_VIDEOS
from vlm_tf.data.detection import DEFAULT_DETECTION_VIDEOS
from vlm_tf.data.multimodal import DEFAULT_HELDOUT_PER_PAIR

DATA_DEFAULTS = {
    "videos_per_class": synthetic.DEFAULT_VIDEOS_PER_CLASS,
    "frames": synthetic.DEFAULT_NUM_FRAMES,
    "size": synthetic.DEFAULT_SIZE,
    "seed": 0,
}


def make_classification_data(out_dir, *, videos_per_class, frames, size, seed):
    """Writes the motion dataset with progress on stderr; returns its manifest."""
    interactive = sys.stderr.isatty()

    def progress(done, total):
        # One line rewritten in a terminal; a line per quarter in a log file.
        if interactive and (done == total or done % 40 == 0):
            print(
                f"\r  wrote {done}/{total} videos",
                end="\n" if done == total else "",
                file=sys.stderr,
                flush=True,
            )
        elif not interactive and done % max(1, total // 4) == 0:
            print(f"  wrote {done}/{total} videos", file=sys.stderr, flush=True)

    manifest = synthetic.write_dataset(
        out_dir,
        videos_per_class=videos_per_class,
        num_frames=frames,
        size=size,
        seed=seed,
        progress=progress,
    )
    say(
        f"dataset: {out_dir} ({len(manifest['classes'])} classes, splits {manifest['splits']} "
        "videos per class)"
    )
    return manifest


def make_data_command(out_dir, manifest):
    """The `vlm-tf make-data` command that writes the dataset of `manifest` into `out_dir`.

    None for a manifest no make-data option set writes.
    """
    if manifest.get("generator") == "vlm_tf.data.corpus":
        options = ["--task", "pretrain", "--videos", manifest.get("videos"), "--seed"]
        return shlex.join(
            ["vlm-tf", "make-data", out_dir, *map(str, [*options, manifest.get("seed")])]
        )
    if manifest.get("generator") == "vlm_tf.data.detection":
        options = ["--task", "detect", "--videos", manifest.get("videos")]
    elif manifest.get("generator") == "vlm_tf.data.synthetic":
        options = ["--videos-per-class", manifest.get("videos_per_class")]
    elif manifest.get("generator") == "vlm_tf.data.multimodal":
        options = ["--task", "multimodal", "--videos-per-class", manifest.get("videos_per_class")]
        options += ["--heldout-per-pair", manifest.get("heldout_per_pair")]
    else:
        return None
    options += ["--video-frames", manifest.get("num_frames"), "--size", manifest.get("size")]
    options += ["--seed", manifest.get("seed")]
    if None in options:
        return None
    return shlex.join(["vlm-tf", "make-data", out_dir, *map(str, options)])


def data_argument(data, split, part):
    """DATA as `train` (`part="train"`) or `evaluate` (`"test"`) reads it: a folder, a CSV file,
    a UCF101-style folder or list file (`vlm_tf.data.lists`); with `--split NN`, that split's list
    of a UCF101-style folder.
    """
    if not os.path.exists(data):
        raise CommandError(f"{data}: no such file or directory")
    if split is None and os.path.isdir(data) and lists.is_list_source(data):
        # The list read is named, so that the run records it.
        split = lists.DEFAULT_UCF_SPLIT
    if split is not None:
        if not (os.path.isdir(data) and lists.is_list_source(data)):
            raise CommandError(
                f"{data}: --split picks the lists of a UCF101-style folder, and this one holds no "
                f"{lists.UCF_CLASS_INDEX}"
            )
        return lists.ucf_split_file(data, split, part)
    if os.path.isfile(data) and not lists.is_list_source(data):
        raise CommandError(
            f"{data}: expected a folder of class folders, a UCF101-style folder or list (.txt), "
            "or a CSV file"
        )
    return data


def add_split_option(parser):
    parser.add_argument(
        "--split",
        metavar="NN",
        help=(
            "with a UCF101-style DATA folder (classInd.txt, trainlistNN.txt, testlistNN.txt): the "
            f"split to read (default: {lists.DEFAULT_UCF_SPLIT})"
        ),
    )


def refuse_unfinished_dataset(data_dir):
    """Raises a one-line CommandError if `data_dir`'s `dataset.json` says make-data stopped early.

    Such a folder lacks videos of whole classes or splits (a full disk, a
    kill): a run would train or score on part of it without a word.
    """
    unfinished = synthetic.unfinished_manifest(data_dir)
    if unfinished is None:
        return
    path, manifest = unfinished
    command = make_data_command(os.path.dirname(path), manifest)
    finish = (
        f"finish it with `{command}` (it writes the dataset again from the start)"
        if command
        else "finish writing it"
    )
    raise CommandError(
        f"{path}: the dataset is incomplete (make-data stopped before the end); {finish}, or pass "
        "--allow-incomplete to use the videos there are"
    )


def _progress(done, total):
    # A line per tenth: the corpus takes minutes.
    if done == total or done % max(1, total // 10) == 0:
        print(f"  wrote {done}/{total} videos", file=sys.stderr, flush=True)


def cmd_make_data(args):
    if args.task == "pretrain":
        from vlm_tf.data.corpus import write_pretraining_corpus

        manifest = write_pretraining_corpus(
            args.out_dir,
            videos=args.videos or DEFAULT_CORPUS_VIDEOS,
            seed=args.seed,
            progress=_progress,
        )
        sources = manifest["sources"]
        say(
            f"corpus: {args.out_dir} (unlabeled, splits {manifest['splits']} videos; "
            f"{len(sources['photographs'])} photographs, {len(sources['footage'])} footage clips, "
            f"{len(sources['generators'])} FFmpeg sources)"
        )
        return
    if args.task == "multimodal":
        from vlm_tf.data.multimodal import write_multimodal_dataset

        manifest = write_multimodal_dataset(
            args.out_dir,
            videos_per_class=args.videos_per_class,
            heldout_per_pair=args.heldout_per_pair,
            num_frames=args.video_frames,
            size=args.size,
            seed=args.seed,
            progress=_progress,
        )
        held = (
            f"the heldout split holds the {len(manifest['held_out_pairs'])} colour-motion pairs "
            "the others never show"
            if manifest["held_out_pairs"]
            else "no colour-motion pair held out"
        )
        say(
            f"dataset: {args.out_dir} (video, captions and sound: {len(manifest['classes'])} "
            f"motions, splits {manifest['splits']} videos per motion; {held})"
        )
        return
    if args.task == "detect":
        from vlm_tf.data.detection import write_detection_dataset

        manifest = write_detection_dataset(
            args.out_dir,
            videos=args.videos or DEFAULT_DETECTION_VIDEOS,
            num_frames=args.video_frames,
            size=args.size,
            seed=args.seed,
        )
        say(
            f"dataset: {args.out_dir} (detection: {len(manifest['classes'])} shape classes, "
            f"1-{manifest['max_objects']} objects a video, splits {manifest['splits']} videos)"
        )
        return
    make_classification_data(
        args.out_dir,
        videos_per_class=args.videos_per_class,
        frames=args.video_frames,
        size=args.size,
        seed=args.seed,
    )


class _RenamedOption(argparse.Action):
    """make-data's old `--frames`: refused in one line that names the option to use."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            "--frames is the frames per clip of train and evaluate; a video's frames are "
            "--video-frames"
        )


def add_commands(commands):
    p = commands.add_parser(
        "make-data",
        help="write the synthetic motion dataset as real video files",
        description="Write OUT_DIR/{train,val,test}/<class>/<name>.mp4 plus a box file per video.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument(
        "--videos-per-class",
        type=positive_int,
        default=DATA_DEFAULTS["videos_per_class"],
        help="videos per class over all splits, 70/15/15 (default: %(default)s)",
    )
    p.add_argument(
        "--video-frames",
        type=positive_int,
        default=DATA_DEFAULTS["frames"],
        help="frames per video (default: %(default)s)",
    )
    # Everywhere else --frames is a clip's length; a video's here would mean two things.
    p.add_argument("--frames", action=_RenamedOption, help=argparse.SUPPRESS)
    p.add_argument(
        "--size",
        type=positive_int,
        default=DATA_DEFAULTS["size"],
        help="frame height and width in pixels (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DATA_DEFAULTS["seed"],
        help="dataset seed (default: %(default)s)",
    )
    p.add_argument(
        "--task",
        choices=["classify", "detect", "pretrain", "multimodal"],
        default="classify",
        help=(
            "classify: the eight motion classes; detect: OUT_DIR/{train,val,test}/clip_NNNN.mp4 "
            "with 1-3 moving shapes each and their boxes; multimodal: the motion classes with "
            "sound in each video and captions beside it, and a heldout/ split of colour-motion "
            "pairs the others never show (vlm_tf.data.multimodal); pretrain: OUT_DIR/{train,val}/"
            "clip_NNNNN.<ext>, unlabeled camera moves over real photographs, real footage and "
            "FFmpeg's moving sources in mixed sizes, rates and codecs (--video-frames and --size "
            "do not apply; vlm_tf.data.corpus) (default: %(default)s)"
        ),
    )
    p.add_argument(
        "--videos",
        type=positive_int,
        help=(
            f"--task detect: videos over all splits, 70/15/15 (default: {DEFAULT_DETECTION_VIDEOS}"
            f"); --task pretrain: videos, 90/10 (default: {DEFAULT_CORPUS_VIDEOS})"
        ),
    )
    p.add_argument(
        "--heldout-per-pair",
        type=non_negative_int,
        default=DEFAULT_HELDOUT_PER_PAIR,
        help=(
            "--task multimodal: videos of each held-out colour-motion pair in heldout/; 0 holds "
            "no pair out (data for an attributes judge of every composition) (default: "
            "%(default)s)"
        ),
    )
    p.set_defaults(func=cmd_make_data)
