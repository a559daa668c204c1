# %% [markdown]
# # 第5章 项目实战 · Chapter 5: the CNN-LSTM, end to end
#
# §5 of the text sets up an environment, prints a Keras model (§5.2.1) and
# explains its layers (§5.2.2, §5.3), but never runs it. This notebook does:
# it runs the listing as printed and shows why it fails, builds the working
# version with `vlm_tf`, and takes it through the whole job on real video
# files: **setup → data → model → train → inference → export**. The matching
# `vlm-tf` commands are at the end.

# %% tags=["parameters"]
import tempfile

# The quickstart's run (`vlm-tf quickstart`): its dataset (`vlm_tf.cli.data.DATA_DEFAULTS`) and
# `vlm_tf.training.RunConfig`'s defaults.
VIDEOS_PER_CLASS = 120  # videos per class over train/val/test (split 70/15/15, at least one each)
FRAMES = 24             # frames in each video file
CLIP_FRAMES = 16        # frames per clip the model sees (sampled evenly from a video)
SIZE = 64               # frame height and width in pixels
EPOCHS = 30
BATCH_SIZE = 8
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch05_")  # the dataset and the run folder land here

# %% [markdown]
# These are the quickstart's settings, so the run below is the one `vlm-tf
# quickstart` makes (minutes on two CPU cores: the training cell prints how
# long it took). The test suite runs the notebook with a few videos, small
# frames and two epochs, where the model learns nothing; the committed
# outputs are the real run.
#
# ## 5.1 开发环境搭建 · Environment
#
# The text asks for Python 3.7+ and `pip install tensorflow==2.0`. That
# command fails today: TensorFlow 2.0 was published for Python 3.5–3.7 only,
# so on Python 3.10 or newer pip finds no wheel for it and stops with
# "No matching distribution found for tensorflow==2.0" (on Python 3.11 the
# oldest TensorFlow on PyPI that installs is 2.12). `vlm_tf` needs Python
# 3.10+, TensorFlow 2.16+ and Keras 3; `pip install -e .` in the repository
# installs them. The versions this notebook ran with:

# %%
import os

# Before TensorFlow loads: silences its C++ info and warning logs (a few
# start-up lines print regardless).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv
import sys
import time

import cv2
import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

import vlm_tf
import vlm_tf.data as vdata

# Small figures keep the committed notebook small.
plt.rcParams.update({"figure.figsize": (8, 3), "figure.dpi": 70})
print(f"Python {sys.version.split()[0]}")
print(f"TensorFlow {tf.__version__}, Keras {keras.__version__} (backend: {keras.backend.backend()})")
print(f"OpenCV {cv2.__version__}, NumPy {np.__version__}, vlm_tf {vlm_tf.__version__}")

# %% [markdown]
# ## 5.2.1 The listing as printed
#
# The listing uses `height`, `width`, `channels` and `num_classes` without
# defining them; as printed it stops at the first of them with a `NameError`.
# We define them with this notebook's sizes and run the rest verbatim,
# printing the exception it raises.

# %%
# The four names the text uses but never defines.
height, width, channels, num_classes = SIZE, SIZE, 3, len(vdata.CLASS_NAMES)

try:
    import tensorflow as tf
    from tensorflow.keras.models import Model
    from tensorflow.keras.layers import Input, Conv2D, MaxPooling2D, RNN, LSTM, Dense

    # 输入层
    input_layer = Input(shape=(None, height, width, channels))

    # 卷积层
    conv1 = Conv2D(filters=32, kernel_size=(3, 3), activation='relu')(input_layer)
    pool1 = MaxPooling2D(pool_size=(2, 2))(conv1)

    # 循环层
    lstm1 = LSTM(units=64, activation='relu')(pool1)

    # 全连接层
    output_layer = Dense(units=num_classes, activation='softmax')(lstm1)

    # 构建模型
    model = Model(inputs=input_layer, outputs=output_layer)

    # 编译模型
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

    # 打印模型结构
    model.summary()
except Exception as error:
    print(f"{type(error).__name__}: {error}")

# %% [markdown]
# Fixing that line alone does not help: give `Conv2D` what it accepts, one
# frame `(batch, height, width, channels)`, and the LSTM fails next.

# %%
frame_input = Input(shape=(height, width, channels))
pooled = MaxPooling2D(pool_size=(2, 2))(Conv2D(filters=32, kernel_size=(3, 3), activation="relu")(frame_input))
print("pool1 of one frame:", pooled.shape)
try:
    LSTM(units=64, activation="relu")(pooled)
