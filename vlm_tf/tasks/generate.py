"""Generation (§3.3): a conditional video GAN that makes clips of a motion class from noise.

The data are a classifier's (`DATA_DIR/train/<class>/<video>`, integer
labels); the model is `vlm_tf.models.adversarial.VideoGAN`, its generator
the run's `model.keras` (saved every epoch: a GAN's losses measure the two
players against each other, not the clips, so there is no best epoch) and
its discriminator `discriminator.keras` beside it. TensorBoard gets, every
epoch, clips generated from fixed noise under a real clip of each class.
`write_generated_videos` writes a run's clips as a dataset a classifier
can score (`vlm-tf evaluate`, `vlm-tf score-generated`).

`AdversarialTask` holds what this task and next-frame prediction
(`vlm_tf.tasks.predict_frames`) share: the data, the two optimizers and
the discriminator's file.
"""

from __future__ import annotations

import os

import numpy as np

from vlm_tf import atomic
from vlm_tf.data.decode import write_video
from vlm_tf.data.names import check_inside
from vlm_tf.data.pipeline import pick_clips
from vlm_tf.export import export_generator
from vlm_tf.models.adversarial import VideoGAN
from vlm_tf.models.registry import get_model_spec
from vlm_tf.models.video_gan import build_video_discriminator
from vlm_tf.tasks.base import Task, TaskData, skipped_of
from vlm_tf.tasks.tensorboard import EpochImages
from vlm_tf.visualize import clip_montage

DISCRIMINATOR_FILE = "discriminator.keras"
# Adam's β1 for both players, the DCGAN setting: a shorter momentum follows
# an opponent that keeps moving.
GAN_BETA_1 = 0.5
# The GAN's discriminator learns at 3× the generator's rate (the two
# time-scale rule, Heusel et al., 2017): its class head must learn the
# motions before the generator can be told which motion a label means. The
# fusion model's discriminator has no class head, so it keeps the shared rate.
DISCRIMINATOR_LR_SCALE = 3.0
SAMPLE_CLIPS = 4
# Frames per second of written clips: the synthetic dataset's rate.
GENERATED_FPS = 10.0


class AdversarialTask(Task):
    """What the GAN and the fusion predictor share: labelled clips, two Adam optimizers, a
    discriminator kept beside the model.
    """

    caches = True
    # How clips are sampled from a video (`video_dataset_from_directory`'s `sampling`).
    sampling = None
    discriminator_lr_scale = 1.0

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        train_ds, val_ds = self.clip_datasets(
            train,
            val,
            label_mode="int",
            sampling=self.sampling,
            cache=cache,
            first_epoch=first_epoch,
        )
        skipped = skipped_of(train_ds, val_ds)
        return TaskData(
            train_ds,
            val_ds,
            train_ds.class_names,
            len(train_ds.file_paths),
            train_ds.steps_per_pass,
            skipped,
            endless=True,
        )

    def compile(self, model, make_optimizer, jit_compile, **options):
        """Both players' optimizers and the loss; `options` go on to the model's `compile`."""
        model.compile(
            d_optimizer=make_optimizer(beta_1=GAN_BETA_1, lr_scale=self.discriminator_lr_scale),
            g_optimizer=make_optimizer(beta_1=GAN_BETA_1),
            loss=self.options.gan_loss,
            jit_compile=jit_compile,
            **options,
        )

    def finish(self, run_dir, model, data, best_path):
        atomic.save_model(model.discriminator, os.path.join(run_dir, DISCRIMINATOR_FILE))


