"""Training a registered model on a folder of videos, into a run folder.

A run folder holds everything needed to use, inspect or continue the run:

    RUN_DIR/config.json          RunConfig + data folder + class names (precision and jit as settled, never `auto`)
    RUN_DIR/execution.json       how `auto` precision and jit were settled, with the clips/s measured
    RUN_DIR/class_names.json     label order of the model's outputs
    RUN_DIR/model.keras          the best epoch's model (by validation accuracy)
    RUN_DIR/checkpoints/best.keras
    RUN_DIR/history.csv          one row per epoch (CSVLogger)
    RUN_DIR/logs/                TensorBoard: train/validation scalars, histograms, graph, input clips, profiler trace (`profile=True`),
                                 attention maps of validation clips (models with an attention layer)
    RUN_DIR/backup/              present only while a run is unfinished: `train` resumes from it
"""

from __future__ import annotations

import math
import dataclasses
import os
import shutil
import warnings

import keras
import numpy as np

from vlm_tf import atomic
from vlm_tf.data.pipeline import index_directory, video_dataset_from_directory
from vlm_tf.models.registry import RESTORATION_TASKS, build_model, get_model_spec
from vlm_tf.training import config as run_files
from vlm_tf.training import distribute, runtime
from vlm_tf.training.callbacks import AttentionMaps, ClipSamples, LocalValidation, ModelGraph, ProfileSteps, ResumableBackup, SaveModel, TrainingThroughput, attention_layer
from vlm_tf.training.config import RunConfig

VALIDATION_FALLBACK_SPLIT = 0.2


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    model_path: str
    # None for the generative models, which report `summary` instead.
    best_val_accuracy: float | None
    epochs_run: int
    resumed: bool
    skipped: list
    # The figures a run ends with, by name (the generative models: their losses, PSNR, SSIM).
    summary: dict = dataclasses.field(default_factory=dict)
    # The precision and XLA setting it ran with, and how they were chosen.
    execution: runtime.Execution | None = None


def find_split_dirs(data_dir):
    """`DATA_DIR/train` and `DATA_DIR/val` (else `None`: validation is then split off train).

    `DATA_DIR/test` is never used for validation: the best checkpoint is
    chosen on validation accuracy, so a test split used for it would no
    longer be held out and its accuracy would be optimistic.
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such directory")
    train_dir = os.path.join(data_dir, "train")
    if not os.path.isdir(train_dir):
        raise FileNotFoundError(f"{train_dir}: no such directory (expected DATA_DIR/train/<class>/<video>, optionally DATA_DIR/val)")
    val_dir = os.path.join(data_dir, "val")
    return train_dir, val_dir if os.path.isdir(val_dir) else None


def _check_run_dir(run_dir, config):
    """Returns True when `run_dir` holds an unfinished run of this config (resume), False when new."""
    if os.path.exists(os.path.join(run_dir, run_files.MODEL_FILE)):
        raise ValueError(f"{run_dir} already holds a finished run; choose a new --out folder")
    config_path = os.path.join(run_dir, run_files.CONFIG_FILE)
    if os.path.isfile(config_path):
        previous = RunConfig.from_dict(run_files.read_json(config_path)["run"])
        config = with_started_execution(config, previous)
        if previous != config:
            changed = [f"{k}: {v!r} → {config.to_dict()[k]!r}" for k, v in previous.to_dict().items() if config.to_dict()[k] != v]
            raise ValueError(f"{run_dir} holds an unfinished run with other settings ({'; '.join(changed)}); rerun with its settings to resume, or choose a new --out folder")
        return True
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ValueError(f"{run_dir} is not empty and holds no vlm-tf run; choose a new --out folder")
    return False


def best_validation_accuracy(run_dir, key="val_accuracy"):
    """Best (largest) `key`, validation accuracy by default, already in the run's history.csv (`None` before the first epoch)."""
    values = [row[key] for row in run_files.read_history(run_dir) if key in row]
    return max(values) if values else None


