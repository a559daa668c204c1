"""A run folder or a dataset may be someone else's download: the names its files carry never lead
a command out of the folders the user gave it.
"""

import json
import os
import shutil

import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.data.detection import read_boxes
from vlm_tf.data.names import check_inside, check_name
from vlm_tf.training import RunConfig

ESCAPE = "../../escaped"


def _files_under(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def _rename_first_class(run_dir, new_name):
    """Replaces the first class name in the run's config.json and class_names.json; returns the old
    name.
    """
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text())
    old = config["class_names"][0]
    config["class_names"][0] = new_name
    config_path.write_text(json.dumps(config))
    (run_dir / "class_names.json").write_text(json.dumps(config["class_names"]))
    return old


@pytest.fixture(scope="module")
def untrained_generator():
    """A GAN generator of 2 classes, untrained: `generate` only needs one to load and run."""
    from vlm_tf.models.registry import get_model_spec

    return get_model_spec("gan").build(num_classes=2, num_frames=8, image_size=(32, 32))


def _gan_run(run_dir, generator, class_names):
    """A run folder as `vlm-tf train --model gan` leaves it, with `class_names` in its config."""
    run_dir.mkdir(parents=True)
    config = RunConfig(model="gan", epochs=1, num_frames=8, image_size=32, batch_size=8)
    (run_dir / "config.json").write_text(
        json.dumps(
            {"run": config.resolved().to_dict(), "data_dir": "/data", "class_names": class_names}
        )
    )
    generator.save(run_dir / "model.keras")
    return run_dir


@pytest.mark.parametrize(
    "value",
    [ESCAPE, "a/b", "a\\b", ".", "..", "", "/etc", "line\nbreak", "bell\x07", "del\x7f", "\x9b", 3],
)
def test_check_name_refuses_what_is_not_one_file_name(value):
    with pytest.raises(ValueError) as raised:
        check_name(value, source="run/config.json", what="class name")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"run/config.json: class name {value!r} ")
    assert "expected one file name" in message


@pytest.mark.parametrize("value", ["move_left", "a b", "...", "..x", "ünïcødé"])
def test_check_name_accepts_a_file_name(value):
    assert check_name(value, source="run/config.json") == value


def test_check_inside_follows_links(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert check_inside(out / "a" / "b.mp4", out) == out / "a" / "b.mp4"
    os.symlink(tmp_path, out / "link")
    for path in (out / ".." / "b.mp4", out / "link" / "b.mp4", out):
        with pytest.raises(ValueError, match="outside") as raised:
            check_inside(path, out)
        assert str(path) in str(raised.value) and str(out) in str(raised.value)


def test_evaluate_refuses_a_class_name_that_leads_out_of_data_dir(
    classify_run, tiny_dataset, tmp_path
):
    run_dir = tmp_path / "run"
    shutil.copytree(classify_run[0], run_dir)
    renamed = _rename_first_class(run_dir, ESCAPE)
    # DATA_DIR/../../escaped holds the renamed class's videos, which evaluate once scored.
    data_dir = tmp_path / "a" / "data"
    shutil.copytree(tiny_dataset / "test", data_dir)
    shutil.move(data_dir / renamed, tmp_path / "escaped")
    done = vlm_tf("evaluate", run_dir, data_dir, "--json")
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(
        done, repr(ESCAPE), str(run_dir / "config.json"), "expected one file name"
    )
    assert done.stdout == ""


def test_generate_writes_nothing_outside_out(untrained_generator, tmp_path):
    run_dir = _gan_run(tmp_path / "run", untrained_generator, ["fine", ESCAPE])
    out = tmp_path / "a" / "out"
    done = vlm_tf("generate", run_dir, "--out", out, "--per-class", 1)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done, repr(ESCAPE), str(run_dir / "config.json"))
    assert _files_under(tmp_path) == ["run/config.json", "run/model.keras"]


def test_write_generated_videos_checks_its_paths(untrained_generator, tmp_path):
    from vlm_tf.inference import Run, write_generated_videos

    # A Run made in code skips load_run's check; the writer still stays inside out.
    run = Run(
        str(tmp_path / "run"),
        RunConfig(model="gan", num_frames=8, image_size=32),
        ["fine", "../escaped"],
        untrained_generator,
    )
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="outside") as raised:
        write_generated_videos(run, out, per_class=1)
    assert str(out / "../escaped") in str(raised.value)
    assert _files_under(tmp_path) == []


def test_evaluate_directory_checks_a_run_made_in_code(classify_run, tiny_dataset):
    from vlm_tf.inference import Run, check_class_folders

    run = Run(str(classify_run[0]), classify_run[2], [ESCAPE], None)
    with pytest.raises(ValueError, match="class name '../../escaped' holds a path separator"):
        check_class_folders(run, tiny_dataset / "test")


def test_a_box_file_label_must_be_a_file_name(tmp_path):
    path = tmp_path / "clip.json"
    boxes = {"objects": [{"label": "car", "boxes": [None]}, {"label": ESCAPE, "boxes": [None]}]}
    path.write_text(json.dumps(boxes))
    with pytest.raises(ValueError) as raised:
        read_boxes(path)
    assert str(raised.value).startswith(f"{path}: objects[1].label {ESCAPE!r} holds a path")


def test_training_refuses_class_names_load_run_would_refuse(tmp_path):
    from vlm_tf.training.loop import write_run_header

    # A class folder may be named so on Linux; the run it trained could not be loaded.
    with pytest.raises(ValueError, match=r"class name 'back\\\\slash'"):
        write_run_header(tmp_path / "run", tmp_path / "data", RunConfig(), ["back\\slash"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recorded", ["../../data", 7, None])
def test_compression_reads_only_a_training_folder_the_run_names_plainly(
    classify_run, tmp_path, recorded
):
    from vlm_tf.compression.pruning import prune_run

    run_dir = tmp_path / "run"
    shutil.copytree(classify_run[0], run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["data_dir"] = recorded
    (run_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="--data DIR") as raised:
        prune_run(run_dir, epochs=1, out=tmp_path / "pruned")
    assert repr(recorded) in str(raised.value) and str(run_dir / "config.json") in str(raised.value)
    assert not (tmp_path / "pruned").exists()
