# %% [markdown]
# # 第2章 核心概念与联系 · Chapter 2: the concepts, in code
#
# Chapter 2 names the ideas the rest of the text builds on: what a video model
# works with (§2.1), the layers of a video model (§2.2), drawn as a Mermaid
# graph (§2.4), and attention (§2.3). This notebook makes each one concrete on
# a real video file from the generated dataset:
#
# - **§2.1**: one clip's frames (spatial information) and frame differences
#   (temporal information);
# - **§2.2 / §2.4**: the text's Mermaid source parsed in code and built into a
#   Keras model, one layer per node, with the layer names following the graph;
# - **§2.3**: soft, hard and multi-scale attention over the frames, computed
#   with the NumPy reference in `vlm_tf.math`.
#
# §2.3 comes last here because it attends over the per-frame features of the
# model built from §2.4's graph; the last section trains a classifier on
# each attention layer and shows where the trained ones look.

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 3       # the fewest write_dataset accepts: one video per class in each of train/val/test
FRAMES = 16                # frames in each video file
SIZE = 64                  # frame height and width in pixels
CLIP_CLASS = "move_right"  # the class whose first training video the notebook looks at
SEED = 0
# The attention layers, trained (the last section): a dataset of its own and a short run per layer.
ATTENTION_VIDEOS_PER_CLASS = 60  # 42 / 9 / 9 videos per class in train / val / test
ATTENTION_EPOCHS = 15
ATTENTION_SIZE = 48              # frame size of that dataset
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch02_")  # the generated dataset lands here

# %% [markdown]
# Only one video is used, so the dataset is the smallest `write_dataset`
# allows; `SIZE = 64` is the frame size `vlm-tf quickstart` writes. With these
# values the notebook runs in well under a minute on two CPU cores. Any name
# in `vlm_tf.data.CLASS_NAMES` works as `CLIP_CLASS`; `FRAMES` should stay a
# multiple of 4 for the multi-scale attention at the end (it drops the frames
# that do not fill a window of 4).
#
# The last section trains three small models, one per attention layer, for
# `ATTENTION_EPOCHS` epochs on a dataset of its own (it prints how long that
# took); the test suite runs it with a few videos and one epoch, where they
# learn nothing, and the committed outputs come from the values above.

# %%
import os

# Before TensorFlow loads: silences its C++ info and warning logs (a few
# start-up lines print regardless).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import re
import shutil
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

import vlm_tf
import vlm_tf.data as vdata
from vlm_tf import math as vm
from vlm_tf.layers import FrameDifference, TimeDistributed
from vlm_tf.visualize import clip_montage

# Small figures keep the committed notebook small.
plt.rcParams.update({"figure.figsize": (8, 3), "figure.dpi": 70})
print(f"vlm_tf {vlm_tf.__version__} | TensorFlow {tf.__version__} | Keras {keras.__version__}")

# %% [markdown]
# ## 2.1 视频大模型的基本概念 · What a video model works with
#
# The text lists five concepts: 视频帧 (video frames), 时序信息 (temporal
# information), 空间信息 (spatial information), 特征提取 (feature extraction)
# and 深度学习模型 (the deep-learning model). The first three are properties
# of the data. `vlm_tf.data.write_dataset` writes the synthetic motion dataset
# as real `.mp4` files, `ROOT/{train,val,test}/<class>/<video>.mp4`, each with
# a `.json` file holding the moving object's box in every frame;
# `vlm_tf.data.read_frames` decodes a video back to RGB `uint8` frames,
# `(T, H, W, 3)`.

# %%
DATA_DIR = os.path.join(WORK_DIR, "data")
vdata.write_dataset(DATA_DIR, videos_per_class=VIDEOS_PER_CLASS, num_frames=FRAMES, size=SIZE, seed=SEED)
path = os.path.join(DATA_DIR, "train", CLIP_CLASS, f"{CLIP_CLASS}_0000.mp4")
frames = vdata.read_frames(path)
with open(os.path.splitext(path)[0] + ".json", encoding="utf-8") as f:
    boxes = np.array(json.load(f)["boxes"])