except ValueError as error:
    print(f"{type(error).__name__}: {error}")

# %% [markdown]
# What is wrong with the listing, in the order Python meets it:
#
# 1. **Undefined names.** `height`, `width`, `channels` and `num_classes` are
#    never set: `NameError` before any layer is built.
# 2. **`Conv2D` on a video.** `Input(shape=(None, height, width, channels))`
#    makes a 5-D tensor `(batch, time, height, width, channels)`. `Conv2D`
#    convolves 4-D images `(batch, height, width, channels)`; its kernel has
#    one dimension fewer than the input, hence *"Kernel shape must have the
#    same length as input"*. The convolution must run on every frame:
#    `TimeDistributed(Conv2D(...))` (or a `Conv3D`, a different model).
# 3. **`LSTM` on a feature map.** An LSTM reads a sequence of vectors,
#    `(batch, time, features)`. After pooling, one frame is a 3-D map
#    `(height', width', 32)` (4-D with the batch), and a clip would be 5-D.
#    The text never says how a map becomes a vector; each frame's map has to be
#    flattened (or averaged) first, again per frame.
# 4. **`RNN` imported, never used.** Harmless, but `keras.layers.RNN` is the
#    generic wrapper around a recurrent *cell*, not a layer to use by itself;
#    the text's 循环层 is the `LSTM`.
#
# It also asks for `LSTM(activation='relu')`. That runs, but unlike `tanh`,
# ReLU bounds neither what the LSTM adds to its state nor what it outputs, so
# activations can grow from frame to frame. The working builder defaults to
# `tanh` and keeps the text's choice reachable (`lstm_activation="relu"`, the
# registry's `cnn_lstm_text` model).
#
# ## The working model: `vlm_tf.models.build_cnn_lstm`
#
# `build_cnn_lstm` is the listing with those gaps closed: the same layers and
# defaults (32 filters of 3×3 with ReLU, 2×2 max pooling, LSTM with 64 units,
# softmax), with `conv1`, `pool1` and a per-frame `Flatten` wrapped in
# `vlm_tf.layers.TimeDistributed`, and a `Rescaling` layer so the model takes
# raw pixels in [0, 255].

# %%
from vlm_tf.models import MODELS, build_cnn_lstm, build_model, model_names

model = build_cnn_lstm(num_classes=num_classes, image_size=(SIZE, SIZE))
model.summary()

# %%
# plot_model needs pydot and Graphviz's `dot`, which vlm_tf does not depend on.
import shutil

try:
    import pydot  # noqa: F401

    if shutil.which("dot") is None:
        raise ImportError("Graphviz's `dot` program is not on PATH")
    from IPython.display import Image, display

    display(Image(keras.utils.plot_model(model, to_file=os.path.join(WORK_DIR, "cnn_lstm.png"), show_shapes=True, dpi=60).filename))
except ImportError as error:
    print(f"plot_model skipped: {error}. model.summary() above shows the same graph as a table.")

# %% [markdown]
# **Shape flow.** `B` is the batch and `T` the number of frames, left free
# (`None`) as in the text, so one model takes clips of any length:
#
#     (B, T, H, W, 3) → rescaling → conv1: (B, T, H−2, W−2, 32) → pool1: (B, T, (H−2)/2, (W−2)/2, 32)
#     → frame_features (Flatten per frame): (B, T, F) → lstm1: (B, 64) → output_layer: (B, num_classes)
#
# Almost all of the weights sit in `lstm1`: flattening keeps every position
# of the pooled map (which is what tells left from right), so `F` is large and
# the LSTM's input kernel is `F × 256`. The numbers for this notebook's `SIZE`:

# %%
for layer in model.layers:
    print(f"  {layer.name:15s} {str(layer.output.shape):28s} {layer.count_params():>10,d} weights")

print("\nThe registry's classifiers (`vlm-tf train --model NAME`):")
for name in model_names("classify"):
    print(f"  {name:30s} {MODELS[name].description}")
print(f"\nand {len(MODELS) - len(model_names('classify'))} models of other tasks (detection, generation, restoration, pretraining) in `vlm_tf.models.MODELS`")

# %% [markdown]
# `vlm_tf.training.train` uses the registry's default, `cnn_lstm` (its
# description is printed above): the same builder, on each frame next to its
# difference from the previous one, with three conv/pool blocks. Its layers:

# %%
default_model = build_model("cnn_lstm", num_classes=8, num_frames=CLIP_FRAMES, image_size=(SIZE, SIZE))
print(f"{default_model.name}: {default_model.count_params():,} weights")
for layer in default_model.layers:
    print(f"  {layer.name:18s} {str(layer.output.shape):28s} {layer.count_params():>10,d} weights")

