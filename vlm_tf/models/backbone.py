"""Backbones (a classifier without its head) and backbone presets, the keras-hub way.

A backbone maps frames to clip features:

    (B, T, H, W, 3) float32 in [0, 255] → the classifier's layers up to its head → (B, F)

where `(B, F)` is what the classifier's `Dense(num_classes, softmax)`
"output_layer" reads (`lstm1`'s last state, 64 values, for the default
`cnn_lstm`). The same features are the feature space of the Fréchet distance
of generated clips (`vlm_tf.inference.clip_features`).

A preset is a plain folder, laid out as keras-hub lays out its own:

    config.json       what to build: format and version, the registered model name,
                      image_size, num_frames, the feature size, the vlm_tf version
    model.weights.h5  the backbone's weights, nothing executable
    metadata.json     where it came from (free-form: run folder, class names, date)

A preset is untrusted input: loading builds the model from the registry by
the name in config.json and reads weights only (docs/design.md, "Backbones
and presets").
"""

from __future__ import annotations

import datetime
import json
import os

import keras
import numpy as np

# Registers vlm_tf's custom layers, which the registered builders use.
import vlm_tf.layers  # noqa: F401
from vlm_tf import __version__, atomic
from vlm_tf.models.presets import (
    CONFIG_FILE,
    METADATA_FILE,
    RUN_MODEL_FILE,
    WEIGHTS_FILE,
    find_init,
    preset_rows,
)
from vlm_tf.models.registry import MODELS, build_model, model_names

OUTPUT_LAYER = "output_layer"
PRESET_FORMAT = "vlm_tf.video_backbone"
PRESET_FORMAT_VERSION = 1
# Builders refuse fewer than 2 classes; the head built for cutting is dropped.
_CUT_NUM_CLASSES = 2


# === Backbones ===


def backbone_of(classifier):
    """The functional sub-model of `classifier` from its input to the input of its "output_layer".

        (B, T, H, W, 3) → classifier's layers without "output_layer" → (B, F)

    The backbone shares its layers, and so its weights, with `classifier`.
    """
    layer_names = [layer.name for layer in classifier.layers]
    if OUTPUT_LAYER not in layer_names:
        raise ValueError(
            f"model {classifier.name!r} has no layer named {OUTPUT_LAYER!r} to cut its backbone "
            f"at; received layers {layer_names}"
        )
    features = classifier.get_layer(OUTPUT_LAYER).input
    return keras.Model(classifier.input, features, name=f"{classifier.name}_backbone")


def build_backbone(name, *, image_size, num_frames=None):
    """The backbone of the registered classifier `name`, freshly initialised.

        (B, T, H, W, 3) → the classifier's layers without "output_layer" → (B, F)

    The builders always add a head, so one is built for 2 classes and cut off.
    """
    return backbone_of(
        build_model(
            name, num_classes=_CUT_NUM_CLASSES, image_size=image_size, num_frames=num_frames
        )
    )


def attach_head(backbone, num_classes, *, name="classifier"):
    """A fresh classifier on `backbone`: the builders' head on its features.

        (B, T, H, W, 3) → backbone → (B, F) → Dense(num_classes, softmax) "output_layer"
        → (B, num_classes)

    The head is the builders' own, float32 under mixed precision as theirs
    is. The classifier's graph is flat (the backbone's layers, then
    "output_layer"), as a builder's is, so what reads layers by name
    (`feature_layer`, attention maps, export) works on it; it shares those
    layers and their weights with `backbone`.
    """
    if not _is_int(num_classes) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, received {num_classes!r}")
    if len(backbone.outputs) != 1 or len(backbone.outputs[0].shape) != 2:
        shapes = [tuple(output.shape) for output in backbone.outputs]
        raise ValueError(
            f"a backbone has one output of shape (B, F), received outputs of shapes {shapes}"
        )
    # The softmax is computed in float32 under mixed precision.
    head = keras.layers.Dense(
        int(num_classes), activation="softmax", dtype="float32", name=OUTPUT_LAYER
    )
    return keras.Model(backbone.input, head(backbone.outputs[0]), name=name)


def clip_features_from(backbone, clips_dataset):
    """Features of every clip of a dataset of `(clips, labels)` or `clips` batches.

    batches (B, T, H, W, 3) → backbone → (B, F), concatenated → (N, F) float64
    """
    batches = (batch[0] if isinstance(batch, tuple) else batch for batch in clips_dataset)
    return np.concatenate(
        [np.asarray(backbone(clips, training=False), np.float64) for clips in batches]
    )


# === Presets: saving ===


