"""`vlm-tf bench`'s detection figure: the default detector's training, fed as `train --task
detect` feeds it.

Videos with box files from the detection generator (`make-data --task
detect`'s, at the task's default 16 frames of 64×64), batched by the task's
`DetectionClips`; one epoch traces the step, the next is timed.
"""

from __future__ import annotations

import glob
import os
import time

# The task's defaults, which are the classifier's that `bench` times too.
from vlm_tf.bench_input import BATCH, NUM_FRAMES, SIZE


def bench_detection(work_dir, *, videos):
    """`{"detection_train_clips_per_s": rate}` of the default detector over the training split
    of `videos` videos written into `work_dir`.
    """
    import keras

    from vlm_tf.data.detection import write_detection_dataset
    from vlm_tf.data.detection_clips import DetectionClips, annotated_videos, detection_classes
    from vlm_tf.models.detection import detection_loss
    from vlm_tf.models.registry import default_model, get_model_spec

    write_detection_dataset(work_dir, videos=videos, num_frames=24, size=SIZE, seed=0)
    train, _ = annotated_videos(sorted(glob.glob(os.path.join(work_dir, "train", "*.mp4"))))
    names = detection_classes(train)
    clips = DetectionClips(
        train,
        names,
        num_frames=NUM_FRAMES,
        image_size=(SIZE, SIZE),
        batch_size=BATCH,
        training=True,
    )
    model = get_model_spec(default_model("detect")).build(
        num_classes=len(names), image_size=(SIZE, SIZE)
    )
    model.compile(optimizer=keras.optimizers.Adam(), loss=detection_loss)
    model.fit(clips, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(clips, epochs=1, verbose=0)
    return {"detection_train_clips_per_s": len(train) / (time.perf_counter() - start)}


def detection_lines(report):
    return [
        f"detector training (train --task detect's input, {NUM_FRAMES} frames at "
        f"{SIZE}x{SIZE}, batch {BATCH}): "
        f"{report['detection_train_clips_per_s']:.1f} clips/s"
    ]
