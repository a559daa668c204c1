# %% [markdown]
# # 第6章 实际应用场景 · Chapter 6: the applications
#
# Chapter 6 lists seven things video models are for. Each is code here:
#
# | § | application | in vlm_tf | where |
# |---|---|---|---|
# | 6.1 | video classification | `vlm-tf train` (any classifier) | this notebook, ch05 |
# | 6.3 | action recognition | the same classifiers on motion classes | this notebook, ch09 |
# | 6.7 | video denoising | `vlm-tf train --task denoise` | this notebook |
# | 6.6 | video super-resolution | `vlm-tf train --task superres` | this notebook |
# | 6.4 | video enhancement | `vlm-tf train --task enhance` | this notebook |
# | 6.5 | video generation | `vlm-tf train --model gan` | `ch06_generation` |
# | 6.2 | object detection and tracking | `vlm-tf train --task detect` | this notebook |
#
# Every model is scored against the classical method a user would otherwise
# reach for, on the same clips: OpenCV's non-local means, bicubic upscaling,
# CLAHE and histogram equalisation for restoration (`tf.image.psnr` and
# `tf.image.ssim`), background subtraction and contours for detection
# (mAP@0.5 and tracking ID switches).

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 60   # synthetic videos per class (split 70/15/15)
FRAMES = 16             # frames in each video file
SIZE = 64               # frame height and width
CLASSIFY_EPOCHS = 12
RESTORE_EPOCHS = 15     # each restoration model
DETECT_VIDEOS = 200     # detection videos (split 70/15/15)
DETECT_EPOCHS = 20
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch06_apps_")  # the data and the runs go here

# %% [markdown]
# With these values the notebook takes about 30 minutes on two CPU cores;
# the test suite runs it with a far smaller budget (`tests/test_notebooks.py`),
# where the scores mean nothing. The outputs below are from one run with the
# values above. docs/design.md, "Restoration" and "Detection", has runs on twice the data,
# the ×4 super-resolution run, and each model against its single-frame
# variant (what the neighbouring frames add).

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.pyplot as plt
import numpy as np

from vlm_tf import baselines
from vlm_tf.data.degrade import degrade
from vlm_tf.data.synthetic import write_dataset
from vlm_tf.inference import evaluate_directory, evaluate_restoration, load_run, restore_frames
from vlm_tf.training import RunConfig, train
from vlm_tf.data.splits import list_videos
from vlm_tf.data import read_frames

plt.rcParams.update({"figure.dpi": 70})
DATA = os.path.join(WORK_DIR, "data")
write_dataset(DATA, videos_per_class=VIDEOS_PER_CLASS, num_frames=FRAMES, size=SIZE, seed=SEED)
TEST_VIDEOS = list_videos(os.path.join(DATA, "test"))
print(len(list_videos(os.path.join(DATA, "train"))), "training videos,", len(TEST_VIDEOS), "test videos")

# %% [markdown]
# ## §6.1 and §6.3: classification and action recognition
#
# The synthetic classes are actions of an object (move, grow, shrink, turn):
# no single frame tells them apart, so classifying them is recognising an
# action. The default model is the text's CNN-LSTM with frame differences
# (chapter 5).

# %%
classifier = train(DATA, os.path.join(WORK_DIR, "classify"), RunConfig(epochs=CLASSIFY_EPOCHS, num_frames=FRAMES, seed=SEED), verbose=0)
report = evaluate_directory(load_run(classifier.run_dir), os.path.join(DATA, "test"))
print(f"test accuracy {report['accuracy']:.3f} on {report['num_videos']} videos (chance {1 / len(report['class_names']):.3f})")
for name, entry in report["per_class"].items():
    print(f"  {name:<12} {entry['accuracy']:.2f}")

# %% [markdown]
# ## §6.7, §6.6, §6.4: denoising, super-resolution, enhancement
#
# Training pairs are made from any folder of videos: each clean clip is
# degraded on the fly (`vlm_tf.data.degrade`), with new noise every epoch:
#
# - **denoise**: Poisson shot noise (100 photons at white) plus Gaussian
#   noise of σ 15, about σ 23 at mid-grey;
# - **superres**: Gaussian blur (σ 0.5) and 2×2 block means, half the size;
# - **enhance**: a gamma of 1.4–2.2, a gain of 0.35–0.7, contrast ×0.5–0.8
#   and a colour cast, one draw per clip.
#
# The model (`build_video_restorer`) stacks 5 neighbouring frames as
# channels and learns what to add to the degraded centre frame (upscaled
# first for super-resolution), so it starts as the identity (or as bicubic)
# and only learns the correction. Denoising needs the most training: it
# starts at the noisy input and passes non-local means after about 5 of
# these epochs on the full synthetic set, later on less data.

