# %% [markdown]
# # 第6章 应用 · Chapter 6: video generation
#
# Chapter 6 names video generation (with enhancement and super-resolution) as
# what GANs are for; §3.3 describes the GAN, §4.3 its losses and §3.4 a
# "multimodal fusion" of a CNN, an RNN and a GAN. This notebook runs all of
# it on the package's code (`vlm_tf.models.video_gan`, `vlm_tf.training.gan`):
#
# 1. a classifier trained on real clips, the judge of what the GAN makes;
# 2. the conditional video GAN, trained twice on the same budget: with the
#    standard non-saturating generator loss and with the text's §4.3.1 loss
#    D(E(x)) − D(G(z)) (E the identity, `docs/errata.md`);
# 3. their clips as frame strips, scored by the judge (accuracy per class, a
#    Fréchet distance in its feature space);
# 4. the §3.4 fusion model predicting the next frames of a clip, against
#    copying the last frame.

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 120  # synthetic videos per class (split 70/15/15)
FRAMES = 24             # frames in each video file
SIZE = 32               # frame height and width: the GAN's size
CLASSIFIER_EPOCHS = 15  # the judge
GAN_EPOCHS = 20         # each GAN, the same budget for both losses
FUSION_EPOCHS = 10
PER_CLASS = 16          # generated clips per class for scoring
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch06_")  # the data and the runs go here

# %% [markdown]
# With these values the notebook takes about half an hour on two CPU cores
# (its build stamp, `vlm_tf.seconds` in the metadata, has the committed
# run's time); the test suite runs it with a far smaller budget
# (`tests/test_notebooks.py`), where the scores mean nothing. The outputs
# below are from one run with the values above; docs/design.md,
# "Generation", records the design runs and earlier runs of this notebook,
# with their commands. The same runs from the command line are in
# docs/cli.md (`vlm-tf train --model gan`, `vlm-tf generate`,
# `vlm-tf score-generated`, `vlm-tf predict-frames`).

# %%
import glob
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.pyplot as plt
import numpy as np

from vlm_tf.data.synthetic import write_dataset
from vlm_tf.inference import evaluate_prediction, generate_clips, load_run, predict_next_frames, read_clip, score_generated, write_generated_videos
from vlm_tf.tasks.options import AdversarialOptions
from vlm_tf.training import RunConfig, train
from vlm_tf.training.config import read_history
from vlm_tf.visualize import clip_montage

plt.rcParams.update({"figure.dpi": 70})


def show_strips(rows, titles, *, frames=8):
    # One row per clip: its frames side by side, left to right in time.
    figure, axes = plt.subplots(len(rows), 1, figsize=(frames * 0.6, 0.75 * len(rows)), squeeze=False)
    for axis, clip, title in zip(axes[:, 0], rows, titles):
        axis.imshow(clip_montage(clip, max_frames=frames))
        axis.set_axis_off()
        axis.set_title(title, fontsize=8, loc="left")
    plt.tight_layout()
    plt.show()


# %% [markdown]
# ## The data and the judge
#
# The synthetic set: one object (six outlines) moving, growing, shrinking or
# turning over a textured background, eight classes. The judge is the default
# CNN-LSTM trained on the real clips at the GAN's size; its accuracy on
# generated clips says whether the GAN made the class it was asked for.

# %%
data_dir = os.path.join(WORK_DIR, "data")
write_dataset(data_dir, videos_per_class=VIDEOS_PER_CLASS, num_frames=FRAMES, size=SIZE, seed=SEED)
judge = train(data_dir, os.path.join(WORK_DIR, "judge"), RunConfig(epochs=CLASSIFIER_EPOCHS, image_size=SIZE, seed=SEED), verbose=0)
print(f"judge: validation accuracy {judge.best_val_accuracy:.3f} (chance {1 / 8:.3f})")

# %% [markdown]
# ## The GAN, with two generator losses
#
# Same data, same epochs, same seed; only the generator's loss differs.
# D's loss is §4.3.2's in both runs, and both add the auxiliary classifier's
# cross-entropy (`docs/design.md`, "Generation").

# %%
gan_runs = {}
for loss in ("standard", "text"):
    run_dir = os.path.join(WORK_DIR, f"gan_{loss}")
    train(data_dir, run_dir, RunConfig(model="gan", epochs=GAN_EPOCHS, seed=SEED, options=AdversarialOptions(gan_loss=loss)), verbose=0)
    gan_runs[loss] = run_dir

