"""Self-supervised pretraining (chapter 8: §8.1's scale and transfer) on any folder of videos.

The clips of every video under the data folder (searched recursively,
class folders or not; their labels are never read) train a backbone by
masked video modelling (`video_mae`, `vlm_tf.models.masked`) or by telling
the camera move added to each clip (`camera_motion`,
`vlm_tf.models.motion_pretext`); the epochs run, resume and log like every
other run's. The run's `model.keras` is the backbone of its last epoch
(pretraining has no held-out figure to choose an epoch by: its validation
loss measures the pretext, not what transfers), and `vlm-tf export RUN
--format preset` turns it into a preset that `train --init` starts from.
TensorBoard shows the loss and, for masked modelling, every epoch a few
validation clips' frames with their hidden tubes grey, next to what the
model filled in.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from vlm_tf.data.pipeline import make_clip_dataset
from vlm_tf.data.splits import readable_videos, video_split
from vlm_tf.models.backbone import save_backbone_preset
from vlm_tf.models.registry import get_model_spec
from vlm_tf.tasks.base import Task, TaskData, skipped_of
from vlm_tf.tasks.options import PRETRAIN_METHODS, TUBELET_ENCODERS
from vlm_tf.tasks.tensorboard import EpochImages
from vlm_tf.visualize import clip_montage

SAMPLE_CLIPS = 3
# Frames of each sample clip shown, spread over it.
SAMPLE_FRAMES = 4


def unlabeled_clips(paths, config, *, training, cache=None, first_epoch=None):
    """Batches of clips `(B, T, H, W, 3)` of the videos at `paths`, labels dropped; a training
    set samples new frames each epoch (`make_clip_dataset`'s "random"), a validation set
    fixed ones. The dataset's `skipped` lists the unreadable videos.
    """
    readable, counts, skipped = readable_videos(paths)
    clips = make_clip_dataset(
        readable,
        [0] * len(readable),
        counts,
        class_names=["videos"],
        num_frames=config.num_frames,
        image_size=(config.image_size, config.image_size),
        batch_size=config.batch_size,
        shuffle=training,
        seed=config.seed,
        sampling_mode="random" if training else "uniform",
        augment=config.augment if training else False,
        cache=cache,
        first_pass=first_epoch if training else None,
    )
    dataset = clips.map(lambda batch, _: batch)
    dataset.skipped, dataset.failed = skipped, clips.failed
    dataset.steps_per_pass = getattr(clips, "steps_per_pass", None)
    dataset.num_files = len(readable)
    return dataset


class PretrainTask(Task):
    monitor = None
    saved_part = "backbone"
    caches = True

    def split(self, data_dir):
        # Any folder of videos, at any depth; DATA_DIR/train and DATA_DIR/val when both exist.
        return video_split(data_dir, seed=self.config.seed)

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        train_ds = unlabeled_clips(
            train, self.config, training=True, cache=cache, first_epoch=first_epoch
        )
        val_ds = unlabeled_clips(val, self.config, training=False, cache=cache)
        samples = next(iter(val_ds)).numpy()[:SAMPLE_CLIPS]
        return TaskData(
            train_ds,
            val_ds,
            [],
            train_ds.num_files,
            train_ds.steps_per_pass,
            skipped_of(train_ds, val_ds),
            endless=True,
            extras={"samples": samples},
        )

    def check_memory(self, model=None):
        # The decoder works on every token, as the backbone alone would.
        super().check_memory(None if model is None else model.backbone)

    def build_model(self, data):
        spec = get_model_spec(self.config.model)
        # The options the method's builder takes (the mask ratio is masked modelling's alone).
        taken = inspect.signature(spec.builder_function()).parameters
        options = {key: value for key, value in self.options.to_dict().items() if key in taken}
        return spec.build(
            num_frames=self.config.num_frames,
            image_size=self.image_size,
            seed=self.config.seed,
            **options,
        )

    def compile(self, model, make_optimizer, jit_compile):
        model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)

    def picture_callbacks(self, model, data, log_dir):
        if not hasattr(model, "reconstruct"):
            return []
        return [Reconstructions(data.extras["samples"], os.path.join(log_dir, "samples"))]

    def describe_result(self, summary):
        what = "on the hidden tubes" if self.config.model == "video_mae" else "on the camera moves"
        return (
            f"pretraining loss {summary.get('loss', float('nan')):.4f} (validation "
            f"{summary.get('val_loss', float('nan')):.4f}) {what}"
        )

    def export(self, run, path):
        raise ValueError(
            f"{run.run_dir} is a pretrain run: its backbone becomes a preset with "
            "`vlm-tf export RUN --format preset`"
        )

    def export_preset(self, run, path):
        method = {model: name for name, model in PRETRAIN_METHODS.items()}[self.config.model]
        metadata = {
            "source_run": os.path.abspath(run.run_dir),
            "pretraining": {
                "method": method,
                **({"mask_ratio": self.options.mask_ratio} if method == "masked" else {}),
                "data": run.data_dir,
                "epochs": self.config.epochs,
                "seed": self.config.seed,
            },
        }
        save_backbone_preset(
            run.model,
            path,
            model_name=self.options.encoder,
            image_size=run.image_size,
            # A tubelet transformer's positions fix its clip length; the others take any.
            num_frames=self.config.num_frames if self.options.encoder in TUBELET_ENCODERS else None,
            metadata=metadata,
        )
        return f"a pretrained {self.options.encoder} backbone; `vlm-tf train --init {path}`"


class Reconstructions(EpochImages):
    """Each epoch, for a few validation clips: frames as they are | with the hidden tubes grey |
    filled in by the model, in TensorBoard.
    """

    def __init__(self, clips, log_dir):
        super().__init__(log_dir)
        self.clips = clips

    def images(self, epoch, logs):
        masked, filled, _ = (np.asarray(x) for x in self.model.reconstruct(self.clips))
        steps = np.linspace(0, masked.shape[1] - 1, SAMPLE_FRAMES).round().astype(int)
        rows = [
            clip_montage(frames[k, steps], max_frames=SAMPLE_FRAMES)
            for k in range(len(self.clips))
            for frames in (self.clips, masked, filled)
        ]
        image = np.concatenate(rows, axis=0).round().clip(0, 255).astype(np.uint8)
        return {"reconstruction/clip_masked_filled": image}
