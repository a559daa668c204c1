"""Precision, XLA and seeding, process-wide settings a run makes before building its model, and
the training state it builds before `fit`.

`--precision auto` and `--jit auto` (the defaults) are settled here. On a
GPU the choice is by device: mixed float16 (tensor cores; the models keep
their softmax outputs and attention weights in float32) and Keras' own XLA
choice. On a CPU nothing is assumed: `choose_execution` trains the run's own
model a few steps under each candidate, side by side, and keeps float32
without XLA unless another candidate is clearly faster (docs/benchmarks.md
has what it measured). The choice is remembered per machine, model and
shape in `execution_cache_path()`, so only the first run of a kind pays for
the measurement. A run too short to win that cost back is not measured.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic

# The float32-without-XLA baseline must be beaten by this factor before a
# CPU run leaves it: a measured gain smaller than that is noise on a busy machine.
AUTO_MARGIN = 1.05
BASELINE = ("float32", "off")
CPU_CANDIDATES = (BASELINE, ("float32", "on"), ("mixed_bfloat16", "off"), ("mixed_bfloat16", "on"))
GPU_EXECUTION = ("mixed_float16", "auto")
# A measurement costs 12-20 s here (four builds, two XLA compiles, timed steps). A
# run of fewer training steps takes the baseline unmeasured: at the default
# model's 64x64 pace 200 steps are about 15 s of float32, of which the best
# candidate measured here (1.3-1.6x) would save 4-6 s.
MIN_STEPS_TO_MEASURE = 200
# A candidate whose fastest first steps are this much slower than the fastest candidate's cannot
# win by the margin, and is timed no further: bfloat16 emulated in software (a tenth of float32's
# rate on CPUs without it) cost most of a measurement's timed steps (docs/benchmarks.md).
OUT_OF_THE_RUNNING = 1.5


@dataclasses.dataclass(frozen=True)
class Execution:
    precision: str
    jit: str
    # How it was chosen ("asked", "device", "short run", "measured", "remembered"), and the
    # clips/s of each candidate when measured.
    source: str = "asked"
    measured: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        return dataclasses.asdict(self)


def has_gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_precision(precision):
    """`"mixed"` picks float16 on a GPU (tensor cores) and bfloat16 elsewhere (no loss scaling
    needed).
    """
    if precision != "mixed":
        return precision
    return "mixed_float16" if has_gpu() else "mixed_bfloat16"


def configure(*, seed, precision="float32", deterministic=False):
    """Seeds Python, NumPy and TensorFlow, and sets the global dtype policy.

    Returns the policy name in force. Under `mixed_float16`, Keras wraps the
    optimizer in a `LossScaleOptimizer` at compile time. `deterministic`
    turns on TensorFlow's deterministic ops, for the rest of the process
    (TensorFlow has no public way back): the same seed then gives the same
    weights, run to run and across a resume.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def jit_compile_argument(jit):
    """A settled `jit` (`off`, `on`, or on a GPU Keras' own `auto`) as
    `Model.compile(jit_compile=...)`.
    """
    return {"off": False, "on": True, "auto": "auto"}[jit]


def execution_cache_path():
    """Where CPU measurements are remembered: `$VLM_TF_CACHE_DIR` or `~/.cache/vlm_tf`, file
    `execution.json`.
    """
    folder = os.environ.get("VLM_TF_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "vlm_tf"
    )
    return os.path.join(folder, "execution.json")


def machine_key():
    """What a measurement depends on besides the model: the processor, its cores, and the TensorFlow
    and Keras versions.
    """
    processor = platform.processor() or platform.machine()
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        processor = names[0] if names else processor
    return f"{processor}|{os.cpu_count()} cores|tf {tf.__version__}|keras {keras.__version__}"


def measure_training_rates(
    build, inputs, targets, *, loss, candidates=CPU_CANDIDATES, rounds=3, steps=2
):
    """Clips per second of one training step of `build()` under each `(precision, jit)` candidate.

    Every candidate is built, warmed up (traced, and compiled by XLA) and
    timed for `steps` steps first; one whose fastest step is `OUT_OF_THE_RUNNING`
    times slower than the fastest candidate's keeps that figure and trains no
    more. The rest take turns, `steps` steps each per round, so a machine that
    gets busier slows them alike, and their figure is the median round's
    (`vlm-tf bench` reports it, so even a lone survivor is timed in every
    round). A candidate that fails to build or compile is left out of the
    result rather than failing the run.
    """
    previous = keras.mixed_precision.global_policy()
    # Several models training in turn make TensorFlow warn about retracing;
    # each model traces once, which is what is measured.
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")
    models, first = {}, {}
    try:
        for precision, jit in candidates:
            keras.mixed_precision.set_global_policy(precision)
            try:
                model = build()
                model.compile(optimizer="adam", loss=loss, jit_compile=jit_compile_argument(jit))
                model.train_on_batch(inputs, targets)
            except Exception:  # noqa: BLE001 - any candidate that cannot train here is simply not a choice
                continue
            models[(precision, jit)] = model
            # The fastest of its steps: a pause of the machine lengthens one step, not all.
            first[(precision, jit)] = min(
                _step_seconds(model, inputs, targets) for _ in range(steps)
            )
        fastest = min(first.values(), default=0.0)
        running = {k: m for k, m in models.items() if first[k] < OUT_OF_THE_RUNNING * fastest}
        times = {key: [] for key in running}
        for _ in range(rounds):
            for key, model in running.items():
                times[key].append(
                    sum(_step_seconds(model, inputs, targets) for _ in range(steps)) / steps
                )
        seconds = {**first, **{key: float(np.median(values)) for key, values in times.items()}}
    finally:
        keras.mixed_precision.set_global_policy(previous)
        logger.setLevel(level)
    batch = int(np.shape(inputs)[0])
    return {f"{precision}/{jit}": batch / seconds[precision, jit] for precision, jit in models}


