# %% [markdown]
# # 第8章 总结：未来发展趋势与挑战 · Chapter 8: the trends, made to run
#
# Chapter 8 of the text names where video models are going (§8.1): bigger
# models trained on more machines, compression (pruning, quantization,
# distillation), end-to-end training with real-time inference, and
# robustness. Each is a working part of vlm_tf; this notebook runs them on one
# small synthetic dataset, side by side:
#
# | § | trend | here | module |
# |---|---|---|---|
# | 8.1.1 | scale, distributed training | one process against two worker processes on loopback (`MultiWorkerMirroredStrategy`) | `vlm_tf.training.distribute`, docs/distributed.md |
# | 8.1.2 | pruning, quantization, distillation | every method scored alike: accuracy, size, latency | `vlm_tf.compression`, docs/compression.md |
# | 8.1.4 | real-time inference | a video read frame by frame, the label updated after each, latency per frame | `vlm_tf.streaming` |
# | 8.1.5 | robustness | several views per video; accuracy as noise grows (every corruption, and robust training: `notebooks/ch08_trustworthy`) | `evaluate --views`, `vlm_tf.data.degrade`; `evaluate --corruptions`, `train --augment robust` |
# | 8.2 ① | privacy | faces hidden in videos; run folders and caches encrypted at rest; DP-SGD with its budget ε, learning at ε ≤ 10 as a private probe on the pretrained backbone (`notebooks/ch08_trustworthy`, docs/privacy.md) | `vlm-tf anonymize`, `--encrypt-key-file`, `train --dp-l2-clip`; `vlm_tf.anonymize`, `vlm_tf.crypto`, `vlm_tf.tasks.privacy` |
# | 8.2 ② | energy and carbon | every `train`, `evaluate` and `bench` reports joules per clip and CO₂, measured (RAPL) or estimated (`notebooks/ch08_trustworthy`) | `vlm_tf.energy` |
# | 8.2 ④ | interpretability | where and when a classifier looked, as heat maps, scored by the pointing game against a random and a centre map (`notebooks/ch08_trustworthy`) | `vlm-tf explain`, `vlm_tf.tasks.explain` |
#
# The figures at the size below are small-sample figures; docs/compression.md
# has the compression table of a full-size run.

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 60   # synthetic videos per class (70/15/15 train/val/test), 24 frames each
FRAMES = 16             # frames per clip
SIZE = 64               # frame size in pixels
EPOCHS = 12
WORKERS = 2
PRUNE_EPOCHS = 2
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch08_")

# %% [markdown]
# With these values most of the time goes to the two-worker run and the
# students (the build stamp in this notebook's metadata, `vlm_tf.seconds`,
# records how long the committed run took); the test suite runs it with a few
# small videos and one epoch.

# %%
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import glob
import warnings

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from vlm_tf.compression.distillation import distill_run
from vlm_tf.compression.measure import format_rows, measure_run
from vlm_tf.compression.pruning import prune_run
from vlm_tf.data import read_frames, write_dataset
from vlm_tf.data.decode import read_frame_stream
from vlm_tf.inference import evaluate_directory, load_run
from vlm_tf.streaming import StreamingClassifier
from vlm_tf.training import RunConfig, train
from vlm_tf.training.config import read_history
from vlm_tf.training.distribute import run_local_workers

plt.rcParams.update({"figure.figsize": (8, 3), "figure.dpi": 70})
# Each conversion to TFLite logs its SavedModel's assets, and each interpreter
# says it will move to the ai_edge_litert package: noise here.
tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
data_dir = os.path.join(WORK_DIR, "data")
test_dir = os.path.join(data_dir, "test")
write_dataset(data_dir, videos_per_class=VIDEOS_PER_CLASS, num_frames=24, size=SIZE, seed=SEED)
print(sum(len(glob.glob(os.path.join(data_dir, split, "*", "*.mp4"))) for split in ("train", "val", "test")), "videos in", data_dir)

# %% [markdown]
# ## §8.1.1 Scale: the same run on two worker processes
#
# `vlm-tf train --strategy multiworker` trains on `tf.distribute`'s
# `MultiWorkerMirroredStrategy`: one process per worker, the cluster named in
# `TF_CONFIG`. `run_local_workers` starts the workers on this machine, each
# with a `TF_CONFIG` naming free ports on 127.0.0.1 — the same command on
# several machines is in docs/distributed.md.
#
# `--batch-size` is the global batch: each of the two workers takes half of
# every batch and decodes only its share of the files, the gradients are
# averaged across them, and the chief alone writes the run folder. So the two
# workers take the steps one process takes, on the same global batches in
# number and size, but not the same clips in them: each worker shuffles its
# own shard.

