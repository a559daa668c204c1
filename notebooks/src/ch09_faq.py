# %% [markdown]
# # 第9章 附录：常见问题与解答 · Chapter 9: the FAQ, answered with measurements
#
# Chapter 9 of the text answers six questions in a sentence each. This
# notebook answers the same questions with what `vlm_tf` measures: model sizes
# and costs counted from the models, a comparison of every classifier trained
# on the same data with the same budget (`vlm-tf compare`, recorded in
# [`docs/comparison.json`](../docs/comparison.json)), and pointers to the
# benchmarks. Where the package does not measure something yet, it says so.

# %% tags=["parameters"]
import tempfile

COMPARISON = "docs/comparison.json"  # the recorded `vlm-tf compare` run, relative to the repository root
LIVE_MODELS = []                    # models to compare live in this notebook (e.g. ["cnn_mean", "cnn_lstm"]); empty: only the recorded run
LIVE_EPOCHS = 3
LIVE_VIDEOS_PER_CLASS = 12
LIVE_SIZE = 32
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch09_")

# %% [markdown]
# The recorded comparison took about an hour on two CPU cores, so the
# notebook reads it rather than rerunning it. `LIVE_MODELS` runs a small
# comparison of its own (same code, smaller data and budget) for readers who
# want to see it happen.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import pathlib

import keras
import matplotlib.pyplot as plt
import numpy as np

from vlm_tf.models import build_model, model_names
from vlm_tf.models.flops import count_flops
from vlm_tf.models.video_transformer import SIZES, build_video_transformer
from vlm_tf.compare import format_table

plt.rcParams.update({"figure.figsize": (8, 3), "figure.dpi": 70})
# The repository of an editable install (pip install -e .), else the folder the notebook runs in or above it.
import vlm_tf

candidates = (pathlib.Path(vlm_tf.__file__).resolve().parents[1], pathlib.Path.cwd(), *pathlib.Path.cwd().parents)
ROOT = next(path for path in candidates if (path / COMPARISON).is_file())
recorded = json.loads((ROOT / COMPARISON).read_text())
rows = {row["model"]: row for row in recorded["rows"]}
print("recorded with:", recorded["command"])
print("machine:", recorded["machine"])


# %% [markdown]
# ## 9.1 视频大模型的基本问题 · The basic questions
#
# **Q1. What is a video large model?** The text: a deep model that processes
# large amounts of video, capturing temporal and spatial information. How
# large the models here are, counted (`vlm-tf models` prints the same): one
# forward pass on a clip of 16 frames of 64×64, in GFLOPs (training costs
# about three times as much), with the video transformer at the sizes of
# ViViT's family.

# %%
def size_row(name, model, frames=16):
    sizes[name] = (model.count_params(), count_flops(model, num_frames=frames) / 1e9)
    print(f"{name:32s} {sizes[name][0]:>13,} params {sizes[name][1]:9.3f} GFLOPs/clip")

sizes = {}
for name in model_names():
    size_row(name, build_model(name, num_classes=8))
trained_here = dict(sizes)
for size in SIZES:
    size_row(f"video_transformer size={size}", build_video_transformer(num_classes=8, size=size))
    keras.backend.clear_session()
# ViViT-B's own input: 32 frames of 224×224 in 2×16×16 tubelets.
size_row("ViViT-B input, base widths", build_video_transformer(num_classes=8, size="base", image_size=(224, 224), tubelet_size=(2, 16, 16)), frames=32)
keras.backend.clear_session()

params = [p for p, _ in trained_here.values()]
flops = [f for _, f in trained_here.values()]
largest = max(trained_here, key=lambda name: trained_here[name][0])
base, tiny = sizes["video_transformer size=base"], sizes["video_transformer size=tiny"]
print(f"\nthe registry's classifiers: {min(params) / 1e6:.2f} M to {max(params) / 1e6:.1f} M parameters (the most: {largest}), {min(flops):.2f} to {max(flops):.2f} GFLOPs per clip")
print(f"base widths: {base[0] / 1e6:.0f} M parameters, {base[1]:.0f} GFLOPs per clip, {base[1] / tiny[1]:.0f}x the tiny transformer; at ViViT-B's input {sizes['ViViT-B input, base widths'][1]:.0f} GFLOPs")

# %% [markdown]
# Every model the package trains on two CPU cores is small (the last lines
# above); the text's own listing, `cnn_lstm_text`, has the most parameters:
# its LSTM reads every pixel of the pooled map. What "large" buys is visible
# in the transformer's sizes: the same architecture at ViT-Base widths costs
# hundreds of times the tiny one per clip, and that is still the small
# input; at ViViT-B's own input, 32 frames of 224×224 in 2×16×16 tubelets,
# it costs several times more again. Scale is a matter of data and compute
# (and, errata §1.4.1, of pretraining), and nothing about the layers changes
# with it.