figure, axes = plt.subplots(1, 2, figsize=(10, 2.8))
for loss, run_dir in gan_runs.items():
    history = read_history(run_dir)
    epochs = [row["epoch"] for row in history]
    axes[0].plot(epochs, [row["d_loss"] for row in history], label=f"D, {loss}")
    axes[1].plot(epochs, [row["d_fake"] for row in history], label=f"D(G(z)), {loss}")
    axes[1].plot(epochs, [row["d_real"] for row in history], "--", label=f"D(x), {loss}")
axes[0].set_title("discriminator loss")
axes[1].set_title("D's mean output on real and generated clips")
for axis in axes:
    axis.set_xlabel("epoch")
    axis.legend(fontsize=7)
plt.show()

# %% [markdown]
# ### Generated clips, beside real ones
#
# For each class: a real clip from the test split, then the two GANs' clips
# for that label, from the same noise.

# %%
test_dir = os.path.join(data_dir, "test")
judge_run = load_run(judge.run_dir)
class_names = judge_run.class_names
generated = {loss: generate_clips(load_run(run_dir), np.arange(len(class_names)), seed=SEED) for loss, run_dir in gan_runs.items()}
rows, titles = [], []
for k, name in enumerate(class_names):
    real_path = sorted(glob.glob(os.path.join(test_dir, name, "*.mp4")))[0]
    rows.append(read_clip(real_path, num_frames=judge_run.config.num_frames, image_size=(SIZE, SIZE)))
    titles.append(f"{name}: real")
    for loss, clips in generated.items():
        rows.append(clips[k])
        titles.append(f"{name}: generated, {loss} loss")
show_strips(rows, titles)

# %% [markdown]
# ### Scores
#
# `write_generated_videos` writes `PER_CLASS` clips of every class as mp4
# files in one folder per class (what `vlm-tf generate` does);
# `score_generated` runs the judge on them and fits Gaussians to its
# features of the generated clips and of the real training clips. The
# reference distance is the test split's against the training split: two
# real samples, the floor a perfect generator would reach.

# %%
train_dir = os.path.join(data_dir, "train")
print(f"{'loss':10s} {'accuracy':>9s} {'Fréchet':>9s} {'real vs real':>13s}  per class")
for loss, run_dir in gan_runs.items():
    out = os.path.join(WORK_DIR, f"generated_{loss}")
    write_generated_videos(load_run(run_dir), out, per_class=PER_CLASS, seed=SEED)
    report = score_generated(judge_run, out, train_dir, reference_dir=test_dir)
    per_class = " ".join(f"{name} {report['per_class'][name]['accuracy']:.2f}" for name in class_names)
    print(f"{loss:10s} {report['accuracy']:9.3f} {report['frechet_distance']:9.2f} {report['reference_frechet_distance']:13.2f}  {per_class}")
print(f"chance: {1 / len(class_names):.3f}; features: the judge's {report['feature_layer']} layer")

# %% [markdown]
# ## §3.4: CNN + RNN + GAN, predicting the next frames
#
# The fusion model sees the first 8 frames of 16 neighbouring frames and
# predicts the next 8: `CNN` → `RNN` (a ConvLSTM) → `Fusion` → `Generator` →
# `OutputLayer`, trained on the squared error plus a small adversarial term.
# Copying the last observed frame is the baseline it has to beat.

# %%
fusion = train(data_dir, os.path.join(WORK_DIR, "fusion"), RunConfig(model="fusion", epochs=FUSION_EPOCHS, seed=SEED), verbose=0)
fusion_run = load_run(fusion.run_dir)
scores = evaluate_prediction(fusion_run, test_dir)
print(f"fusion:          PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.3f}")
print(f"copy last frame: PSNR {scores['baseline']['psnr']:.2f} dB  SSIM {scores['baseline']['ssim']:.3f}")

steps = np.arange(1, scores["predicted_frames"] + 1)
plt.figure(figsize=(5, 2.6))
plt.plot(steps, scores["psnr_by_step"], "o-", label="fusion")
plt.plot(steps, scores["baseline_psnr_by_step"], "s--", label="copy last frame")
plt.xlabel("frames ahead")
plt.ylabel("PSNR (dB)")
plt.legend()
plt.show()

video = sorted(glob.glob(os.path.join(test_dir, class_names[0], "*.mp4")))[0]
seen, guess, truth = predict_next_frames(fusion_run, video)
show_strips([seen, truth, guess], ["observed", "what came next", "predicted"])
