# %% [markdown]
# # 第1章 术语表 · Chapter 1: the glossary, in code
#
# §1.4 of the text defines the words the rest of the book relies on. This
# notebook takes them one at a time: the Chinese term, an English gloss, what
# the word means *in this project*, where `vlm_tf` implements it, and a small
# demonstration where there is something to run; the chapter notebooks
# named along the way go further.
#
# A table at the end maps every term to its code. The whole notebook runs in
# well under a minute on a CPU.

# %% tags=["parameters"]
import tempfile

# Small by default, so the test suite can run this notebook end to end.
FRAMES = 8    # frames in the demonstration clips
SIZE = 48     # frame height and width in pixels
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch01_")  # the demonstration video is written here

# %%
import os

# Before TensorFlow loads: silences its C++ info and warning logs (a few
# start-up lines print regardless).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

import vlm_tf
import vlm_tf.data as vdata
from vlm_tf.visualize import clip_montage

# Small figures keep the committed notebook small.
plt.rcParams.update({"figure.figsize": (8, 3), "figure.dpi": 70})
print(f"vlm_tf {vlm_tf.__version__} | TensorFlow {tf.__version__} | Keras {keras.__version__}")

# One synthetic clip that several entries below use: an object moving right.
clip, boxes, outline = vdata.render_clip("move_right", num_frames=FRAMES, size=SIZE, seed=SEED)
print(f"demonstration clip: move_right ({outline} outline), frames {clip.shape} {clip.dtype}")

# %% [markdown]
# ## 1.4.1 核心术语定义 · Core terms
#
# ### 视频大模型 · video large model
#
# **Text:** a deep-learning model for processing and analysing large-scale video data.
#
# **Here:** a Keras model that takes a batch of clips, shaped
# `(batch, time, height, width, channels)`, and returns one probability per
# class. The models are registered by name in `vlm_tf.models.registry.MODELS`
# (what `vlm-tf train --model NAME` chooses from) and built with
# `vlm_tf.models.build_model`. They are small on purpose, so that every
# chapter trains on a CPU; the builders' arguments scale them up.

# %%
from vlm_tf.models import MODELS, build_model

for name, spec in MODELS.items():
    print(f"{name:14s} {spec.description}")

model = build_model("cnn_lstm", num_classes=len(vdata.CLASS_NAMES), image_size=(SIZE, SIZE))
probabilities = model(clip[None].astype("float32"))
print(f"\nclip batch {(1, *clip.shape)} → probabilities {tuple(probabilities.shape)}, summing to {float(np.sum(probabilities)):.3f}")

# %% [markdown]
# ### 卷积神经网络 · convolutional neural network (CNN)
#
# **Text:** a network structure designed for recognising and processing images.
#
# **Here:** the per-frame feature extractor. `vlm_tf.models.cnn_lstm.build_cnn_lstm`
# runs `Conv2D` (32 filters, 3×3, ReLU) and `MaxPooling2D` (2×2) on every frame
# through `vlm_tf.layers.TimeDistributed`; the layers are named `conv1` and
# `pool1`, as in the text's listing (§5.2.1). The convolution responds to
# local patterns (edges, corners); pooling halves the resolution.

# %%
from vlm_tf.models import build_cnn_lstm

# The text's network: one conv/pool block, an LSTM with 64 units, softmax.
text_model = build_cnn_lstm(num_classes=len(vdata.CLASS_NAMES), image_size=(SIZE, SIZE))
probe = keras.Model(text_model.input, {name: text_model.get_layer(name).output for name in ("conv1", "pool1", "frame_features", "lstm1")})
features = probe(clip[None].astype("float32"))
for name, value in features.items():
    print(f"{name:15s} {tuple(value.shape)}")