print(f"{os.path.relpath(path, DATA_DIR)}: frames {frames.shape} {frames.dtype}, object boxes {boxes.shape}")

# %% [markdown]
# **Spatial information** is what a single frame shows: the object's shape,
# colour and position, on a textured background. **Temporal information** is
# what changes from one frame to the next, and the frame difference makes it
# visible. `vlm_tf.layers.FrameDifference`, which the package's default
# model applies right after rescaling, puts each frame next to its difference
# from the previous one (the first frame's difference is zero). Below, `clip_montage` shows up to 8
# frames, so every second frame of the clip, and at the same times the
# absolute difference to the frame before (its largest channel, brightened
# three times).

# %%
# FrameDifference returns (B, T, H, W, 2C): the frame, then its difference from the previous frame.
stacked = FrameDifference()(frames[None].astype("float32"))[0].numpy()
differences = np.abs(stacked[..., 3:])
# Brightened, grey (largest change over the channels): the raw differences are too dark to see.
shown_differences = np.repeat(differences.max(axis=-1, keepdims=True) * 3, 3, axis=-1)

fig, axes = plt.subplots(2, 1, figsize=(6, 2.0))
for ax, images, title in zip(axes, (frames, shown_differences), ("frames t = 0, 2, 4, …: spatial information", "|frame t − frame t−1|, ×3: temporal information")):
    ax.imshow(clip_montage(images), interpolation="nearest")
    ax.set_title(title, fontsize=9, loc="left")
    ax.axis("off")
plt.tight_layout()
plt.show()

# A pixel counts as changed when some channel moves by more than 40 grey
# levels; smaller changes are the generator's per-frame noise and mp4
# compression, which also smears an edge a pixel or two beyond the object.
changed = differences[1:].max(axis=-1) > 40
MARGIN = 2
near_object = np.zeros_like(changed)
for t in range(1, len(frames)):
    for x_min, y_min, x_max, y_max in boxes[t - 1 : t + 1]:
        top, left = max(int(y_min) - MARGIN, 0), max(int(x_min) - MARGIN, 0)
        near_object[t - 1, top : int(np.ceil(y_max)) + MARGIN, left : int(np.ceil(x_max)) + MARGIN] = True
print(f"changed pixels per frame pair: {changed.mean():.1%} of the frame on average")
print(f"changed pixels within {MARGIN} pixels of the object's box in frame t−1 or t: {(changed & near_object).sum() / changed.sum():.1%}")
print(f"median change of all other pixels: {np.median(differences[1:][~near_object]):.0f} grey levels")

# %% [markdown]
# Practically every changed pixel lies where the object was or is: the
# background does not move, so the temporal information of this clip is the
# object's motion and nothing else. Within each pair of classes
# (`move_left` / `move_right`, `grow` / `shrink`, …) the generator draws start
# positions, sizes and angles from the same distributions
# (`vlm_tf.data.synthetic`), so one frame cannot tell the two apart: only the
# motion can. A model has to extract features from every frame (特征提取)
# and relate them over time; §2.2 and §2.4 say with which layers.
#
# ## 2.2 核心算法原理与架构 and 2.4 Mermaid 流程图 · The architecture, from the graph
#
# §2.2 lists six layers, 输入层 (input), 卷积层 (convolution), 池化层
# (pooling), 循环层 (recurrent), 全连接层 (fully connected) and 输出层
# (output), and §2.4 draws them as a Mermaid flowchart. Here is its source,
# verbatim, parsed in code: node definitions `A[输入层]` and edges `A --> B`.

# %%
MERMAID = '''
graph TD
A[输入层]
B[卷积层]
C[池化层]
D[循环层]
E[全连接层]
F[输出层]

A --> B
B --> C
C --> D
D --> E
E --> F
'''

nodes = dict(re.findall(r"^(\w+)\[(.+)\]$", MERMAID, flags=re.MULTILINE))
edges = re.findall(r"^(\w+) --> (\w+)$", MERMAID, flags=re.MULTILINE)
print("nodes:", nodes)
print("edges:", edges)

