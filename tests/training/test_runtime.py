"""`--precision auto` / `--jit auto`: the choice rule, the measurement, remembering it, and runs
that keep what they started with.
"""

import json

import numpy as np
import pytest

from vlm_tf.models import build_model
from vlm_tf.training import RunConfig, runtime, train

TINY = dict(model="cnn_lstm", num_frames=4, image_size=32, batch_size=8)


def test_fastest_candidate_must_beat_the_float32_baseline_by_the_margin():
    rates = {"float32/off": 100.0, "float32/on": 104.0, "mixed_bfloat16/off": 90.0}
    assert runtime.pick_fastest(rates) == ("float32", "off"), "4 % is within the margin"
    rates["mixed_bfloat16/off"] = 130.0
    assert runtime.pick_fastest(rates) == ("mixed_bfloat16", "off")
    assert runtime.pick_fastest({"float32/on": 300.0}) == ("float32", "off"), (
        "no baseline measured: keep the safe choice"
    )
    assert runtime.pick_fastest(
        {"float32/on": 100.0, "mixed_bfloat16/on": 120.0}, base=("float32", "on")
    ) == ("mixed_bfloat16", "on")


def test_settings_asked_for_are_kept_without_measuring():
    def never():
        raise AssertionError("nothing to measure")

    assert runtime.choose_execution("float32", "on", build=never) == runtime.Execution(
        "float32", "on"
    )


def test_a_run_shorter_than_a_measurement_takes_the_baseline_unmeasured(tmp_path, monkeypatch):
    monkeypatch.setenv("VLM_TF_CACHE_DIR", str(tmp_path))

    def never():
        raise AssertionError("a short run is not measured")

    short = runtime.MIN_STEPS_TO_MEASURE - 1
    assert runtime.choose_execution(
        "auto", "auto", key="k", build=never, steps=short
    ) == runtime.Execution("float32", "off", "short run")
    # What the run asked for outright is kept; only `auto` takes the baseline.
    assert runtime.choose_execution(
        "mixed_bfloat16", "auto", key="k", build=never, steps=short
    ) == runtime.Execution("mixed_bfloat16", "off", "short run")
    assert not (tmp_path / "execution.json").exists()


def _tiny_build():
    return build_model("cnn_lstm", num_classes=3, image_size=(32, 32))


def _batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (4, 4, 32, 32, 3)).astype("float32"), np.eye(3, dtype="float32")[
        rng.integers(0, 3, 4)
    ]