def save_backbone_preset(
    model_or_backbone, path, *, model_name, image_size, num_frames=None, metadata=None
):
    """Writes the backbone of `model_or_backbone` as a preset folder at `path`; returns `path`.

    `model_or_backbone` is a classifier (its backbone is cut with
    `backbone_of`) or a backbone; `model_name`, `image_size` and
    `num_frames` say how `load_backbone` rebuilds it from the registry and
    must match it. `metadata` (JSON-serialisable) adds to metadata.json.
    The folder is written beside `path` and renamed onto it, so `path` is
    either missing or complete; an existing non-empty `path` is refused.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not (os.path.isdir(path) and not os.listdir(path)):
        raise ValueError(
            f"{path!r} already exists and is not an empty folder; a backbone preset is written "
            "to a missing or empty folder"
        )
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, received {type(metadata).__name__}")
    source = model_or_backbone
    if OUTPUT_LAYER in [layer.name for layer in source.layers]:
        source = backbone_of(source)
    config = _preset_config(
        model_name=model_name,
        image_size=image_size,
        num_frames=num_frames,
        source="save_backbone_preset",
    )
    expected_input = (None, config["num_frames"], *config["image_size"], 3)
    given = tuple(source.input_shape)
    if num_frames is None:
        # A backbone built for one clip length is saved for any, where its weights allow
        # (a tubelet transformer's do not: `build_backbone` below refuses).
        given = (given[0], None, *given[2:])
    if given != expected_input:
        raise ValueError(
            f"model_name={model_name!r}, image_size={tuple(image_size)}, "
            f"num_frames={num_frames!r} give inputs {expected_input}; "
            f"the model's are {tuple(source.input_shape)}"
        )
    # Written from a backbone built the way `load_backbone` builds it, so
    # that a preset which saves also loads.
    reference = build_backbone(
        model_name, image_size=config["image_size"], num_frames=config["num_frames"]
    )
    _copy_weights(source, reference, model_name=model_name)
    config["feature_size"] = int(reference.output_shape[-1])
    about = {
        "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "keras_version": keras.version(),
        "parameter_count": int(reference.count_params()),
        "source_model": source.name,
        **(metadata or {}),
    }
    with atomic.replacing(path) as temporary:
        os.makedirs(temporary)
        reference.save_weights(os.path.join(temporary, WEIGHTS_FILE))
        for file_name, content in ((CONFIG_FILE, config), (METADATA_FILE, about)):
            with open(os.path.join(temporary, file_name), "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2)
                f.write("\n")
    return path


def _copy_weights(source, reference, *, model_name):
    shapes = [tuple(weight.shape) for weight in source.weights]
    expected = [tuple(weight.shape) for weight in reference.weights]
    if len(shapes) != len(expected):
        raise ValueError(
            f"the model has {len(shapes)} weights where a {model_name!r} backbone has "
            f"{len(expected)}"
        )
    for weight, shape, wanted in zip(source.weights, shapes, expected):
        if shape != wanted:
            raise ValueError(
                f"the model's weight {weight.path!r} has shape {shape} where a {model_name!r} "
                f"backbone's has {wanted}"
            )
    reference.set_weights(source.get_weights())


# === Presets: loading ===


def load_backbone(source):
    """The backbone `source` holds, weights loaded: `(B, T, H, W, 3) → (B, F)`.

    `source` is a shipped preset's name (`vlm-tf presets`), a preset folder,
    or a finished run: a classify run's classifier without its head, or a
    pretrain run's backbone.
    """
    backbone, _ = load_init(source)
    return backbone


def classifier_from_preset(source, *, num_classes, trainable_backbone=True):
    """`source`'s backbone (`load_backbone`) with a fresh head:
    `(B, T, H, W, 3) → (B, F) → (B, num_classes)`.

    The classifier is named after the registered model, as `build_model`'s
    are. With `trainable_backbone=False` only the head trains (a linear
    probe; batch norm layers of a frozen backbone also keep their
    statistics, as Keras does).
    """
    backbone, config = load_init(source)
    backbone.trainable = bool(trainable_backbone)
    return attach_head(backbone, num_classes, name=config["model_name"])


class VideoBackbone:
    """The by-name entry point keras-hub users look for: `VideoBackbone.from_preset("NAME")`.

    vlm_tf's backbones stay plain functional `keras.Model`s (what the
    builders make, so layers are found by name); this class only finds and
    loads them.
    """

    @staticmethod
    def from_preset(preset):
        """The backbone of a shipped preset's name, a preset folder or a run (`load_backbone`)."""
        return load_backbone(preset)

    @staticmethod
    def presets():
        """The shipped backbone presets, most useful first (the rows of `vlm-tf presets --json`
        whose `kind` is "backbone"; the restorers are the others).
        """
        return [row for row in preset_rows() if row["kind"] == "backbone"]