# The graph is a chain: one node that no edge enters, at most one edge out of
# each node. Walking the edges from that node visits every node once, in order.
successor = dict(edges)
assert len(successor) == len(edges), "a node with two outgoing edges is not a chain"
(start,) = set(nodes) - set(successor.values())
order = [start]
while order[-1] in successor:
    order.append(successor[order[-1]])
assert sorted(order) == sorted(nodes)
print("walk: ", " → ".join(f"{node}[{nodes[node]}]" for node in order))

# %% [markdown]
# Each node becomes one Keras layer, named after it. The sizes are those of
# the text's own listing (§5.2.1): 32 filters of 3×3 with ReLU, 2×2 max
# pooling, an LSTM with 64 units (with its standard tanh, where the listing
# asks for ReLU: [errata §5.2.1](../docs/errata.md#521--lstmactivationrelu-does-not-learn-the-task)). The convolution and the pooling run on every
# frame through `vlm_tf.layers.TimeDistributed`, because a 2-D layer takes one
# image and the input is a sequence of them. The text gives the fully
# connected layer no size; 64 units with ReLU is this notebook's choice.
#
# The graph leaves one layer out. It goes from 池化层 straight to 循环层, but
# the pooled maps are `(B, T, H', W', 32)` and an LSTM reads a sequence of
# vectors, `(B, T, F)`: each frame's map has to become one vector first
# ([errata §5.2.1](../docs/errata.md#521--the-keras-listing-does-not-run), where the listing fails at exactly this point).
# The walk inserts a per-frame `Flatten`, named `frame_features` as in
# `vlm_tf.models.build_cnn_lstm`, where the tensor reaching the LSTM still has
# a spatial shape.

# %%
# Seeds the untrained weights, so every run prints the same numbers below.
keras.utils.set_random_seed(SEED)
num_classes = len(vdata.CLASS_NAMES)
# Graph label → (English gloss, layer name, layer factory).
NODE_LAYERS = {
    "输入层": ("input layer", "input_layer", lambda name: keras.layers.InputLayer(shape=(None, SIZE, SIZE, 3), name=name)),
    "卷积层": ("convolution layer", "conv_layer", lambda name: TimeDistributed(keras.layers.Conv2D(32, 3, activation="relu"), name=name)),
    "池化层": ("pooling layer", "pooling_layer", lambda name: TimeDistributed(keras.layers.MaxPooling2D(2), name=name)),
    "循环层": ("recurrent layer", "recurrent_layer", lambda name: keras.layers.LSTM(64, activation="tanh", name=name)),
    "全连接层": ("fully connected layer", "dense_layer", lambda name: keras.layers.Dense(64, activation="relu", name=name)),
    "输出层": ("output layer", "output_layer", lambda name: keras.layers.Dense(num_classes, activation="softmax", name=name)),
}

for node in order:
    _, name, make_layer = NODE_LAYERS[nodes[node]]
    layer = make_layer(name)
    if isinstance(layer, keras.layers.InputLayer):
        inputs = x = layer.output
        continue
    if isinstance(layer, keras.layers.LSTM) and len(x.shape) == 5:
        x = TimeDistributed(keras.layers.Flatten(), name="frame_features")(x)
    x = layer(x)
graph_model = keras.Model(inputs, x, name="mermaid_graph")

graph_names = [NODE_LAYERS[nodes[node]][1] for node in order]
model_names = [layer.name for layer in graph_model.layers]
assert [name for name in model_names if name != "frame_features"] == graph_names, model_names
print("graph order:", " → ".join(graph_names))
print("model:      ", " → ".join(model_names))
graph_model.summary()


# %% [markdown]
# The same model as a diagram. `keras.utils.plot_model` needs `pydot` and
# Graphviz's `dot`, which `vlm_tf` does not depend on; where they are missing,
# matplotlib draws the chain instead: one box per layer with its node, layer
# name and output shape (`B` the batch, `T` the frames), the layer the graph
# leaves out dashed. The boxes use the English glosses because matplotlib's
# default font has no Chinese glyphs.

