"""The `Task` base class: what the one training loop and the command line ask of every task.

A run's model is registered under a task (`vlm_tf.models.registry`); the
task turns a data folder into training data, builds and compiles the
model, adds its own callbacks, and afterwards evaluates, exports and
describes the run. `vlm_tf.training.train` calls, in order:

    split(data_dir)                      → the run's training and validation sources
    make_data(train, val, ...)           → `TaskData`: datasets, class names, clip counts
    build_model(data) → compile(model, make_optimizer, jit_compile)
    metric_callbacks(data, log_dir)      → callbacks that add figures to each epoch's logs (before
    the best model is chosen)
    picture_callbacks(model, data, dir)  → callbacks that write pictures to TensorBoard
    finish(run_dir, model, data, best)   → files of the task's own, once training ends
    summarize(history)                   → the figures the run ends with

`evaluate`, `predict`, `apply`, `generate`, `score_generated` and `export`
serve a finished run; their reports print themselves (`Report.lines`).
"""

from __future__ import annotations

import collections.abc
import dataclasses

from vlm_tf import budget
from vlm_tf.data.pipeline import make_clip_dataset, make_split_datasets
from vlm_tf.data.splits import find_split_dirs, readable_videos, refuse_empty_class_folders
from vlm_tf.models.flops import count_activations
from vlm_tf.models.presets import describe_init

# What an epoch's logs record about the run rather than how well its model does: left out of the
# outcome line (`train` prints the energy and a private run's final ε on lines of their own).
BOOKKEEPING_FIGURES = (
    "train_clips_per_s",
    "energy_joules",
    "energy_joules_per_clip",
    "dp_epsilon",
    "dp_clipped_share",
)


@dataclasses.dataclass
class TaskData:
    """What `Task.make_data` gives the training loop."""

    # What `fit` trains on and validates on (`validation` None: no validation pass).
    train: object
    validation: object
    class_names: list
    # Clips an epoch trains on (for clips/s) and the optimizer's steps an epoch.
    num_clips: int
    steps_per_epoch: int
    # `{"path", "reason"}` for each file left out.
    skipped: list = dataclasses.field(default_factory=list)
    # Whether `fit` must be told `steps_per_epoch` (an endless dataset).
    endless: bool = False
    # Anything else the task's callbacks need (validation clips, say).
    extras: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """What `vlm-tf generate` asks of a run (`Task.generate`): clips per class of a class GAN;
    clips of `prompts`, or of the prompt of every captioned video of `prompts_from`, per prompt,
    started from the picture `first_frame` or (`first_frames`) each video's own first frame, of
    a text_to_video run.
    """

    per_class: int = 16
    prompts: tuple = ()
    prompts_from: str | None = None
    per_prompt: int = 1
    first_frame: str | None = None
    first_frames: bool = False
    seed: int = 0
    # A GAN's noise drawn with this standard deviation (the truncation trick); 1: as it trained.
    truncation: float = 1.0
    # Each prompted clip the best of this many, by the run's video_text run (1: the first drawn).
    rerank: int = 1

    @property
    def from_words(self):
        return bool(self.prompts or self.prompts_from or self.first_frame or self.first_frames)


class Report(collections.abc.Mapping):
    """A typed evaluation report that reads as the JSON object it prints (`to_dict()`, or
    `report["key"]`).

    Subclasses are dataclasses; fields left at `None` that the subclass
    names in `OPTIONAL` are left out of the JSON, as older versions did.
    """

    OPTIONAL = ()

    def to_dict(self):
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return {
            key: value
            for key, value in values.items()
            if not (key in self.OPTIONAL and value is None)
        }

    def __getitem__(self, key):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self):
        return len(self.to_dict())

    def lines(self):
        """The report as the command line prints it."""
        raise NotImplementedError


def evenly_spaced_clips(run, paths):
    """`(readable, clips)`: the videos of `paths` and batches `(frames, index)` of one clip each,
    frames evenly across the video, at the run's frames, size and batch, in order; a one-line
    error naming an unreadable one.
    """
    readable, counts, skipped = readable_videos(paths)
    if skipped:
        raise ValueError(f"{skipped[0]['path']}: {skipped[0]['reason']}")
    clips = make_clip_dataset(
        readable,
        list(range(len(readable))),
        counts,
        class_names=[str(i) for i in range(len(readable))],
        num_frames=run.config.num_frames,
        image_size=run.image_size,
        batch_size=run.config.batch_size,
    )
    return readable, clips