def load_init(source):
    """`(backbone, config)` of a preset name, preset folder or run (`load_backbone`); `config` has
    the backbone's `model_name`, `image_size`, `num_frames` and `feature_size`.
    """
    kind, folder = find_init(source)
    return _backbone_of_run(folder) if kind == "run" else _load(folder)


def _backbone_of_run(folder):
    path = os.path.join(folder, RUN_MODEL_FILE)
    # Layers and weights only: Keras' safe mode refuses a file that would run code.
    model = atomic.load_model(path)
    has_head = OUTPUT_LAYER in [layer.name for layer in model.layers]
    backbone = backbone_of(model) if has_head else model
    config = _preset_config(
        # Registered models are named after their registry name, backbones with "_backbone".
        model_name=model.name.removesuffix("_backbone"),
        image_size=list(backbone.input_shape[2:4]),
        num_frames=backbone.input_shape[1],
        source=repr(path),
    )
    return backbone, {**config, "feature_size": int(backbone.output_shape[-1])}


def _load(preset):
    folder = os.fspath(preset)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no backbone preset folder at {folder!r}")
    config = _read_config(os.path.join(folder, CONFIG_FILE))
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(
            f"{weights_path!r} is missing: a preset holds the backbone's weights there"
        )
    backbone = build_backbone(
        config["model_name"], image_size=config["image_size"], num_frames=config["num_frames"]
    )
    built = (
        f"a {config['model_name']!r} backbone for image_size={config['image_size']}, "
        f"num_frames={config['num_frames']}"
    )
    if int(backbone.output_shape[-1]) != config["feature_size"]:
        raise ValueError(
            f"{os.path.join(folder, CONFIG_FILE)!r} says feature_size={config['feature_size']}; "
            f"{built} has {backbone.output_shape[-1]}"
        )
    try:
        backbone.load_weights(weights_path)
    except (ValueError, OSError, KeyError) as error:
        # Keras explains a mismatch over several lines, the layer and the reason first.
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ValueError(
            f"{weights_path!r} does not hold the weights of {built}: "
            f"{reason[:300] or type(error).__name__}"
        ) from error
    return backbone, config


def _read_config(config_path):
    """config.json, checked field by field: it decides what gets built."""
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"{config_path!r} is missing: a backbone preset says there what to build"
        )
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_path!r} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"{config_path!r} must hold a JSON object, received {type(config).__name__}"
        )
    if config.get("format") != PRESET_FORMAT:
        raise ValueError(
            f"{config_path!r} has format {config.get('format')!r}, expected {PRESET_FORMAT!r}"
        )
    version = config.get("format_version")
    if not _is_int(version) or not 1 <= version <= PRESET_FORMAT_VERSION:
        raise ValueError(
            f"{config_path!r} has format_version {version!r}; this vlm_tf {__version__} reads "
            f"1 to {PRESET_FORMAT_VERSION}"
        )
    checked = _preset_config(
        model_name=config.get("model_name"),
        image_size=config.get("image_size"),
        num_frames=config.get("num_frames"),
        source=repr(config_path),
    )
    feature_size = config.get("feature_size")
    if not _is_int(feature_size) or feature_size < 1:
        raise ValueError(
            f"{config_path!r} has feature_size {feature_size!r}, expected a positive integer"
        )
    return {**checked, "feature_size": feature_size}


def _preset_config(*, model_name, image_size, num_frames, source):
    """The config.json fields that decide what gets built, checked; `source` starts the errors."""
    classifiers = model_names("classify")
    if not isinstance(model_name, str) or model_name not in classifiers:
        known = isinstance(model_name, str) and model_name in MODELS
        kind = f" (a {MODELS[model_name].task} model)" if known else ""
        raise ValueError(
            f"{source}: model_name {model_name!r}{kind} is not a registered classifier; "
            f"allowed: {', '.join(classifiers)}"
        )
    if (
        not isinstance(image_size, (list, tuple))
        or len(image_size) != 2
        or not all(_is_int(side) and side >= 1 for side in image_size)
    ):
        raise ValueError(
            f"{source}: image_size must be two positive integers, received {image_size!r}"
        )
    if num_frames is not None and (not _is_int(num_frames) or num_frames < 1):
        raise ValueError(
            f"{source}: num_frames must be a positive integer or null, received {num_frames!r}"
        )
    return {
        "format": PRESET_FORMAT,
        "format_version": PRESET_FORMAT_VERSION,
        "model_name": model_name,
        "image_size": [int(side) for side in image_size],
        "num_frames": None if num_frames is None else int(num_frames),
        "vlm_tf_version": __version__,
    }


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