class GenerateTask(AdversarialTask):
    monitor = None
    saved_part = "generator"
    discriminator_lr_scale = DISCRIMINATOR_LR_SCALE

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        data = super().make_data(
            train, val, cache=cache, distribution=distribution, first_epoch=first_epoch
        )
        real_clips, real_labels = pick_clips(data.validation, len(data.class_names))
        data.extras["real_clips"] = dict(zip(real_labels, real_clips))
        # No validation pass: the losses measure the two players against each other, not the clips.
        data.validation = None
        return data

    def build_model(self, data):
        config = self.config
        common = dict(num_frames=config.num_frames, image_size=self.image_size)
        generator = get_model_spec(config.model).build(num_classes=len(data.class_names), **common)
        discriminator = build_video_discriminator(num_classes=len(data.class_names), **common)
        return VideoGAN(generator, discriminator, seed=config.seed)

    def picture_callbacks(self, model, data, log_dir):
        return [
            GeneratedClips(
                data.extras["real_clips"],
                data.class_names,
                os.path.join(log_dir, "samples"),
                seed=self.config.seed,
            )
        ]

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        raise ValueError(
            f"{run.run_dir} is a GAN run: write clips with `vlm-tf generate {run.run_dir} --out "
            "DIR`, "
            "then score them with `vlm-tf evaluate CLASSIFIER_RUN DIR` or `vlm-tf score-generated`"
        )

    def generate(self, run, out, request):
        if request.from_words:
            raise ValueError(
                f"{run.run_dir} is a class-conditional gan run: --prompt, --prompts-from and "
                "--first-frame need a text_to_video run (`vlm-tf train DATA --task text_to_video`)"
            )
        if request.truncation != 1.0 or request.rerank != 1:
            raise ValueError(
                f"{run.run_dir} is a class-conditional gan run: --truncation and --rerank apply "
                "to text_to_video runs"
            )
        paths = write_generated_videos(run, out, per_class=request.per_class, seed=request.seed)
        return [
            f"wrote {len(paths)} clips ({request.per_class} per class, {len(run.class_names)} "
            f"classes) to {out}/<class>/",
            f"score them: vlm-tf evaluate CLASSIFIER_RUN {out}",
        ]

    def export(self, run, path):
        export_generator(run.model, path, class_names=run.class_names)
        return (
            f"serving_default takes noise float32 (batch, {run.model.input_shape[0][-1]}) and "
            "label int32 (batch,), returns uint8 frames"
        )


class GeneratedClips(EpochImages):
    """Each epoch, one TensorBoard image per class: a real clip above clips generated from fixed
    noise.

    The noise is drawn once, so from epoch to epoch the images show the same
    samples improving, not new ones.
    """

    def __init__(self, real_clips, class_names, log_dir, *, per_class=2, seed=0):
        super().__init__(log_dir)
        self.real_clips = real_clips
        self.class_names = class_names
        self.per_class = per_class
        self.seed = seed

    def on_train_begin(self, logs=None):
        rng = np.random.default_rng(self.seed)
        self.labels = np.repeat(np.arange(len(self.class_names)), self.per_class).astype(np.int32)
        self.noise = rng.normal(size=(len(self.labels), self.model.latent_dim)).astype(np.float32)
        super().on_train_begin(logs)

    def images(self, epoch, logs):
        generated = np.asarray(self.model.generator([self.noise, self.labels], training=False))
        images = {}
        for k, name in enumerate(self.class_names):
            rows = [
                clip_montage(clip)
                for clip in generated[k * self.per_class : (k + 1) * self.per_class]
            ]
            if self.real_clips.get(k) is not None:
                rows.insert(0, clip_montage(self.real_clips[k]))
            images[f"generated/{k}_{name}"] = np.concatenate(rows, axis=0)
        return images


# --- using a finished run ---


def generate_clips(run, labels, *, seed=0):
    """Clips of a `gan` run for each of `labels` (class indices), from seeded noise: uint8 `(N, T,
    H, W, 3)`.
    """
    run.require("generate", "generating clips")
    labels = np.asarray(labels, np.int32).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= len(run.class_names)):
        raise ValueError(
            f"labels must be class indices in [0, {len(run.class_names)}), received "
            f"{labels.min()}..{labels.max()}"
        )
    latent_dim = run.model.input_shape[0][-1]
    noise = np.random.default_rng(seed).normal(size=(len(labels), latent_dim)).astype(np.float32)
    clips = run.model.predict([noise, labels], batch_size=32, verbose=0)
    return np.round(np.clip(clips, 0, 255)).astype(np.uint8)


def write_generated_videos(run, out_dir, *, per_class, seed=0, fps=GENERATED_FPS, extension=".mp4"):
    """Writes `per_class` generated clips of every class as
    `out_dir/<class>/generated_NNNN<extension>`.

    The layout is a dataset's, so `vlm-tf evaluate CLASSIFIER_RUN out_dir`
    scores the clips with a classifier. Class k's clips come from the noise
    stream `(seed, k)`: asking for more clips adds to a class without
    changing the ones already written by the same seed. Returns the paths.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ValueError(f"{out_dir} already exists and is not empty; choose another folder")
    if int(per_class) < 1:
        raise ValueError(f"per_class must be a positive integer, received {per_class!r}")
    # Every class's folder before the first clip: a name that leads out of out_dir writes nothing.
    folders = [check_inside(os.path.join(out_dir, name), out_dir) for name in run.class_names]
    paths = []
    for label, folder in enumerate(folders):
        clips = generate_clips(run, np.full(per_class, label), seed=[seed, label])
        os.makedirs(folder, exist_ok=True)
        for index, clip in enumerate(clips):
            paths.append(
                write_video(
                    os.path.join(folder, f"generated_{index:04d}{extension}"), clip, fps=fps
                )
            )
    return paths