@dataclasses.dataclass(frozen=True)
class RunExtras:
    """What a run is given besides its config: it changes how fast a run goes or what it records, never what it learns, so a resumed run may differ in it."""

    callbacks: tuple = ()
    # `video_dataset_from_directory(cache=...)`: None, "memory" or a folder.
    cache: str | None = None
    # Where the run trains: one device, or several replicas (`vlm_tf.training.distribute`).
    distribution: distribute.Distribution | None = None


def train(data_dir, run_dir, config=None, *, verbose=1, profile=False, cache=None, strategy="auto"):
    """Trains `config.model` on `data_dir` (train/, validated on val/ or a split of train/) and fills `run_dir`.

    Compiled as the text compiles (§5.2.1): categorical cross-entropy and
    accuracy, with the optimizer of the model's recipe unless `config` sets
    one (adam at 1e-3, the text's, for all but the transformers;
    `make_optimizer`). The learning rate decays on a cosine unless
    `config.lr_schedule == "constant"`. A run folder left unfinished by a killed process is resumed
    from its last completed epoch when `train` is called again with the same
    config. `config.precision` and `config.jit` at `auto` are settled by
    `runtime.choose_execution`; `profile=True` writes a TensorFlow profiler
    trace of a few training steps to `RUN_DIR/logs/profile` (TensorBoard's
    Profile tab, with the tensorboard-plugin-profile package); `cache`
    (`"memory"` or a folder) decodes each video once instead of every epoch
    (classify, gan and fusion runs). `strategy` (`distribute.STRATEGIES`)
    spreads a classify run over this machine's GPUs or over several worker
    processes (`vlm_tf.training.distribute`); on a worker that is not the
    chief, the run folder is a scratch copy, removed when training ends.
    """
    config = (config or RunConfig()).resolved()
    run_dir = os.fspath(run_dir)
    task = get_model_spec(config.model).task
    # First: the multi-worker strategy must exist before TensorFlow runs anything.
    distribution = distribute.make_distribution(strategy)
    if distribution.name != "default" and task != "classify":
        raise ValueError(f"strategy {distribution.name!r} applies to classify runs, not {task} (received strategy={strategy!r})")
    chief_run_dir = run_dir
    if not distribution.is_chief:
        run_dir = distribution.scratch_dir(run_dir)
    if cache is not None and (task in RESTORATION_TASKS or task == "detect"):
        raise ValueError(f"cache applies to classify, generate and predict_frames runs, not {task} (received cache={cache!r})")
    if task in RESTORATION_TASKS or task == "detect":
        from vlm_tf.training.detect import train_detection
        from vlm_tf.training.restore import train_restoration, video_split

        # Any folder of videos will do, class folders or not: restoration
        # degrades them into pairs, detection reads the box file beside each.
        train_run = train_detection if task == "detect" else train_restoration
        splits = video_split(data_dir, seed=config.seed)
    else:
        splits = find_split_dirs(data_dir)
        if task == "classify":
            train_run = _train
        else:
            from vlm_tf.training.gan import train_generative as train_run
    resumed = _check_run_dir(run_dir, config)
    config, execution = _settle_execution(config, run_dir, task, splits[0], resumed, verbose, distribution)
    previous_policy = keras.mixed_precision.global_policy()
    # After the measurement, which builds models of its own: the seed fixes
    # the run's weights and data order whatever was measured.
    runtime.configure(seed=config.seed, precision=config.precision)
    try:
        extras = RunExtras(callbacks=(ProfileSteps(os.path.join(run_dir, run_files.LOG_DIR, "profile")),) if profile else (), cache=cache, distribution=distribution)
        result = train_run(data_dir, run_dir, config, *splits, resumed, verbose, extras)
        atomic.write_json(os.path.join(run_dir, run_files.EXECUTION_FILE), {**execution.to_dict(), **distribution.to_dict()})
        distribute.barrier(distribution)
        if not distribution.is_chief:
            # The chief's run folder is the run; this worker's copy only held its backup.
            shutil.rmtree(run_dir)
            result = dataclasses.replace(result, run_dir=chief_run_dir, model_path=os.path.join(chief_run_dir, run_files.MODEL_FILE))
        return dataclasses.replace(result, execution=execution)
    finally:
        # The dtype policy is process-wide; models built after this run
        # (in a notebook, say) get the caller's policy back.
        keras.mixed_precision.set_global_policy(previous_policy)


