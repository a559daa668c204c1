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

DETECTION_FRAMES = 16
DETECTION_SIZE = 64
DETECTION_BATCH = 8


def bench_detection(work_dir, *, videos):
    """`{"detection_train_clips_per_s": rate}` of the default detector over `videos` training
    videos written into `work_dir`.
    """
    import keras

    from vlm_tf.data.detection import write_detection_dataset
    from vlm_tf.data.detection_clips import DetectionClips, annotated_videos, detection_classes
    from vlm_tf.models.detection import detection_loss
    from vlm_tf.models.registry import default_model, get_model_spec

    # The generator's 70/15/15 split: this many written give `videos` to train on.
    write_detection_dataset(
        work_dir, videos=round(videos / 0.7), num_frames=24, size=DETECTION_SIZE, seed=0
    )
    train, _ = annotated_videos(sorted(glob.glob(os.path.join(work_dir, "train", "*.mp4"))))
    names = detection_classes(train)
    clips = DetectionClips(
        train,
        names,
        num_frames=DETECTION_FRAMES,
        image_size=(DETECTION_SIZE, DETECTION_SIZE),
        batch_size=DETECTION_BATCH,
        training=True,
    )
    model = get_model_spec(default_model("detect")).build(
        num_classes=len(names), image_size=(DETECTION_SIZE, DETECTION_SIZE)
    )
    model.compile(optimizer=keras.optimizers.Adam(), loss=detection_loss)
    model.fit(clips, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(clips, epochs=1, verbose=0)
    return {"detection_train_clips_per_s": len(train) / (time.perf_counter() - start)}


def detection_lines(report):
    return [
        f"detector training (train --task detect's input, {DETECTION_FRAMES} frames at "
        f"{DETECTION_SIZE}x{DETECTION_SIZE}, batch {DETECTION_BATCH}): "
        f"{report['detection_train_clips_per_s']:.1f} clips/s"
    ]
