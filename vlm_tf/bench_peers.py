"""What a user would run instead of vlm_tf, for `vlm-tf bench` to measure against (`vlm_tf.bench`).

- `FrameGenerator`: the loader of TensorFlow's video-classification
  tutorial, rewritten for the same clips as ours.
- `compare_with_peers`: the default model and the text's network in PyTorch,
  as a strong PyTorch user would train them (`TORCH_SETTINGS`: eager float32,
  then `torch.autocast` bfloat16, channels-last and `torch.compile` on top),
  and the same Keras models under the JAX backend. Each peer runs in a
  process of its own, started by this one: a process has one Keras backend,
  and PyTorch's compiler stack crashes a process that has TensorFlow loaded
  (triton's import, segmentation fault, torch 2.14 beside TensorFlow 2.21).
  This module imports no TensorFlow at the top for that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np


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

        from vlm_tf.data.sampling import uniform_indices

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


def compare_with_peers(ours, clips, labels, *, steps, text_model, text_float32, quick=False):
    """Every peer of `ours` (`{registered model: clips/s at --precision/--jit auto}`) on the same
    batch: PyTorch in each of `TORCH_SETTINGS` and Keras on JAX, and `ours` against the fastest
    (`train_vs_best_peer`, `best_peer`). `text_float32`, our float32 rate of `text_model`, keeps
    the older figure: the text's network against PyTorch eager float32
    (`train_vs_torch_eager`). `quick` leaves `torch.compile` (a minute of compiling) out.

    The peers make their batch as `clips, labels` were made (`peer_batch`, seed 0), whose shapes
    they are given.
    """
    from vlm_tf.models.registry import get_model_spec

    common = {"shape": list(clips.shape), "classes": int(labels.shape[-1]), "steps": steps}
    torch_models = {}
    for name in ours:
        kwargs = get_model_spec(name).kwargs
        torch_models[name] = {k: kwargs[k] for k in ("filters", "frame_difference") if k in kwargs}
    settings = TORCH_SETTINGS[:-1] if quick else TORCH_SETTINGS
    torch_report = _in_own_process(
        {"peer": "torch", "models": torch_models, "settings": list(settings), **common}
    )
    jax_report = _in_own_process({"peer": "jax", "models": list(ours), **common})
    peers = {name: {} for name in ours}
    for prefix, report in (("PyTorch", torch_report), ("Keras on JAX", jax_report)):
        for name, rates in (report["rates"] or {}).items():
            peers[name].update({f"{prefix} {setting}": rate for setting, rate in rates.items()})
    best = {name: max(rates, key=rates.get) if rates else None for name, rates in peers.items()}
    eager = ((torch_report["rates"] or {}).get(text_model) or {}).get("eager_float32")
    return {
        "peers": peers,
        "best_peer": best,
        "train_vs_best_peer": {
            name: ours[name] / peers[name][best[name]] if best[name] else None for name in ours
        },
        "torch_clips_per_s": eager,
        "train_vs_torch_eager": text_float32 / eager if eager else None,
        "torch_version": torch_report["version"],
        "torch_note": torch_report["note"],
        "jax_version": jax_report["version"],
        "jax_note": jax_report["note"],
    }


def peer_lines(report):
    """`vlm-tf bench`'s lines for the peers of `compare_with_peers`."""
    lines = ["training against peers (clips/s; ours at the auto pick)"]
    for name, rates in report["peers"].items():
        figures = ", ".join(f"{key} {rate:.1f}" for key, rate in rates.items())
        ratio = report["train_vs_best_peer"][name]
        best = f"ours {ratio:.2f}x the best, {report['best_peer'][name]}" if ratio else "no peer"
        lines.append(f"  {name:<14s} {figures or 'none ran'}; {best}")
    if report["train_vs_torch_eager"]:
        lines.append(
            f"  the text's network in float32 against PyTorch eager float32: ours "
            f"{report['train_vs_torch_eager']:.2f}x"
        )
    for key in ("torch_note", "jax_note"):
        if report[key]:
            lines.append(f"  {key.split('_')[0]}: {report[key]}")
    return lines


def _in_own_process(request):
    """`python -m vlm_tf.bench_peers REQUEST`: `{"rates", "version", "note"}` of one peer."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if request["peer"] == "jax":
        env["KERAS_BACKEND"] = "jax"
    done = subprocess.run(
        [sys.executable, "-m", "vlm_tf.bench_peers", json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"rates": None, "version": None, "note": f"the {request['peer']} process: {last}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_batch(shape, classes, seed=0):
    """Uniform pixels of `shape` and one-hot labels, drawn as `vlm_tf.bench` draws its batch."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, shape).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, shape[0])]
    return x, y