# Six of conv1's 32 feature maps for the first frame (the weights are untrained, random).
fig, axes = plt.subplots(1, 7, figsize=(8, 1.6))
axes[0].imshow(clip[0], interpolation="nearest")
axes[0].set_title("frame 0", fontsize=9)
for k, ax in enumerate(axes[1:]):
    ax.imshow(features["conv1"][0, 0, :, :, k], cmap="gray", interpolation="nearest")
    ax.set_title(f"conv1 map {k}", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ### 循环神经网络 · recurrent neural network (RNN)
#
# **Text:** a network structure that can process sequence data.
#
# **Here:** `lstm1`, a `keras.layers.LSTM(64)` in `build_cnn_lstm`. It reads
# the per-frame feature vectors in order, carrying a state from one frame to
# the next, and its last output summarises the clip. Order is the point: the
# same frames played backwards give the LSTM a different input sequence and a
# different summary, which is how the model can tell `move_left` from
# `move_right` at all.

# %%
backward = probe(clip[None, ::-1].astype("float32"))
same_vectors = np.allclose(backward["frame_features"][0], features["frame_features"][0, ::-1], atol=1e-5)
print("CNN features per frame, clip played backwards: the same vectors in reverse order:", same_vectors)
print(f"LSTM summary (lstm1), max |forwards − backwards| = {float(np.max(np.abs(features['lstm1'] - backward['lstm1']))):.4f}")

# %% [markdown]
# ### 注意力机制 · attention mechanism
#
# **Text:** a mechanism that improves a network by dynamically adjusting how
# much it attends to each part of the input; §2 names soft, hard and
# multi-scale attention.
#
# In `vlm_tf.layers.attention`: `SoftAttention` (softmax weights over the
# frames, or over the positions of each frame), `HardAttention` (the mean of
# the top-scoring frames, trained through a straight-through Gumbel-softmax
# estimate) and `MultiScaleAttention` (soft attention over windows of 1, 2, 4
# frames, then across the scales). `vlm_tf.models.attention` builds
# classifiers on them (`--model cnn_soft_attention`, `cnn_hard_attention`,
# `cnn_multiscale_attention`, and `cnn_lstm_*_attention` over an LSTM's
# steps); the video transformer (`vlm_tf.models.video_transformer`) attends
# over space and time. `notebooks/ch02_concepts.ipynb` trains them and shows
# where they look. Here, untrained, soft attention over five frame vectors: a
# weight for each frame, summing to one.

# %%
from vlm_tf.layers import SoftAttention

frame_vectors = np.random.default_rng(SEED).normal(size=(1, 5, 16)).astype("float32")
pooled, weights = SoftAttention(name="soft")(frame_vectors)
print("pooled clip vector:", tuple(pooled.shape), " frame weights:", np.round(np.asarray(weights)[0], 3))
print("weights sum to", float(np.sum(weights)))

# %% [markdown]
# ### 图像增强 · image enhancement
#
# **Text:** techniques that improve an image's quality and detail so the model
# learns better.
#
# The sentence mixes two ideas (errata, §1.4.1). Improving quality as a task
# of its own — enhancement, super-resolution and denoising of video, the
# text's §6.4, §6.6 and §6.7 — is `vlm-tf train --task enhance|superres|denoise`
# (`vlm_tf.tasks.restore`, models in `vlm_tf.models.restoration`), scored in
# PSNR and SSIM against the classical baselines (`vlm_tf.baselines`: CLAHE,
# bicubic, non-local means) in
# `notebooks/ch06_applications.ipynb`. Changing images to help training is data
# augmentation, the next entry: the colour jitter in
# `vlm_tf.data.transforms.random_colour` changes brightness and contrast at
# random to vary the training data, not to improve it.
#
# ### 数据增强 · data augmentation
#
# **Text:** generating many diverse training examples to improve
# generalisation to unseen data.
#
# **Here:** `vlm_tf.data.transforms.augment_clip`, which the training pipeline
# runs (`vlm_tf.data.video_dataset_from_directory(..., augment=True)`). It draws
# one random crop and one colour change per clip and applies them to every
# frame, so the augmentation itself never looks like motion. A mirror image or
# a clip played backwards changes what a motion *means*, so those transforms
# run only through a label map, `vlm_tf.data.synthetic.LABEL_MAPS`: a mirrored
# `move_left` clip is relabelled `move_right`.

# %%
from vlm_tf.data import transforms

class_names = list(vdata.CLASS_NAMES)
print("horizontal_flip:", {k: vdata.LABEL_MAPS["horizontal_flip"][k] for k in ("move_left", "move_up", "rotate_cw")})
print("time_reversal:  ", {k: vdata.LABEL_MAPS["time_reversal"][k] for k in ("move_left", "move_up", "rotate_cw")})

left, _, _ = vdata.render_clip("move_left", num_frames=FRAMES, size=SIZE, seed=SEED)
label = class_names.index("move_left")
tables = {"horizontal_flip": transforms.label_map_table(vdata.LABEL_MAPS["horizontal_flip"], class_names)}

# augment_clip mirrors with probability 0.5 per seed: keep the first seed that
# did not mirror and the first that did.
examples = {}
for s in range(100):
    augmented, new_label = transforms.augment_clip(tf.constant(left, tf.float32), tf.constant(label), tf.constant([SEED, s], tf.int64), label_map_tables=tables)
    examples.setdefault(int(new_label) != label, (s, augmented.numpy(), class_names[int(new_label)]))
    if len(examples) == 2:
        break

rows = [("original: move_left", left)] + [(f"seed {s}: {'mirrored' if flipped else 'crop + colour'} → {name}", frames) for flipped, (s, frames, name) in sorted(examples.items())]
fig, axes = plt.subplots(len(rows), 1, figsize=(6, 1.2 * len(rows)))
for ax, (title, frames) in zip(axes, rows):
    ax.imshow(clip_montage(frames), interpolation="nearest")
    ax.set_title(title, fontsize=9, loc="left")
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 1.4.2 相关概念解释 · Related concepts
#
# ### 视频帧 · video frame
#
# **Text:** the basic unit of a video: consecutive still images.
#
# **Here:** a clip is an RGB `uint8` array `(T, H, W, 3)`, one still image per
# time step. `vlm_tf.data.decode` is the only module that touches OpenCV:
# `write_video` encodes frames (converting RGB to OpenCV's BGR),
# `read_frames` decodes them back to RGB, and `probe_video` counts frames by
# decoding them rather than trusting the file header.
# `vlm_tf.data.synthetic.render_clip` draws the synthetic clips the project
# trains on. Below, the demonstration clip goes to an `.mp4` file and back.

# %%
path = vdata.write_video(os.path.join(WORK_DIR, "move_right.mp4"), clip, fps=10)
info = vdata.probe_video(path)
decoded = vdata.read_frames(path)
print(f"{os.path.basename(info.path)}: {info.num_frames} frames at {info.fps:g} fps, {info.width}×{info.height}")
print(f"decoded {decoded.shape} {decoded.dtype}; mean |decoded − original| = {np.abs(decoded.astype(int) - clip).mean():.2f} grey levels (mp4v is lossy)")

fig, axes = plt.subplots(1, len(decoded), figsize=(8, 1.5))
for t, (ax, frame) in enumerate(zip(axes, decoded)):
    ax.imshow(frame, interpolation="nearest")
    ax.set_title(f"t={t}", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ### 超参数 · hyperparameter
#
# **Text:** parameters set by hand before training, such as the learning rate
# and the batch size.
#
# **Here:** two places. The run's settings are the fields of
# `vlm_tf.training.RunConfig`, one dataclass that the CLI's `train` options,
# `vlm_tf.training.train` and every run folder's `config.json` share. The
# architecture's settings are keyword arguments of the builders
# (`build_cnn_lstm(filters=..., kernel_size=..., lstm_units=...)`); the registry
# fixes a set of them per model name.

# %%
from vlm_tf.training import RunConfig

for field in dataclasses.fields(RunConfig):
    print(f"  {field.name:14s} {field.default!r}")
try:
    RunConfig(learning_rate=0).validate()
except ValueError as error:
    print(f"\nRunConfig(learning_rate=0).validate() → ValueError: {error}")
print("\narchitecture of the registry's 'cnn_lstm':", MODELS["cnn_lstm"].kwargs)

# %% [markdown]
# ### 激活函数 · activation function
#
# **Text:** a function that makes a network non-linear; ReLU, Sigmoid and Tanh
# are common.
#
# **Here:** `build_cnn_lstm` takes them as arguments: ReLU after every
# convolution (`conv_activation="relu"`), tanh inside the LSTM
# (`lstm_activation`), softmax at the output (`output_activation`), all from
# `keras.activations`. The text's listing puts ReLU inside the LSTM too; that
# choice is kept reachable (the registry's `cnn_lstm_text` model), but the
# default is tanh: it bounds what the LSTM adds to its state and outputs at
# each frame, where ReLU bounds nothing and the activations can grow from
# frame to frame.

# %%
x = np.linspace(-4, 4, 201).astype("float32")
fig, axes = plt.subplots(1, 3, figsize=(8, 2.4), sharey=True)
for ax, name in zip(axes, ("relu", "sigmoid", "tanh")):
    ax.plot(x, keras.activations.get(name)(x))
    ax.set_title(name, fontsize=10)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_ylim(-1.2, 2.2)
plt.tight_layout()
plt.show()

logits = np.array([[2.0, 1.0, 0.1]], "float32")
print("softmax", logits[0], "→", np.round(keras.activations.softmax(logits)[0], 3), "(sums to 1)")

# %% [markdown]
# ### 损失函数 · loss function
#
# **Text:** measures the gap between the model's predictions and the true
# labels; mean squared error (MSE) and cross-entropy are common.
#
# **Here:** categorical cross-entropy, `−Σₖ yₖ log pₖ` averaged over the
# batch, as the text compiles its model (`loss="categorical_crossentropy"` in
# `vlm_tf.training.fit.train`); the pipeline delivers one-hot labels for it
# (`label_mode="categorical"`). Below, Keras and a NumPy line give the same
# number, and likewise for MSE.

# %%
y_true = np.eye(3, dtype="float32")[[0, 2]]                    # one-hot labels of two examples
y_pred = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]], "float32")  # softmax outputs

