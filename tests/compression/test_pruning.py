import json

import keras
import numpy as np
import pytest

from vlm_tf.compression.pruning import (
    MagnitudePruning,
    measure_sparsity,
    polynomial_sparsity,
    prunable_weights,
    prune_run,
)
from vlm_tf.inference import evaluate_directory, load_run
from vlm_tf.models import build_model


def test_schedule_is_zhu_and_gupta_cubic():
    # s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·Δt))³, by hand.
    schedule = dict(final_sparsity=0.8, begin_step=0, end_step=100)
    assert [polynomial_sparsity(t, **schedule) for t in (0, 25, 50, 100, 150)] == pytest.approx(
        [0.0, 0.8 - 0.8 * 0.75**3, 0.7, 0.8, 0.8]
    )
    shifted = dict(final_sparsity=0.6, initial_sparsity=0.2, begin_step=10, end_step=30)
    assert [polynomial_sparsity(t, **shifted) for t in (5, 10, 20, 30)] == pytest.approx(
        [0.2, 0.2, 0.6 - 0.4 * 0.5**3, 0.6]
    )
    # One-shot pruning: the whole target at once.
    assert polynomial_sparsity(5, final_sparsity=0.5, begin_step=5, end_step=5) == 0.5
    # Every `frequency` steps from the begin step, and the end step itself.
    callback = MagnitudePruning(0.5, begin_step=2, end_step=11, frequency=4)
    assert [t for t in range(20) if callback.is_pruning_step(t)] == [2, 6, 10, 11]


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="final"):
        MagnitudePruning(1.0, end_step=10)
    with pytest.raises(ValueError, match="end_step"):
        MagnitudePruning(0.5, begin_step=5, end_step=2)
    with pytest.raises(ValueError, match="scope"):
        MagnitudePruning(0.5, end_step=2, scope="row")


def _tiny_model_and_data():
    keras.utils.set_random_seed(0)
    model = build_model("cnn_lstm_narrow", num_classes=3, num_frames=4, image_size=(32, 32))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 255, (16, 4, 32, 32, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    return model, clips, labels


def test_masks_hold_pruned_weights_at_zero_while_training():
    model, clips, labels = _tiny_model_and_data()
    biases = [w for w in model.trainable_weights if w.name == "bias"]
    # Biases start at zero; made non-zero, a zero after training would be the pruner's.
    for bias in biases:
        bias.assign(np.full(bias.shape, 0.5))
    # 4 steps an epoch: pruning at steps 0, 2 and 4, then 4 more steps at 60%.
    pruning = MagnitudePruning(0.6, end_step=4, frequency=2, scope="layer")
    model.fit(clips, labels, batch_size=4, epochs=2, callbacks=[pruning], verbose=0, shuffle=False)
    assert pruning.step == 8
    kernels = prunable_weights(model)
    report = measure_sparsity(model)
    assert sorted(
        name.split("/", 1)[0] + "/" + name.rsplit("/", 1)[1] for name in report["layers"]
    ) == [
        "conv1/kernel",
        "conv2/kernel",
        "conv3/kernel",
        "lstm1/kernel",
        "lstm1/recurrent_kernel",
        "output_layer/kernel",
    ]
    for path, layer in report["layers"].items():
        assert layer["sparsity"] == pytest.approx(0.6, abs=0.01), path
    assert report["sparsity"] == pytest.approx(0.6, abs=0.01)
    # Biases are left whole.
    assert all(np.all(keras.ops.convert_to_numpy(b) != 0) for b in biases)

    zeros = [keras.ops.convert_to_numpy(w) == 0 for w in kernels]
    kept = [keras.ops.convert_to_numpy(w).copy() for w in kernels]
    model.fit(clips, labels, batch_size=4, epochs=1, callbacks=[pruning], verbose=0, shuffle=False)
    for weight, was_zero, before in zip(kernels, zeros, kept):
        after = keras.ops.convert_to_numpy(weight)
        assert np.all(after[was_zero] == 0), weight.path
        assert not np.allclose(after[~was_zero], before[~was_zero]), f"{weight.path} did not train"
    # Without the callback, Adam's momentum moves pruned weights off zero: the masks are what holds
    # them.
    model.fit(clips[:4], labels[:4], batch_size=4, epochs=1, verbose=0)
    assert any(np.any(keras.ops.convert_to_numpy(w)[z] != 0) for w, z in zip(kernels, zeros))


def test_global_scope_prunes_the_target_over_all_kernels():
    model, clips, labels = _tiny_model_and_data()
    model.fit(
        clips,
        labels,
        batch_size=4,
        epochs=1,
        callbacks=[MagnitudePruning(0.7, end_step=0, scope="global")],
        verbose=0,
    )
    report = measure_sparsity(model)
    assert report["sparsity"] == pytest.approx(0.7, abs=0.001)
    sparsities = [layer["sparsity"] for layer in report["layers"].values()]
    assert max(sparsities) - min(sparsities) > 0.05, (
        "one threshold over layers of different scales prunes them unevenly"
    )


@pytest.fixture
def tiny_run(classify_run):
    return classify_run[0]


@pytest.mark.slow
def test_prune_run_writes_a_sparse_run_that_evaluates(tiny_run, tiny_dataset, tmp_path):
    out = tmp_path / "pruned"
    report = prune_run(tiny_run, sparsity=0.5, epochs=1, out=out)
    assert json.loads((out / "compression.json").read_text()) == report
    assert report["schedule"]["steps"] > report["schedule"]["end_step"], (
        "some training steps came after the last pruning"
    )
    # The saved model, after those steps, is still at the target.
    pruned = load_run(out)
    saved = measure_sparsity(pruned.model)
    assert saved["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert saved["sparsity"] == pytest.approx(report["sparsity"])
    assert report["scope"] == "global" and saved["layers"].keys() == report["layers"].keys()
    assert report["gzip_bytes"] < 0.8 * report["unpruned_gzip_bytes"]
    assert (
        pruned.config.model == "cnn_lstm" and pruned.class_names == load_run(tiny_run).class_names
    )
    assert (out / "history.csv").is_file()
    evaluation = evaluate_directory(pruned, tiny_dataset / "test")
    assert evaluation["num_videos"] == 8 and 0.0 <= evaluation["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="not empty"):
        prune_run(tiny_run, sparsity=0.5, epochs=1, out=out)