# %%
runs, reports = {}, {}
for model in ("denoise_window", "superres_window", "enhance_window"):
    config = RunConfig(model=model, epochs=RESTORE_EPOCHS, num_frames=FRAMES, seed=SEED)
    runs[model] = load_run(train(DATA, os.path.join(WORK_DIR, model), config, verbose=0).run_dir)
    reports[model] = evaluate_restoration(runs[model], os.path.join(DATA, "test"))

print(f"{'model':<16} {'PSNR':>7} {'SSIM':>6}   best classical baseline        {'PSNR':>7} {'SSIM':>6}")
for model, r in reports.items():
    base = r["baseline"]
    name = base["name"] + (f" ({base['setting']})" if base.get("setting") else "")
    print(f"{model:<16} {r['psnr']:7.2f} {r['ssim']:6.3f}   {name:<30} {base['psnr']:7.2f} {base['ssim']:6.3f}")
print()
for model, r in reports.items():
    print(f"{model:<16} ahead of its best baseline by {r['psnr'] - r['baseline']['psnr']:+.2f} dB PSNR, {r['ssim'] - r['baseline']['ssim']:+.3f} SSIM")

# %% [markdown]
# The margins above are this notebook's run, with half the training videos
# of docs/design.md's runs. Denoising has the strongest classical rival:
# multi-frame non-local means averages the same pixel over neighbouring
# frames, as the model can, so its margin is the smallest; on the full
# synthetic set the model is further ahead (docs/design.md, "Restoration",
# has those figures and the commands that printed them).

# %% [markdown]
# Before and after, on one test clip's middle frame: the degraded frame, the
# best classical method, the model, and the clean frame.

# %%
clean = read_frames(TEST_VIDEOS[0], np.arange(FRAMES), (SIZE, SIZE))
figure, axes = plt.subplots(3, 4, figsize=(8, 6.4))
for row, model in zip(axes, ("denoise_window", "superres_window", "enhance_window")):
    run = runs[model]
    degraded = np.asarray(degrade(clean[None].astype(np.float32), [SEED, 1], run.task, scale=run.config.options.scale, noise_sigma=run.config.options.noise_sigma))[0].astype(np.uint8)
    # The method that scored best on the test split, at its chosen setting.
    best = reports[model]["baseline"]
    name, setting = best["name"], best.get("setting", "")
    method = baselines.candidates(run.task, scale=run.config.options.scale)[name][setting]
    middle = FRAMES // 2
    shown = {
        f"{run.task}: degraded": degraded[middle],
        f"{name} {setting}": method(degraded)[middle],
        "model": restore_frames(run.model, degraded)[middle],
        "clean": clean[middle],
    }
    for axis, (title, frame) in zip(row, shown.items()):
        axis.imshow(frame, interpolation="nearest")
        axis.set_title(title, fontsize=8)
        axis.set_axis_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# The same from the command line, on any video of your own:
#
# ```
# vlm-tf train data/synth --task denoise --out runs/denoise
# vlm-tf evaluate runs/denoise data/synth/test
# vlm-tf apply runs/denoise my_video.mp4 --out denoised.mp4 --side-by-side
# vlm-tf apply runs/denoise clean_video.mp4 --out demo.mp4 --degrade --side-by-side
# vlm-tf export runs/denoise
# ```
#
# `apply` restores every frame at the video's own size (the models are fully
# convolutional); `--degrade` first degrades a clean video the way the run was
# trained and prints the score against the original, next to the classical
# baseline.
#

# %% [markdown]
# ## §6.2: object detection and tracking
#
# The text detects objects "by combining convolutional and recurrent
# networks". `build_video_detector` does exactly that: chapter 5's conv
# trunk on every frame, a bidirectional ConvLSTM that lets each place see the
# same place in the frames before and after, and CenterNet's heads on a grid
# of 4-pixel cells (a heat map per class for object centres, and the four
# sides of the box). `IoUTracker` then links the boxes of consecutive frames
# into tracks with identities.
#
# The data: `vlm-tf make-data --task detect` writes clips with one to three
# shapes (six classes) that move, bounce and pass in front of one another,
# half of them with a moving disc that is not an object, some under a
# flickering light, and a box file per video, the format any user's own
# boxes take (`vlm_tf.data.detection`). The classical baseline is
# background subtraction: the clip's median frame as the background, the
# foreground's outer contours as boxes, each named after the class whose
# shape (Hu moments) it is closest to; its method and threshold are chosen on
# the training videos.