cce_keras = float(keras.losses.CategoricalCrossentropy()(y_true, y_pred))
cce_numpy = float(np.mean(-np.sum(y_true * np.log(y_pred), axis=-1)))
mse_keras = float(keras.losses.MeanSquaredError()(y_true, y_pred))
mse_numpy = float(np.mean((y_true - y_pred) ** 2))
print(f"cross-entropy: keras {cce_keras:.6f}  numpy {cce_numpy:.6f}")
print(f"MSE:           keras {mse_keras:.6f}  numpy {mse_numpy:.6f}")
np.testing.assert_allclose([cce_keras, mse_keras], [cce_numpy, mse_numpy], rtol=1e-6)

# %% [markdown]
# ## 1.4.3 缩略词列表 · Acronyms
#
# - **CNN**, **RNN**: see above (`conv1`/`pool1` and `lstm1` of `build_cnn_lstm`).
# - **GAN**, generative adversarial network: a generator and a discriminator
#   trained against each other (§3, and the G and D losses of §4):
#   `vlm_tf.models.video_gan` (`build_video_generator`,
#   `build_video_discriminator`) and `vlm_tf.models.adversarial` (the
#   `keras.Model` whose `train_step` plays the two against each other), trained
#   by `vlm-tf train --task generate`; `notebooks/ch06_generation.ipynb`
#   generates clips with it and scores them.
# - **DNN**, deep neural network: a network with several layers between input
#   and output. Every model here is one; the registry's default `cnn_lstm`:

# %%
print(f"{model.name}: {len(model.layers)} layers, {model.count_params():,} weights")
print(" → ".join(layer.name for layer in model.layers))

# %% [markdown]
# - **GPU**, graphics processing unit, and **CUDA** (Compute Unified Device
#   Architecture), NVIDIA's platform through which TensorFlow runs on NVIDIA
#   GPUs. `vlm_tf` runs the same code on a CPU or a GPU. What a GPU changes is
#   the choice behind `vlm-tf train --precision mixed`
#   (`vlm_tf.training.runtime.resolve_precision`): float16 on a GPU, whose
#   tensor cores are built for it, bfloat16 on a CPU. `--jit on` compiles the
#   training step with XLA on either.

# %%
from vlm_tf.training import runtime

gpus = tf.config.list_physical_devices("GPU")
build = tf.sysconfig.get_build_info()
print("GPUs visible:", [gpu.name for gpu in gpus] or "none, running on the CPU")
print(f"this TensorFlow was built with CUDA: {build.get('is_cuda_build', False)} (CUDA {build.get('cuda_version', '-')}, cuDNN {build.get('cudnn_version', '-')})")
print("--precision mixed resolves to:", runtime.resolve_precision("mixed"))

# %% [markdown]
# - **TensorFlow**: an open-source deep-learning framework. The text targets
#   TensorFlow 2.0; `vlm_tf` runs on current TensorFlow with Keras 3 (chapter
#   5's notebook explains why `pip install tensorflow==2.0` no longer works).
#   Models are written with `keras.layers` and `keras.ops`; TensorFlow itself
#   appears where it is the point: the `tf.data` pipeline
#   (`vlm_tf.data.pipeline`), the training runtime (`vlm_tf.training`) and
#   SavedModel export (`vlm_tf.export`).
# - **PyTorch**: another open-source deep-learning framework. `vlm_tf` is the
#   Keras/TensorFlow implementation: it reads data with `tf.data` and exports
#   TensorFlow SavedModels, so it trains on the TensorFlow backend. PyTorch
#   appears in one place, as the peer `vlm-tf bench` measures the text's
#   network against (`vlm_tf.bench_peers`). The models themselves are written
#   in `keras.layers` and `keras.ops`, so Keras 3 also loads and trains them on
#   JAX (`tests/test_backends.py`). The backend here:

# %%
print("Keras backend:", keras.backend.backend())

# %% [markdown]
# ## Term → code
#
# | term | English | in `vlm_tf` |
# |---|---|---|
# | 视频大模型 | video large model | `vlm_tf.models.registry` (`MODELS`, `build_model`) |
# | 卷积神经网络 (CNN) | convolutional neural network | `vlm_tf.models.cnn_lstm.build_cnn_lstm`, layers `conv1`, `pool1` (via `vlm_tf.layers.TimeDistributed`) |
# | 循环神经网络 (RNN) | recurrent neural network | `build_cnn_lstm`, layer `lstm1` |
# | 注意力机制 | attention mechanism | `vlm_tf.layers.attention` (`SoftAttention`, `HardAttention`, `MultiScaleAttention`), `vlm_tf.models.attention` |
# | 图像增强 | image enhancement | `vlm_tf.tasks.restore`, `vlm_tf.models.restoration` (`vlm-tf train --task enhance`, `superres`, `denoise`) |
# | 数据增强 | data augmentation | `vlm_tf.data.transforms.augment_clip`, `vlm_tf.data.synthetic.LABEL_MAPS` |
# | 视频帧 | video frame | `vlm_tf.data.decode` (`read_frames`, `write_video`, `probe_video`), `vlm_tf.data.synthetic.render_clip` |
# | 超参数 | hyperparameter | `vlm_tf.training.RunConfig`; builder keyword arguments |
# | 激活函数 | activation function | `build_cnn_lstm(conv_activation=, lstm_activation=, output_activation=)` → `keras.activations` |
# | 损失函数 | loss function | `vlm_tf.training.fit.train` (`categorical_crossentropy`) |
# | GAN | generative adversarial network | `vlm_tf.models.video_gan`, `vlm_tf.models.adversarial` (`vlm-tf train --task generate`) |
# | DNN | deep neural network | every `build_*` model |
# | GPU, CUDA | graphics processing unit; NVIDIA's compute platform | `vlm_tf.training.runtime.resolve_precision` (`--precision mixed`), `jit_compile_argument` (`--jit`) |
# | TensorFlow | deep-learning framework | `vlm_tf.data.pipeline` (`tf.data`), `vlm_tf.training`, `vlm_tf.export` |
# | PyTorch | deep-learning framework | the peer of `vlm-tf bench` (`vlm_tf.bench_peers`) |
