"""Where a backbone comes from: a preset shipped in the package, a preset folder, or a run.

`train --init SOURCE` takes any of the three; this module finds and
describes them from their JSON files alone, without TensorFlow, so the
command line can take the model, frame size and clip length from the source
before anything is imported. `vlm_tf.models.backbone` loads the weights.

Shipped presets live in `vlm_tf/presets/<name>/` (installed with the
package), each with a metadata.json that also says how it was made: the
commands, the corpus, seed, time and machine, and the weights' SHA-256
(docs/transfer.md). Two kinds:

- a backbone (`kind` "backbone"): a preset folder (`vlm_tf.models.backbone`),
  `train --init NAME` puts a new head on it;
- a restorer (`kind` "restorer"): a finished denoise, superres or enhance
  run folder, whole (a restorer has no head to replace), for
  `vlm-tf apply --preset NAME` and `train --task T --init NAME`.
"""

from __future__ import annotations

import json
import os

PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "presets")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
# What marks a run folder (`vlm_tf.training.config`): its settings and its finished model.
RUN_CONFIG_FILE = "config.json"
RUN_MODEL_FILE = "model.keras"


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, received {type(value).__name__}")
    return value


def shipped_presets():
    """`{name: folder}` of the presets inside the package, most useful first (each metadata's
    `rank`, then the name).
    """
    if not os.path.isdir(PRESETS_DIR):
        return {}
    found = []
    for name in sorted(os.listdir(PRESETS_DIR)):
        folder = os.path.join(PRESETS_DIR, name)
        metadata_path = os.path.join(folder, METADATA_FILE)
        if os.path.isfile(os.path.join(folder, CONFIG_FILE)) and os.path.isfile(metadata_path):
            found.append((_read_json(metadata_path).get("rank", 100), name, folder))
    return {name: folder for _, name, folder in sorted(found)}


def preset_kind(folder):
    """`"backbone"` or `"restorer"`, from the preset's metadata (backbone unless it says)."""
    return _read_json(os.path.join(folder, METADATA_FILE)).get("kind", "backbone")


def find_restorer(source):
    """The run folder of `apply --preset SOURCE`: a shipped restorer's name or any finished run
    folder; a one-line error naming what was expected.
    """
    shipped = shipped_presets()
    restorers = [name for name, folder in shipped.items() if preset_kind(folder) == "restorer"]
    if source in restorers:
        return shipped[source]
    if os.path.isdir(source) and is_run_folder(source):
        return source
    names = ", ".join(restorers) or "none installed"
    raise FileNotFoundError(
        f"{source}: not a restorer preset or a finished run folder; shipped restorers: {names} "
        "(`vlm-tf presets`)"
    )


def is_run_folder(path):
    return os.path.isfile(os.path.join(path, RUN_CONFIG_FILE)) and os.path.isfile(
        os.path.join(path, RUN_MODEL_FILE)
    )


def find_init(source):
    """`(kind, folder)` of an `--init` source: `"preset"` for a backbone preset's name or folder,
    `"run"` for a finished vlm_tf run (a shipped restorer's folder is one); a one-line error
    naming what was expected.
    """
    source = os.fspath(source)
    shipped = shipped_presets()
    if source in shipped:
        return ("run" if is_run_folder(shipped[source]) else "preset"), shipped[source]
    if os.path.isdir(source):
        if is_run_folder(source):
            return "run", source
        if any(os.path.isfile(os.path.join(source, name)) for name in (CONFIG_FILE, WEIGHTS_FILE)):
            # A preset, whole or not: loading it names what is missing or wrong.
            return "preset", source
        raise ValueError(
            f"{source}: neither a backbone preset folder ({CONFIG_FILE} and {WEIGHTS_FILE}) nor a "
            f"finished vlm_tf run ({RUN_CONFIG_FILE} and {RUN_MODEL_FILE})"
        )
    names = ", ".join(shipped) or "none installed"
    raise FileNotFoundError(
        f"{source}: no such preset or folder; shipped presets: {names} (`vlm-tf presets`)"
    )


def describe_init(source):
    """What an `--init` source holds, from its JSON alone: `{"kind", "model_name", "image_size",
    "num_frames"}` (`kind` as `find_init` says; num_frames None: any clip length), and for a
    run its `scale` (a restoration run's upscaling factor, else None).
    """
    kind, folder = find_init(source)
    if kind == "preset":
        config = _read_json(os.path.join(folder, CONFIG_FILE))
        keys = ("model_name", "image_size", "num_frames")
        if not all(key in config for key in keys):
            raise ValueError(
                f"{os.path.join(folder, CONFIG_FILE)}: a preset's config says {', '.join(keys)}"
            )
        return {"kind": kind, **{key: config[key] for key in keys}}
    run = _read_json(os.path.join(folder, RUN_CONFIG_FILE)).get("run", {})
    size = run.get("image_size")
    about = {
        "kind": kind,
        "model_name": run.get("model"),
        "image_size": [size, size],
        "num_frames": run.get("num_frames"),
        "scale": run.get("scale"),
    }
    if "encoder" in run:
        # A pretrain run: its model is the encoder's backbone, for its clip length.
        about["model_name"] = run["encoder"]
    else:
        about["num_frames"] = None
    return about


def preset_rows():
    """One row per shipped preset, most useful first: what `vlm-tf presets --json` prints."""
    rows = []
    for name, folder in shipped_presets().items():
        config = _read_json(os.path.join(folder, CONFIG_FILE))
        metadata = _read_json(os.path.join(folder, METADATA_FILE))
        row = {"name": name, "kind": metadata.get("kind", "backbone")}
        if row["kind"] == "restorer":
            run = config.get("run", {})
            # Fully convolutional: any frame size; `window` frames in, the centre one out.
            row.update(
                backbone=run.get("model"),
                task=metadata.get("task"),
                num_frames=metadata.get("window"),
                image_size=None,
                scale=metadata.get("scale"),
            )
        else:
            row.update(
                backbone=config.get("model_name"),
                num_frames=config.get("num_frames"),
                image_size=config.get("image_size"),
                feature_size=config.get("feature_size"),
            )
        row.update(
            parameter_count=metadata.get("parameter_count"),
            pretrained_on=metadata.get("pretrained_on"),
            description=metadata.get("description", ""),
            path=folder,
        )
        rows.append(row)
    return rows
