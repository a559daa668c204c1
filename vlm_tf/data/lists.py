"""Labelled videos named by list files, as public datasets ship them, beside class folders.

Every command that takes classification data takes, where it takes
`DATA_DIR/<class>/<video>`, also:

- a UCF101-style folder: `classInd.txt` (`1 ApplyEyeMakeup`, numbered
  from 1) and `trainlistNN.txt` / `testlistNN.txt` (`Class/video.avi 1`,
  the test lists without the number), video paths relative to the folder.
  Training reads split 01's train list, evaluation its test list; a list
  file given itself (`DATA/trainlist02.txt`) picks another split.
- a CSV file with a header. Kinetics-style: `label`, `youtube_id` or
  `path`, `time_start` and `time_end` in seconds, `split`
  (`train` / `val` / `test`); a row names the clip from `time_start` to
  `time_end` of its video. A `youtube_id` names `<id>_<start>_<end>.<ext>`
  (six-digit seconds: a clip the downloader already cut) or `<id>.<ext>`
  (the whole video, cut here by time) anywhere under the CSV's folder.
- a plain CSV: `path,label` rows, with or without that header.

Paths are relative to the list file's folder, or absolute. Training takes the `train` rows (all
rows without a `split` column) and validates on the `val` rows (else on a
share of the training rows, as for folders); evaluation takes the `test`
rows, or every row of a list without any.

A list's videos are a `VideoList`, which the folder readers of
`vlm_tf.data.splits` take wherever they take a folder, so datasets, views
and the cache need nothing else. No TensorFlow here.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os

from vlm_tf.data.decode import VIDEO_EXTENSIONS, segment_path
from vlm_tf.data.names import check_name

UCF_CLASS_INDEX = "classInd.txt"
DEFAULT_UCF_SPLIT = "01"
# `split` column values and the part of the data each names.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
ID_COLUMNS = ("path", "youtube_id")


@dataclasses.dataclass(frozen=True)
class VideoList:
    """Videos and labels read from a list file: what a class folder holds, named by a list.

    `paths` may name time ranges of videos (`vlm_tf.data.decode.segment_path`).
    `source` is the list file (and its part), for messages and run records.
    """

    source: str
    paths: tuple
    labels: tuple
    class_names: tuple

    def __str__(self):
        return self.source


def is_list_source(data):
    """Whether `data` names list-file data (a CSV file, a UCF101-style list or folder)."""
    if isinstance(data, VideoList):
        return True
    data = os.fspath(data)
    if os.path.isdir(data):
        return os.path.isfile(os.path.join(data, UCF_CLASS_INDEX))
    return data.lower().endswith((".csv", ".txt"))


def training_lists(data):
    """`(train, val or None)` `VideoList`s of list-file data (`is_list_source`)."""
    data = _existing(data)
    if data.lower().endswith(".csv"):
        rows = _read_csv(data)
        has_split = any(row.split for row in rows)
        train = [row for row in rows if row.split == "train"] if has_split else rows
        if not train:
            raise ValueError(f"{data}: no rows with split 'train' to train on")
        val = [row for row in rows if row.split == "val"]
        class_names = sorted({row.label for row in train + val})
        return _video_list(f"{data} (train)", train, class_names), (
            _video_list(f"{data} (val)", val, class_names) if val else None
        )
    listed = _ucf_list_file(data, "train")
    return _read_ucf_list(listed), None


def evaluation_list(data):
    """The `VideoList` list-file data is evaluated on: the test rows or list (`is_list_source`)."""
    data = _existing(data)
    if data.lower().endswith(".csv"):
        rows = _read_csv(data)
        test = [row for row in rows if row.split == "test"]
        rows, part = (test, f"{data} (test)") if test else (rows, data)
        return _video_list(part, rows, sorted({row.label for row in rows}))
    return _read_ucf_list(_ucf_list_file(data, "test"))


def ucf_split_file(folder, split, part):
    """`folder/trainlistNN.txt` (`part="train"`) or `testlistNN.txt` for `split` `"NN"`."""
    split = str(split)
    if not split.isdigit():
        raise ValueError(f"--split takes a split number such as 01, received {split!r}")
    path = os.path.join(os.fspath(folder), f"{part}list{int(split):02d}.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no such list file (split {split} of a UCF101-style folder)"
        )
    return path


# --- reading ---


@dataclasses.dataclass(frozen=True)
class _Row:
    path: str
    label: str
    split: str | None = None


def _existing(data):
    data = os.fspath(data)
    if not os.path.exists(data):
        raise FileNotFoundError(f"{data}: no such file or directory")
    return data


def _video_list(source, rows, class_names):
    index = {name: i for i, name in enumerate(class_names)}
    return VideoList(
        source,
        tuple(row.path for row in rows),
        tuple(index[row.label] for row in rows),
        tuple(class_names),
    )


def _ucf_list_file(data, part):
    if os.path.isdir(data):
        return ucf_split_file(data, DEFAULT_UCF_SPLIT, part)
    return data


def _read_ucf_list(list_file):
    """The videos of a UCF101 `trainlistNN.txt` or `testlistNN.txt`, `classInd.txt` beside it."""
    folder = os.path.dirname(os.path.abspath(list_file))
    class_file = os.path.join(folder, UCF_CLASS_INDEX)
    if not os.path.isfile(class_file):
        raise FileNotFoundError(
            f"{class_file}: no such file (a UCF101-style list needs the class index beside it)"
        )
    numbered = {}
    for number, fields in _lines(class_file):
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{class_file}:{number}: expected '<number> <class>', got {fields}")
        numbered[int(fields[0])] = check_name(
            fields[1], source=f"{class_file}:{number}", what="class"
        )
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ValueError(f"{class_file}: classes must be numbered 1 to {len(numbered)}")
    class_names = [numbered[i] for i in sorted(numbered)]
    rows = []
    for number, fields in _lines(list_file):
        where = f"{list_file}:{number}"
        if len(fields) not in (1, 2) or (len(fields) == 2 and not fields[1].isdigit()):
            raise ValueError(f"{where}: expected '<class>/<video> [<class number>]', got {fields}")
        relative = fields[0].replace("\\", "/")
        if len(fields) == 2:
            label = numbered.get(int(fields[1]))
            if label is None:
                raise ValueError(f"{where}: class number {fields[1]} is not in {class_file}")
        else:
            # Test lists carry no number: the class is the video's folder.
            label = relative.split("/")[0]
            if label not in class_names:
                raise ValueError(f"{where}: folder {label!r} is not a class of {class_file}")
        rows.append(_Row(_resolve(folder, relative), label))
    if not rows:
        raise ValueError(f"{list_file}: lists no videos")
    return _video_list(list_file, rows, class_names)


def _lines(path):
    """`(line number, fields)` of the non-blank lines of a whitespace-separated text file."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield number, line.split()


