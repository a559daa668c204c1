"""Knowledge distillation (Hinton, Vinyals & Dean 2015).

A small student learns from a trained teacher's outputs as well as from
the labels.

    loss = α · CE(y, p_s) + (1 − α) · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

z_t, z_s are the teacher's and student's logits. A temperature T > 1
softens both distributions, so the teacher's small probabilities (which
other classes a clip resembles) weigh in the loss; T² keeps the soft
term's gradients, which shrink as 1/T², on the scale of the hard term's
whatever T is. α = 1 is plain training on the labels: the baseline a
distilled student is compared with.

Our classifiers end in a softmax (`output_layer`), so they give p, not z.
log p = z − logsumexp(z) differs from z by the same constant in every
class, and a softmax ignores such constants: softmax(log p / T) =
softmax(z / T) exactly. The log of the output is therefore all the
distillation needs, with no second "logit view" of each model; the only
care is p underflowing to 0 in float32, floored at the smallest normal
float32 (log −87) instead of −∞.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
from keras import ops

from vlm_tf import atomic
from vlm_tf.compression.runs import (
    fit_run,
    new_run_dir,
    run_datasets,
    seeded,
    skipped_files,
    training_data_dir,
    write_report,
)
from vlm_tf.inference import load_run
from vlm_tf.models.registry import build_model, get_model_spec
from vlm_tf.training import config as run_files
from vlm_tf.training import runtime
from vlm_tf.training.callbacks import SaveModel
from vlm_tf.training.loop import make_optimizer, write_run_header

DEFAULT_STUDENT = "cnn_lstm_narrow"
# Measured (docs/design.md, "Distillation": cnn_lstm teacher → cnn_lstm_narrow,
# 12 epochs, 3 seeds): T = 2 and 4 at α = 0.1 both raised the student's
# validation accuracy over training without the teacher (0.57 against 0.52);
# T = 2 did better on the test split (0.63 against 0.57 at T = 4 and 0.57
# without); T = 8 did worse (0.54, one seed). Hinton et al. too found
# moderate temperatures (2.5 to 4) best for a student much smaller than
# its teacher.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.1
# float32's smallest normal number: the floor of a probability before its log.
PROBABILITY_FLOOR = float(np.finfo(np.float32).tiny)


def check_distillation(*, alpha, temperature):
    """Raises a one-line ValueError unless 0 ≤ `alpha` ≤ 1 and `temperature` > 0."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], received {alpha!r}")
    if not temperature > 0.0:
        raise ValueError(f"temperature must be positive, received {temperature!r}")


def tempered_softmax(probabilities, temperature):
    """softmax(log p / T), which is softmax(z / T) for the logits z behind the softmax output p."""
    return ops.softmax(
        ops.log(ops.maximum(probabilities, PROBABILITY_FLOOR)) / temperature, axis=-1
    )


