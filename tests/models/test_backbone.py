"""Backbones cut from every registered classifier; presets that carry them to another process."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.models.backbone import (
    attach_head,
    backbone_of,
    build_backbone,
    classifier_from_preset,
    clip_features_from,
    load_backbone,
    save_backbone_preset,
)
from vlm_tf.models.registry import build_model, model_names

IMAGE_SIZE = (32, 32)
NUM_FRAMES = 4
BATCH = 2
CLASS_NAMES = [f"class_{k}" for k in range(8)]


def random_clips(seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (BATCH, NUM_FRAMES, *IMAGE_SIZE, 3)).astype("float32")


def features(backbone, clips):
    return np.asarray(backbone(clips, training=False))


@pytest.mark.parametrize("name", model_names())
def test_backbone_cut_loses_nothing(name):
    classifier = build_model(name, num_classes=5, image_size=IMAGE_SIZE)
    clips = random_clips(0)
    width = classifier.get_layer("output_layer").input.shape[-1]

    backbone = backbone_of(classifier)

    assert features(backbone, clips).shape == (BATCH, width)
    assert "output_layer" not in [layer.name for layer in backbone.layers]
    rebuilt = attach_head(backbone, 5)
    head_weights = classifier.get_layer("output_layer").get_weights()
    rebuilt.get_layer("output_layer").set_weights(head_weights)
    expected = np.asarray(classifier(clips, training=False))
    np.testing.assert_allclose(np.asarray(rebuilt(clips, training=False)), expected, atol=1e-6)


def test_build_backbone_and_its_refusals():
    backbone = build_backbone("cnn_lstm", image_size=IMAGE_SIZE, num_frames=NUM_FRAMES)
    assert backbone.input_shape == (None, NUM_FRAMES, *IMAGE_SIZE, 3)
    assert backbone.output_shape == (None, 64)

    with pytest.raises(ValueError, match="'gan' is a generate model"):
        build_backbone("gan", image_size=IMAGE_SIZE)
    with pytest.raises(ValueError, match="no layer named 'output_layer'"):
        backbone_of(backbone)
    with pytest.raises(ValueError, match="num_classes must be an integer of at least 2"):
        attach_head(backbone, 1)


def test_head_is_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        classifier = attach_head(build_backbone("cnn_mean", image_size=IMAGE_SIZE), 3)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clips = random_clips(0)

    assert classifier.get_layer("output_layer").dtype_policy.name == "float32"
    assert classifier.get_layer("temporal_mean").compute_dtype == "bfloat16"
    assert classifier(clips, training=False).dtype == "float32"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A cnn_lstm classifier for 8 classes after two fit steps, its preset, its features before."""
    keras.utils.set_random_seed(0)
    classifier = build_model("cnn_lstm", num_classes=8, image_size=IMAGE_SIZE)
    clips = random_clips(1)
    before = features(backbone_of(classifier), clips)
    labels = keras.utils.to_categorical(np.arange(BATCH) % 8, 8)
    classifier.compile(optimizer="adam", loss="categorical_crossentropy")
    classifier.fit(clips, labels, epochs=2, batch_size=BATCH, verbose=0)
    folder = tmp_path_factory.mktemp("presets") / "cnn_lstm"
    save_backbone_preset(
        classifier,
        folder,
        model_name="cnn_lstm",
        image_size=IMAGE_SIZE,
        metadata={"source_run": "runs/test", "class_names": CLASS_NAMES},
    )
    return classifier, folder, clips, before