def with_started_execution(config, started):
    """`config` with its `auto` precision and jit taken from the run it resumes: `auto` never changes a run halfway."""
    return dataclasses.replace(
        config,
        precision=started.precision if config.precision == "auto" else config.precision,
        jit=started.jit if config.jit == "auto" else config.jit,
    )


def _settle_execution(config, run_dir, task, train_dir, resumed, verbose, distribution):
    """`(config, execution)`: `config` with `auto` precision and jit replaced by what runs (`runtime.choose_execution`).

    The run's `config.json` then holds the settled values; `execution.json`
    (written when the run ends) says how they were chosen. Workers measure
    nothing: each would measure its own machine, and all must run alike, so
    they take the device's rule (float32 without XLA on a CPU).
    """
    if "auto" not in (config.precision, config.jit):
        return config, runtime.Execution(config.precision, config.jit)
    if resumed:
        config = with_started_execution(config, RunConfig.from_dict(run_files.read_json(os.path.join(run_dir, run_files.CONFIG_FILE))["run"]))
        return config, runtime.Execution(config.precision, config.jit, "resumed")
    measure = {}
    if task == "classify" and distribution.num_workers == 1:
        # The dataset's own folder walk: its classes, and a folder without videos refused before any measuring.
        num_classes = len(index_directory(train_dir)[2])
        size = config.image_size
        rng = np.random.default_rng(config.seed)
        measure = dict(
            key=f"{config.model}|{num_classes} classes|{config.num_frames}x{size}x{size}|batch {config.batch_size}",
            build=lambda: build_model(config.model, num_classes=num_classes, image_size=(size, size)),
            inputs=rng.uniform(0, 255, (config.batch_size, config.num_frames, size, size, 3)).astype("float32"),
            targets=np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, config.batch_size)],
            loss="categorical_crossentropy",
        )
    execution = runtime.choose_execution(config.precision, config.jit, **measure)
    if verbose:
        print(f"execution: {execution.precision}, XLA {execution.jit} ({execution.source}{': ' + str(execution.measured) if execution.measured else ''})")
    return dataclasses.replace(config, precision=execution.precision, jit=execution.jit), execution


def make_optimizer(config, steps_per_epoch, *, beta_1=0.9, lr_scale=1.0):
    """The optimizer of a resolved `config`: adam or adamw, its learning rate warmed up and then cosine-decayed or held.

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
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay, beta_1=beta_1)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "position", "class_token"])
        return optimizer
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1)


def make_run_datasets(train_dir, val_dir, config, *, label_mode, sampling=None, cache=None, shard=None):
    """The run's training and validation datasets: `val_dir`, else a split of `train_dir` (`find_split_dirs`); `cache` and `shard` (training files only) as `video_dataset_from_directory` takes them."""
    image_size = (config.image_size, config.image_size)
    common = dict(num_frames=config.num_frames, image_size=image_size, batch_size=config.batch_size, label_mode=label_mode, seed=config.seed, sampling=sampling, cache=cache)
    if val_dir is None:
        return video_dataset_from_directory(train_dir, augment=config.augment, validation_split=VALIDATION_FALLBACK_SPLIT, subset="both", shard=shard, **common)
    train_ds = video_dataset_from_directory(train_dir, augment=config.augment, shard=shard, **common)
    return train_ds, video_dataset_from_directory(val_dir, class_names=train_ds.class_names, shuffle=False, **common)


def write_run_header(run_dir, data_dir, config, class_names):
    """Writes `config.json` and `class_names.json`, what `load_run` and a resumed run read back."""
    os.makedirs(os.path.join(run_dir, os.path.dirname(run_files.BEST_CHECKPOINT)), exist_ok=True)
    atomic.write_json(
        os.path.join(run_dir, run_files.CONFIG_FILE),
        {"run": config.to_dict(), "data_dir": os.path.abspath(data_dir), "class_names": class_names},
    )
    atomic.write_json(os.path.join(run_dir, run_files.CLASS_NAMES_FILE), class_names)


