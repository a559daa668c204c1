"""What a run does with clips, one module per task, named here.

A task (`vlm_tf.tasks.base.Task`) owns everything that varies between
classifying, detecting, restoring, generating and predicting frames: how a
data folder becomes training and validation data, the model's loss and
metrics, the pictures it writes to TensorBoard, what `evaluate` reports,
the export signature and how the command line prints the report.
`vlm_tf.training.train` drives every task with one loop.

The registry is light: the command line lists the tasks and their options
for `--help` without importing TensorFlow; a task's module loads when a
run needs it.
"""

from __future__ import annotations

import dataclasses
import importlib

from vlm_tf.models.registry import TASKS as MODEL_TASKS
from vlm_tf.models.registry import get_model_spec
from vlm_tf.tasks.options import (
    AdversarialOptions,
    AttributesOptions,
    AudioVisualOptions,
    ClassifyOptions,
    DetectOptions,
    NoOptions,
    PretrainOptions,
    RestorationOptions,
    TextToVideoOptions,
    VideoTextOptions,
)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    # "module:Class", imported on first use.
    implementation: str
    options: type
    description: str

    def task_class(self):
        module, name = self.implementation.split(":")
        return getattr(importlib.import_module(module), name)


TASKS: dict[str, TaskSpec] = {}


def register_task(name, implementation, *, options=NoOptions, description):
    """Registers the task `name`, done by `implementation` ("module:Class", a `Task` subclass), with
    its options dataclass.
    """
    if name in TASKS:
        raise ValueError(f"a task named {name!r} is already registered")
    if name not in MODEL_TASKS:
        raise ValueError(
            f"task {name!r} has no models; register it in vlm_tf.models.registry.TASKS first"
        )
    TASKS[name] = TaskSpec(name, implementation, options, description)


def get_task_spec(name):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def task_of_model(model):
    """The `TaskSpec` of the registered model named `model`."""
    return get_task_spec(get_model_spec(model).task)


def option_fields():
    """Every task option as `(field, task names)`, each field once, in registration order: what
    `train` offers.
    """
    found = {}
    for spec in TASKS.values():
        for field in dataclasses.fields(spec.options):
            found.setdefault(field.name, (field, []))[1].append(spec.name)
    return list(found.values())


register_task(
    "classify",
    "vlm_tf.tasks.classify:ClassifyTask",
    options=ClassifyOptions,
    description="name the motion in a clip (the default)",
)
register_task(
    "generate",
    "vlm_tf.tasks.generate:GenerateTask",
    options=AdversarialOptions,
    description="generate clips from noise and a class label (§3.3's GAN)",
)
register_task(
    "predict_frames",
    "vlm_tf.tasks.predict_frames:PredictFramesTask",
    options=AdversarialOptions,
    description="predict a clip's next frames (§3.4's fusion model)",
)
register_task(
    "detect",
    "vlm_tf.tasks.detect:DetectTask",
    options=DetectOptions,
    description="find and track objects: videos with a box file each (§6.2, vlm_tf.data.detection)",
)
for _name, _words in (
    ("denoise", "§6.7 denoising"),
    ("superres", "§6.6 super-resolution"),
    ("enhance", "§6.4 enhancement"),
):
    register_task(
        _name,
        "vlm_tf.tasks.restore:RestoreTask",
        options=RestorationOptions,
        description=f"{_words} on any folder of videos, degraded into training pairs",
    )
del _name, _words
register_task(
    "video_text",
    "vlm_tf.tasks.video_text:VideoTextTask",
    options=VideoTextOptions,
    description="clips and captions in one space, for retrieval by text and zero-shot prompts "
    "(§8.1 ③, make-data --task multimodal)",
)
register_task(
    "audio_visual",
    "vlm_tf.tasks.audio_visual:AudioVisualTask",
    options=AudioVisualOptions,
    description="name a clip by picture and sound together, fused early, late or by "
    "cross-attention (§8.1 ③, make-data --task multimodal)",
)
register_task(
    "text_to_video",
    "vlm_tf.tasks.text_to_video:TextToVideoTask",
    options=TextToVideoOptions,
    description="generate clips from a prompt, conditioned on a video_text run's caption "
    "embeddings (§6.5, make-data --task multimodal)",
)
register_task(
    "attributes",
    "vlm_tf.tasks.attributes:AttributesTask",
    options=AttributesOptions,
    description="name each attribute of a clip (motion, colour, shape, ...) from the JSON file "
    "beside it: the scorer of prompted clips",
)
register_task(
    "pretrain",
    "vlm_tf.tasks.pretrain:PretrainTask",
    options=PretrainOptions,
    description="learn a backbone from unlabeled videos (masked video modelling)",
)

__all__ = ["TASKS", "TaskSpec", "get_task_spec", "option_fields", "register_task", "task_of_model"]
