# %% [markdown]
# # 第8章 可信的视频模型 · Chapter 8: trustworthy video models — robustness to real-world corruption, explanations, privacy, energy
#
# §8.1 ⑤ names robustness and generalisation among where video models must go, and §8.2 the
# challenges between a model and its use. A classifier that learnt from clean clips meets cameras
# with sensor noise, shaky hands, fog, links that drop frames and encoders starved of bits. This
# notebook measures that and trains against it:
#
# | what | here | module |
# |---|---|---|
# | corruptions of whole videos at five severities, the video analogue of ImageNet-C | `vlm-tf evaluate RUN DATA --corruptions` | `vlm_tf.data.corruptions`, `vlm_tf.tasks.robustness` |
# | robust training: every clip with two corrupted copies, taught to answer them alike (AugMix's consistency loss) | `vlm-tf train DATA --augment robust` | `vlm_tf.data.transforms.corrupted_views`, `vlm_tf.models.consistency` |
# | where and when a classifier looked (§8.2 ④), and how well each method finds the object | `vlm-tf explain RUN VIDEO --out FILE`, `vlm-tf explain RUN DIR --score` | `vlm_tf.tasks.explain`, `vlm_tf.tasks.explanation_scores` |
# | faces hidden in videos (§8.2 ①), and that a detector no longer finds them | `vlm-tf anonymize IN OUT [--people] [--method blur\|pixelate\|box]` | `vlm_tf.anonymize` |
# | run folders and caches encrypted at rest (§8.2 ①), refused without the key | `vlm-tf make-key KEY`, any command's `--encrypt-key-file KEY` | `vlm_tf.crypto` |
# | training with a privacy budget (§8.2 ①): accuracy against ε | `vlm-tf train DATA --dp-l2-clip C --dp-noise-multiplier σ` | `vlm_tf.models.private`, `vlm_tf.tasks.privacy` |
# | energy and CO₂ of training and evaluation (§8.2 ②), measured or estimated | every `train`, `evaluate` and `bench` | `vlm_tf.energy` |
#
# docs/robustness.md has the corruptions, the design and the full measurement
# (`python benchmarks/robustness.py`), on this data and on footage made elsewhere;
# docs/explanations.md the explanation methods measured on several models
# (`python benchmarks/explanations.py`); docs/privacy.md anonymisation, encryption and DP-SGD
# (`python benchmarks/privacy.py`).

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 120  # the quickstart's dataset
FRAMES = 16             # frames per clip the models see
SIZE = 64
EPOCHS = 30             # as `vlm-tf train` trains
SEED = 0
CORRUPTIONS = None      # None: every one; or a list of names
SEVERITIES = [1, 2, 3, 4, 5]
EXPLAIN_VIDEOS = 48     # test videos the explanations are scored on (6 a class)
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch08_trustworthy_")

# %% [markdown]
# With these values the notebook trains two models on two CPU cores, the standard one in about
# five minutes and the robust one, three passes a clip, in about fifteen;
# scores each under 70 corrupted versions of the test set in about a minute, scores the
# explanations of both in about three, and trains a private linear probe in about eight; the test
# suite runs it with six videos a class and one epoch. The build stamp in the metadata
# (`vlm_tf.seconds`) has the committed run's whole time.

# %%
import glob
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.pyplot as plt
import numpy as np

from vlm_tf.data import read_frames, write_dataset
from vlm_tf.data.corruptions import CORRUPTIONS as ALL_CORRUPTIONS
from vlm_tf.data.corruptions import corrupt
from vlm_tf.inference import evaluate_corruptions, load_run
from vlm_tf.training import RunConfig, train

plt.rcParams.update({"figure.dpi": 70})
data_dir = os.path.join(WORK_DIR, "data")
write_dataset(data_dir, videos_per_class=VIDEOS_PER_CLASS, size=SIZE, seed=SEED)
test_dir = os.path.join(data_dir, "test")
names = list(ALL_CORRUPTIONS) if CORRUPTIONS is None else CORRUPTIONS
print(len(names), "corruptions:", ", ".join(names))

# %% [markdown]
# ## The corruptions
#
# Each corruption takes every frame of a decoded video at its own size and returns what a worse
# camera, link or player would have given. Noise, blur, light, fog and pixelation change the
# pictures; `h264` and `mpeg4` re-encode the video through FFmpeg's real encoders at falling bit
# rates; `frame_drop`, `frame_duplicate`, `frame_rate` and `temporal_jitter` change time. Below,
# the middle frame of one test video under each picture corruption at severity 3 and 5.