# %%
common = ["--epochs", EPOCHS, "--frames", FRAMES, "--size", SIZE, "--seed", SEED, "--precision", "float32", "--jit", "off", "--quiet"]
one_dir, two_dir = os.path.join(WORK_DIR, "one_process"), os.path.join(WORK_DIR, "two_workers")
config = RunConfig(epochs=EPOCHS, num_frames=FRAMES, image_size=SIZE, seed=SEED, precision="float32", jit="off")
one = train(data_dir, one_dir, config, verbose=0, strategy="default")
workers = run_local_workers(["train", data_dir, "--out", two_dir, *map(str, common)], WORKERS, timeout=3600)
for index, worker in enumerate(workers):
    print(f"worker {index}: exit {worker.returncode}", worker.stdout.strip().splitlines()[0] if worker.stdout.strip() else worker.stderr[-500:])
print(json.load(open(os.path.join(two_dir, "execution.json"))))

# %%
fig, axes = plt.subplots(1, 2)
for name, folder in (("one process", one_dir), (f"{WORKERS} workers", two_dir)):
    history = read_history(folder)
    axes[0].plot([row["loss"] for row in history], label=name)
    axes[1].plot([row["val_accuracy"] for row in history], label=name)
axes[0].set_title("training loss"), axes[1].set_title("validation accuracy")
axes[0].set_xlabel("epoch"), axes[1].set_xlabel("epoch"), axes[1].legend()
plt.tight_layout()

run = load_run(one_dir)
accuracy = {name: evaluate_directory(load_run(folder), test_dir)["accuracy"] for name, folder in (("one process", one_dir), (f"{WORKERS} workers", two_dir))}
print("test accuracy:", accuracy)
print("other workers' scratch folders left:", glob.glob(two_dir + ".worker*"))

# %% [markdown]
# The curves differ because the clips come in another order, and on a
# dataset this small that order alone moves the final accuracy by as much
# as the difference printed above: it is run-to-run spread, not a cost of
# distribution. `tests/training/test_distribute.py` feeds both the same
# batches and finds the weights equal to 1e-8, which is the claim that
# matters. On one machine the two workers are slower than one process: they
# share the same two cores and talk through the network stack every step.
# Their use is more machines.
#
# ## §8.1.2 Compression: pruning, quantization, distillation
#
# Each method leaves something different — pruning a model of the same shape
# with zeros in it, distillation a smaller model, quantization a smaller file
# of the same model — so each is scored the same way: as the TFLite file it
# would ship as (`measure_run`), its accuracy on the test split, its size and
# its gzip size (where a pruned model's zeros pay off), and the interpreter's
# latency on one thread.

# %%
rows = [{"name": "the run (float32)", **measure_run(one_dir, test_dir)}]
for mode in ("float16", "dynamic", "int8"):
    rows.append({"name": f"quantized {mode}", **measure_run(one_dir, test_dir, quantize=mode)})
for sparsity in (0.5, 0.8):
    pruned = prune_run(one_dir, sparsity=sparsity, epochs=PRUNE_EPOCHS, out=os.path.join(WORK_DIR, f"pruned{round(sparsity * 100)}"))
    rows.append({"name": f"pruned {sparsity:.0%}", **measure_run(pruned["run_dir"], test_dir)})
for alpha, name in ((0.1, "student, with teacher"), (1.0, "student, without teacher")):
    student = distill_run(one_dir, alpha=alpha, out=os.path.join(WORK_DIR, f"student_alpha{alpha}"))
    rows.append({"name": f"{name}", **measure_run(student["run_dir"], test_dir)})
print(format_rows(rows))
by_name = {row["name"]: row for row in rows}
gain = by_name["student, with teacher"]["accuracy"] - by_name["student, without teacher"]["accuracy"]
print(f"\ndistillation: the student with the teacher's soft labels scores {gain:+.3f} against the same student on the labels alone")

# %%
fig, axes = plt.subplots(1, 2, sharey=True)
for row in rows:
    for axis, key, scale in ((axes[0], "gzip_bytes", 1e6), (axes[1], "latency_ms", 1.0)):
        axis.scatter(row[key] / scale, row["accuracy"])
        axis.annotate(row["name"], (row[key] / scale, row["accuracy"]), fontsize=7)
