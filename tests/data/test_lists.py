"""Data named by list files (UCF101 split lists, Kinetics-style and plain CSV) on real encoded
videos: the lists read as the class folders they stand for, clips cut by time decode as the frames
of their time range, and `train` / `evaluate` take them from the command line.
"""

import json
import os
import shutil

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.data import read_frames, write_video
from vlm_tf.data.cache import DecodedVideos
from vlm_tf.data.decode import VideoReadError, probe_video, segment_path
from vlm_tf.data.lists import evaluation_list, training_lists
from vlm_tf.data.splits import find_split_dirs, index_directory
from vlm_tf.metrics import classification_report

FPS = 10


def _numbered_frames(count, size=16):
    """Frames whose grey level is their number × 6: which frame came out is plain to see."""
    return np.stack([np.full((size, size, 3), 6 * i, np.uint8) for i in range(count)])


def _class_videos(root, tiny_dataset, split):
    """`{class: [relative paths]}` of tiny_dataset's `split`, copied under `root`."""
    videos = {}
    for folder in sorted((tiny_dataset / split).iterdir()):
        for video in sorted(folder.glob("*.mp4")):
            target = root / folder.name / f"{split}_{video.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(video, target)
            videos.setdefault(folder.name, []).append(f"{folder.name}/{target.name}")
    return videos


@pytest.fixture(scope="module")
def ucf_folder(tiny_dataset, tmp_path_factory):
    """tiny_dataset laid out as UCF101 ships: class folders, classInd.txt and split 01's lists
    (test lines without a class number, Windows line ends as in the original files).
    """
    root = tmp_path_factory.mktemp("ucf")
    train = _class_videos(root, tiny_dataset, "train")
    test = _class_videos(root, tiny_dataset, "test")
    names = sorted(train)
    (root / "classInd.txt").write_text(
        "".join(f"{i + 1} {name}\r\n" for i, name in enumerate(names))
    )
    (root / "trainlist01.txt").write_text(
        "".join(f"{path} {names.index(name) + 1}\r\n" for name in names for path in train[name])
    )
    (root / "testlist01.txt").write_text(
        "".join(f"{path}\r\n" for name in names for path in test[name])
    )
    return root


def test_a_time_range_decodes_as_the_frames_it_names(tmp_path):
    video = write_video(tmp_path / "long.avi", _numbered_frames(30), fps=FPS)
    clip = segment_path(video, 1.0, 2.5)
    whole = read_frames(video)
    assert probe_video(clip).num_frames == 15
    np.testing.assert_array_equal(read_frames(clip), whole[10:25])
    np.testing.assert_array_equal(read_frames(clip, [0, 3, 14]), whole[[10, 13, 24]])
    np.testing.assert_array_equal(
        DecodedVideos("memory", (16, 16)).read(clip, [0, 14]), whole[[10, 24]]
    )
    # A range running past the end keeps the frames there are.
    assert probe_video(segment_path(video, 2.5, 9.0)).num_frames == 5
    with pytest.raises(VideoReadError, match="starts after the video's 30 frames"):
        probe_video(segment_path(video, 4.0, 5.0))
    with pytest.raises(VideoReadError, match="time range of 15 frames"):
        read_frames(clip, [15])


def test_ucf_lists_read_as_the_class_folders_they_list(ucf_folder, tiny_dataset):
    train, val = find_split_dirs(ucf_folder)
    assert val is None and train.source == str(ucf_folder / "trainlist01.txt")
    paths, labels, class_names = index_directory(train)
    folder_paths, folder_labels, folder_classes = index_directory(tiny_dataset / "train")
    assert class_names == folder_classes and labels == folder_labels
    assert [os.path.relpath(p, ucf_folder) for p in paths] == [
        os.path.join(os.path.basename(os.path.dirname(p)), "train_" + os.path.basename(p))
        for p in folder_paths
    ]
    test = evaluation_list(ucf_folder)
    assert test.labels == tuple(index_directory(tiny_dataset / "test")[1])

    from vlm_tf.data import video_dataset_from_list

    dataset = video_dataset_from_list(
        ucf_folder, part="test", num_frames=4, image_size=(16, 16), shuffle=False
    )
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in dataset])
    assert labels.tolist() == list(test.labels) and dataset.class_names == folder_classes


def test_csv_lists_kinetics_style_and_plain(tmp_path):
    (tmp_path / "videos").mkdir()
    long = write_video(tmp_path / "videos" / "abc.avi", _numbered_frames(40), fps=FPS)
    cut = write_video(tmp_path / "videos" / "xyz_000002_000004.avi", _numbered_frames(20), fps=FPS)
    (tmp_path / "kinetics.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "waving,abc,0,2,train\n"
        "clapping,abc,2,4,train\n"
        "waving,xyz,2,4,val\n"
        "clapping,missing,0,1,test\n"
    )
    train, val = training_lists(tmp_path / "kinetics.csv")
    assert train.paths == (segment_path(long, 0, 2), segment_path(long, 2, 4))
    assert train.class_names == ("clapping", "waving") and train.labels == (1, 0)
    # The downloader's file, already cut, is read whole.
    assert val.paths == (cut,) and val.labels == (1,)
    test = evaluation_list(tmp_path / "kinetics.csv")
    assert test.paths == (str(tmp_path / "missing_000000_000001.mp4"),)

    (tmp_path / "plain.csv").write_text(
        "videos/abc.avi,waving\nvideos/xyz_000002_000004.avi,clapping\n"
    )
    (tmp_path / "header.csv").write_text("path,label\n" + (tmp_path / "plain.csv").read_text())
    for name in ("plain.csv", "header.csv"):
        train, val = training_lists(tmp_path / name)
        assert val is None and train.paths == (long, cut) and train.labels == (1, 0)


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("bad.csv", "path,label\nonly-a-path\n", "bad.csv:2: expected 2 fields (path, label)"),
        ("plain.csv", "a.mp4,x,y\n", "plain.csv:1: expected 'path,label'"),
        ("ids.csv", "label,youtube_id,time_start,time_end\nx,abc,one,2\n", "ids.csv:2: time_start"),
        ("split.csv", "label,path,split\nx,a.mp4,holdout\n", "split.csv:2: split 'holdout'"),
        ("trainlist01.txt", "a/v.avi 1\n", "classInd.txt: no such file"),
        ("label.csv", "path,label\na.mp4,../up\n", "label.csv:2: label '../up'"),
    ],
)
def test_bad_lists_are_refused_naming_the_file_and_line(tmp_path, name, text, needle):
    (tmp_path / name).write_text(text)
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        training_lists(tmp_path / name)
    assert needle in str(error.value).replace(str(tmp_path) + "/", "")