# %%
def draw_chain(model, box_labels):
    # Top to bottom, as Mermaid's `graph TD` lays the graph out.
    layers = model.layers
    fig, ax = plt.subplots(figsize=(5, 0.62 * len(layers)))
    for i, layer in enumerate(layers):
        y = len(layers) - 1 - i
        in_graph = layer.name in box_labels
        shape = str(tuple(layer.output.shape)).replace("None", "B", 1).replace("None", "T", 1)
        ax.text(0.5, y, f"{box_labels.get(layer.name, 'not in the graph')}\n{layer.name}  {shape}", ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white" if in_graph else "whitesmoke", "linestyle": "-" if in_graph else "--"})
        if i:
            ax.annotate("", xy=(0.5, y + 0.3), xytext=(0.5, y + 0.7), arrowprops={"arrowstyle": "->"})
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, len(layers) - 0.5)
    ax.axis("off")
    plt.show()


box_labels = {NODE_LAYERS[label][1]: f"{node}: {NODE_LAYERS[label][0]}" for node, label in nodes.items()}
try:
    import pydot  # noqa: F401

    if shutil.which("dot") is None:
        raise ImportError("Graphviz's `dot` program is not on PATH")
    from IPython.display import Image, display

    display(Image(keras.utils.plot_model(graph_model, to_file=os.path.join(WORK_DIR, "mermaid_graph.png"), show_shapes=True, dpi=60).filename))
except ImportError as error:
    print(f"plot_model unavailable ({error}); drawn with matplotlib instead")
    draw_chain(graph_model, box_labels)

# %% [markdown]
# The model runs on the real clip. The text's 输入层 also "converts the frames
# into a format suitable for the model"; with one layer per node that
# conversion, `uint8` pixels to float32 in [0, 1], happens before the model
# here (`build_cnn_lstm` does it inside, with a `Rescaling` layer). The shapes
# after each layer, with `T` now 16:

# %%
batch = frames[None].astype("float32") / 255.0
probe = keras.Model(graph_model.input, {layer.name: layer.output for layer in graph_model.layers[1:]})
activations = probe(batch)
print(f"{'input_layer':16s} {batch.shape}")
for name, value in activations.items():
    print(f"{name:16s} {tuple(value.shape)}")
probabilities = activations["output_layer"].numpy()
print(f"\noutput {probabilities.shape}: one probability per class, summing to {probabilities.sum():.3f} (untrained, so no prediction yet)")

# %% [markdown]
# Two things worth knowing when reading §5: the text's listing (§5.2.1) merges the graph's 全连接层 and 输出层 into one
# layer, `Dense(num_classes, activation='softmax')` straight after the LSTM,
# and so does `build_cnn_lstm` (`lstm1 → output_layer`); here the graph's two
# nodes are two layers. And almost all of this model's weights sit in the
# recurrent layer, whose input kernel is `frame_features`' width × 4·64
# (the summary above has the counts).
#
# ## 2.3 重视注意力机制 · Attention
#
# The text names three kinds:
#
# 1. **软注意力 (soft attention)**, "weights the input through a learnable
#    weight matrix";
# 2. **硬注意力 (hard attention)**, "directly takes the highest score in the
#    input as the focus";
# 3. **多尺度注意力 (multi-scale attention)**, attends at several scales to
#    capture local and global information.

# %% [markdown]
# The first two descriptions are off ([errata §2.3](../docs/errata.md#23--soft-attention-is-not-a-learnable-weight-matrix)). A fixed learned
# weighting of the input is a linear layer: it gives frame 3 the same weight
# in every clip. Soft attention *computes* its weights from the input: a
# learned scoring function gives every frame a score, and a softmax turns the
# scores into weights. Hard attention attends to the *input at* the
# highest-scoring position, not to the score. The NumPy reference in
# `vlm_tf.math`:
#
# - `soft_attention(x, w)`: $s_t = x_t \cdot w$, $a = \mathrm{softmax}(s)$,
#   $y = \sum_t a_t x_t$, returns `(y, a)`;
# - `hard_attention(x, w)`: returns `(x_k, k)` with $k = \arg\max_t s_t$.
#
# The trainable Keras layers, `SoftAttention`, `HardAttention` and
# `MultiScaleAttention` in `vlm_tf.layers`, come after the reference.
#
# The inputs $x_t$ are the per-frame feature vectors of the clip, the
# `frame_features` output of the model above (the vectors its LSTM reads), and
# $w$ is a random scoring vector, as an untrained layer's would be.