def test_cpu_choice_is_measured_then_remembered(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("VLM_TF_CACHE_DIR", str(tmp_path))
    x, y = _batch()
    first = runtime.choose_execution(
        "auto",
        "auto",
        key="tiny",
        build=_tiny_build,
        inputs=x,
        targets=y,
        loss="categorical_crossentropy",
    )
    assert first.source == "measured"
    assert set(first.measured) == {"/".join(c) for c in runtime.CPU_CANDIDATES}
    assert all(rate > 0 for rate in first.measured.values())
    assert (first.precision, first.jit) == runtime.pick_fastest(first.measured)
    assert keras.mixed_precision.global_policy().name == "float32", (
        "measuring leaves the caller's policy alone"
    )

    def never():
        raise AssertionError("a remembered choice is not measured again")

    again = runtime.choose_execution(
        "auto",
        "auto",
        key="tiny",
        build=never,
        inputs=x,
        targets=y,
        loss="categorical_crossentropy",
    )
    assert again.source == "remembered" and (again.precision, again.jit) == (
        first.precision,
        first.jit,
    )
    remembered = json.loads((tmp_path / "execution.json").read_text())
    assert len(remembered) == 1 and runtime.machine_key() in next(iter(remembered))


def test_a_candidate_far_slower_than_the_fastest_is_timed_no_further():
    import keras

    class SlowInBfloat16(keras.layers.Layer):
        """Real extra work, only under the bfloat16 policy: a chain of matrix products."""

        def call(self, x):
            if self.compute_dtype != "bfloat16":
                return x
            # From the input, so that no graph optimisation folds it away as a constant.
            burn = keras.ops.ones((768, 768), dtype=self.compute_dtype) + keras.ops.mean(x)
            for _ in range(20):
                burn = keras.ops.matmul(burn, burn) * 1e-3
            return x + keras.ops.cast(keras.ops.sum(burn), x.dtype) * 0

    calls = {}

    def build():
        policy = keras.mixed_precision.global_policy().name
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Dense(3)(SlowInBfloat16()(inputs)))
        train_on_batch = model.train_on_batch

        def counted(*args, **kwargs):
            calls[policy] = calls.get(policy, 0) + 1
            return train_on_batch(*args, **kwargs)

        model.train_on_batch = counted
        return model

    x = np.ones((8, 4), "float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    candidates = (("float32", "off"), ("mixed_bfloat16", "off"))
    rates = runtime.measure_training_rates(
        build, x, y, loss="categorical_crossentropy", candidates=candidates, rounds=3, steps=2
    )
    assert rates["mixed_bfloat16/off"] * runtime.OUT_OF_THE_RUNNING < rates["float32/off"], rates
    # The warm-up step and two timed ones each; only float32 goes on, two steps in each round.
    assert calls == {"float32": 1 + 2 + 3 * 2, "mixed_bfloat16": 1 + 2}


def test_one_setting_fixed_measures_only_the_other(tmp_path, monkeypatch):
    monkeypatch.setenv("VLM_TF_CACHE_DIR", str(tmp_path))
    x, y = _batch()
    chosen = runtime.choose_execution(
        "float32",
        "auto",
        key="tiny",
        build=_tiny_build,
        inputs=x,
        targets=y,
        loss="categorical_crossentropy",
    )
    assert set(chosen.measured) == {"float32/off", "float32/on"} and chosen.precision == "float32"


def test_a_classify_measurement_holds_for_any_number_of_classes(tiny_dataset, tmp_path):
    import shutil

    from vlm_tf.tasks.classify import ClassifyTask

    fewer = tmp_path / "three_classes"
    for folder in sorted((tiny_dataset / "train").iterdir())[:3]:
        shutil.copytree(folder, fewer / folder.name)
    task = ClassifyTask("classify", RunConfig(**TINY).resolved())
    eight, three = (task.execution_probe(data, None) for data in (tiny_dataset / "train", fewer))
    assert eight["targets"].shape[-1] == 8 and three["targets"].shape[-1] == 3
    assert eight["key"] == three["key"]
    other = ClassifyTask("classify", RunConfig(**dict(TINY, num_frames=8)).resolved())
    assert other.execution_probe(fewer, None)["key"] != three["key"]


def test_a_run_records_what_auto_chose_and_a_resume_keeps_it(tiny_dataset, tmp_path):
    run_dir = tmp_path / "auto"
    result = train(tiny_dataset, run_dir, RunConfig(epochs=1, **TINY), verbose=0)
    saved = json.loads((run_dir / "config.json").read_text())["run"]
    # One epoch of six steps: far too short to measure (the measurement: the tests above).
    assert (saved["precision"], saved["jit"]) == runtime.BASELINE
    execution = json.loads((run_dir / "execution.json").read_text())
    assert (execution["precision"], execution["jit"]) == (saved["precision"], saved["jit"])
    assert execution["source"] == "short run" and not execution["measured"]
    assert result.execution.precision == saved["precision"]

    # An unfinished run started with another setting is resumed with it:
    # auto never switches halfway; asking for a different one outright is refused.
    other = "mixed_bfloat16"
    for name in ("unfinished", "refused"):
        (tmp_path / name).mkdir()
        header = {
            "run": dict(saved, precision=other),
            "data_dir": str(tiny_dataset),
            "class_names": [],
        }
        (tmp_path / name / "config.json").write_text(json.dumps(header))
    resumed = train(tiny_dataset, tmp_path / "unfinished", RunConfig(epochs=1, **TINY), verbose=0)
    assert (
        resumed.resumed
        and resumed.execution.source == "resumed"
        and resumed.execution.precision == other
    )
    with pytest.raises(ValueError, match="other settings"):
        train(
            tiny_dataset,
            tmp_path / "refused",
            RunConfig(epochs=1, precision=saved["precision"], **TINY),
            verbose=0,
        )


def test_profile_writes_a_trace_tensorboard_opens(tiny_dataset, tmp_path):
    run_dir = tmp_path / "profiled"
    train(
        tiny_dataset,
        run_dir,
        RunConfig(epochs=2, precision="float32", jit="off", **TINY),
        verbose=0,
        profile=True,
    )
    traces = list((run_dir / "logs" / "profile").glob("plugins/profile/*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 1000, traces