# %% [markdown]
# **Q2. What are the core algorithms?** The text: CNN for spatial features,
# RNN for temporal information, GAN for generating video. In this package the
# CNN and the RNN are the chapter-5 model (`build_cnn_lstm`, notebooks
# `ch03_algorithms`, `ch04_math`, `ch05_cnn_lstm`); attention and the
# transformer are the answer a 2026 reader expects beside them
# (`ch02_concepts`, below). The GAN of §3.3 is `vlm_tf.models.video_gan`,
# trained by `vlm-tf train --task generate` (`ch03_algorithms` shows the
# text's pseudo-code, `ch06_generation` generates and scores clips).
#
# ## 9.2 开发与优化问题 · Development and optimisation
#
# **Q3. How do I choose an architecture?** The text: a CNN for
# classification, an RNN for action recognition, a GAN for generation. Every
# classifier in the registry, trained on the same synthetic motion dataset
# (8 classes that only motion tells apart, 672 training clips), with the same
# budget and seed, scored on the held-out test split:

# %%
ranked = sorted(rows.values(), key=lambda row: -row["test_accuracy"])
print(recorded["dataset"])
print(format_table(ranked))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for ax, key, label in ((axes[0], "gflops_per_clip", "GFLOPs per clip (forward)"), (axes[1], "train_clips_per_s", "training clips / s")):
    for row in ranked:
        colour = "tab:grey" if row["model"] == "cnn_mean" else "tab:purple" if "transformer" in row["model"] else "tab:blue" if "attention" in row["model"] else "tab:orange"
        ax.scatter(row[key], row["test_accuracy"], color=colour)
        ax.annotate(row["model"].replace("_attention", "_att"), (row[key], row["test_accuracy"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel(label)
axes[0].axhline(1 / 8, color="k", lw=0.8, ls="--")
axes[0].set_ylabel("test accuracy (chance dashed)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The recorded run in groups (test accuracy, lowest to highest in each; the
# clips/s column was measured while other work shared the two cores, so
# `benchmarks/model_step.py`, which times models in turn in one process, is
# the one to trust for speed, [docs/benchmarks.md](../docs/benchmarks.md)):

# %%
GROUPS = {
    "order-blind (features averaged over time)": lambda name: name == "cnn_mean",
    "a recurrent layer (LSTM, GRU, the text's gated cell)": lambda name: name in ("cnn_lstm", "cnn_gru", "cnn_text_gated", "cnn_lstm_text", "cnn_lstm_bn_gap"),
    "attention pooling without a recurrent layer": lambda name: name.startswith("cnn_") and name.endswith("_attention") and not name.startswith("cnn_lstm_"),
    "attention over an LSTM's steps": lambda name: name.startswith("cnn_lstm_") and name.endswith("_attention"),
    "tiny video transformers": lambda name: "transformer" in name,
}
print(f"chance: {1 / 8:.3f}, {recorded['dataset']}")
for group, member in GROUPS.items():
    scores = sorted((row["test_accuracy"], name) for name, row in rows.items() if member(name))
    if scores:
        print(f"{group:52s} " + ", ".join(f"{name} {score:.2f}" for score, name in scores))
print(f"forward cost: {min(row['gflops_per_clip'] for row in rows.values()):.2f} to {max(row['gflops_per_clip'] for row in rows.values()):.2f} GFLOPs per clip")

# %% [markdown]
# What it says:
#
# - **The order-blind baseline stays near chance** (`cnn_mean`): the frames
#   of a clip, in any order, do not tell these classes apart, so the data
#   tests time, and a per-frame CNN, the text's answer for classification,
#   is not enough for motion.
# - **Every model with a recurrent layer learns.** Which of LSTM, GRU and the
#   text's own gated cell of §4.2.3 comes first varies; one seed and a fixed
#   budget do not rank models that close, so read it as "all three work".
# - **Attention without a recurrent layer stalls well below them**: soft,
#   hard and multi-scale pooling of per-frame features see each frame's
#   motion through its frame difference but no order between frames. After
#   an LSTM, attention over its steps learns, without beating the LSTM's
#   last state at this budget.
# - **The tiny video transformers learn, with their own recipe**: AdamW at
#   3e-4 after two warmup epochs, on frames next to their differences. With
#   the text's adam at 1e-3 they stayed at chance
#   ([docs/design.md](../docs/design.md), "The transformer's recipe"). At
#   this budget they underfit and do not reach the recurrent models; a
#   transformer's strength is scale, which two CPU cores and 672 clips do not
#   give it. Their training step costs 2× (factorised) and 3× (joint) the
#   default's in `benchmarks/model_step.py`.
#
# So, for this kind of task: something that sees frame order (a recurrent
# layer, here) is not optional, and the cheapest model that has it is the
# place to start.

# %%
if LIVE_MODELS:
    import vlm_tf.data as vdata
    from vlm_tf.training import RunConfig
    from vlm_tf.compare import compare_models

    live_data = os.path.join(WORK_DIR, "data")
    vdata.write_dataset(live_data, videos_per_class=LIVE_VIDEOS_PER_CLASS, num_frames=24, size=LIVE_SIZE, seed=SEED)
    config = RunConfig(epochs=LIVE_EPOCHS, image_size=LIVE_SIZE, seed=SEED)
    live = compare_models(live_data, os.path.join(WORK_DIR, "compare"), LIVE_MODELS, config, progress=print)
    print(format_table(live))
else:
    print("LIVE_MODELS is empty: the recorded comparison above is the measurement.")

# %% [markdown]
# **Q4. How do I optimise a video model?** The text lists pruning,
# quantization, distillation and data augmentation. What the package
# measures today:
#
# - **Where the time goes.** Achieved GFLOP/s in training, from the recorded
#   table: clips/s × 3 × forward GFLOPs per clip (forward plus backward),
#   next to what this machine's float32 matrix product reaches
#   (`vlm_tf.bench.measure_matmul_gflops`, the ceiling `vlm-tf bench` uses):
#   these models use a small part of it; the rest is the input pipeline,
#   small kernels and the recurrent loop (`vlm-tf bench` measures each next
#   to its baseline). The table was recorded on the machine it names above,
#   the ceiling is measured here, so the shares are indicative.

# %%
from vlm_tf.bench import measure_matmul_gflops

ceiling = measure_matmul_gflops("float32")
print(f"float32 matrix product (2048², here): {ceiling:.0f} GFLOP/s")
for row in sorted(rows.values(), key=lambda row: -row["train_clips_per_s"] * row["gflops_per_clip"]):
    achieved = row["train_clips_per_s"] * 3 * row["gflops_per_clip"]
    print(f"{row['model']:32s} {row['train_clips_per_s']:6.1f} clips/s x 3 x {row['gflops_per_clip']:.3f} GFLOPs = {achieved:5.1f} GFLOP/s ({achieved / ceiling:.2f} of it)")

# %% [markdown]
# - **Measured speed-ups already in the package** ([docs/benchmarks.md](../docs/benchmarks.md)):
#   folding time into the batch in `TimeDistributed` makes a training step
#   several times faster than Keras' own (the figure and the command that
#   printed it are there); `benchmarks/model_step.py` prints the step cost of
#   every registered model side by side.
# - **Data augmentation** that keeps labels true (a horizontal flip turns
#   `move_left` into `move_right`; time reversal turns `grow` into `shrink`)
#   is on by default in training (`vlm_tf.data.transforms`, `--no-augment`
#   turns it off). It does not save computation or storage, as the text's
#   list suggests: it buys generalisation with extra work per training clip
#   ([docs/errata.md](../docs/errata.md), §9 Q4).
# - **Pruning, quantization, distillation**: `vlm-tf compress RUN --method
#   prune|quantize|distill`, each scored alike (accuracy, size, latency) in
#   `notebooks/ch08_trends` and [docs/compression.md](../docs/compression.md).
#   Which models convert to TFLite's built-in ops is in
#   [docs/design.md](../docs/design.md#tflite).
#
# ## 9.3 应用场景问题 · Applications
#
# **Q5. Where are video models used?** The text lists classification,
# detection, action recognition, enhancement, generation, super-resolution
# and denoising. Here: classification and action recognition (motion
# classes) are built and measured above; detection with tracking,
# enhancement, super-resolution and denoising against their classical
# baselines in `notebooks/ch06_applications`, generation in
# `notebooks/ch06_generation`.
#
# **Q6. What are the challenges?** Of the text's list, two can be measured
# here. **Interpretability**: every attention model writes which frames it
# weighed to TensorBoard each epoch (`logs/attention`), and `ch02_concepts`
# shows the trained weights on test clips; `vlm-tf explain` draws where and
# when any classifier looked, and `--score` measures how often each method's
# heat map points at the moving object (`notebooks/ch08_trustworthy`,
# [docs/explanations.md](../docs/explanations.md)). **Transfer to other data**: models
# trained on a folder of videos nobody here made (a camera panning, tilting
# and zooming over textures, other codecs, sizes and frame rates, 24 clips
# per class) are held to bars above chance in `tests/test_end_to_end.py`;
# [docs/design.md](../docs/design.md#videos-nobody-here-made) has the
# measured table, and `notebooks/ch08_transfer` shows the pretrained backbone
# that does best there.