def test_preset_round_trip_gives_the_same_features_and_a_trainable_classifier(trained):
    classifier, folder, clips, before = trained
    expected = features(backbone_of(classifier), clips)
    assert not np.allclose(expected, before, atol=1e-5), "fit left the backbone at its init"
    assert sorted(os.listdir(folder)) == ["config.json", "metadata.json", "model.weights.h5"]
    assert os.listdir(folder.parent) == ["cnn_lstm"]
    config = json.loads((folder / "config.json").read_text())
    assert (config["model_name"], config["image_size"], config["num_frames"]) == (
        "cnn_lstm",
        [32, 32],
        None,
    )
    assert config["feature_size"] == 64
    assert json.loads((folder / "metadata.json").read_text())["class_names"] == CLASS_NAMES

    model = classifier_from_preset(folder, num_classes=3)

    assert model.name == "cnn_lstm"
    np.testing.assert_allclose(features(backbone_of(model), clips), expected, atol=1e-5)
    assert model(clips, training=False).shape == (BATCH, 3)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    start = [weight.numpy().copy() for weight in model.trainable_weights]
    history = model.fit(clips, keras.utils.to_categorical([0, 2], 3), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(
        not np.allclose(a, weight.numpy()) for a, weight in zip(start, model.trainable_weights)
    )


def test_frozen_backbone_leaves_only_the_head_to_train(trained):
    _, folder, _, _ = trained

    model = classifier_from_preset(folder, num_classes=3, trainable_backbone=False)

    head = model.get_layer("output_layer")
    assert [weight.path for weight in model.trainable_weights] == [
        weight.path for weight in head.trainable_weights
    ]


def test_preset_loads_in_a_fresh_process(trained, tmp_path):
    classifier, folder, clips, _ = trained
    np.save(tmp_path / "clips.npy", clips)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from vlm_tf.models.backbone import load_backbone
        backbone = load_backbone(sys.argv[1])
        np.save(sys.argv[3], np.asarray(backbone(np.load(sys.argv[2]), training=False)))
        """
    )
    arguments = [str(folder), str(tmp_path / "clips.npy"), str(tmp_path / "features.npy")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments], capture_output=True, text=True, env=env, cwd="/"
    )
    assert done.returncode == 0, done.stderr[-3000:]

    expected = features(backbone_of(classifier), clips)
    np.testing.assert_allclose(np.load(tmp_path / "features.npy"), expected, atol=1e-5)


def test_clip_features_from_a_dataset(trained):
    classifier, _, clips, _ = trained
    backbone = backbone_of(classifier)
    labels = np.zeros((BATCH, 8), "float32")
    expected = features(backbone, clips)

    for dataset in (
        tf.data.Dataset.from_tensor_slices((clips, labels)).batch(1),
        tf.data.Dataset.from_tensor_slices(clips).batch(1),
    ):
        found = clip_features_from(backbone, dataset)
        assert found.dtype == np.float64
        np.testing.assert_allclose(found, expected, atol=1e-5)


def edit_config(folder, **changes):
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    "damage, error, words",
    [
        ("missing_folder", FileNotFoundError, ["broken", "no such preset or folder"]),
        ("corrupt_config", ValueError, ["config.json", "is not valid JSON"]),
        ("unknown_format", ValueError, ["config.json", "'keras_hub'", "'vlm_tf.video_backbone'"]),
        ("unknown_model", ValueError, ["config.json", "'no_such_model'", "cnn_lstm, cnn_gru"]),
        ("generator", ValueError, ["config.json", "'gan' (a generate model)"]),
        ("other_model", ValueError, ["model.weights.h5", "'cnn_gru' backbone", "gru_cell"]),
        ("missing_weights", FileNotFoundError, ["model.weights.h5", "is missing"]),
    ],
)
def test_broken_presets_are_refused_naming_the_file(trained, tmp_path, damage, error, words):
    folder = tmp_path / "broken"
    shutil.copytree(trained[1], folder)
    if damage == "missing_folder":
        shutil.rmtree(folder)
    elif damage == "corrupt_config":
        (folder / "config.json").write_text('{"format": "vlm_tf.video_backbone", "model_')
    elif damage == "unknown_format":
        edit_config(folder, format="keras_hub")
    elif damage == "unknown_model":
        edit_config(folder, model_name="no_such_model")
    elif damage == "generator":
        edit_config(folder, model_name="gan")
    elif damage == "other_model":
        edit_config(folder, model_name="cnn_gru")
    else:
        (folder / "model.weights.h5").unlink()

    with pytest.raises(error) as raised:
        load_backbone(folder)

    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_saving_refuses_a_non_empty_folder_and_leaves_it_alone(trained, tmp_path):
    classifier = trained[0]
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")

    with pytest.raises(ValueError, match="occupied' already exists and is not an empty folder"):
        save_backbone_preset(classifier, occupied, model_name="cnn_lstm", image_size=IMAGE_SIZE)

    assert os.listdir(occupied) == ["notes.txt"]
    assert (occupied / "notes.txt").read_text() == "mine"
    assert os.listdir(tmp_path) == ["occupied"]


def test_saving_refuses_a_model_the_config_would_not_rebuild(trained, tmp_path):
    classifier, target = trained[0], tmp_path / "preset"

    with pytest.raises(ValueError, match="where a 'cnn_gru' backbone's has"):
        save_backbone_preset(classifier, target, model_name="cnn_gru", image_size=IMAGE_SIZE)
    with pytest.raises(ValueError, match=r"the model's are \(None, None, 32, 32, 3\)"):
        save_backbone_preset(classifier, target, model_name="cnn_lstm", image_size=(64, 64))

    assert os.listdir(tmp_path) == []
