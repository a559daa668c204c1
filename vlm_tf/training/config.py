"""A training run's configuration, the one place its defaults live.

The CLI's `train` options, `vlm_tf.training.train` and the run folder's
`config.json` all use `RunConfig`, so a run can always be rebuilt from its
folder. What only one task needs (a super-resolution factor, a GAN's loss)
is in the task's options (`vlm_tf.tasks.options`), held in
`RunConfig.options`; `config.json` keeps both in one flat object.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os

from vlm_tf.atomic import read_text, write_text
from vlm_tf.data.corruptions import check_augment

# What marks a run folder, named once for the loaders of runs below training too.
from vlm_tf.models.presets import RUN_CONFIG_FILE as CONFIG_FILE
from vlm_tf.models.presets import RUN_MODEL_FILE as MODEL_FILE
from vlm_tf.models.registry import DEFAULT_MODEL, get_model_spec
from vlm_tf.tasks import task_of_model

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16", "mixed")
JIT_MODES = ("off", "on", "auto")
LR_SCHEDULES = ("cosine", "constant")
OPTIMIZERS = ("adam", "adamw")
# tf.distribute strategies of `train` (vlm_tf.training.distribute).
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
# The optimizer fields a run leaves at None come from its model's recipe
# (`ModelSpec.training`), then from here: the text's adam at 1e-3 (§5.2.1).
# The frame size comes from the recipe too: the generative models train on
# 32×32 frames unless a run asks for more.
RECIPE_DEFAULTS = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "warmup_epochs": 0,
    "image_size": 64,
}

CLASS_NAMES_FILE = "class_names.json"
BEST_CHECKPOINT = os.path.join("checkpoints", "best.keras")
BACKUP_DIR = "backup"
HISTORY_FILE = "history.csv"
EXECUTION_FILE = "execution.json"
# The energy training took (`vlm_tf.energy`), the sum of history.csv's `energy_joules`.
ENERGY_FILE = "energy.json"
LOG_DIR = "logs"
SAVED_MODEL_DIR = "saved_model"
PRESET_DIR = "backbone_preset"


@dataclasses.dataclass
class RunConfig:
    model: str = DEFAULT_MODEL
    epochs: int = 30
    num_frames: int = 16
    image_size: int | None = None
    batch_size: int = 8
    learning_rate: float | None = None
    lr_schedule: str = "cosine"
    optimizer: str | None = None
    weight_decay: float | None = None
    warmup_epochs: int | None = None
    seed: int = 0
    # True: the standard augmentation; "robust": that, then corruptions; False: none.
    augment: bool | str = True
    # "auto": chosen by device, and on a CPU by measurement (vlm_tf.training.runtime).
    precision: str = "auto"
    jit: str = "auto"
    # TensorFlow's deterministic ops (`runtime.configure`): a run killed and
    # resumed ends with the same weights as one that was not, at some speed.
    deterministic: bool = False
    # The options of the model's task (`vlm_tf.tasks.options`); None: its defaults.
    options: object = None

    def resolved(self):
        """A validated copy with every recipe field (optimizer, frame size) left at None filled from
        the model's recipe, then `RECIPE_DEFAULTS`.
        """
        self.validate()
        recipe = {**RECIPE_DEFAULTS, **get_model_spec(self.model).training}
        values = {
            key: recipe[key] if getattr(self, key) is None else getattr(self, key)
            for key in RECIPE_DEFAULTS
        }
        if values["optimizer"] == "adam":
            # Adam has no decoupled decay: a recipe's decay goes with its
            # adamw, and one asked for with adam would be silently ignored.
            if self.weight_decay:
                raise ValueError(
                    f"weight_decay={self.weight_decay!r} needs optimizer='adamw' (adam has no "
                    "decoupled weight decay)"
                )
            values["weight_decay"] = 0.0
        if self.options is None:
            values["options"] = task_of_model(self.model).options()
        return dataclasses.replace(self, **values).validate()

    def validate(self):
        """Checks every field that is set; returns `self`."""
        get_model_spec(self.model)
        for field in ("epochs", "num_frames", "batch_size"):
            if int(getattr(self, field)) < 1:
                raise ValueError(
                    f"{field} must be a positive integer, received {getattr(self, field)!r}"
                )
        if self.image_size is not None and self.image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, received {self.image_size}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, received {self.learning_rate!r}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, received {self.optimizer!r}")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise ValueError(
                f"weight_decay must be zero or positive, received {self.weight_decay!r}"
            )
        if self.warmup_epochs is not None and int(self.warmup_epochs) < 0:
            raise ValueError(
                f"warmup_epochs must be zero or positive, received {self.warmup_epochs!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {LR_SCHEDULES}, received {self.lr_schedule!r}"
            )
        check_augment(self.augment)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, received {self.precision!r}")
        if self.jit not in JIT_MODES:
            raise ValueError(f"jit must be one of {JIT_MODES}, received {self.jit!r}")
        if self.options is not None:
            wanted = task_of_model(self.model).options
            if type(self.options) is not wanted:
                raise ValueError(
                    f"{self.model!r} takes {wanted.__name__}, received options={self.options!r}"
                )
            self.options.validate()
        return self

    def to_dict(self):
        """One flat dict: the fields, then the task's options (`config.json`'s `run`)."""
        values = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name != "options"
        }
        return {**values, **(self.options.to_dict() if self.options is not None else {})}

    @classmethod
    def from_dict(cls, values):
        """The config `to_dict` wrote; keys of neither the fields nor the model's task options are
        ignored
        (run folders from before the options moved into tasks hold every task's)."""
        known = {field.name for field in dataclasses.fields(cls)} - {"options"}
        config = cls(**{key: value for key, value in values.items() if key in known})
        return dataclasses.replace(
            config, options=task_of_model(config.model).options.from_dict(values)
        )


def require_finished_run(run_dir):
    """Raises FileNotFoundError naming the first of `config.json` and `model.keras` that `run_dir`
    lacks. Cheap: commands ask it before they import TensorFlow.
    """
    run_dir = os.fspath(run_dir)
    for name in (CONFIG_FILE, MODEL_FILE):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: not found (is {run_dir} a finished `vlm-tf train` run?)"
            )


def read_history(run_dir):
    """The run's `history.csv` as one dict of floats per epoch (missing values left out); `[]`
    before the first epoch.
    """
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.isfile(path):
        return []
    # CSVLogger writes "NA" for a metric an epoch did not report.
    return [
        {key: float(value) for key, value in row.items() if value and value != "NA"}
        for row in csv.DictReader(io.StringIO(read_text(path), newline=""))
    ]


def trim_history(run_dir, epochs):
    """Keeps only the whole rows of the first `epochs` epochs in the run's `history.csv`.

    A run killed after an epoch's row was written but before its state was
    backed up repeats that epoch when resumed; without this the epoch would
    appear twice. A kill can also leave the file empty (killed in epoch 1,
    after CSVLogger opened it) or end it in half a row (killed while
    writing): a row counts only when its line is complete, and a file with
    no header is started again.
    """
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.isfile(path):
        return
    lines = [line for line in io.StringIO(read_text(path), newline="") if line.endswith("\n")]
    fields = next(csv.reader(lines[:1]), [])
    if "epoch" not in fields:
        os.remove(path)
        return
    kept = [lines[0]]
    for line in lines[1:]:
        cells = next(csv.reader([line]), [])
        epoch = cells[fields.index("epoch")] if len(cells) == len(fields) else ""
        if epoch.isdigit() and int(epoch) < epochs:
            kept.append(line)
    write_text(path, "".join(kept))