# %%
x = activations["frame_features"][0].numpy().astype("float64")
rng = np.random.default_rng(SEED)
w = rng.normal(size=x.shape[-1])

y_soft, a = vm.soft_attention(x, w)
y_hard, k = vm.hard_attention(x, w)
print(f"x {x.shape}: {len(x)} frames, {x.shape[1]} features each")
print(f"soft: weights a {a.shape} summing to {a.sum():.3f}, largest {a.max():.3f} on frame {a.argmax()}; attended y {y_soft.shape}")
print(f"hard: frame k = {k}, the highest score, so the frame soft attention weights most: {k == a.argmax()}; y = x_k: {np.array_equal(y_hard, x[k])}")

# The weights belong to what a frame shows, not where it sits: play the clip
# backwards and every frame keeps its weight. A fixed weighting would not.
_, a_backwards = vm.soft_attention(x[::-1], w)
print(f"clip played backwards: its weights are the same weights, reversed: {np.allclose(a_backwards, a[::-1])}")

# %% [markdown]
# **Multi-scale attention**, computed here: soft attention at two time scales,
# each with its own scoring vector. The fine scale attends over the single
# frames (the weights above); the coarse scale averages windows of 4 frames
# into one vector each and attends over the windows. Concatenating the two
# attended vectors fuses the scales: one vector with the frame-level detail
# and the window-level context.