axes[0].set_xlabel("gzip size (MB)"), axes[1].set_xlabel("TFLite latency per clip (ms, 1 thread)"), axes[0].set_ylabel("test accuracy")
plt.tight_layout()

# %% [markdown]
# What to read in it: float16 halves the file; dynamic-range and int8
# quantization quarter it and run faster on a CPU (the latency column says
# which is fastest on this one); pruning does not make the dense file
# faster, but its zeros compress; the student is the only one with fewer
# parameters. Whether
# the teacher's soft labels help the student is the last line above — on a
# dataset this small they may not: a teacher that is itself far from perfect
# passes on its mistakes, and one run cannot separate a gain of a few clips
# from chance. docs/compression.md has the full-size comparison; the loss,
# its temperature and weight are in `vlm_tf.compression.distillation`.
#
# ## §8.1.4 Real-time inference: a video frame by frame
#
# `StreamingClassifier` takes one frame at a time. The CNN classifiers
# encode every frame on its own up to their `frame_features` layer, so each
# new frame is encoded once and kept in a ring buffer of the last T features;
# the head (the LSTM) runs over the buffer. Its answer after each frame is the
# model's on the last T frames — exactly, checked below.

# %%
video = sorted(glob.glob(os.path.join(test_dir, "rotate_cw", "*.mp4")))[0]
stream = StreamingClassifier(run)
steps = [stream.update(frame) for frame in read_frame_stream(video)]
print(f"{len(steps)} frames; mode {stream.mode}; final label {steps[-1].label} ({steps[-1].probability:.3f}), true label rotate_cw")

last = read_frames(video, None, run.image_size)[-run.config.num_frames:].astype("float32")
offline = np.asarray(run.model(last[None], training=False))[0]
print("largest difference from the model on the same last frames:", float(np.abs(offline - steps[-1].probabilities).max()))

plt.plot([step.latency_ms for step in steps], marker="o")
plt.xlabel("frame"), plt.ylabel("ms"), plt.title("latency per frame (the first T-1 only fill the buffer)")
plt.tight_layout()

# %% [markdown]
# ## §8.1.5 Robustness: more views, and noise
#
# Offline, averaging several views of each video (clips spread over its
# segments × crops) is the usual way to steady a classifier's answer
# (`vlm-tf evaluate --views 3x3`). And a model trained on clean clips meets
# noisy cameras: the test clips with Gaussian noise of growing σ (the
# denoising task's `add_noise`) show how fast its accuracy falls.

# %%
for clips, crops in ((1, 1), (3, 1), (1, 3), (3, 3)):
    print(f"{clips}x{crops} views: accuracy {evaluate_directory(run, test_dir, clips=clips, crops=crops)['accuracy']:.3f}")

# %%
from vlm_tf.data import video_dataset_from_directory
from vlm_tf.data.degrade import add_noise

test = video_dataset_from_directory(test_dir, class_names=run.class_names, num_frames=FRAMES, image_size=(SIZE, SIZE), shuffle=False)
sigmas = [0, 10, 20, 40, 80]
accuracies = []
for sigma in sigmas:
    right = total = 0
    for batch, (clips, labels) in enumerate(test):
        noisy = clips if sigma == 0 else add_noise(clips, tf.constant([SEED, batch]), sigma=sigma)
        right += int(np.sum(np.argmax(run.model(noisy, training=False), -1) == labels.numpy()))
        total += len(labels)
    accuracies.append(right / total)
plt.plot(sigmas, accuracies, marker="o")
plt.xlabel("Gaussian noise σ (0-255), plus shot noise"), plt.ylabel("test accuracy")
plt.tight_layout()
print(dict(zip(sigmas, accuracies)))

# %% [markdown]
# σ = 0 here is still the clean clips; every other point adds the shot noise
# of a sensor collecting 100 photons at full white, then Gaussian noise of σ.
# The classifier learnt from clean synthetic clips only, and the default
# model reads motion from frame differences, which noise drawn afresh for
# every frame swamps: the accuracies printed above show how fast.
# Training with corruptions as an augmentation (`vlm-tf train --augment
# robust`), or denoising first (`vlm-tf train --task denoise`, chapter 6),
# are the two ways to hold accuracy up; `notebooks/ch08_trustworthy` scores
# the first under fourteen corruptions (`vlm-tf evaluate --corruptions`).
