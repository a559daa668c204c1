"""The one training loop: any registered model, its task's data, into a run folder.

A run folder holds everything needed to use, inspect or continue the run:

    RUN_DIR/config.json          RunConfig (with the task's options) + data folder + class names
                                 (precision and jit as settled, never `auto`)
    RUN_DIR/execution.json       how `auto` precision and jit were settled, with the clips/s
    measured
    RUN_DIR/class_names.json     label order of the model's outputs
    RUN_DIR/model.keras          the best epoch's model (by the task's monitored figure; a GAN: the
    last)
    RUN_DIR/checkpoints/best.keras
    RUN_DIR/history.csv          one row per epoch (CSVLogger)
    RUN_DIR/logs/                TensorBoard: train/validation scalars, the task's pictures,
    profiler trace (`profile=True`)
    RUN_DIR/backup/              present only while a run is unfinished: `train` resumes from it
    RUN_DIR/encryption.json      only in an encrypted run: every other file is encrypted
                                 (`vlm_tf.crypto`)

plus the task's own files (a detector's `baseline.json`, a GAN's
`discriminator.keras`). What differs between tasks is asked of the task
(`vlm_tf.tasks.base.Task`); resuming, backups, checkpoints, logs,
precision and distribution are written once, here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings

import keras

from vlm_tf import atomic, crypto
from vlm_tf.data.names import check_name
from vlm_tf.data.options import without_autotuning
from vlm_tf.data.service import check_dispatcher
from vlm_tf.energy import EnergyMeter
from vlm_tf.tasks import task_of_model
from vlm_tf.training import config as run_files
from vlm_tf.training import distribute, runtime
from vlm_tf.training.callbacks import (
    EnergyUse,
    ProfileSteps,
    ResumableBackup,
    SaveModel,
    StopOnNonFiniteLoss,
    TrainingThroughput,
    history_and_logs,
)
from vlm_tf.training.config import RunConfig


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    model_path: str
    epochs_run: int
    resumed: bool
    skipped: list
    # The figures the run ends with, by name: its best epoch's history row
    # (by the task's monitored figure), or the last epoch's for a GAN.
    summary: dict = dataclasses.field(default_factory=dict)
    # The precision and XLA setting it ran with, and how they were chosen.
    execution: runtime.Execution | None = None
    # One line on how training ended (`Task.describe_result`).
    outcome: str = ""
    # The energy of every epoch in the run's history (`vlm_tf.energy.Energy`; also energy.json).
    energy: object = None

    @property
    def best_val_accuracy(self):
        """A classifier's best validation accuracy; None for the other tasks."""
        return self.summary.get("val_accuracy")


def _check_run_dir(run_dir, config):
    """Returns True when `run_dir` holds an unfinished run of this config (resume), False when
    new.
    """
    if os.path.exists(os.path.join(run_dir, run_files.MODEL_FILE)):
        raise ValueError(f"{run_dir} already holds a finished run; choose a new --out folder")
    config_path = os.path.join(run_dir, run_files.CONFIG_FILE)
    if os.path.isfile(config_path):
        previous = RunConfig.from_dict(atomic.read_json(config_path)["run"])
        config = with_started_execution(config, previous)
        if previous != config:
            changed = [
                f"{k}: {v!r} → {config.to_dict()[k]!r}"
                for k, v in previous.to_dict().items()
                if config.to_dict()[k] != v
            ]
            raise ValueError(
                f"{run_dir} holds an unfinished run with other settings ({'; '.join(changed)}); "
                "rerun with its settings to resume, or choose a new --out folder"
            )
        return True
    if os.path.isdir(run_dir) and atomic.contents(run_dir):
        raise ValueError(
            f"{run_dir} is not empty and holds no vlm-tf run; choose a new --out folder"
        )
    return False


def best_validation_accuracy(run_dir, key="val_accuracy"):
    """Best (largest) `key`, validation accuracy by default, already in the run's history.csv
    (`None` before the first epoch).
    """
    values = [row[key] for row in run_files.read_history(run_dir) if key in row]
    return max(values) if values else None


@dataclasses.dataclass(frozen=True)
class RunExtras:
    """What a run is given besides its config: it changes how fast a run goes or what it records,
    never what it learns, so a resumed run may differ in it.
    """

    callbacks: tuple = ()
    # `video_dataset_from_directory(cache=...)`: None, "memory" or a folder.
    cache: str | None = None
    # Whether any skipped file refuses the run (`train(strict=True)`).
    strict: bool = False
    # Where the run trains: one device, or several replicas (`vlm_tf.training.distribute`).
    distribution: distribute.Distribution | None = None
    # Measures each epoch's energy (`vlm_tf.energy`).
    energy: EnergyMeter | None = None
    # A tf.data service dispatcher's `host:port` whose workers make the training batches.
    data_service: str | None = None


