"""Energy and CO₂ (`vlm_tf.energy`, §8.2 ②): in every training run, `evaluate` and `bench`, marked
measured or estimated.
"""

import json
import time

import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.energy import DEFAULT_GRID_INTENSITY, EnergyMeter


def _busy(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(range(1000))


def test_without_counters_energy_is_cpu_time_times_the_power_of_a_core(tmp_path):
    meter = EnergyMeter(watts_per_core=5.0, rapl_root=tmp_path).start()
    _busy(0.3)
    energy = meter.read(clips=10)
    assert energy.method == "estimated" and energy.watts_per_core == 5.0
    # os.times counts in clock ticks (10 ms here).
    assert energy.cpu_seconds >= 0.25
    assert energy.joules == pytest.approx(5.0 * energy.cpu_seconds)
    values = energy.to_dict()
    assert values["joules_per_clip"] == pytest.approx(energy.joules / 10)
    assert values["co2_grams"] == pytest.approx(energy.joules / 3.6e6 * DEFAULT_GRID_INTENSITY)
    assert "estimated" in energy.line() and "J a clip" in energy.line()


def _package(root, name, microjoules, wrap):
    domain = root / name
    domain.mkdir()
    (domain / "energy_uj").write_text(f"{microjoules}\n")
    (domain / "max_energy_range_uj").write_text(f"{wrap}\n")
    return domain / "energy_uj"


def test_rapl_counters_are_read_per_package_across_a_wrap(tmp_path):
    # The sysfs layout of /sys/class/powercap, which this machine does not have.
    first = _package(tmp_path, "intel-rapl:0", 1_000_000, 10_000_000)
    second = _package(tmp_path, "intel-rapl:1", 9_500_000, 10_000_000)
    # A sub-domain: the cores of package 0, already inside its count.
    core = _package(tmp_path, "intel-rapl:0:0", 0, 10_000_000)
    meter = EnergyMeter(rapl_root=tmp_path, grid_intensity=100.0).start()
    assert meter.method == "measured" and len(meter.packages) == 2
    first.write_text("3500000\n")  # 2.5 J
    second.write_text("500000\n")  # wrapped: 0.5 J to the top, then 0.5 J
    core.write_text("9000000\n")
    energy = meter.read()
    assert energy.method == "measured" and energy.watts_per_core is None
    assert energy.joules == pytest.approx(3.5)
    assert energy.co2_grams == pytest.approx(3.5 / 3.6e6 * 100.0)
    assert "measured by RAPL" in energy.line()


def test_a_training_run_records_each_epochs_energy_and_its_total(classify_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vlm_tf.training import config as run_files

    run_dir, result, _ = classify_run
    history = run_files.read_history(run_dir)
    assert all(row["energy_joules"] > 0 for row in history)
    for row in history:
        assert row["energy_joules_per_clip"] == pytest.approx(
            row["energy_joules"] / result.energy.clips * len(history)
        )
    saved = json.loads((run_dir / "energy.json").read_text())
    assert saved["joules"] == pytest.approx(sum(row["energy_joules"] for row in history))
    assert saved["method"] == result.energy.method == EnergyMeter().method
    assert saved == result.energy.to_dict()
    events = EventAccumulator(str(run_dir / "logs" / "train"), size_guidance={"tensors": 0})
    events.Reload()
    assert "epoch_energy_joules" in events.Tags()["tensors"]


def test_evaluate_reports_its_energy_per_clip(classify_run, tiny_dataset):
    done = vlm_tf("evaluate", classify_run[0], tiny_dataset / "test", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    energy = report["energy"]
    assert energy["method"] in ("measured", "estimated") and energy["joules"] > 0
    assert energy["joules_per_clip"] == pytest.approx(energy["joules"] / report["num_videos"])
    text = vlm_tf("evaluate", classify_run[0], tiny_dataset / "test")
    assert "energy" in text.stdout.splitlines()[-1] and "g CO2" in text.stdout


def test_a_bad_energy_setting_is_refused_in_one_line(classify_run, tiny_dataset, monkeypatch):
    monkeypatch.setenv("VLM_TF_WATTS_PER_CORE", "lots")
    assert_one_line_error(
        vlm_tf("evaluate", classify_run[0], tiny_dataset / "test"), "VLM_TF_WATTS_PER_CORE", "lots"
    )