def _train(data_dir, run_dir, config, train_dir, val_dir, resumed, verbose, extras):
    image_size = (config.image_size, config.image_size)
    distribution = extras.distribution or distribute.make_distribution("default")
    workers = distribution.num_workers
    if config.batch_size % distribution.num_replicas:
        raise ValueError(f"batch_size {config.batch_size} is the global batch and must be a multiple of the {distribution.num_replicas} replicas it is split among")
    shard = (workers, distribution.shard_index) if workers > 1 else None
    train_ds, val_ds = make_run_datasets(train_dir, val_dir, config, label_mode="categorical", cache=extras.cache, shard=shard)
    class_names = train_ds.class_names
    write_run_header(run_dir, data_dir, config, class_names)
    steps_per_epoch = math.ceil(len(train_ds.file_paths) / config.batch_size)
    if workers > 1:
        # Endless, sharded training files: every worker takes this many steps an epoch.
        steps_per_epoch = max(len(train_ds.file_paths) // config.batch_size, 1)
        train_ds = distribute.whole_on_every_worker(train_ds)

    with distribution.strategy.scope():
        model = build_model(config.model, num_classes=len(class_names), image_size=image_size)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=runtime.jit_compile_argument(config.jit),
        )
    if verbose:
        model.summary()

    best_path = os.path.join(run_dir, run_files.BEST_CHECKPOINT)
    history_path = os.path.join(run_dir, run_files.HISTORY_FILE)
    log_dir = os.path.join(run_dir, run_files.LOG_DIR)
    backup = ResumableBackup(os.path.join(run_dir, run_files.BACKUP_DIR))
    run_files.trim_history(run_dir, backup.saved_epoch())
    callbacks = [
        # First, so the loggers after them see their figures in the epoch's
        # logs; the clock stops before a worker's own validation starts.
        TrainingThroughput(steps_per_epoch * config.batch_size if workers > 1 else len(train_ds.file_paths)),
        *([LocalValidation(val_ds)] if workers > 1 else []),
        SaveModel(best_path, monitor="val_accuracy", initial_value=best_validation_accuracy(run_dir)),
        keras.callbacks.CSVLogger(history_path, append=True),
        keras.callbacks.TensorBoard(log_dir, histogram_freq=1, write_graph=False),
        ModelGraph(os.path.join(log_dir, "train")),
        ClipSamples(train_ds, os.path.join(log_dir, "samples"), class_names),
    ]
    if attention_layer(model) is not None:
        callbacks.append(AttentionMaps(val_ds, os.path.join(log_dir, "attention"), class_names))
    with warnings.catch_warnings():
        # Skipping unreadable files leaves the epoch length unknown until the
        # first epoch ends; Keras then warns that the input "ran out of
        # data", which is how every epoch is meant to end here.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # The dataset shuffles its files itself; fit's own shuffle does not apply.
        # The backup goes last, after every other end-of-epoch write.
        history = model.fit(
            train_ds,
            validation_data=None if workers > 1 else val_ds,
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch if workers > 1 else None,
            callbacks=[*callbacks, *extras.callbacks, backup],
            verbose=verbose,
            shuffle=False,
        )

    model_path = os.path.join(run_dir, run_files.MODEL_FILE)
    # The run's model is its best epoch, which after a resume may be an epoch
    # from before the interruption.
    atomic.copy_file(best_path, model_path)
    backup.discard()
    return TrainResult(
        run_dir=run_dir,
        model_path=model_path,
        best_val_accuracy=float(best_validation_accuracy(run_dir) or 0.0),
        epochs_run=len(history.history.get("loss", [])),
        resumed=resumed,
        skipped=train_ds.skipped + [s for s in val_ds.skipped if s not in train_ds.skipped],
    )