def train(
    data_dir,
    run_dir,
    config=None,
    *,
    verbose=1,
    profile=False,
    cache=None,
    strategy="auto",
    strict=False,
    data_service=None,
):
    """Trains `config.model` on `data_dir` with its task's data, loss and callbacks, and fills
    `run_dir`.

    The optimizer is the model's recipe unless `config` sets one (adam at
    1e-3, the text's, for all but the transformers; `make_optimizer`), its
    rate decayed on a cosine unless `config.lr_schedule == "constant"`. A
    run folder left unfinished by a killed process is resumed from its last
    completed epoch when `train` is called again with the same config.
    `config.precision` and `config.jit` at `auto` are settled by
    `runtime.choose_execution`; `profile=True` writes a TensorFlow profiler
    trace of a few training steps to `RUN_DIR/logs/profile` (TensorBoard's
    Profile tab, with the tensorboard-plugin-profile package); `cache`
    (`"memory"` or a folder) decodes each video once instead of every epoch
    (tasks whose `caches` is set). `strategy` (`distribute.STRATEGIES`)
    spreads a run of a task that `distributes` over this machine's GPUs or
    over several worker processes (`vlm_tf.training.distribute`); on a
    worker that is not the chief, the run folder is a scratch copy, removed
    when training ends. `strict=True` refuses, once the data is read and
    before the model is built, a run whose data leaves anything out (the
    task's `skipped`: an unreadable video, a validation class folder
    without videos, a corrupt cache file), naming the first.
    `data_service` (a dispatcher's `host:port`, `vlm-tf data-service`) has
    that tf.data service's workers decode the training clips of a task that
    `distributes` (`vlm_tf.data.service`); validation stays here.
    """
    config = (config or RunConfig()).resolved()
    run_dir = os.fspath(run_dir)
    spec = task_of_model(config.model)
    # First: the multi-worker strategy must exist before TensorFlow runs anything.
    distribution = distribute.make_distribution(strategy)
    task_class = spec.task_class()
    if distribution.name != "default" and not task_class.distributes:
        raise ValueError(
            f"strategy {distribution.name!r} applies to classify runs, not {spec.name} (received "
            f"strategy={strategy!r})"
        )
    if data_service is not None:
        if not task_class.distributes or cache is not None or distribution.num_workers > 1:
            raise ValueError(
                f"data_service feeds classify runs in one process without a cache, not this "
                f"{spec.name} run (received data_service={data_service!r}, cache={cache!r}, "
                f"{distribution.num_workers} workers)"
            )
        data_service = check_dispatcher(data_service)
    if cache is not None and not task_class.caches:
        raise ValueError(
            f"cache applies to classify, generate and predict_frames runs, not {spec.name} "
            f"(received cache={cache!r})"
        )
    chief_run_dir = run_dir
    if not distribution.is_chief:
        run_dir = distribution.scratch_dir(run_dir)
    task = task_class(spec.name, config)
    task.check_config()
    task.check_memory()
    # Its settings come from the environment: a bad one is refused before any work.
    meter = EnergyMeter()
    splits = task.split(data_dir)
    # Refused before the lock is taken, so that an unrelated folder is left untouched.
    _check_run_dir(run_dir, config)
    with atomic.exclusive(run_dir):
        # Under the lock, what a killed writer left half-written is nobody's.
        atomic.remove_partials(run_dir)
        resumed = _check_run_dir(run_dir, config)
        if crypto.seal(run_dir) is not None and (profile or distribution.num_workers > 1):
            raise ValueError(
                f"{run_dir}: an encrypted run trains in one process without --profile (the "
                "profiler and other workers write files in the clear)"
            )
        config, execution = _settle_execution(
            config, run_dir, task, splits, resumed, verbose, distribution
        )
        # The run's task holds the config as settled (precision and XLA no longer `auto`).
        task = task_class(spec.name, config)
        previous_policy = keras.mixed_precision.global_policy()
        # After the measurement, which builds models of its own: the seed fixes
        # the run's weights and data order whatever was measured.
        runtime.configure(
            seed=config.seed, precision=config.precision, deterministic=config.deterministic
        )
        try:
            extras = RunExtras(
                callbacks=(ProfileSteps(os.path.join(run_dir, run_files.LOG_DIR, "profile")),)
                if profile
                else (),
                cache=cache,
                strict=strict,
                distribution=distribution,
                energy=meter,
                data_service=data_service,
            )
            result = _fit(task, data_dir, run_dir, splits, resumed, verbose, extras)
            atomic.write_json(
                os.path.join(run_dir, run_files.EXECUTION_FILE),
                {**execution.to_dict(), **distribution.to_dict()},
            )
            distribute.barrier(distribution)
            if not distribution.is_chief:
                # The chief's run folder is the run; this worker's copy only held its backup.
                shutil.rmtree(run_dir)
                result = dataclasses.replace(
                    result,
                    run_dir=chief_run_dir,
                    model_path=os.path.join(chief_run_dir, run_files.MODEL_FILE),
                )
            return dataclasses.replace(result, execution=execution)
        finally:
            # The dtype policy is process-wide; models built after this run
            # (in a notebook, say) get the caller's policy back.
            keras.mixed_precision.set_global_policy(previous_policy)