# %%
from vlm_tf.data.detection import write_detection_dataset
from vlm_tf.inference import detect_video, evaluate_detection

DETECT_DATA = os.path.join(WORK_DIR, "detect_data")
write_detection_dataset(DETECT_DATA, videos=DETECT_VIDEOS, num_frames=FRAMES, size=SIZE, seed=SEED)
detector = load_run(train(DETECT_DATA, os.path.join(WORK_DIR, "detect"), RunConfig(model="detect_cnn_rnn", epochs=DETECT_EPOCHS, num_frames=8, seed=SEED), verbose=0).run_dir)
detection = evaluate_detection(detector, os.path.join(DETECT_DATA, "test"))
print(f"{detection['num_videos']} test videos, {detection['num_objects']} objects")
print(f"{'':<44} {'mAP@0.5':>8} {'no class':>9} {'IoU':>6} {'ID switches':>12} {'MOTA':>7}")
for name, r in (("model (CNN + ConvLSTM, IoU tracker)", detection), ("background subtraction + contours", detection["baseline"])):
    print(f"{name:<44} {r['map50']:8.3f} {r['map50_agnostic']:9.3f} {r['mean_iou']:6.3f} {r['id_switches']:12d} {r['mota']:7.3f}")
print(f"\nthe model against background subtraction: mAP@0.5 {detection['map50'] - detection['baseline']['map50']:+.3f}, MOTA {detection['mota'] - detection['baseline']['mota']:+.3f}")

# %% [markdown]
# Background subtraction boxes everything that changes: the distractor
# discs, flicker and the ghosts of slow objects, which is what holds its
# MOTA down (a false box costs as much as a missed one). The detector learns
# which moving things are objects. On the full detection set (400 videos of
# 24 frames, 30 epochs) it does better than at this notebook's size;
# docs/design.md, "Detection and tracking", has those figures and the
# commands that printed them.

# %% [markdown]
# One test video (the first with the most objects), every third frame: the
# true boxes in white, the tracked detections in a colour per track ID, with
# the class each was given.

# %%
from vlm_tf.data.detection import box_file, read_boxes
from vlm_tf.visualize import draw_boxes

# The first test video with the most objects.
video = max(list_videos(os.path.join(DETECT_DATA, "test")), key=lambda path: len(read_boxes(box_file(path))))
frames = read_frames(video)
objects = read_boxes(box_file(video))
palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
shown = range(0, len(frames), 3)
figure, axes = plt.subplots(1, len(shown), figsize=(1.6 * len(shown), 2))
for axis, t, result in zip(axes, shown, [detect_video(detector, frames)[t] for t in shown]):
    big = np.kron(frames[t], np.ones((4, 4, 1), np.uint8))
    truth = [o["boxes"][t] for o in objects if o["boxes"][t] is not None]
    big = draw_boxes(big, np.array(truth).reshape(-1, 4) * 4, colour=(255, 255, 255))
    kept = result["tracked"]
    captions = [f"{i} {detector.class_names[c]}" for i, c in zip(result["track_ids"], result["classes"][kept])]
    big = draw_boxes(big, result["boxes"][kept] * 4, captions, colour=[palette[i % len(palette)] for i in result["track_ids"]])
    axis.imshow(big)
    axis.set_title(f"frame {t}", fontsize=8)
    axis.axis("off")
plt.tight_layout()

# %% [markdown]
# The same from the command line, with your own videos and box files:
#
# ```
# vlm-tf make-data data/detect --task detect
# vlm-tf train data/detect --task detect --out runs/detect --frames 8
# vlm-tf evaluate runs/detect data/detect/test
# vlm-tf apply runs/detect my_video.mp4 --out tracked.mp4 --side-by-side
# vlm-tf export runs/detect
# ```
#
# `apply` draws each tracked box with its track ID and class; the SavedModel
# takes one video's uint8 frames of any size and returns boxes, scores and
# classes per frame.

# %% [markdown]
# ## §6.5: generation
#
# `notebooks/ch06_generation` trains the conditional video GAN and the §3.4
# fusion model, and scores what they make.