# %%
WINDOW = 4  # frames per window at the coarse scale
windows = x[: len(x) // WINDOW * WINDOW].reshape(-1, WINDOW, x.shape[-1]).mean(axis=1)
w_windows = rng.normal(size=x.shape[-1])
y_windows, a_windows = vm.soft_attention(windows, w_windows)
y_multiscale = np.concatenate([y_soft, y_windows])
print(f"fine scale:   {len(x)} frames  → y {y_soft.shape}")
print(f"coarse scale: {len(windows)} windows → y {y_windows.shape}, weights {np.round(a_windows, 3)}")
print(f"fused (concatenated): {y_multiscale.shape}")

fig, axes = plt.subplots(1, 3, figsize=(8, 2.4), gridspec_kw={"width_ratios": [3, 1.6, 1]})
axes[0].bar(range(len(a)), a, color=["tab:red" if t == k else "tab:blue" for t in range(len(a))])
axes[0].set(xlabel="frame t", title="soft weights a (red: hard pick)", xticks=range(0, len(a), 2))
axes[1].bar([f"{WINDOW * i}–{WINDOW * i + WINDOW - 1}" for i in range(len(windows))], a_windows, color="tab:green")
axes[1].set(xlabel="frames", title="window weights")
axes[1].tick_params(axis="x", labelsize=7)
axes[2].imshow(frames[k], interpolation="nearest")
axes[2].set_title(f"hard pick: frame {k}", fontsize=10)
axes[2].axis("off")
for ax in axes[:2]:
    ax.title.set_fontsize(10)
plt.tight_layout()
plt.show()

# %% [markdown]
# With a random $w$ which frame wins means nothing, and the scale of $w$ sets
# how sharp the weights are; training learns both, so that the frames that
# tell the classes apart score highest.
#
#

# %% [markdown]
# ## The three kinds as Keras layers
#
# `vlm_tf.layers` has one layer per kind. Each takes a sequence of feature
# vectors `(B, T, D)`, returns the pooled vector `(B, D)` **and the weights it
# used**, accepts a Keras mask for padded frames, and round-trips through
# `get_config`:
#
# - `SoftAttention(units=None)`: the formula above; `units=None` is the linear
#   scorer $s_t = w \cdot x_t + b$ of `vm.soft_attention`, `units=64` an
#   additive scorer $v \cdot \tanh(W x_t + b)$. `over="space"` attends over
#   the positions of each frame instead.
# - `HardAttention(k=1)`: the mean of the `k` highest-scoring frames. A top-k
#   has no gradient; training adds Gumbel noise to the scores (so other
#   frames get tried), uses the hard choice in the forward pass, and the
#   gradient of a softmax of the noisy scores in the backward pass
#   (straight-through). At inference the choice is exact.
# - `MultiScaleAttention(scales=(1, 2, 4))`: soft attention over windows of 1,
#   2 and 4 frames, each with its own scorer, then attention over the scales.
#   Its weights are per scale and per frame; their sum over the scales is the
#   weight each frame has in the output.
#
# With the scorer set to the $w$ used above, the layer gives the reference's
# numbers:

# %%
from vlm_tf.layers import HardAttention, MultiScaleAttention, SoftAttention

soft_layer = SoftAttention()
soft_layer.build((None, *x.shape))
soft_layer.scorer.score.kernel.assign(w[:, None].astype("float32"))
pooled, weights = soft_layer(x[None].astype("float32"))
hard_layer = HardAttention(k=1)
hard_layer.build((None, *x.shape))
hard_layer.scorer.score.kernel.assign(w[:, None].astype("float32"))
hard_pooled, hard_weights = hard_layer(x[None].astype("float32"), training=False)
print("SoftAttention weights vs vm.soft_attention: max difference", float(np.abs(weights[0].numpy() - a).max()))
print("HardAttention picks frame", int(np.argmax(hard_weights[0])), "| vm.hard_attention picks frame", int(k))

# %% [markdown]
# ## The layers, trained on real clips
#
# Three registered models put one layer each after the package's frame
# encoder (the default model's CNN on each frame with its frame difference)
# and an LSTM: `cnn_lstm_soft_attention`, `cnn_lstm_hard_attention` (`k=4`)
# and `cnn_lstm_multiscale_attention`. The attention pools the LSTM's steps
# instead of keeping its last state, so a weight belongs to one step, which
# has read the clip up to that frame. Each is trained with
# `vlm_tf.training.train`, as `vlm-tf train --model NAME` does, and scored on
# the held-out test split.
#
# Why not attention straight on the frames (`cnn_soft_attention` and the
# others, also registered)? A weighted sum of frames has no order in it: at
# this size those models stay far below the recurrent ones (`ch09_faq`'s
# comparison), and a map of where an untrained-looking model looks would say
# little.

# %%
from vlm_tf.inference import evaluate_directory, load_run
from vlm_tf.training import RunConfig, train
from vlm_tf.models.attention import attention_layer, frame_weight_rows

ATTENTION_DATA = os.path.join(WORK_DIR, "attention_data")
vdata.write_dataset(ATTENTION_DATA, videos_per_class=ATTENTION_VIDEOS_PER_CLASS, num_frames=24, size=ATTENTION_SIZE, seed=SEED)
ATTENTION_MODELS = ["cnn_lstm_soft_attention", "cnn_lstm_hard_attention", "cnn_lstm_multiscale_attention"]
runs = {}
started = time.perf_counter()
for name in ATTENTION_MODELS:
    run_dir = os.path.join(WORK_DIR, "runs", name)
    train(ATTENTION_DATA, run_dir, RunConfig(model=name, epochs=ATTENTION_EPOCHS, num_frames=FRAMES, image_size=ATTENTION_SIZE, seed=SEED), verbose=0)
    runs[name] = load_run(run_dir)
    report = evaluate_directory(runs[name], os.path.join(ATTENTION_DATA, "test"))
    print(f"{name:30s} test accuracy {report['accuracy']:.3f} on {report['num_videos']} clips (chance {1 / len(vdata.CLASS_NAMES):.3f})")
print(f"three trainings of {ATTENTION_EPOCHS} epochs: {(time.perf_counter() - started) / 60:.1f} minutes")

# %% [markdown]
# Where each trained model looks, on one test clip of two classes: the
# frames on top, then one row of weights per model (for multi-scale
# attention, the bars are stacked by scale). The same pictures are written to
# TensorBoard during training, for four validation clips every epoch
# (`logs/attention`, `vlm_tf.training.callbacks.AttentionMaps`).

# %%
from vlm_tf.data.sampling import uniform_indices

def test_clip(label):
    path = sorted(os.path.join(ATTENTION_DATA, "test", label, f) for f in os.listdir(os.path.join(ATTENTION_DATA, "test", label)) if f.endswith(".mp4"))[0]
    return vdata.read_frames(path, uniform_indices(24, FRAMES).numpy(), (ATTENTION_SIZE, ATTENTION_SIZE))

for label in ("move_right", "rotate_cw"):
    clip = test_clip(label)
    fig, axes = plt.subplots(1 + len(runs), 1, figsize=(8, 1.1 + 1.1 * len(runs)), gridspec_kw={"height_ratios": [1.3] + [1] * len(runs)})
    axes[0].imshow(np.concatenate(list(clip), axis=1), interpolation="nearest")
    axes[0].set_title(f"test clip: {label}", fontsize=10)
    axes[0].axis("off")
    for ax, (name, run) in zip(axes[1:], runs.items()):
        probe = keras.Model(run.model.input, attention_layer(run.model).output[1])
        rows = frame_weight_rows(run.model, probe(clip[None].astype("float32")), FRAMES)[0]
        predicted = run.class_names[int(np.argmax(run.model(clip[None].astype("float32"))))]
        if len(rows) > 1:  # multi-scale: one row per scale, then their sum
            bottom = np.zeros(FRAMES)
            for scale, row in zip(attention_layer(run.model).scales, rows[:-1]):
                ax.bar(range(FRAMES), row, bottom=bottom, label=f"window {scale}")
                bottom += row
            ax.legend(fontsize=6, loc="upper right", ncol=3)
        else:
            ax.bar(range(FRAMES), rows[0], color="tab:red" if "hard" in name else "tab:blue")
        ax.set_xlim(-0.5, FRAMES - 0.5)
        ax.set_xticks(range(0, FRAMES, 2))
        ax.tick_params(labelsize=7)
        ax.set_ylabel(name.replace("cnn_lstm_", "").replace("_attention", ""), fontsize=8)
        ax.set_title(f"predicts {predicted}", fontsize=8, loc="right")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# How to read these: a bar is the share of the output that step carries.
# Soft attention spreads its weight and can lean on a few steps; hard
# attention keeps exactly `k=4` steps at 1/4 each; multi-scale attention's
# stacked bars show how much each window length contributes, and their height
# is the step's total weight. A late step has read more of the clip than an
# early one, so weight that gathers towards the end says the model waits to
# see the motion before it decides; the weights say which steps the trained
# scorer preferred, not which frames were needed (`vlm-tf explain` asks that
# of any classifier, `ch08_trustworthy`). `ch09_faq` compares these models
# with the LSTM alone and the order-blind baseline.

# %% [markdown]
# ## 2.5 总结 · Summary
#
# | the text | here | in `vlm_tf` |
# |---|---|---|
# | 视频帧 (video frames) | `read_frames` → `uint8 (T, H, W, 3)` | `vlm_tf.data.read_frames`, `write_dataset` |
# | 空间信息 / 时序信息 (spatial / temporal information) | a frame / a frame difference | `vlm_tf.layers.FrameDifference` |
# | 特征提取 (feature extraction) | `conv_layer` → `pooling_layer` → `frame_features` | `build_cnn_lstm` (`conv1`, `pool1`, `frame_features`) |
# | 输入层 → … → 输出层 (§2.2, §2.4) | the Mermaid source, parsed and built layer by layer | `build_cnn_lstm` (merges 全连接层 and 输出层) |
# | 软 / 硬 / 多尺度注意力 (soft / hard / multi-scale attention) | `vm.soft_attention`, `vm.hard_attention`, two scales concatenated | `vlm_tf.math`; the layers `SoftAttention`, `HardAttention`, `MultiScaleAttention` in `vlm_tf.layers`, trained in `cnn_lstm_*_attention` |