def _timed(step, steps, batch):
    """Clips/s of `step()`: the median of `steps` timed calls after two untimed ones (they
    compile, and warm oneDNN's kernel caches).
    """
    step()
    step()
    times = []
    for _ in range(max(steps, 3)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


# What a PyTorch user would try, in order: each adds one thing to the one before it.
TORCH_SETTINGS = ("eager_float32", "eager_bfloat16", "channels_last_bfloat16", "compiled_bfloat16")


def _torch_rates(request):
    """In the PyTorch process: each model's clips/s under each requested setting. A setting
    that cannot run here (`torch.compile` without a C++ compiler) is left out, said in `note`.
    """
    try:
        import torch
    except ImportError:
        return {
            "rates": None,
            "version": None,
            "note": "PyTorch is not installed (pip install torch)",
        }
    torch.set_num_threads(os.cpu_count())
    clips, labels = peer_batch(request["shape"], request["classes"])
    # PyTorch's convolutions take channels first.
    inputs = torch.from_numpy(np.ascontiguousarray(clips.transpose(0, 1, 4, 2, 3)))
    targets = torch.from_numpy(labels.argmax(-1))
    rates, notes = {}, []
    for name, kwargs in request["models"].items():
        rates[name] = {}
        for setting in request["settings"]:
            torch.manual_seed(0)
            model = build_cnn_lstm_torch(request["classes"], size=clips.shape[2], **kwargs)
            if setting.startswith(("channels_last", "compiled")):
                model = model.to(memory_format=torch.channels_last)
                model.channels_last = True
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            forward = torch.compile(model) if setting.startswith("compiled") else model
            half = setting.endswith("bfloat16")

            def step(forward=forward, optimizer=optimizer, half=half):
                optimizer.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=half):
                    loss = torch.nn.functional.cross_entropy(forward(inputs), targets)
                loss.backward()
                optimizer.step()

            try:
                rates[name][setting] = _timed(step, request["steps"], len(clips))
            except Exception as error:  # noqa: BLE001 - a peer that cannot run is said, not fatal
                notes.append(f"{name} {setting}: {type(error).__name__}: {error}".splitlines()[0])
    return {"rates": rates, "version": torch.__version__, "note": "; ".join(notes) or None}


def build_cnn_lstm_torch(
    num_classes, *, size, filters=(32,), frame_difference=False, lstm_activation="tanh"
):
    """`build_cnn_lstm` in PyTorch, for frames of `size` × `size`: optionally each frame beside its
    difference from the previous one; per frame, a block of Conv2D(f, 3×3, valid, ReLU) → 2×2
    max pooling for each f of `filters`; flatten; LSTM(64) over the frames; a dense layer. With
    the defaults it is §5.2.1, the text's network; `filters=(16, 32, 64), frame_difference=True`
    is vlm_tf's default model. PyTorch's LSTM has no ReLU cell, so the text's `relu` LSTM is
    measured with tanh, which costs the same.
    """
    import torch

    if lstm_activation != "tanh":
        raise ValueError(f"PyTorch's LSTM is tanh only, received {lstm_activation!r}")
    side, channels, layers = size, 6 if frame_difference else 3, []
    for width in filters:
        layers += [torch.nn.Conv2d(channels, width, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        channels, side = width, (side - 2) // 2

    class CnnLstm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.frames = torch.nn.Sequential(*layers)
            self.lstm = torch.nn.LSTM(channels * side * side, 64, batch_first=True)
            self.output = torch.nn.Linear(64, num_classes)
            self.channels_last = False

        def forward(self, clips):
            batch, frames = clips.shape[:2]
            x = clips / 255.0
            if frame_difference:
                previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
                x = torch.cat([x, x - previous], dim=2)
            x = x.flatten(0, 1)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.frames(x)
            _, (hidden, _) = self.lstm(x.reshape(batch, frames, -1))
            return self.output(hidden[-1])

    return CnnLstm()


def _jax_rates(request):
    """In the JAX process (KERAS_BACKEND=jax): each registered model's clips/s in float32 and
    mixed bfloat16.
    """
    try:
        import jax
    except ImportError:
        return {"rates": None, "version": None, "note": "JAX is not installed (pip install jax)"}
    import keras

    from vlm_tf.models import build_model

    shape, classes = request["shape"], request["classes"]
    x, y = peer_batch(shape, classes)
    rates = {}
    for name in request["models"]:
        rates[name] = {}
        for policy in ("float32", "mixed_bfloat16"):
            keras.mixed_precision.set_global_policy(policy)
            keras.utils.set_random_seed(0)
            model = build_model(name, num_classes=classes, image_size=tuple(shape[2:4]))
            model.compile(optimizer="adam", loss="categorical_crossentropy")
            rates[name][policy] = _timed(
                lambda model=model: model.train_on_batch(x, y), request["steps"], shape[0]
            )
    return {"rates": rates, "version": jax.__version__, "note": None}


if __name__ == "__main__":
    asked = json.loads(sys.argv[1])
    print(json.dumps((_torch_rates if asked["peer"] == "torch" else _jax_rates)(asked)))
