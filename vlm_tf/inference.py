"""Using a finished run: load it, and the tasks' ways to evaluate, predict, generate, restore and
detect, by their public names.

`load_run` gives a `Run` (its config, class names and model); `Run.task`
says which `vlm_tf.tasks` module serves it. The functions below live in
those modules and are gathered here, the one import a user of finished
runs needs.
"""

from __future__ import annotations

import dataclasses
import os

import keras

# Registers vlm_tf's custom layers and metrics, which model.keras files refer to by name.
import vlm_tf.layers  # noqa: F401
import vlm_tf.metrics.image  # noqa: F401
from vlm_tf import atomic
from vlm_tf.data.names import check_name
from vlm_tf.metrics.classification import frechet_distance
from vlm_tf.tasks import get_task_spec, task_of_model
from vlm_tf.tasks.attributes import name_attributes, score_prompted
from vlm_tf.tasks.classify import (
    check_class_folders,
    evaluate_directory,
    feature_layer,
    predict_directory,
    predict_videos,
    read_clip,
)
from vlm_tf.tasks.detect import (
    detect_video,
    evaluate_detection,
    score_threshold,
    write_detected_video,
)
from vlm_tf.tasks.features import clip_features, score_generated
from vlm_tf.tasks.generate import GENERATED_FPS, generate_clips, write_generated_videos
from vlm_tf.tasks.predict_frames import (
    evaluate_prediction,
    predict_next_frames,
    write_predicted_video,
)
from vlm_tf.tasks.restore import evaluate_restoration, restore_frames, write_restored_video
from vlm_tf.tasks.robustness import evaluate_corruptions
from vlm_tf.tasks.text_to_video import generate_from_prompts, write_prompted_videos
from vlm_tf.tasks.video_text import embed_videos, recall_at
from vlm_tf.training import config as run_files
from vlm_tf.training.config import RunConfig


@dataclasses.dataclass
class Run:
    run_dir: str
    config: RunConfig
    class_names: list
    model: keras.Model
    # The folder or list the run trained on, as `train` was given it.
    data_dir: str | None = None

    @property
    def image_size(self):
        return (self.config.image_size, self.config.image_size)

    @property
    def task(self):
        """The name of the run's task (`vlm_tf.tasks.TASKS`): `classify`, `detect`, `denoise`,
        ...
        """
        return task_of_model(self.config.model).name

    def task_object(self):
        """The run's `vlm_tf.tasks.base.Task`, which evaluates, applies and exports it."""
        return get_task_spec(self.task).task_class()(self.task, self.config)

    def require(self, task, doing):
        """Raises a one-line ValueError unless the run's model does `task` (a task, or a tuple of
        tasks any of which will do).
        """
        tasks = (task,) if isinstance(task, str) else tuple(task)
        if self.task not in tasks:
            wanted = tasks[0] if len(tasks) == 1 else f"{', '.join(tasks[:-1])} or {tasks[-1]}"
            raise ValueError(
                f"{self.run_dir} is a {self.config.model} run ({self.task}); {doing} needs a "
                f"{wanted} run"
            )


def load_run(run_dir):
    """Loads `RUN_DIR/model.keras` with its config and class names.

    Raises a one-line ValueError for a class name in `config.json` that is
    not one file name (`vlm_tf.data.names.check_name`).
    """
    run_dir = os.fspath(run_dir)
    run_files.require_finished_run(run_dir)
    model_path = os.path.join(run_dir, run_files.MODEL_FILE)
    config_path = os.path.join(run_dir, run_files.CONFIG_FILE)
    saved = atomic.read_json(config_path)
    class_names = saved["class_names"]
    if not isinstance(class_names, list):
        raise ValueError(
            f"{config_path}: class_names is a {type(class_names).__name__}; expected a list of "
            "class names"
        )
    # Class names become folders (`generate`'s OUT/<class>, `evaluate`'s DATA_DIR/<class>), and a
    # run folder may be someone else's download.
    for name in class_names:
        check_name(name, source=config_path, what="class name")
    return Run(
        run_dir,
        RunConfig.from_dict(saved["run"]),
        class_names,
        atomic.load_model(model_path),
        saved.get("data_dir"),
    )


__all__ = [
    "GENERATED_FPS",
    "Run",
    "check_class_folders",
    "clip_features",
    "detect_video",
    "embed_videos",
    "evaluate_detection",
    "evaluate_corruptions",
    "evaluate_directory",
    "evaluate_prediction",
    "evaluate_restoration",
    "feature_layer",
    "frechet_distance",
    "generate_clips",
    "generate_from_prompts",
    "load_run",
    "name_attributes",
    "predict_directory",
    "predict_next_frames",
    "predict_videos",
    "read_clip",
    "recall_at",
    "restore_frames",
    "score_generated",
    "score_prompted",
    "score_threshold",
    "write_detected_video",
    "write_generated_videos",
    "write_predicted_video",
    "write_prompted_videos",
    "write_restored_video",
]