def _fit(task, data_dir, run_dir, splits, resumed, verbose, extras):
    """Trains `task`'s model into `run_dir`: every run's end of epoch (logs, best model, backup)
    around the task's own parts.
    """
    config = task.config
    distribution = extras.distribution or distribute.make_distribution("default")
    # A kill can land after one worker saved epoch N and before another did;
    # no worker starts epoch N + 1's steps before every one has saved N, so
    # with two states kept, the epoch all workers saved is always there.
    backup = ResumableBackup(
        os.path.join(run_dir, run_files.BACKUP_DIR), keep=2 if distribution.num_workers > 1 else 1
    )
    first_epoch = distribute.agreed_epoch(distribution, backup.saved_epoch())
    backup.rewind(first_epoch)
    # A resumed run's data starts at the epoch it resumes, as the uninterrupted run's did.
    # Only a task that `distributes` takes a service (`train` refused the others).
    served = {"service": extras.data_service} if extras.data_service else {}
    data = task.make_data(
        *splits, cache=extras.cache, distribution=distribution, first_epoch=first_epoch, **served
    )
    if extras.strict and data.skipped:
        first = data.skipped[0]
        raise ValueError(
            f"{first['path']}: {first['reason']} ({len(data.skipped)} skipped; strict training "
            "refuses any)"
        )
    write_run_header(run_dir, data_dir, config, data.class_names)
    with distribution.strategy.scope():
        model = task.build_model(data)
        task.check_memory(model)

        def optimizer(**kwargs):
            return make_optimizer(config, data.steps_per_epoch, **kwargs)

        task.compile(model, optimizer, runtime.jit_compile_argument(config.jit))
        runtime.build_training_state(model, getattr(data.train, "element_spec", None))
    if verbose and task.show_model:
        model.summary()

    best_path = os.path.join(run_dir, run_files.BEST_CHECKPOINT)
    run_files.trim_history(run_dir, first_epoch)
    callbacks = _callbacks(task, model, data, run_dir, best_path, backup, extras)
    with warnings.catch_warnings():
        # Skipping unreadable files leaves the epoch length unknown until the
        # first epoch ends; Keras then warns that the input "ran out of
        # data", which is how every epoch is meant to end here.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # The datasets shuffle themselves; fit's own shuffle does not apply.
        history = model.fit(
            data.train,
            validation_data=without_autotuning(data.validation),
            epochs=config.epochs,
            steps_per_epoch=data.steps_per_epoch if data.endless else None,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )

    task.finish(run_dir, model, data, best_path)
    rows = run_files.read_history(run_dir)
    energy = _run_energy(rows, extras.energy or EnergyMeter(), data.num_clips)
    atomic.write_json(os.path.join(run_dir, run_files.ENERGY_FILE), energy.to_dict())
    model_path = os.path.join(run_dir, run_files.MODEL_FILE)
    # The run's model is its best epoch, which after a resume may be an epoch
    # from before the interruption; model.keras last: its presence is what
    # marks the run finished.
    atomic.copy_file(best_path, model_path)
    backup.discard()
    summary = task.summarize(rows)
    return TrainResult(
        run_dir=run_dir,
        model_path=model_path,
        epochs_run=len(history.epoch),
        resumed=resumed,
        skipped=data.skipped + _failed_in_training(data),
        summary=summary,
        outcome=task.describe_result(summary),
        energy=energy,
    )


def _run_energy(history, meter, num_clips):
    """The energy of the epochs in `history`, a resumed run's earlier ones included."""
    epochs = [row["energy_joules"] for row in history if "energy_joules" in row]
    return meter.energy(float(sum(epochs)), clips=num_clips * len(epochs) or None)


def _failed_in_training(data):
    """The videos that passed the probe and failed while training read them, once each: their
    clips dropped out of the epochs (`make_clip_dataset`'s `failed`).
    """
    return list(getattr(data.train, "failed", ()))