def _read_csv(path):
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        table = [(number, row) for number, row in enumerate(csv.reader(f), 1) if any(row)]
    if not table:
        raise ValueError(f"{path}: empty CSV file (expected path,label rows or Kinetics columns)")
    header = [name.strip().lower() for name in table[0][1]]
    folder = os.path.dirname(os.path.abspath(path))
    if "label" in header and any(column in header for column in ID_COLUMNS):
        # Walked once, when the first row naming its video by id needs it.
        stems = functools.cache(lambda: _video_stems(folder))
        rows = []
        for number, row in table[1:]:
            where = f"{path}:{number}"
            if len(row) != len(header):
                raise ValueError(
                    f"{where}: expected {len(header)} fields ({', '.join(header)}), got {row}"
                )
            rows.append(_kinetics_row(folder, stems, where, dict(zip(header, row))))
        return rows
    rows = []
    for number, row in table:
        where = f"{path}:{number}"
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(
                f"{where}: expected 'path,label' (or a header with label and path or youtube_id), "
                f"got {row}"
            )
        label = check_name(row[1].strip(), source=where, what="label")
        rows.append(_Row(_resolve(folder, row[0].strip()), label))
    return rows


def _kinetics_row(folder, stems, where, row):
    label = (row.get("label") or "").strip()
    if not label:
        raise ValueError(f"{where}: no label")
    check_name(label, source=where, what="label")
    times = [(row.get(name) or "").strip() for name in ("time_start", "time_end")]
    try:
        start, end = (float(value) for value in times) if all(times) else (None, None)
    except ValueError:
        raise ValueError(f"{where}: time_start and time_end must be seconds, got {times}") from None
    split = (row.get("split") or "").strip().lower() or None
    if split is not None and split not in SPLIT_NAMES:
        raise ValueError(f"{where}: split {split!r} is not one of {', '.join(sorted(SPLIT_NAMES))}")
    split = SPLIT_NAMES.get(split)
    given = (row.get("path") or "").strip()
    if given:
        video = _resolve(folder, given)
        return _Row(video if start is None else segment_path(video, start, end), label, split)
    video_id = (row.get("youtube_id") or "").strip()
    if not video_id:
        raise ValueError(f"{where}: no path or youtube_id")
    return _Row(_find_by_id(stems, folder, video_id, start, end), label, split)


def _find_by_id(stems, folder, video_id, start, end):
    """The clip a Kinetics row names: the downloader's cut file, else the whole video cut here.

    `stems()` maps the file names (without extension) of the videos under
    `folder` to their paths. Not found, the clip is named as the cut file
    would be, so the dataset reports it missing (`file not found`) like any
    other listed video.
    """
    if start is None:
        names = [video_id]
    else:
        names = [f"{video_id}_{int(start):06d}_{int(end):06d}", video_id]
    found = stems()
    for name in names:
        if name in found:
            cut_here = name == video_id and start is not None
            return segment_path(found[name], start, end) if cut_here else found[name]
    return os.path.join(folder, names[0] + ".mp4")


def _video_stems(folder):
    """`{file name without extension: path}` of the videos under `folder`, at any depth."""
    stems = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            stem, extension = os.path.splitext(name)
            if extension.lower() in VIDEO_EXTENSIONS:
                stems.setdefault(stem, os.path.join(root, name))
    return stems


def _resolve(folder, path):
    """A listed video's path: relative to the list's `folder`, or absolute. Reading a video the
    list names wherever it lies is what a list is for; nothing is written there.
    """
    return os.path.normpath(os.path.join(folder, path))