def _step_seconds(model, inputs, targets):
    start = time.perf_counter()
    model.train_on_batch(inputs, targets)
    return time.perf_counter() - start


def pick_fastest(rates, base=BASELINE, margin=AUTO_MARGIN):
    """The `(precision, jit)` to run: the fastest candidate if it beats `base` by `margin`, else
    `base`.
    """
    name = "/".join(base)
    if name not in rates:
        return base
    best = max(rates, key=rates.get)
    return tuple(best.split("/")) if rates[best] >= margin * rates[name] else base


def choose_execution(
    precision, jit, *, key=None, build=None, inputs=None, targets=None, loss=None, steps=None
):
    """Settles `auto` in `precision` and `jit`.

    Args:
        precision, jit: what the run asks for; values other than `auto` are kept.
        key: names the model and shapes, for remembering a CPU measurement.
        build, inputs, targets, loss: the run's model builder and one batch, to
            measure on a CPU; without them a CPU run takes float32 without XLA.
        steps: the run's training steps, when known: under
            `MIN_STEPS_TO_MEASURE` a CPU run takes float32 without XLA
            rather than measure longer than it trains.

    Returns:
        An `Execution`.
    """
    if precision != "auto" and jit != "auto":
        return Execution(precision, jit)
    if has_gpu():
        return Execution(
            GPU_EXECUTION[0] if precision == "auto" else precision,
            GPU_EXECUTION[1] if jit == "auto" else jit,
            "device",
        )
    if build is None or (steps is not None and steps < MIN_STEPS_TO_MEASURE):
        return Execution(
            BASELINE[0] if precision == "auto" else precision,
            BASELINE[1] if jit == "auto" else jit,
            "device" if build is None else "short run",
        )
    candidates = [
        (p, j) for p, j in CPU_CANDIDATES if precision in ("auto", p) and jit in ("auto", j)
    ]
    cache_key = f"{machine_key()}|{key}|{precision}|{jit}"
    cache_path = execution_cache_path()
    remembered = _read_cache(cache_path)
    if cache_key in remembered:
        entry = remembered[cache_key]
        return Execution(entry["precision"], entry["jit"], "remembered", entry["measured"])
    rates = measure_training_rates(build, inputs, targets, loss=loss, candidates=candidates)
    base = (
        precision if precision != "auto" else BASELINE[0],
        jit if jit != "auto" else BASELINE[1],
    )
    chosen = pick_fastest(rates, base)
    measured = {name: round(rate, 2) for name, rate in rates.items()}
    remembered = _read_cache(cache_path)
    remembered[cache_key] = {"precision": chosen[0], "jit": chosen[1], "measured": measured}
    try:
        atomic.write_json(cache_path, remembered)
    except OSError:
        pass  # a read-only home only costs the next run the measurement
    return Execution(chosen[0], chosen[1], "measured", measured)


def _read_cache(path):
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        return values if isinstance(values, dict) else {}
    except (OSError, ValueError):
        return {}


def build_training_state(model, batch_spec):
    """Creates the variables a first training step would: optimizer slots and compiled metrics.

    A `tf.function` whose first call creates variables is traced again
    without them, and without a `tf.distribute` strategy of its own Keras
    leaves these to the first step: every run traced its training step
    twice (the GAN's 6-7 s each time, the default model's about one). Under
    a strategy Keras builds them before `fit` itself (`_symbolic_build`,
    from the spec of a batch), which is called here for a model trained by
    Keras' own `train_step` on a `tf.data` input (`batch_spec`; None for a
    `PyDataset`, whose batches Keras reads first). Otherwise only the
    optimizers are built: a model whose `train_step` applies them to parts
    of itself says which (`optimizer_variables()`), the others train
    `trainable_variables`; a step of its own may read batches Keras' build
    cannot (the robust classifier's clip and corrupted copies).
    """
    if hasattr(model, "optimizer_variables"):
        pairs = model.optimizer_variables()
    elif batch_spec is not None and type(model).train_step is keras.Model.train_step:
        model._symbolic_build(data_batch=batch_spec)
        return
    else:
        pairs = [(model.optimizer, model.trainable_variables)]
    for optimizer, variables in pairs:
        if optimizer is not None and not optimizer.built:
            optimizer.build(variables)