def _callbacks(task, model, data, run_dir, best_path, backup, extras):
    """Every run's callbacks around the task's, in the order their end-of-epoch writes need.

    The history and the TensorBoard logs of an encrypted run are written whole, or in memory and
    then copied, encrypted (`history_and_logs`).
    """
    history, log_root, copies = history_and_logs(run_dir, append=True)
    log_dir = os.path.join(log_root, run_files.LOG_DIR)
    monitor = task.monitor
    return [
        # First, with the task's figures after it, so the loggers and the
        # best-model choice see them in the epoch's logs; the clock stops
        # before a worker's own validation starts.
        StopOnNonFiniteLoss(),
        TrainingThroughput(data.num_clips),
        EnergyUse(data.num_clips, extras.energy or EnergyMeter()),
        *task.metric_callbacks(data, log_dir),
        SaveModel(
            best_path,
            part=task.saved_part,
            monitor=monitor,
            initial_value=best_validation_accuracy(run_dir, monitor) if monitor else None,
        ),
        history,
        keras.callbacks.TensorBoard(
            log_dir, histogram_freq=1 if task.show_model else 0, write_graph=False
        ),
        *task.picture_callbacks(model, data, log_dir),
        *extras.callbacks,
        *copies,
        # Last, after every other end-of-epoch write.
        backup,
    ]


def with_started_execution(config, started):
    """`config` with its `auto` precision and jit taken from the run it resumes: `auto` never
    changes a run halfway.
    """
    return dataclasses.replace(
        config,
        precision=started.precision if config.precision == "auto" else config.precision,
        jit=started.jit if config.jit == "auto" else config.jit,
    )


def _settle_execution(config, run_dir, task, splits, resumed, verbose, distribution):
    """`(config, execution)`: `config` with `auto` precision and jit replaced by what runs
    (`runtime.choose_execution`).

    The run's `config.json` then holds the settled values; `execution.json`
    (written when the run ends) says how they were chosen. Workers measure
    nothing: each would measure its own machine, and all must run alike, so
    they take the device's rule (float32 without XLA on a CPU).
    """
    if "auto" not in (config.precision, config.jit):
        return config, runtime.Execution(config.precision, config.jit)
    if resumed:
        config = with_started_execution(
            config,
            RunConfig.from_dict(
                atomic.read_json(os.path.join(run_dir, run_files.CONFIG_FILE))["run"]
            ),
        )
        return config, runtime.Execution(config.precision, config.jit, "resumed")
    measure = task.execution_probe(*splits) if distribution.num_workers == 1 else {}
    execution = runtime.choose_execution(config.precision, config.jit, **measure)
    if verbose:
        print(
            f"execution: {execution.precision}, XLA {execution.jit} "
            f"({execution.source}{': ' + str(execution.measured) if execution.measured else ''})"
        )
    return dataclasses.replace(config, precision=execution.precision, jit=execution.jit), execution


def make_optimizer(config, steps_per_epoch, *, beta_1=0.9, lr_scale=1.0):
    """The optimizer of a resolved `config`: adam or adamw, its learning rate warmed up and then
    cosine-decayed or held.

    The cosine decays to zero at the end of the run, so the last epochs
    settle instead of bouncing at the starting rate; `lr_schedule="constant"`
    holds the rate, as the text does. A linear warmup of `warmup_epochs`
    (at most half the run) comes first: transformers trained from scratch
    with adam's full rate from the first step stay at chance here
    (docs/design.md). AdamW's decay leaves biases, normalisation scales,
    position embeddings and the class token alone, as ViT training does.
    `beta_1` is Adam's first-moment decay (the GANs take 0.5); `lr_scale`
    multiplies the configured rate (a GAN's discriminator learns faster).
    """
    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_epochs * steps_per_epoch, total // 2)
    peak = config.learning_rate * lr_scale
    learning_rate = peak
    if config.lr_schedule == "cosine" or warmup:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else peak,
            max(total - warmup, 1),
            alpha=1.0 if config.lr_schedule == "constant" else 0.0,
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate, weight_decay=config.weight_decay, beta_1=beta_1
        )
        optimizer.exclude_from_weight_decay(
            var_names=["bias", "gamma", "beta", "position", "class_token"]
        )
        return optimizer
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1)


def write_run_header(run_dir, data_dir, config, class_names):
    """Writes `config.json` and `class_names.json`, what `load_run` and a resumed run read back.

    Refuses class names `load_run` would refuse, before the run trains into a folder no command
    could load.
    """
    for name in class_names:
        check_name(name, source=data_dir, what="class name")
    os.makedirs(os.path.join(run_dir, os.path.dirname(run_files.BEST_CHECKPOINT)), exist_ok=True)
    atomic.write_json(
        os.path.join(run_dir, run_files.CONFIG_FILE),
        {
            "run": config.to_dict(),
            "data_dir": os.path.abspath(data_dir),
            "class_names": class_names,
        },
    )
    atomic.write_json(os.path.join(run_dir, run_files.CLASS_NAMES_FILE), class_names)
