"""What a user would run instead of vlm_tf, for `vlm-tf bench` to measure against (`vlm_tf.bench`).

- `FrameGenerator`: the loader of TensorFlow's video-classification
  tutorial, rewritten for the same clips as ours.
- `bench_torch`: the text's network in PyTorch, trained eagerly in float32.
"""

from __future__ import annotations

import os
import time

import numpy as np

from vlm_tf.data.sampling import uniform_indices


class FrameGenerator:
    """The loader of TensorFlow's video-classification tutorial.

    It is rewritten here for the same clips as ours.

    A Python generator opens one video at a time with OpenCV, reads its
    frames in order, and formats each chosen frame with `tf.image`
    (`convert_image_dtype`, `resize_with_pad`), then yields the stacked
    clip. The frames chosen are the ones our pipeline chooses, so both
    decode the same amount.
    """

    def __init__(self, paths, labels, *, num_frames, size):
        self.paths, self.labels = list(paths), list(labels)
        self.num_frames, self.size = num_frames, size

    def __call__(self):
        import cv2
        import tensorflow as tf

        for path, label in zip(self.paths, self.labels):
            capture = cv2.VideoCapture(path)
            try:
                total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                wanted = uniform_indices(max(total, 1), self.num_frames).numpy().tolist()
                frames, index = [], 0
                ok, frame = capture.read()
                while ok and len(frames) < len(wanted):
                    while len(frames) < len(wanted) and wanted[len(frames)] == index:
                        rgb = tf.image.convert_image_dtype(frame[..., ::-1], tf.float32)
                        frames.append(tf.image.resize_with_pad(rgb, self.size, self.size))
                    ok, frame = capture.read()
                    index += 1
            finally:
                capture.release()
            while len(frames) < self.num_frames:
                frames.append(frames[-1])
            yield tf.stack(frames) * 255.0, label


def frame_generator_dataset(paths, labels, *, num_frames, size, batch_size):
    import tensorflow as tf

    signature = (
        tf.TensorSpec((num_frames, size, size, 3), tf.float32),
        tf.TensorSpec((), tf.int32),
    )
    generator = FrameGenerator(paths, labels, num_frames=num_frames, size=size)
    return (
        tf.data.Dataset.from_generator(generator, output_signature=signature)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def bench_torch(ours_clips_per_s, clips, labels, *, steps):
    """The text's network in PyTorch, trained eagerly in float32 on the same `clips` `(B, T, H, W,
    3)` and one-hot `labels`.

    Returns its speed and the ratio against ours in float32.
    """
    try:
        import torch
    except ImportError:
        return {
            "torch_clips_per_s": None,
            "train_vs_torch_eager": None,
            "torch_note": "PyTorch is not installed (pip install torch); comparison skipped",
        }
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    model = build_text_network_torch(labels.shape[-1], size=clips.shape[2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    # PyTorch's convolutions take channels first.
    inputs = torch.from_numpy(np.ascontiguousarray(clips.transpose(0, 1, 4, 2, 3)))
    targets = torch.from_numpy(labels.argmax(-1))

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()

    step()
    times = []
    for _ in range(max(steps, 3)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    rate = len(clips) / float(np.median(times))
    return {
        "torch_clips_per_s": rate,
        "train_vs_torch_eager": ours_clips_per_s / rate,
        "torch_version": torch.__version__,
    }


def build_text_network_torch(num_classes, *, size):
    """§5.2.1 in PyTorch, as `cnn_lstm_text` builds it, for frames of `size` × `size`.

    Per frame Conv2D(32, 3×3, ReLU) → 2×2 max pooling → flatten; LSTM(64) over
    the frames; a dense layer.
    """
    import torch

    class TextNetwork(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 32, 3)
            self.pool = torch.nn.MaxPool2d(2)
            self.lstm = torch.nn.LSTM(32 * ((size - 2) // 2) ** 2, 64, batch_first=True)
            self.output = torch.nn.Linear(64, num_classes)

        def forward(self, clips):
            batch, frames = clips.shape[:2]
            x = self.pool(torch.relu(self.conv(clips.flatten(0, 1) / 255.0)))
            _, (hidden, _) = self.lstm(x.reshape(batch, frames, -1))
            return self.output(hidden[-1])

    return TextNetwork()
