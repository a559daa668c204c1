# %% [markdown]
# # 第7章 工具和资源推荐 · Chapter 7: the tools, used
#
# Chapter 7 of the text recommends tools by name: Jupyter (§7.2.1), TensorBoard
# and a profiler (§7.2.2), TensorFlow and OpenCV (§7.2.3). This notebook uses
# each of them on vlm_tf's own runs, and reads back what they write:
#
# | § | tool | here |
# |---|---|---|
# | 7.2.3 | OpenCV | decoding a real video file, and how fast, with FFmpeg's threads and without |
# | 7.2.2 | TensorBoard | a training run's event files read back: scalars, weight histograms, clip images |
# | 7.2.2 | profiler | a TensorFlow profiler trace of training steps (`vlm-tf train --profile`) |
# | 7.2.2 | performance analysis | `vlm-tf bench`: the input pipeline, training, precision / XLA and serving, each as a ratio against what a user would otherwise run |
# | 7.2.1 | Jupyter | this notebook; every chapter has one, run by the test suite |
#
# §7.2.2 also names NNVM as "Facebook's"; it came from the DMLC / TVM
# community ([docs/errata.md](../docs/errata.md)).

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 12   # synthetic videos per class for the training run
FRAMES = 8              # frames per clip
SIZE = 32               # frame size in pixels
EPOCHS = 3
BENCH_QUICK = False     # True: `vlm-tf bench --quick` sizes (a minute, noisy ratios)
BENCH_JSON = None       # a saved `vlm-tf bench --json` report to show instead of measuring
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch07_")

# %% [markdown]
# With these values the notebook takes about five minutes on two CPU cores,
# most of it the benchmark; the test suite runs it with a smaller run and
# shows the `vlm-tf bench --quick --json` report its bench test measured
# (`BENCH_JSON`), rather than measuring again.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import glob
import json
import time

import cv2
import matplotlib.pyplot as plt
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from vlm_tf.bench import format_report, run_bench
from vlm_tf.data import read_frames, write_dataset
from vlm_tf.data.sampling import uniform_indices
from vlm_tf.training import RunConfig, train
from vlm_tf.visualize import clip_montage

plt.rcParams.update({"figure.figsize": (8, 3), "figure.dpi": 70})
data_dir = os.path.join(WORK_DIR, "data")
write_dataset(data_dir, videos_per_class=VIDEOS_PER_CLASS, num_frames=24, size=64, seed=SEED)
video = sorted(glob.glob(os.path.join(data_dir, "train", "rotate_cw", "*.mp4")))[0]
print(video)

# %% [markdown]
# ## §7.2.3 OpenCV: a video file in, frames out
#
# `vlm_tf.data.decode` is the one module that talks to OpenCV. It opens the
# file with `cv2.VideoCapture` (FFmpeg underneath), converts OpenCV's BGR to
# RGB, and resizes with `INTER_AREA` when shrinking. `read_frames` takes the
# frame numbers a clip needs; the frames it does not need are only
# `grab()`-ed, which skips the colour conversion and the resize.

# %%
capture = cv2.VideoCapture(video)
try:
    print("frames (header):", int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), " fps:", capture.get(cv2.CAP_PROP_FPS),
          " size:", int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), "x", int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
          " codec:", int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode())
finally:
    capture.release()

clip = read_frames(video, uniform_indices(24, 8).numpy(), (64, 64))
plt.imshow(clip_montage(clip))
plt.axis("off")
plt.title("rotate_cw: 8 of its 24 frames, RGB")
plt.show()

# %% [markdown]
# How fast? FFmpeg decodes with one thread per core by default. For the
# small clips of a training set that costs more than it gives: threads are
# started for every file and frames handed between them. The pipeline
# decodes many files at once, one thread each (`decoder_threads=1`), so the
# cores are used across files instead.

# %%
paths = sorted(glob.glob(os.path.join(data_dir, "train", "*", "*.mp4")))
indices = uniform_indices(24, FRAMES).numpy()

def clips_per_second(**options):
    start = time.perf_counter()
    for path in paths:
        read_frames(path, indices, (SIZE, SIZE), **options)
    return len(paths) / (time.perf_counter() - start)

clips_per_second(decoder_threads=1)  # warm the file cache
timings = {"FFmpeg's default threads": clips_per_second(), "one decoder thread": clips_per_second(decoder_threads=1)}
for name, rate in timings.items():
    print(f"{name:26s} {rate:7.1f} clips/s  ({len(paths)} files, one after another)")

