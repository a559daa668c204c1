"""TFLite quantization of a classify run: each mode converts, keeps the uint8-in, probabilities-out
interface, and stays close to the Keras model.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf

from vlm_tf.compression import QUANTIZE_MODES

FRAMES, SIZE = 8, 32
# An int8 softmax output moves in steps of 1/256, so each of the 8
# probabilities may be off by half a step and their sum by 8/512.
INT8_SUM_TOLERANCE = 8 / 512
# The most any probability may differ from the Keras model's, per mode:
# float16 weights round at about 1e-3 relative, int8 weights at about 1e-2;
# int8 activations add their own rounding (a softmax step is 0.004).
PROBABILITY_TOLERANCE = {"none": 1e-5, "float16": 1e-3, "dynamic": 1e-2, "int8": 0.03}


def test_bad_quantize_arguments_are_refused_before_any_work(tmp_path):
    from vlm_tf.compression.quantize import quantize_run
    from vlm_tf.models import build_model
    from vlm_tf.tflite import convert_to_tflite

    model = build_model("cnn_mean", num_classes=8, image_size=(SIZE, SIZE))
    clips = np.zeros((2, FRAMES, SIZE, SIZE, 3), np.uint8)
    with pytest.raises(ValueError, match="int4"):
        convert_to_tflite(model, num_frames=FRAMES, quantize="int4")
    with pytest.raises(ValueError, match="representative_clips"):
        convert_to_tflite(model, num_frames=FRAMES, quantize="int8")
    with pytest.raises(ValueError, match="representative_clips"):
        convert_to_tflite(model, num_frames=FRAMES, quantize="dynamic", representative_clips=clips)
    with pytest.raises(ValueError, match=r"\(8, 32, 32, 3\)"):
        convert_to_tflite(
            model, num_frames=FRAMES, quantize="int8", representative_clips=clips[:, :4]
        )
    with pytest.raises(ValueError, match="uint8"):
        convert_to_tflite(
            model, num_frames=FRAMES, quantize="int8", representative_clips=clips.astype(np.float32)
        )
    # Checked before the run is read: no run folder is needed to be told.
    with pytest.raises(ValueError, match="int4"):
        quantize_run(tmp_path / "no_run", "int4")
    with pytest.raises(ValueError, match="int8 only"):
        quantize_run(tmp_path / "no_run", "float16", data_dir=tmp_path)


def test_cli_refuses_quantize_without_tflite(classify_run):
    run_dir = classify_run[0]
    before = sorted(os.listdir(run_dir))
    assert_one_line_error(vlm_tf("export", run_dir, "--quantize", "int8"), "--format tflite")
    assert_one_line_error(
        vlm_tf("export", run_dir, "--format", "tflite", "--quantize", "int4"), "--quantize", "int4"
    )
    assert sorted(os.listdir(run_dir)) == before


@pytest.fixture(scope="module")
def quantized(tiny_dataset, tmp_path_factory):
    """A cnn_lstm run on the tiny dataset, above chance on its training clips, and its TFLite file
    in every mode.
    """
    from vlm_tf.compression.quantize import quantize_run
    from vlm_tf.inference import load_run
    from vlm_tf.training import RunConfig, train

    run_dir = tmp_path_factory.mktemp("quantize") / "run"
    # Small batches without augmentation: enough steps to leave chance in seconds.
    config = RunConfig(
        model="cnn_lstm",
        epochs=16,
        num_frames=FRAMES,
        image_size=SIZE,
        batch_size=2,
        augment=False,
        precision="float32",
        jit="off",
    )
    train(tiny_dataset, run_dir, config, verbose=0)
    run = load_run(run_dir)
    return run, {mode: quantize_run(run_dir, mode) for mode in QUANTIZE_MODES}


def _interpreter(path):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


@pytest.mark.slow
@pytest.mark.parametrize("mode", QUANTIZE_MODES)
def test_each_mode_takes_uint8_frames_and_gives_the_keras_models_probabilities(
    quantized, tiny_dataset, mode
):
    from vlm_tf.compression.quantize import evaluate_tflite, tflite_path

    run, paths = quantized
    assert paths[mode] == tflite_path(run.run_dir, mode)
    assert os.path.basename(paths[mode]) == (
        "model.tflite" if mode == "none" else f"model_{mode}.tflite"
    )
    interpreter = _interpreter(paths[mode])
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert source["dtype"] == np.uint8 and tuple(source["shape"]) == (1, FRAMES, SIZE, SIZE, 3)
    assert sink["dtype"] == np.float32 and tuple(sink["shape"]) == (1, 8)

    report = evaluate_tflite(paths[mode], run, tiny_dataset / "train")
    assert report["num_videos"] == 32 and report["size_bytes"] == os.path.getsize(paths[mode])
    assert report["latency_ms"] > 0 and report["num_threads"] == 1
    assert report["max_abs_difference"] <= PROBABILITY_TOLERANCE[mode], report
    json.dumps(report)

    frames = np.random.default_rng(0).integers(0, 256, (1, FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    interpreter.set_tensor(source["index"], frames)
    interpreter.invoke()
    probabilities = interpreter.get_tensor(sink["index"])[0]
    assert probabilities.min() >= 0
    np.testing.assert_allclose(
        probabilities.sum(), 1.0, atol=INT8_SUM_TOLERANCE if mode == "int8" else 1e-5
    )


@pytest.mark.slow
def test_int8_is_as_accurate_as_float_smaller_and_calibrated_on_the_clips_it_was_given(
    quantized, tiny_dataset
):
    from vlm_tf.compression.quantize import evaluate_tflite, read_calibration_clips
    from vlm_tf.tflite import convert_to_tflite

    run, paths = quantized
    train_dir = tiny_dataset / "train"
    float_report = evaluate_tflite(paths["none"], run, train_dir)
    int8_report = evaluate_tflite(paths["int8"], run, train_dir)
    # The run has left chance (1/8), so agreeing with it is not agreeing with a constant.
    assert float_report["accuracy"] >= 0.25, float_report
    # Within 4 of the 32 clips, and the same class on all but 4.
    assert abs(int8_report["accuracy"] - float_report["accuracy"]) <= 4 / 32, (
        int8_report,
        float_report,
    )
    assert int8_report["agreement"] >= 28 / 32, int8_report
    # int8 weights are a quarter of float32's; the graph and the quantization
    # parameters of every tensor take part of that back at this size.
    assert int8_report["size_bytes"] < float_report["size_bytes"] / 2.5, (
        int8_report["size_bytes"],
        float_report["size_bytes"],
    )

    clips = read_calibration_clips(run)
    assert clips.dtype == np.uint8 and clips.shape == (32, FRAMES, SIZE, SIZE, 3)
    # Ranges calibrated on black clips clip every real activation: the
    # calibration data must be what sets them.
    black = convert_to_tflite(
        run.model, num_frames=FRAMES, quantize="int8", representative_clips=np.zeros_like(clips[:4])
    )
    assert (
        evaluate_tflite(black, run, train_dir)["max_abs_difference"]
        > 3 * int8_report["max_abs_difference"]
    )


@pytest.mark.slow
def test_the_int8_file_runs_in_plain_tensorflow(quantized, tmp_path):
    run, paths = quantized
    frames = np.random.default_rng(1).integers(0, 256, (1, FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        interpreter = tf.lite.Interpreter(model_path=sys.argv[1], num_threads=1)
        interpreter.allocate_tensors()
        (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.set_tensor(source["index"], np.load(sys.argv[2]))
        interpreter.invoke()
        assert "vlm_tf" not in sys.modules
        np.save(sys.argv[3], interpreter.get_tensor(sink["index"]))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            paths["int8"],
            tmp_path / "frames.npy",
            tmp_path / "out.npy",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    interpreter = _interpreter(paths["int8"])
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(source["index"], frames)
    interpreter.invoke()
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), interpreter.get_tensor(sink["index"]), atol=1e-6
    )


@pytest.mark.slow
def test_cli_writes_the_file_and_names_a_missing_data_folder(quantized, tiny_dataset, tmp_path):
    from vlm_tf.training.config import MODEL_FILE
    from vlm_tf.training.loop import write_run_header

    run, _ = quantized
    out = tmp_path / "m.tflite"
    done = vlm_tf(
        "export", run.run_dir, "--format", "tflite", "--quantize", "dynamic", "--out", out
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(out) in done.stdout and "MB" in done.stdout
    assert out.stat().st_size > 0

    # The same run, moved to a machine without its data folder.
    moved = tmp_path / "moved_run"
    moved.mkdir()
    shutil.copy(os.path.join(run.run_dir, MODEL_FILE), moved / MODEL_FILE)
    write_run_header(moved, tmp_path / "gone", run.config, run.class_names)
    assert_one_line_error(
        vlm_tf("export", moved, "--format", "tflite", "--quantize", "int8"),
        str(tmp_path / "gone"),
        "--data",
    )
    assert not (moved / "model_int8.tflite").exists()
    done = vlm_tf(
        "export", moved, "--format", "tflite", "--quantize", "int8", "--data", tiny_dataset
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (moved / "model_int8.tflite").stat().st_size > 0
    assert not [name for name in os.listdir(moved) if name.startswith(".partial")]


@pytest.mark.slow
def test_cli_refuses_runs_that_do_not_classify(tmp_path):
    from vlm_tf import atomic
    from vlm_tf.models import get_model_spec
    from vlm_tf.training import RunConfig
    from vlm_tf.training.config import MODEL_FILE
    from vlm_tf.training.loop import write_run_header

    # A denoise run folder as training leaves it, with an untrained restorer.
    run_dir = tmp_path / "denoise_run"
    write_run_header(
        run_dir, tmp_path, RunConfig(model="denoise_single", image_size=SIZE, num_frames=FRAMES), []
    )
    atomic.save_model(get_model_spec("denoise_single").build(), run_dir / MODEL_FILE)
    assert_one_line_error(vlm_tf("export", run_dir, "--format", "tflite"), "denoise", "classify")
    assert not (run_dir / "model.tflite").exists()