def test_a_listed_class_without_a_training_video_is_refused(tmp_path):
    from vlm_tf.data.splits import refuse_empty_class_folders

    (tmp_path / "classInd.txt").write_text("1 walk\n2 run\n")
    (tmp_path / "trainlist01.txt").write_text("walk/a.avi 1\n")
    with pytest.raises(ValueError, match="class 'run' has no video to train on"):
        refuse_empty_class_folders(find_split_dirs(tmp_path)[0])


def test_top5_and_mean_class_accuracy_by_hand():
    probabilities = np.eye(7)[[0, 0, 0, 1, 2, 2]] * 0.5 + np.linspace(0.01, 0.07, 7)
    labels = [0, 0, 1, 1, 2, 6]
    report = classification_report(
        labels, probabilities.argmax(-1), [str(k) for k in range(7)], probabilities=probabilities
    )
    # Right: 0, 0, 1 (its 2nd clip), 2: class accuracies 1, 1/2, 1, 0.
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["mean_class_accuracy"] == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    # The top five after each clip's class are the largest offsets, 6, 5, 4, 3: every clip but
    # the one of class 1 whose best is class 0 has its class among them.
    assert report["top5_accuracy"] == pytest.approx(5 / 6)
    assert (
        classification_report([0], [0], ["a", "b"], probabilities=[[1, 0]])["top5_accuracy"] is None
    )


def test_train_and_evaluate_on_lists_from_the_command_line(ucf_folder, tmp_path):
    options = ["--epochs", 1, "--frames", 8, "--size", 32, "--precision", "float32", "--jit", "off"]
    done = vlm_tf("train", ucf_folder, "--out", tmp_path / "run", "--quiet", *options)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data_dir"] == str(ucf_folder / "trainlist01.txt")
    done = vlm_tf("evaluate", tmp_path / "run", ucf_folder, "--split", "01", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["num_videos"] == len((ucf_folder / "testlist01.txt").read_text().split())
    # Eight classes: top-5 is reported, and at least as high as accuracy.
    assert report["top5_accuracy"] >= report["accuracy"]
    assert 0 <= report["mean_class_accuracy"] <= 1

    assert_one_line_error(
        vlm_tf("evaluate", tmp_path / "run", ucf_folder, "--split", "02"), "testlist02.txt"
    )
    assert_one_line_error(
        vlm_tf("train", ucf_folder / "classInd.txt", "--out", tmp_path / "r2"), "classInd.txt"
    )
    assert_one_line_error(
        vlm_tf("train", tmp_path, "--split", "01", "--out", tmp_path / "r3"), "--split"
    )


def test_clips_cut_from_one_video_score_as_the_files_they_were(
    classify_run, tiny_dataset, tmp_path
):
    """Each test video of two classes, joined end to end into one file per pair, listed as
    Kinetics-style rows: the run's probabilities for each time range equal those for the video
    on its own. MJPEG compresses every frame by itself, so the frames are the same bytes.
    """
    from vlm_tf.inference import load_run, predict_directory

    run_dir, _, _ = classify_run
    run = load_run(run_dir)
    rows = ["label,path,time_start,time_end,split"]
    for left, right in [("move_left", "move_right"), ("grow", "shrink")]:
        parts = [sorted((tiny_dataset / "test" / name).glob("*.mp4"))[0] for name in (left, right)]
        frames = [read_frames(part) for part in parts]
        for name, clip in zip((left, right), frames):
            (tmp_path / "alone" / name).mkdir(parents=True)
            write_video(tmp_path / "alone" / name / f"{name}.avi", clip, fps=FPS)
        (tmp_path / "joined").mkdir(exist_ok=True)
        write_video(tmp_path / "joined" / f"{left}_{right}.avi", np.concatenate(frames), fps=FPS)
        middle = len(frames[0]) / FPS
        end = middle + len(frames[1]) / FPS
        rows += [
            f"{left},joined/{left}_{right}.avi,0,{middle},test",
            f"{right},joined/{left}_{right}.avi,{middle},{end},test",
        ]
    (tmp_path / "clips.csv").write_text("\n".join(rows) + "\n")
    cut = predict_directory(run, tmp_path / "clips.csv")
    alone = predict_directory(run, tmp_path / "alone")
    order = np.argsort(alone.labels, kind="stable")
    np.testing.assert_allclose(
        cut.probabilities[np.argsort(cut.labels, kind="stable")],
        alone.probabilities[order],
        atol=1e-5,
    )
    assert all("#t=" in path for path in cut.paths)