# %%
video = sorted(glob.glob(os.path.join(test_dir, "rotate_cw", "*.mp4")))[0]
frames = read_frames(video)
pictures = [n for n in names if n not in ("frame_drop", "frame_duplicate", "frame_rate", "temporal_jitter")]
fig, axes = plt.subplots(2, len(pictures) + 1, figsize=(1.3 * (len(pictures) + 1), 3))
for row, severity in zip(axes, (3, 5)):
    row[0].imshow(frames[len(frames) // 2])
    row[0].set_title("clean" if severity == 3 else "", fontsize=8)
    row[0].set_ylabel(f"severity {severity}", fontsize=8)
    for axis, name in zip(row[1:], pictures):
        out = corrupt(frames, name, severity, rng=np.random.default_rng(SEED), fps=10)
        axis.imshow(out[len(out) // 2])
        axis.set_title(name.replace("_", " ") if severity == 3 else "", fontsize=8)
for axis in axes.ravel():
    axis.set_xticks([]), axis.set_yticks([])
plt.tight_layout()

# %%
# What the time corruptions do to the frame order (each shows the video's own frames).
numbered = np.zeros((len(frames), 2, 2, 3), np.uint8) + np.arange(len(frames), dtype=np.uint8)[:, None, None, None]
for name in [n for n in names if n not in pictures]:
    out = corrupt(numbered, name, 5, rng=np.random.default_rng(SEED), fps=10)
    print(f"{name:<16} severity 5: frames {out[:, 0, 0, 0].tolist()}")

# %% [markdown]
# ## Two models: standard and robust augmentation
#
# Both are the default model trained the same way on the same clips, one with the standard
# augmentation (random crops and colour), one with `augment="robust"`: that, then two copies of
# every clip, each with one corruption drawn at random strength from noise, blur, JPEG, light,
# haze, pixelation and stutter. The robust model learns the label from the clean clip and, from
# AugMix's Jensen-Shannon consistency loss, to give the copies the same answer
# (`vlm_tf.models.consistency`; `--consistency 0` trains on one corruption for half the clips
# instead, without copies). The corruptions are written in TensorFlow inside the input pipeline
# and are *not* the evaluation's: JPEG stands in for the video codecs, one any-angle kernel for both blurs, and fog,
# frame drops and frame-rate changes are never trained on.

# %%
runs = {}
for augment, value in (("standard", True), ("robust", "robust")):
    run_dir = os.path.join(WORK_DIR, augment)
    config = RunConfig(epochs=EPOCHS, num_frames=FRAMES, image_size=SIZE, seed=SEED, augment=value)
    result = train(data_dir, run_dir, config, verbose=0)
    runs[augment] = load_run(run_dir)
    print(f"{augment:<8}: best validation accuracy {result.best_val_accuracy:.3f}")

# %%
reports = {
    augment: evaluate_corruptions(run, test_dir, corruptions=names, severities=SEVERITIES, seed=SEED)
    for augment, run in runs.items()
}
for augment, report in reports.items():
    print(f"--- {augment}")
    print("\n".join(report.lines()))

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5), gridspec_kw={"width_ratios": [2.2, 1]})
width = 0.4
for k, (augment, report) in enumerate(reports.items()):
    means = [np.mean(list(report["corruptions"][n].values())) for n in names]
    left.bar(np.arange(len(names)) + (k - 0.5) * width, means, width, label=augment)
    by_severity = [np.mean([report["corruptions"][n][str(s)] for n in names]) for s in SEVERITIES]
    right.plot(SEVERITIES, by_severity, marker="o", label=f"{augment} (clean {report['clean_accuracy']:.2f})")
left.set_xticks(np.arange(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
left.set_ylabel("test accuracy, mean over severities"), left.set_ylim(0, 1), left.legend(fontsize=8)
right.set_xlabel("severity"), right.set_ylabel("mean over corruptions"), right.set_ylim(0, 1)
right.set_xticks(SEVERITIES), right.legend(fontsize=8)
plt.tight_layout()
standard, robust = reports["standard"], reports["robust"]
print(f"robust - standard: clean accuracy {robust['clean_accuracy'] - standard['clean_accuracy']:+.3f}, "
      f"mean corruption accuracy {robust['mean_corruption_accuracy'] - standard['mean_corruption_accuracy']:+.3f}")

# %% [markdown]
# What to read in it. The model with the standard augmentation reads motion from frame
# differences, and noise drawn afresh for every frame swamps them: under Gaussian and shot noise it
# falls towards chance within the first severities, and flattened contrast takes it there too. The
# robust model holds most of that, and loses little or nothing clean: the label is taught on clean
# clips, the corrupted copies are only taught to agree with them. Neither is helped much where the motion itself is damaged (`temporal_jitter`),
# and what it never trained on (fog, frame drops, the real video codecs) moves less than what it
# did. The last line above says by how much the robust run gained in this run; docs/robustness.md
# has the same over two seeds and on camera footage made elsewhere
# (`python benchmarks/robustness.py`).

# %% [markdown]
# ## Where and when the model looked
#
# §8.2 ④ asks for models that can say why they decided. `vlm-tf explain` gives a heat map per
# frame, larger where the clip mattered more to the class explained, by four methods
# (`vlm_tf.tasks.explain`): Grad-CAM on the last feature map (`pool3`, 6×6 cells 8 pixels apart at
# 64 pixels), occlusion (how far the class's probability falls when a square of the clip, four
# frames long, is replaced by the clip's background), integrated gradients (gradients summed on
# the way from a black clip to the clip, times the clip), and, for the transformers, attention
# rollout. "When" is temporal occlusion: the fall when one frame alone is removed, the bar under
# the frames. Below, one test clip of the standard model by each method, every fourth frame, with
# the object's box from the clip's box file.

# %%
import json

from vlm_tf.data import sampling
from vlm_tf.tasks.explain import Explainer
from vlm_tf.visualize import draw_boxes, explanation_image

model_run = runs["standard"]
explainer = Explainer(model_run.model)
video = sorted(glob.glob(os.path.join(test_dir, "move_right", "*.mp4")))[0]
frames = read_frames(video, None, model_run.image_size)
indices = sampling.uniform_indices(len(frames), FRAMES).numpy()
clip = frames[indices].astype(np.float32)
label = model_run.class_names.index("move_right")
boxes = np.array(json.load(open(video[:-4] + ".json"))["boxes"])[indices]
importance = explainer.frame_importance(clip[None], [label])[0]
fig, axes = plt.subplots(len(explainer.methods), 1, figsize=(7, 1.9 * len(explainer.methods)))
for axis, method in zip(axes, explainer.methods):
    heat = explainer.heat(clip[None], [label], method)[0]
    shown, laid, _ = explanation_image(clip, heat, importance)
    scale = shown.shape[1] / SIZE
    laid = [draw_boxes(frame, boxes[t : t + 1] * scale, colour=(255, 255, 255)) for t, frame in enumerate(laid)]
    axis.imshow(np.concatenate(laid[::4], axis=1)[::2, ::2])
    axis.set_title(method, fontsize=9), axis.set_xticks([]), axis.set_yticks([])
plt.tight_layout()
print("temporal occlusion, fall in p(move_right) when each frame is removed:", np.round(importance, 3).tolist())

# %% [markdown]
# ## Measured, not just drawn
#
# `score_explanations` (`vlm-tf explain RUN DIR --score`) explains the true class of each test clip
# and asks of every method: is the hottest pixel of each frame inside the object's box (the
# pointing game), what share of the heat lies in it, and how fast accuracy falls as the most
# salient pixels are replaced by the background (deletion; lower is better) or rises as they are
# put back (insertion). Beside them, a random map and a map of the frame's centre, and random
# pixel order for the curves.

# %%
from vlm_tf.tasks.explanation_scores import score_explanations

scores = {
    augment: score_explanations(run, test_dir, max_videos=EXPLAIN_VIDEOS, seed=SEED)
    for augment, run in runs.items()
}
for augment, report in scores.items():
    print(f"--- {augment}")
    print("\n".join(report.lines()))

# %%
fig, axis = plt.subplots(figsize=(9, 3))
labels = [*scores["standard"]["methods"], "random map", "centre map"]
width = 0.38
for k, (augment, report) in enumerate(scores.items()):
    values = [*(v["pointing_game"] for v in report["methods"].values()),
              report["baselines"]["random"]["pointing_game"], report["baselines"]["centre"]["pointing_game"]]
    axis.bar(np.arange(len(values)) + (k - 0.5) * width, values, width, label=augment)
axis.set_xticks(np.arange(len(labels)), labels, fontsize=8)
axis.set_ylabel("pointing game"), axis.set_ylim(0, 1), axis.legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# What to read in it. Integrated gradients and occlusion point at the moving object far more
# often than the random map (which hits as often as boxes cover the frame) and the centre map.
# Grad-CAM does not: the default model flattens its 6×6 maps into the LSTM, every position with
# weights of its own (direction of motion needs positions), while Grad-CAM weighs each channel by
# its gradient averaged over the map, as if the head averaged positions away; on this model it
# points about as often as the centre map does. That is why `explain`'s default is integrated gradients
# for convolutional models (attention rollout for the transformers). Deletion agrees: removing the
# pixels integrated gradients ranks first takes accuracy down much faster than removing pixels at
# random, and removing the frames temporal occlusion ranks first faster than random frames.
# docs/explanations.md has the same for the other model families (`python benchmarks/explanations.py`).

# %% [markdown]
# ## Faces hidden (§8.2 ①)
#
# `vlm-tf anonymize` hides faces (and with `--people` whole people) by MediaPipe's face and pose
# detectors, the `.tflite` files of the mediapipe 0.10.21 wheel run by TensorFlow Lite, and writes
# beside each video what it hid in every frame. Below, scikit-image's photograph of the astronaut
# Eileen Collins made into a video (a camera panning and zooming), before and after, and how often
# the same face detector finds a face in each.

# %%
import cv2
import skimage.data

from vlm_tf.anonymize import anonymize_video, load_detectors
from vlm_tf.data import write_video

photo = skimage.data.astronaut()
panned = []
for t in range(16):
    side = int(384 - 102 * t / 15)
    x = int((512 - side) * t / 15)
    panned.append(cv2.resize(photo[38 : 38 + side, x : x + side], (192, 192), interpolation=cv2.INTER_AREA))
source = os.path.join(WORK_DIR, "astronaut.mp4")
write_video(source, np.stack(panned), fps=8)
faces = load_detectors()["face"]
hidden_path = os.path.join(WORK_DIR, "astronaut_hidden.mp4")
hidden_report = anonymize_video(source, hidden_path, detectors={"face": faces})
before, after = read_frames(source), read_frames(hidden_path)
found = [sum(len(faces.detect(frame)[0]) > 0 for frame in video) for video in (before, after)]
print(f"frames with something hidden: {hidden_report['frames_hidden']} of {hidden_report['frames']}; "
      f"a face found in {found[0]} frames before, {found[1]} after")
fig, axes = plt.subplots(2, 3, figsize=(5.4, 3.8))
for row, video in zip(axes, (before, after)):
    for axis, t in zip(row, (0, 8, 15)):
        axis.imshow(video[t]), axis.set_xticks([]), axis.set_yticks([])
axes[0, 0].set_ylabel("original"), axes[1, 0].set_ylabel("anonymize")
plt.tight_layout()

# %% [markdown]
# ## Encrypted at rest (§8.2 ①)
#
# A run folder holds a model that may remember its clips and TensorBoard pictures of them; a
# decoded-video cache holds the frames themselves. With `--encrypt-key-file KEY` (`vlm-tf make-key
# KEY` writes one) every command writes the run folders and caches it makes encrypted with
# AES-256-GCM, each file whole, and reads them back; nothing is written in the clear on the way
# (`vlm_tf.crypto`; docs/privacy.md). In Python the key is the process's for a block
# (`crypto.keyed`). Below, the standard run copied into an encrypted folder, read back and
# evaluated with its key, and refused without it.

# %%
from vlm_tf import atomic, crypto
from vlm_tf.inference import evaluate_directory

key = crypto.make_key(os.path.join(WORK_DIR, "key"))
sealed_dir = os.path.join(WORK_DIR, "standard_encrypted")
source = runs["standard"].run_dir
with crypto.keyed(key):
    crypto.seal(sealed_dir)
    for name in ("config.json", "class_names.json", "history.csv", "model.keras"):
        with open(os.path.join(source, name), "rb") as f:
            atomic.write_bytes(os.path.join(sealed_dir, name), f.read())
    sealed_run = load_run(sealed_dir)
    print("with the key: test accuracy", f"{evaluate_directory(sealed_run, test_dir)['accuracy']:.3f}",
          "(the plain run:", f"{evaluate_directory(runs['standard'], test_dir)['accuracy']:.3f})")
with open(os.path.join(sealed_dir, "model.keras"), "rb") as f:
    print("model.keras starts:", f.read(40))
try:
    load_run(sealed_dir)
except PermissionError as error:
    print("without it:", error)

# %% [markdown]
# ## Differential privacy: accuracy against ε (§8.2 ①)
#
# DP-SGD (`vlm-tf train --dp-l2-clip C --dp-noise-multiplier σ`) clips every clip's gradient to
# norm C and adds Gaussian noise of σ·C to their sum; Google's `dp-accounting` turns σ, the batch's
# share of the clips and the steps into the budget ε at δ = 1e-5. Trained whole from random
# weights, the default model stays at chance at ε ≤ 10: the noise per weight swamps the signal of
# 672 clips spread over 110 000 weights. Trained as a linear probe on the shipped pretrained
# backbone (`--init cnn_lstm_motion --linear-probe`: 520 weights, the backbone frozen, learnt from
# other footage), it learns. Below, one private probe trained here, then the table of
# `python benchmarks/privacy.py` (docs/privacy.md) as a curve.

# %%
from vlm_tf.tasks.options import ClassifyOptions

private_dir = os.path.join(WORK_DIR, "private_probe")
options = ClassifyOptions(init="cnn_lstm_motion", linear_probe=True, dp_l2_clip=1.0, dp_noise_multiplier=1.0)
# At the backbone's own frame size: its LSTM reads the flattened 64-pixel maps.
config = RunConfig(epochs=EPOCHS, num_frames=FRAMES, image_size=64, seed=SEED, batch_size=32,
                   learning_rate=0.01, options=options)
train(data_dir, private_dir, config, verbose=0)
with open(os.path.join(private_dir, "privacy.json")) as f:
    privacy = json.load(f)
private_accuracy = evaluate_directory(load_run(private_dir), test_dir)["accuracy"]
print(f"private linear probe: test accuracy {private_accuracy:.3f} (chance 0.125) at "
      f"epsilon {privacy['epsilon']:.2f}, delta {privacy['delta']:g}")

# %%
# The table of `python benchmarks/privacy.py` (both commands in docs/privacy.md).
import vlm_tf

with open(os.path.join(os.path.dirname(os.path.dirname(vlm_tf.__file__)), "docs", "privacy.json")) as f:
    table = json.load(f)
fig, axis = plt.subplots(figsize=(6, 3))
for training, marker in (("whole model", "s"), ("linear probe on cnn_lstm_motion", "o")):
    rows = [r for r in table if r["training"] == training and r["epsilon"] is not None]
    rows.sort(key=lambda r: r["epsilon"])
    axis.plot([r["epsilon"] for r in rows], [r["test_accuracy"] for r in rows], marker=marker, label=f"{training}, DP-SGD")
    plain = [r for r in table if r["training"] == training and r["epsilon"] is None]
    if plain:
        axis.axhline(plain[0]["test_accuracy"], ls=":", color=axis.lines[-1].get_color(), label=f"{training}, no privacy")
axis.plot([privacy["epsilon"]], [private_accuracy], "k*", ms=12, label="this notebook's probe")
axis.axhline(0.125, color="grey", lw=0.8, label="chance")
axis.axvline(10, color="grey", lw=0.8, ls="--")
axis.set_xlabel("ε at δ = 1e-5"); axis.set_ylabel("test accuracy"); axis.set_ylim(0, 1)
axis.legend(fontsize=7, loc="center right")
plt.show()

# %% [markdown]
# ## Energy (§8.2 ②)
#
# Every training run keeps its energy in `energy.json` (each epoch's in the history and
# TensorBoard), and `evaluate` reports its own. This machine exposes no RAPL counters, so both are
# estimated from CPU time at 3 W a busy core (`vlm_tf.energy`; `VLM_TF_WATTS_PER_CORE` and
# `VLM_TF_GRID_INTENSITY` set the power and the grid's CO₂ per kWh).

# %%
from vlm_tf.energy import EnergyMeter
from vlm_tf.inference import evaluate_directory

for augment, run in runs.items():
    with open(os.path.join(run.run_dir, "energy.json")) as f:
        trained = json.load(f)
    meter = EnergyMeter().start()
    evaluation = meter.read(clips=evaluate_directory(run, test_dir)["num_videos"])
    print(f"{augment:<8} training: {trained['joules'] / 1000:6.2f} kJ, {trained['joules_per_clip']:.3f} J per "
          f"training clip, {trained['co2_grams']:.2f} g CO2 ({trained['method']})")
    print(f"{'':<8} evaluation: {evaluation.line()}")
