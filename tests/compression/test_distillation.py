import csv
import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.compression.distillation import Distiller, distill_run
from vlm_tf.inference import evaluate_directory, feature_layer, load_run
from vlm_tf.models import build_model


def _logits(model, clips):
    """The logits behind the softmax, from the output layer's input and weights: what `Distiller`
    avoids building.
    """
    features = keras.Model(model.input, feature_layer(model).output)(clips)
    kernel, bias = model.get_layer("output_layer").get_weights()
    return np.asarray(features) @ kernel + bias


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("alpha, temperature", [(0.3, 2.5), (0.0, 1.0), (1.0, 4.0)])
def test_loss_is_alpha_cross_entropy_plus_t_squared_kl(alpha, temperature):
    keras.utils.set_random_seed(0)
    teacher = build_model("cnn_lstm", num_classes=3, num_frames=4, image_size=(32, 32))
    student = build_model("cnn_lstm_narrow", num_classes=3, num_frames=4, image_size=(32, 32))
    # A confident teacher: its softened outputs are far from the student's.
    output = teacher.get_layer("output_layer")
    output.kernel.assign(output.kernel * 8.0)
    rng = np.random.default_rng(1)
    clips = rng.uniform(0, 255, (6, 4, 32, 32, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]

    distiller = Distiller(student, teacher)
    distiller.compile(optimizer="sgd", metrics=["accuracy"], alpha=alpha, temperature=temperature)
    result = distiller.test_on_batch(clips, labels, return_dict=True)

    # By hand, from the true logits: CE on the labels, KL between the tempered softmaxes.
    p_student = _softmax(_logits(student, clips))
    q_teacher, q_student = (
        _softmax(_logits(teacher, clips) / temperature),
        _softmax(_logits(student, clips) / temperature),
    )
    cross_entropy = np.mean(-np.sum(labels * np.log(p_student), axis=-1))
    kl = np.mean(np.sum(q_teacher * np.log(q_teacher / q_student), axis=-1))
    assert kl > 0.01, "the check needs teacher and student to disagree"
    assert result["student_loss"] == pytest.approx(cross_entropy, rel=1e-4)
    assert result["distillation_loss"] == pytest.approx(temperature**2 * kl, rel=1e-4)
    assert result["loss"] == pytest.approx(
        alpha * cross_entropy + (1 - alpha) * temperature**2 * kl, rel=1e-4
    )


def test_teacher_stays_frozen_and_bad_settings_are_refused():
    keras.utils.set_random_seed(0)
    teacher = build_model("cnn_lstm_narrow", num_classes=3, num_frames=4, image_size=(32, 32))
    student = build_model("cnn_lstm_narrow", num_classes=3, num_frames=4, image_size=(32, 32))
    distiller = Distiller(student, teacher)
    with pytest.raises(ValueError, match="alpha"):
        distiller.compile(alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        distiller.compile(temperature=0.0)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), alpha=0.3)
    clips = np.random.default_rng(0).uniform(0, 255, (8, 4, 32, 32, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2, 0, 1]]
    # Of unknown length, as the run datasets are (they skip unreadable files).
    dataset = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(2).ignore_errors()
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        logs = {
            k: v[0]
            for k, v in distiller.fit(dataset, epochs=1, verbose=0, shuffle=False).history.items()
        }
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(student_before, student.get_weights()))
    # The two parts reported are the epoch's means of what the loss was made of.
    assert logs["loss"] == pytest.approx(
        0.3 * logs["student_loss"] + 0.7 * logs["distillation_loss"], rel=1e-5
    )


JAX_STEP = textwrap.dedent(
    """
    import json
    import keras
    import numpy as np
    from vlm_tf.compression.distillation import Distiller
    from vlm_tf.models import build_model

    assert keras.backend.backend() == "jax", keras.backend.backend()
    keras.utils.set_random_seed(0)
    teacher = build_model("cnn_lstm", num_classes=3, num_frames=4, image_size=(32, 32))
    student = build_model("cnn_lstm_narrow", num_classes=3, num_frames=4, image_size=(32, 32))
    distiller = Distiller(student, teacher)
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"], alpha=0.1, temperature=4.0
    )
    clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 32, 32, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[[0, 1]]
    teacher_before, student_before = teacher.get_weights(), student.get_weights()
    logs = distiller.train_on_batch(clips, labels, return_dict=True)
    def moved(before, after):
        return max(float(np.abs(a - b).max()) for a, b in zip(before, after))

    print(json.dumps({
        "logs": {k: float(v) for k, v in logs.items()},
        "teacher_moved": moved(teacher_before, teacher.get_weights()),
        "student_moved": moved(student_before, student.get_weights()),
    }))
    """
)


@pytest.mark.slow
def test_distiller_trains_under_jax(tmp_path):
    pytest.importorskip("jax")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run(
        [sys.executable, "-c", JAX_STEP],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"loss", "student_loss", "distillation_loss", "accuracy"} <= set(result["logs"])
    assert all(np.isfinite(v) for v in result["logs"].values())
    assert result["teacher_moved"] == 0.0 and result["student_moved"] > 1e-6


@pytest.fixture
def tiny_teacher(classify_run):
    return classify_run[0]


@pytest.mark.slow
def test_distill_run_writes_a_student_run_that_evaluates(tiny_teacher, tiny_dataset, tmp_path):
    out = tmp_path / "student"
    report = distill_run(tiny_teacher, epochs=1, out=out)
    assert json.loads((out / "compression.json").read_text()) == report
    student = load_run(out)
    teacher = load_run(tiny_teacher)
    assert student.config.model == report["student_model"] == "cnn_lstm_narrow"
    assert student.class_names == teacher.class_names
    assert (student.config.num_frames, student.config.image_size) == (
        teacher.config.num_frames,
        teacher.config.image_size,
    )
    assert (
        report["student_params"]
        == student.model.count_params()
        < report["teacher_params"]
        == teacher.model.count_params()
    )
    # The saved model is the plain student, not the wrapper.
    assert not isinstance(student.model, Distiller) and student.model.name == "cnn_lstm_narrow"
    with open(out / "history.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert {"loss", "student_loss", "distillation_loss", "val_accuracy"} <= set(row)
    evaluation = evaluate_directory(student, tiny_dataset / "test")
    assert evaluation["num_videos"] == 8 and 0.0 <= evaluation["accuracy"] <= 1.0