# %% [markdown]
# ## §7.2.2 TensorBoard and the profiler
#
# A small run of the default model (a few epochs on a few videos: the point
# is what it writes, not its accuracy), with `profile=True` (the CLI's
# `vlm-tf train --profile`): besides its usual TensorBoard logs it writes a
# profiler trace of training steps 3-7. `precision` and `jit` are left at
# `auto`: the run measures its own step under each choice first and keeps
# the fastest (`execution.json` says what it measured).

# %%
run_dir = os.path.join(WORK_DIR, "run")
result = train(data_dir, run_dir, RunConfig(epochs=EPOCHS, num_frames=FRAMES, image_size=SIZE, seed=SEED), verbose=0, profile=True)
print("best validation accuracy:", round(result.best_val_accuracy, 3))
print("execution:", result.execution.precision, "XLA", result.execution.jit, f"({result.execution.source})", result.execution.measured)
print("tensorboard --logdir", os.path.join(run_dir, "logs"))


# %% [markdown]
# What TensorBoard shows is in event files; the same reader TensorBoard uses
# (`EventAccumulator`) reads them here. Keras writes the epoch scalars to
# `logs/train` and `logs/validation`, the weight histograms to `logs/train`,
# and vlm_tf the clips the model was fed to `logs/samples`.

# %%
def events(folder):
    accumulator = EventAccumulator(os.path.join(run_dir, "logs", folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator

def scalar(accumulator, tag):
    return [float(tensor_util.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)]

train_events, validation_events = events("train"), events("validation")
fig, axes = plt.subplots(1, 2)
for ax, tag in zip(axes, ("epoch_loss", "epoch_accuracy")):
    ax.plot(scalar(train_events, tag), "o-", label="train")
    ax.plot(scalar(validation_events, tag), "o-", label="validation")
    ax.set_title(tag)
    ax.set_xlabel("epoch")
    ax.legend()
plt.tight_layout()
plt.show()
histograms = [tag for tag in train_events.Tags()["tensors"] if "histogram" in tag]
print(len(histograms), "weight histograms, e.g.", histograms[:3])
print("sample images:", events("samples").Tags()["tensors"][:4])

# %%
traces = glob.glob(os.path.join(run_dir, "logs", "profile", "plugins", "profile", "*", "*.xplane.pb"))
for trace in traces:
    print(os.path.relpath(trace, run_dir), f"{os.path.getsize(trace) / 1e6:.1f} MB")

# %% [markdown]
# TensorBoard's Profile tab opens the trace (`pip install
# tensorboard-plugin-profile`, then `tensorboard --logdir RUN_DIR/logs/profile`):
# the trace viewer shows each step's ops on a timeline, and the input-pipeline
# page how long steps waited for data.
#
# ## §7.2.2 Performance: `vlm-tf bench`
#
# Speed is only meaningful next to something. `vlm-tf bench` measures, in
# one run and on the same files and shapes: our pipeline against the
# TensorFlow video tutorial's Python-generator loader and against OpenCV
# alone in a process per core; the training step against a matrix product
# (the machine's ceiling for dense work); every precision and XLA setting;
# the share of a real training step spent waiting for data; the exported
# model's latency; and the text's network in PyTorch when it is installed.
# docs/benchmarks.md keeps the figures of every recorded run.

# %%
if BENCH_JSON:
    with open(BENCH_JSON) as f:
        report = json.load(f)
else:
    report = run_bench(quick=BENCH_QUICK, work_dir=os.path.join(WORK_DIR, "bench"))
print(format_report(report))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
loaders = {
    "tutorial\ngenerator": report["framegenerator_clips_per_s"],
    "vlm_tf": report["pipeline_clips_per_s"],
    "vlm_tf\ncached": report["cached_pipeline_clips_per_s"],
    "OpenCV, a\nprocess a core": report["decode_ceiling_clips_per_s"],
}
axes[0].bar(list(loaders), list(loaders.values()), color=["grey", "tab:blue", "tab:cyan", "black"])
axes[0].set_ylabel("clips / s")
axes[0].set_title("input")
rates = {key: value for key, value in report["precision_xla"]["cnn_lstm"].items() if key != "auto"}
axes[1].bar([key.replace("/", "\nXLA ") for key in rates], list(rates.values()),
            color=["tab:orange" if key == report["precision_xla"]["auto"] else "grey" for key in rates])
axes[1].set_ylabel("clips / s")
axes[1].set_title("training step of the default model (orange: auto's pick)")
plt.tight_layout()
plt.show()

# %% [markdown]
# On the two-core machine the figures in docs/benchmarks.md come from, the
# 16-bit `mixed_bfloat16` policy (this CPU has AVX-512 BF16) trains the default
# model faster than float32, and XLA makes every model slower: `auto` measures
# instead of assuming, and keeps float32 without XLA unless another setting is
# at least 5 % faster.