def skipped_of(train, val):
    """The files both datasets left out (`{"path", "reason"}` each), each once."""
    return train.skipped + [item for item in val.skipped if item not in train.skipped]


def skipped_lines(skipped):
    return [f"skipped {item['path']}: {item['reason']}" for item in skipped]


class Task:
    """One task; an instance serves one run's resolved config (`config.options` are the task's
    options).
    """

    # The history key whose best epoch becomes `model.keras`; None: the last epoch's model.
    monitor = "val_accuracy"
    # The part of the trained model that `model.keras` holds (a GAN's "generator"); None: the whole
    # model.
    saved_part = None
    # Whether `train(cache=...)` and `train(strategy=...)` other than one device apply.
    caches = False
    distributes = False
    # Whether `train` prints the model's summary and TensorBoard gets weight histograms.
    show_model = False

    def __init__(self, name, config):
        self.name = name
        self.config = config
        self.options = config.options

    @property
    def image_size(self):
        return (self.config.image_size, self.config.image_size)

    # --- training ---

    def check_config(self):
        """Refuses, in one line, what the run's config alone shows cannot work, before any file is
        read or written.
        """
        init = getattr(self.options, "init", None)
        if init is not None:
            self.check_init_fits(init)

    def check_init_fits(self, init, *, model=None):
        """Refuses, in one line, an `--init` backbone (a preset or run) made for frames of another
        size than the run's, or, given `model`, another model; returns what `describe_init`
        read. From the backbone's JSON alone, before the run folder is touched.
        """
        about = describe_init(init)
        size = about["image_size"]
        if (model is not None and about["model_name"] != model) or tuple(size) != self.image_size:
            trains, flags = (f"{model} on", "--model and --size") if model else ("on", "--size")
            raise ValueError(
                f"{init}: a {about['model_name']} backbone for {size[0]}x{size[1]} frames; this "
                f"run trains {trains} {self.config.image_size}x{self.config.image_size} (set "
                f"{flags} to the backbone's)"
            )
        return about

    def check_memory(self, model=None):
        """Refuses, in one line, a run whose batches of clips (and, given `model`, its activations)
        cannot fit in this machine's free memory (`vlm_tf.budget`): before the data is read, and
        again once the model is built, before anything trains it.
        """
        config = self.config
        height, width = self.image_size
        needed = budget.clip_bytes(
            batch_size=config.batch_size, num_frames=config.num_frames, height=height, width=width
        )
        what = (
            f"batches of {config.batch_size} clips of {config.num_frames} frames of "
            f"{height}x{width}"
        )
        if model is not None:
            activations = count_activations(model, num_frames=config.num_frames)
            needed += config.batch_size * activations * budget.FLOAT32_BYTES
            what += f" and {config.model}'s activations"
        budget.require_memory(needed, what, "lower --batch-size, --frames or --size")

    def split(self, data_dir):
        """The training and validation sources of `data_dir`: `DATA_DIR/train` and `DATA_DIR/val`
        (or None) by default.

        A class folder of `DATA_DIR/train` without videos is refused here, before anything is read:
        the classes are its folders. One of `DATA_DIR/val` is only skipped, with a word.
        """
        train, val = find_split_dirs(data_dir)
        refuse_empty_class_folders(train)
        return train, val

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        """`TaskData` of the training and validation sources; the training data shows epoch
        `first_epoch` first (a resumed run's), as the uninterrupted run would have. A task that
        `distributes` also takes `service`, a tf.data service dispatcher's `host:port` whose
        workers make its training batches.
        """
        raise NotImplementedError

    def clip_datasets(
        self,
        train,
        val,
        *,
        label_mode,
        sampling=None,
        cache=None,
        shard=None,
        first_epoch=None,
        views=1,
        service=None,
    ):
        """Training and validation clips of class folders (`make_split_datasets`) at the run's
        frames, size, batch and seed; with `first_epoch`, the training clips are an endless
        stream of epochs keyed by their number, from that one on; `views` and `service` (a tf.data
        service dispatcher's address) as the pipeline takes them.
        """
        config = self.config
        return make_split_datasets(
            train,
            val,
            num_frames=config.num_frames,
            image_size=self.image_size,
            batch_size=config.batch_size,
            seed=config.seed,
            augment=config.augment,
            label_mode=label_mode,
            sampling=sampling,
            cache=cache,
            shard=shard,
            first_pass=first_epoch,
            views=views,
            service=service,
        )

    def execution_probe(self, train, val):
        """What `--precision auto` measures on a CPU (`runtime.choose_execution`'s keyword
        arguments); `{}`: no measuring.
        """
        return {}

    def build_model(self, data):
        raise NotImplementedError

    def compile(self, model, make_optimizer, jit_compile):
        """Compiles `model`; `make_optimizer(beta_1=..., lr_scale=...)` gives the run's
        optimizer.
        """
        raise NotImplementedError

    def metric_callbacks(self, data, log_dir):
        return []

    def picture_callbacks(self, model, data, log_dir):
        return []

    def finish(self, run_dir, model, data, best_path):
        """Writes the task's own files once training has ended (before `model.keras`, whose presence
        marks the run finished); `best_path` holds the best epoch's model.
        """

    def summarize(self, history):
        """The figures a run ends with: the monitored best epoch's row of `history` (the last
        without a monitor).
        """
        if not history:
            return {}
        if self.monitor is None:
            row = history[-1]
        else:
            row = max(history, key=lambda r: r.get(self.monitor, float("-inf")))
        return {key: value for key, value in row.items() if key != "epoch"}

    def describe_result(self, summary):
        """One line on how training ended, for the command line."""
        return ", ".join(
            f"{key} {value:.3f}" for key, value in summary.items() if key not in BOOKKEEPING_FIGURES
        )

    # --- using a finished run ---

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        """A `Report` of `run` on `data_dir`; `views` `(clips, crops)` per video apply to classify
        runs.
        """
        raise ValueError(
            f"{run.run_dir} is a {run.config.model} run ({self.name}): it has no `evaluate`"
        )

    def refuse_views(self, run, views):
        if tuple(views) != (1, 1):
            raise ValueError(
                f"--views is for classify runs; {run.run_dir} is a {run.config.model} run "
                f"({self.name})"
            )

    def predict(self, run, paths, *, top=3):
        """Label and probabilities for each of `paths` (`vlm-tf predict`): a classifier's, by
        default (`vlm_tf.tasks.classify.predict_videos`).
        """
        from vlm_tf.tasks.classify import predict_videos

        return predict_videos(run, paths, top=top)

    def apply(self, run, video, out, *, side_by_side=False, degrade=False, seed=0):
        """Writes `video` as the run's model sees or changes it to `out`; returns a `Report` of
        what was written.
        """
        raise ValueError(
            f"{run.run_dir} is a {run.config.model} run ({self.name}); `vlm-tf apply` needs a "
            "denoise, superres, enhance or detect run"
        )

    def generate(self, run, out, request):
        """Writes `run`'s clips for `request` (a `GenerationRequest`) under the new or empty
        folder `out`; returns the lines that say what was written and how to score it.
        """
        raise ValueError(
            f"{run.run_dir} is a {run.config.model} run ({self.name}); `vlm-tf generate` needs a "
            "gan or text_to_video run"
        )

    def score_generated(self, run, generated_dir, real_dir, *, reference_dir=None, text_run=None):
        """A `Report` of how `run`, trained on real clips, judges the generated clips of
        `generated_dir` and how far they lie from `real_dir`'s (`vlm-tf score-generated`).
        """
        raise ValueError(
            f"{run.run_dir} is a {run.config.model} run ({self.name}); `vlm-tf score-generated` "
            "judges with a classify run (a class GAN's clips) or an attributes run (prompted ones)"
        )

    def export(self, run, path):
        """Writes `run`'s SavedModel to `path`; returns a line saying what its signature takes and
        returns.
        """
        raise NotImplementedError

    def export_preset(self, run, path):
        """Writes `run`'s backbone as a preset folder (`vlm_tf.models.backbone`); returns a line on
        how to use it.
        """
        raise ValueError(
            f"{run.run_dir} is a {run.config.model} run ({self.name}); backbone presets are cut "
            "from classify runs"
        )