# %% [markdown]
# `cnn_lstm_text` is the single-block model above, with the text's ReLU
# inside the LSTM.
#
# ## Data: a synthetic motion dataset written as real videos
#
# `vlm_tf.data.write_dataset` renders eight classes that only motion tells
# apart (`move_left`/`move_right`, `move_up`/`move_down`, `grow`/`shrink`,
# `rotate_cw`/`rotate_ccw`) and encodes every clip as an `.mp4` file, split
# into `train/`, `val/` and `test/` with one folder per class. Its
# `dataset.json` carries the label maps that keep augmentation honest.

# %%
DATA_DIR = os.path.join(WORK_DIR, "data")
manifest = vdata.write_dataset(DATA_DIR, videos_per_class=VIDEOS_PER_CLASS, num_frames=FRAMES, size=SIZE, seed=SEED)
print("classes:", ", ".join(manifest["classes"]))
print("videos per class:", manifest["splits"])
example_dir = os.path.join(DATA_DIR, "train", manifest["classes"][0])
print(f"{os.path.relpath(example_dir, DATA_DIR)}/:", ", ".join(sorted(os.listdir(example_dir))[:4]), "...")

# %% [markdown]
# `vlm_tf.data.video_dataset_from_directory` turns a folder of class folders
# into a `tf.data.Dataset` of `(clips, labels)`, like Keras'
# `image_dataset_from_directory`: clips are float32
# `(batch, CLIP_FRAMES, SIZE, SIZE, 3)` in [0, 255]. With `augment=True`, as
# in training, each clip gets a random crop and colour change, and may be
# mirrored or reversed with its label changed to match. A few training clips
# as the model receives them, one row per clip:

# %%
from vlm_tf.visualize import clip_montage

train_preview = vdata.video_dataset_from_directory(
    os.path.join(DATA_DIR, "train"), num_frames=CLIP_FRAMES, image_size=(SIZE, SIZE), batch_size=BATCH_SIZE, augment=True, seed=SEED
)
clips, labels = next(iter(train_preview))
print("clips", clips.shape, clips.dtype, "| labels", labels.shape, labels.dtype)

shown = min(4, len(labels))
fig, axes = plt.subplots(shown, 1, figsize=(6, 1.1 * shown))
for ax, clip_frames, label in zip(np.atleast_1d(axes), clips.numpy(), labels.numpy()):
    ax.imshow(clip_montage(clip_frames), interpolation="nearest")
    ax.set_title(train_preview.class_names[label], fontsize=9, loc="left")
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Train
#
# `vlm_tf.training.train` builds the registry model named in the
# `RunConfig`, compiles it with the text's optimizer, loss and metric (adam,
# categorical cross-entropy, accuracy), and fills a run folder: `config.json`, `class_names.json`, the
# best epoch's `model.keras` (by validation accuracy), `history.csv`,
# TensorBoard logs, and a backup from which an interrupted run resumes.

# %%
from vlm_tf.training import RunConfig, train

RUN_DIR = os.path.join(WORK_DIR, "run")
config = RunConfig(epochs=EPOCHS, num_frames=CLIP_FRAMES, image_size=SIZE, batch_size=BATCH_SIZE, seed=SEED)
started = time.perf_counter()
result = train(DATA_DIR, RUN_DIR, config, verbose=0)
print(f"{result.epochs_run} epochs in {(time.perf_counter() - started) / 60:.1f} minutes, best validation accuracy {result.best_val_accuracy:.3f}")
print("run folder:", ", ".join(sorted(os.listdir(RUN_DIR))))

# %%
with open(os.path.join(RUN_DIR, "history.csv"), newline="") as f:
    history = list(csv.DictReader(f))
epochs = [int(row["epoch"]) + 1 for row in history]

fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
for ax, metric in zip(axes, ("loss", "accuracy")):
    ax.plot(epochs, [float(row[metric]) for row in history], "o-", label="train")
    ax.plot(epochs, [float(row["val_" + metric]) for row in history], "o-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_xticks(epochs)
    ax.set_title(metric, fontsize=10)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Inference: evaluate on the test split
#
# `vlm_tf.inference.load_run` loads a run folder back (model, config, class
# names); `evaluate_directory` reads every video of a folder the way
# evaluation does (evenly spaced frames, no augmentation) and returns the
# accuracy, per-class accuracy and confusion matrix.

# %%
from vlm_tf.inference import evaluate_directory, load_run, predict_videos

run = load_run(RUN_DIR)
report = evaluate_directory(run, os.path.join(DATA_DIR, "test"))
print(f"test accuracy {report['accuracy']:.3f} on {report['num_videos']} videos (chance: {1 / len(run.class_names):.3f})")

confusion = np.array(report["confusion_matrix"])
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.imshow(confusion, cmap="Blues")
ax.set_xticks(range(len(run.class_names)), run.class_names, rotation=90, fontsize=8)
ax.set_yticks(range(len(run.class_names)), run.class_names, fontsize=8)
ax.set_xlabel("predicted")
ax.set_ylabel("true")
for (i, j), count in np.ndenumerate(confusion):
    if count:
        ax.text(j, i, count, ha="center", va="center", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The confusion matrix shows which motions the model still mixes up. This
# is the quickstart's run, so `vlm-tf quickstart` prints a test accuracy
# like the one above (the same data, model and seed; thread timing on another
# machine can move it by a few clips).
#
# One video at a time, as `vlm-tf predict` does:

# %%
test_videos = sorted(os.path.join(root, name) for root, _, names in os.walk(os.path.join(DATA_DIR, "test")) for name in names if name.endswith(".mp4"))
for prediction in predict_videos(run, test_videos[:2], top=3):
    ranked = ", ".join(f"{entry['label']} {entry['probability']:.2f}" for entry in prediction["top"])
    print(f"{os.path.relpath(prediction['path'], DATA_DIR)}: {prediction['label']}  ({ranked})")

# %% [markdown]
# ## Export and reload without `vlm_tf`
#
# `vlm_tf.export.export_saved_model` writes a TensorFlow SavedModel whose
# `serving_default` signature takes what a decoder produces, `uint8` RGB frames
# `(batch, time, SIZE, SIZE, 3)`, and returns `probabilities`, `class_index`
# and `class_name`. Reloading it needs only TensorFlow. The check below feeds
# it frames decoded with `vlm_tf.data.read_frames` and requires the same
# probabilities as the Keras model.

# %%
from vlm_tf.data.sampling import uniform_indices
from vlm_tf.export import export_saved_model

saved_model_dir = export_saved_model(run.model, os.path.join(WORK_DIR, "saved_model"), class_names=run.class_names)
serve = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
print("input: ", serve.structured_input_signature[1])
print("output:", {name: (spec.dtype.name, tuple(spec.shape)) for name, spec in serve.structured_outputs.items()})

# The same evenly spaced frames evaluation uses, as uint8 straight from the decoder.
frames = np.stack([
    vdata.read_frames(path, uniform_indices(vdata.probe_video(path).num_frames, CLIP_FRAMES).numpy(), (SIZE, SIZE))
    for path in test_videos[:2]
])
served = serve(frames=tf.constant(frames))
keras_probabilities = np.asarray(run.model(frames.astype("float32"), training=False))
# A float32 run agrees to round-off; a mixed-bfloat16 one (what `auto` picks on
# an AVX512_BF16 CPU) to bfloat16's, which graph and eager execution round apart.
tolerance = 1e-5 if run.config.precision == "float32" else 1e-3
np.testing.assert_allclose(served["probabilities"].numpy(), keras_probabilities, atol=tolerance)
print(f"\nframes {frames.shape} {frames.dtype} → {[name.decode() for name in served['class_name'].numpy()]}")
print(f"SavedModel and Keras probabilities agree: max difference {np.max(np.abs(served['probabilities'].numpy() - keras_probabilities)):.1e}")

# %% [markdown]
# ## The same steps from the command line
#
# Every step above is one `vlm-tf` command (here with the quickstart's sizes):
#
# ```bash
# vlm-tf make-data data/motion --videos-per-class 120 --video-frames 24 --size 64
# vlm-tf train data/motion --out runs/cnn_lstm --epochs 30 --frames 16 --size 64
# vlm-tf evaluate runs/cnn_lstm data/motion/test
# vlm-tf predict runs/cnn_lstm data/motion/test/move_left/move_left_0000.mp4
# vlm-tf export runs/cnn_lstm                # → runs/cnn_lstm/saved_model
# tensorboard --logdir runs/cnn_lstm/logs     # curves, histograms, graph, input clips
#
# vlm-tf quickstart                           # make-data + train + evaluate + export into ./vlm_tf_quickstart
# ```
#
# This notebook's files (dataset, run folder, SavedModel) are in `WORK_DIR`:

# %%
print(WORK_DIR)