class Distiller(keras.Model):
    """Trains `student` on the labels and on the frozen `teacher`'s softened outputs.

    Called, it is the student. The loss lives in `compute_loss` (not a
    TensorFlow `train_step`), so Keras' own training steps run it on any
    backend; `student_loss` (the cross-entropy on the labels) and
    `distillation_loss` (the T²-scaled KL term) are reported beside it. Save
    `distiller.student`, a plain model, not the wrapper.
    """

    def __init__(self, student, teacher, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")

    def compile(
        self,
        optimizer="adam",
        metrics=None,
        student_loss_fn=None,
        distillation_loss_fn=None,
        alpha=DEFAULT_ALPHA,
        temperature=DEFAULT_TEMPERATURE,
        **kwargs,
    ):
        """As `keras.Model.compile`, with the two losses, `alpha` and `temperature`.

        The losses are categorical cross-entropy and KL divergence by default.
        """
        check_distillation(alpha=alpha, temperature=temperature)
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        self.student_loss_fn = student_loss_fn or keras.losses.CategoricalCrossentropy()
        self.distillation_loss_fn = distillation_loss_fn or keras.losses.KLDivergence()
        self.alpha = float(alpha)
        self.temperature = float(temperature)

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher_probabilities = ops.stop_gradient(self.teacher(x, training=False))
        student_loss = self.student_loss_fn(y, y_pred, sample_weight=sample_weight)
        distillation_loss = self.distillation_loss_fn(
            tempered_softmax(teacher_probabilities, self.temperature),
            tempered_softmax(y_pred, self.temperature),
            sample_weight=sample_weight,
        ) * (self.temperature**2)
        loss = self.alpha * student_loss + (1.0 - self.alpha) * distillation_loss
        if self.losses:
            loss = loss + ops.sum(self.losses)
        # Weighted by clips, as Keras weights its `loss`: over a dataset of
        # unknown length (ours skip unreadable files) the TensorFlow trainer
        # counts one update more than there were batches (5 for 4), which a
        # plain mean would average in as a zero.
        clips = ops.shape(y_pred)[0]
        self.student_loss_tracker.update_state(student_loss, sample_weight=clips)
        self.distillation_loss_tracker.update_state(distillation_loss, sample_weight=clips)
        return loss


def _accuracy(model, dataset):
    """Top-1 accuracy of `model` on a labelled (one-hot) dataset."""
    right = total = 0
    for clips, labels in dataset:
        right += int(
            np.sum(np.argmax(model(clips, training=False), axis=-1) == np.argmax(labels, axis=-1))
        )
        total += len(labels)
    return right / max(total, 1)


def _student_config(teacher, student_model, *, epochs, seed):
    """The teacher run's config, made the config of a `student_model` run.

    The teacher's clips and data, `epochs` and `seed` (default: the
    teacher's), and the student's own optimizer recipe.
    """
    return dataclasses.replace(
        teacher.config,
        model=student_model,
        epochs=teacher.config.epochs if epochs is None else int(epochs),
        seed=teacher.config.seed if seed is None else int(seed),
        # The student's own recipe, not the teacher's.
        learning_rate=None,
        optimizer=None,
        weight_decay=None,
        warmup_epochs=None,
    ).resolved()


def distill_run(
    teacher_run_dir,
    data_dir=None,
    *,
    student_model=DEFAULT_STUDENT,
    epochs=None,
    temperature=DEFAULT_TEMPERATURE,
    alpha=DEFAULT_ALPHA,
    out=None,
    seed=None,
    verbose=0,
):
    """Trains a new `student_model` with a finished classify run as its teacher.

    The student is written as a run folder.

    The student trains on the teacher's training data (`data_dir`, else
    the folder in its config.json) with the teacher's clips (frames, frame
    size, batch, augmentation, precision), for `epochs` (default: the
    teacher's) with `seed` (default: the teacher's), on the student's own
    optimizer recipe. `alpha=1` trains it on the labels alone: the baseline,
    the same student on the same budget and seed without the teacher.
    `out` (default `TEACHER_RUN_distilled_STUDENT`, or
    `TEACHER_RUN_STUDENT_without_teacher` at alpha 1) gets what `vlm-tf
    train` writes (config.json with the student's model name,
    class_names.json, history.csv, model.keras: the best epoch by validation
    accuracy) and compression.json.

    Returns the JSON-ready report written to compression.json: student and
    teacher parameters, the student's best validation accuracy and the
    teacher's on the same clips, `temperature` and `alpha`.
    """
    check_distillation(alpha=alpha, temperature=temperature)
    if get_model_spec(student_model).task != "classify":
        raise ValueError(
            f"student_model must be a classifier, received {student_model!r} "
            f"({get_model_spec(student_model).task})"
        )
    if epochs is not None and int(epochs) < 1:
        raise ValueError(f"epochs must be a positive integer, received {epochs!r}")
    teacher = load_run(teacher_run_dir)
    teacher.require("classify", "distillation")
    data_dir = training_data_dir(teacher, data_dir)
    suffix = f"distilled_{student_model}" if alpha < 1.0 else f"{student_model}_without_teacher"
    out = new_run_dir(out, f"{os.path.normpath(teacher.run_dir)}_{suffix}")
    config = _student_config(teacher, student_model, epochs=epochs, seed=seed)
    previous_policy = seeded(config)
    try:
        train_ds, val_ds, steps_per_epoch = run_datasets(teacher, data_dir, config)
        student = build_model(
            student_model, num_classes=len(teacher.class_names), image_size=teacher.image_size
        )
        distiller = Distiller(student, teacher.model)
        distiller.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            metrics=["accuracy"],
            alpha=alpha,
            temperature=temperature,
            jit_compile=runtime.jit_compile_argument(config.jit),
        )
        write_run_header(out, data_dir, config, teacher.class_names)
        best_path = os.path.join(out, run_files.BEST_CHECKPOINT)
        history = fit_run(
            distiller,
            train_ds,
            val_ds,
            run_dir=out,
            epochs=config.epochs,
            callbacks=[SaveModel(best_path, part="student", monitor="val_accuracy")],
            verbose=verbose,
        )
        atomic.copy_file(best_path, os.path.join(out, run_files.MODEL_FILE))
        teacher_accuracy = _accuracy(teacher.model, val_ds)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return write_report(
        out,
        {
            "method": "distillation",
            "teacher_run": os.path.abspath(teacher.run_dir),
            "run_dir": os.path.abspath(out),
            "teacher_model": teacher.config.model,
            "student_model": student_model,
            "teacher_params": int(teacher.model.count_params()),
            "student_params": int(student.count_params()),
            "temperature": float(temperature),
            "alpha": float(alpha),
            "epochs": config.epochs,
            "seed": config.seed,
            "best_val_accuracy": float(max(history.history["val_accuracy"])),
            "teacher_val_accuracy": float(teacher_accuracy),
            "skipped": skipped_files(train_ds, val_ds),
        },
    )
