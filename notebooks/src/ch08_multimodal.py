# %% [markdown]
# # 第8章 多模态 · Chapter 8: models that see, read and hear
#
# §8.1 ③ says video models will fuse images, speech and text. The text's own "multimodal fusion" (§3.4) joins two views of the same frames (docs/errata.md); this notebook is the real thing, trained here from data vlm_tf makes:
#
# | what | here | module |
# |---|---|---|
# | clips with a sound track made from the scene and captions naming what is in them; colour-motion pairs held out of training | `vlm-tf make-data OUT --task multimodal` | `vlm_tf.data.multimodal`, `vlm_tf.data.audio` |
# | clips and captions in one space (CLIP's recipe), retrieval by text, zero-shot by prompts | `vlm-tf train DATA --task video_text --with-sound`, `vlm-tf retrieve`, `vlm-tf predict --prompts` | `vlm_tf.models.video_text`, `vlm_tf.tasks.video_text` |
# | picture and sound fused early, late and by cross-attention, against each alone | `vlm-tf train DATA --task audio_visual --label-attribute sound --fusion F` | `vlm_tf.models.audio_visual`, `vlm_tf.tasks.audio_visual` |
# | clips generated from a prompt (the text's GAN, and a diffusion model) or a first frame, and scored by a judge trained on real clips | `vlm-tf train DATA --task text_to_video --text-run VT_RUN [--model text_diffusion]`, `vlm-tf generate RUN --prompt TEXT [--first-frame IMAGE]`, `vlm-tf score-generated` | `vlm_tf.models.video_gan`, `vlm_tf.models.video_diffusion`, `vlm_tf.tasks.text_to_video`, `vlm_tf.tasks.attributes` |
#
# docs/design.md ("Multimodal", "Clips from words") has the full-size runs and their commands.

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 100   # clips of each motion (70% train, 15% val, 15% test)
HELDOUT_PER_PAIR = 10    # clips of each held-out colour-motion pair
TEXT_EPOCHS = 15
AV_EPOCHS = 15
JUDGE_EPOCHS = 60
GAN_EPOCHS = 8
DIFFUSION_EPOCHS = 3
PRESET = "cnn_lstm_motion"
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch08_multimodal_")

# %% [markdown]
# With these values the notebook takes about fifteen minutes on two CPU cores; the test suite runs it with six clips a motion and one epoch. The build stamp in the metadata (`vlm_tf.seconds`) has the committed run's whole time.

# %%
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.pyplot as plt
import numpy as np

from vlm_tf.data.audio import read_audio
from vlm_tf.data.decode import read_frames
from vlm_tf.data.multimodal import HELD_OUT_PAIRS, write_multimodal_dataset
from vlm_tf.inference import load_run
from vlm_tf.tasks.attributes import score_prompted
from vlm_tf.tasks.options import AudioVisualOptions, TextToVideoOptions, VideoTextOptions
from vlm_tf.tasks.text_to_video import first_frames_of, folder_prompts, write_prompted_videos
from vlm_tf.tasks.video_text import classify_by_prompts, retrieve
from vlm_tf.training import RunConfig, train

data_dir = os.path.join(WORK_DIR, "data")
manifest = write_multimodal_dataset(data_dir, videos_per_class=VIDEOS_PER_CLASS, heldout_per_pair=HELDOUT_PER_PAIR, seed=SEED)
print("splits (clips per motion; heldout: per pair):", manifest["splits"])
print("held out of training:", ", ".join(f"{colour} + {motion}" for colour, motion in HELD_OUT_PAIRS))

# %% [markdown]
# ## What a clip holds
#
# One object of a named colour, outline and size moves in one of the eight ways of the motion dataset, slowly or quickly, over one of four backgrounds. The sound track is made from the scene: its pitch follows the object's height, its loudness the object's size, and its timbre (a whistle, a buzz or a chime) is an attribute of its own that the picture does not show. Beside each video, a JSON file names all seven attributes and gives three captions. Below, three training clips with their first caption and the log-mel spectrogram of their sound: a clip moving up rises in pitch, one growing gets louder.

# %%
def first_clip(motion, split="train"):
    folder = os.path.join(data_dir, split, motion)
    path = os.path.join(folder, sorted(f for f in os.listdir(folder) if f.endswith(".mp4"))[0])
    with open(os.path.splitext(path)[0] + ".json") as f:
        return path, json.load(f)


def log_mel(samples, rate):
    import keras

    layer = keras.layers.MelSpectrogram(fft_length=512, sequence_stride=160, sampling_rate=rate, num_mel_bins=64)
    return np.asarray(layer(samples[None]))[0]


fig, axes = plt.subplots(3, 5, figsize=(11, 5.4), gridspec_kw={"width_ratios": [1, 1, 1, 1, 2.4]})
for row, motion in zip(axes, ("move_up", "grow", "rotate_cw")):
    path, meta = first_clip(motion)
    frames = read_frames(path)
    for axis, index in zip(row[:4], np.linspace(0, len(frames) - 1, 4).round().astype(int)):
        axis.imshow(frames[index])
        axis.axis("off")
    sound = read_audio(path)
    row[4].imshow(log_mel(sound.samples, sound.sample_rate), origin="lower", aspect="auto", cmap="magma")
    row[4].set_title(meta["attributes"]["sound"], fontsize=8)
    row[4].set_xticks([])
    row[4].set_yticks([])
    row[0].set_title(meta["captions"][0], fontsize=8, loc="left")
plt.tight_layout()

# %% [markdown]
# ## Video and text in one space
#
# A video backbone (the shipped motion preset's), a log-mel sound encoder beside it (`with_sound`: the captions name the sound, which the picture does not show) and a small transformer over the caption's words, each mapped to 64 numbers and normalised; CLIP's symmetric InfoNCE pulls each clip towards its own captions and away from the batch's others. `evaluate` asks, for each test clip's first caption, which clip it finds first among all of them (text to video recall), the other way round, how many of the seven attributes the clip found shares with the caption, and how often prompts alone ("something moving left", …) name the motion; once for colour-motion pairs seen in training and once for the pairs held out.

# %%
text_run_dir = os.path.join(WORK_DIR, "video_text")
config = RunConfig(
    model="video_text", epochs=TEXT_EPOCHS, batch_size=32, seed=SEED, precision="float32", jit="off",
    options=VideoTextOptions(init=PRESET, with_sound=True),
)
train(data_dir, text_run_dir, config, verbose=0)
text_run = load_run(text_run_dir)
report = text_run.task_object().evaluate(text_run, data_dir)
for line in report.lines():
    print(line)
clips = report["num_videos"]
print(f"chance at R@1: {1 / clips:.3f} seen, {1 / report['heldout']['num_videos']:.3f} held out")

# %% [markdown]
# Read against chance (one clip in the whole test split), recall is far above it; the held-out pairs are where it shows whether the model composes colour and motion or learnt which go together. The attribute line says which words it has learnt to see and hear. docs/design.md has the same at full size (170 clips a motion).
#
# ### Retrieval by text and zero-shot by prompts
#
# `retrieve` ranks the test clips by a caption written here; `classify_by_prompts` names a clip by whichever prompt it lies nearest, with no classifier trained for those prompts.

# %%
query = "a large red star moving left quickly"
found = retrieve(text_run, query, os.path.join(data_dir, "test"), top=3)
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for axis, item in zip(axes, found):
    with open(os.path.splitext(item["path"])[0] + ".json") as f:
        attributes = json.load(f)["attributes"]
    axis.imshow(read_frames(item["path"])[12])
    axis.set_title(f"{item['similarity']:.2f}: {attributes['size']} {attributes['colour']}\n{attributes['shape']}, {attributes['motion']}, {attributes['speed']}", fontsize=7)
    axis.axis("off")
plt.suptitle(f'"{query}"', fontsize=9)
plt.tight_layout()

prompts = ["something moving left", "something moving right", "something growing", "something shrinking"]
videos = [first_clip(motion, "test")[0] for motion in ("move_left", "grow")]
for result in classify_by_prompts(text_run, videos, prompts):
    top = sorted(result["probabilities"].items(), key=lambda item: -item[1])[:2]
    print(f"{os.path.relpath(result['path'], data_dir)}: {result['label']!r}  ({', '.join(f'{p!r} {v:.2f}' for p, v in top)})")

# %% [markdown]
# ## Picture and sound: three fusions against each alone
#
# The label here is the motion *and* the timbre (`label_attribute="sound"`: 24 classes). The picture shows the motion but not the timbre, so the picture alone can be right at most one time in three; the sound has the timbre and, by pitch and loudness, four of the eight motions, so the sound alone can reach at most 0.625. The model (`vlm_tf.models.audio_visual`) has a head on each modality and a fused head, trained together; `early` joins the two clip features, `late` adds the two heads' answers, `cross_attention` lets the picture's features ask the sound's time steps. Modality dropout silences or blanks a fifth of the training clips each, so a clip without sound still gets the answer its picture supports.

# %%
ablations = {}
for fusion in ("early", "late", "cross_attention"):
    run_dir = os.path.join(WORK_DIR, f"av_{fusion}")
    config = RunConfig(
        model="audio_visual", epochs=AV_EPOCHS, batch_size=32, seed=SEED, precision="float32", jit="off",
        options=AudioVisualOptions(init=PRESET, fusion=fusion, label_attribute="sound"),
    )
    train(data_dir, run_dir, config, verbose=0)
    run = load_run(run_dir)
    report = run.task_object().evaluate(run, data_dir)
    ablations[fusion] = report["ablation"]
    print(" ".join(report.lines()))
print(f"24 classes: chance {1 / 24:.3f}")

# %%
columns = ["video_only", "audio_only", "fused", "fused_without_audio", "fused_without_picture"]
names = ["picture\nalone", "sound\nalone", "fused", "fused,\nsound silenced", "fused,\npicture blanked"]
width = 0.26
for offset, (fusion, values) in enumerate(ablations.items()):
    plt.bar(np.arange(len(columns)) + (offset - 1) * width, [values[c] for c in columns], width, label=fusion)
plt.axhline(1 / 3, color="grey", linestyle=":", label="picture alone, at best")
plt.axhline(0.625, color="grey", linestyle="--", label="sound alone, at best")
plt.xticks(range(len(columns)), names, fontsize=8)
plt.ylabel("test accuracy")
plt.legend(fontsize=7)
gains = {fusion: v["fused"] - max(v["video_only"], v["audio_only"]) for fusion, v in ablations.items()}
kept = {fusion: v["fused_without_audio"] - v["video_only"] for fusion, v in ablations.items()}
print("fused minus the better single modality:", ", ".join(f"{f} {g:+.3f}" for f, g in gains.items()))
print("sound silenced minus picture alone:     ", ", ".join(f"{f} {k:+.3f}" for f, k in kept.items()))
print("fused minus a perfect sound-only model:  ", ", ".join(f"{f} {v['fused'] - 0.625:+.3f}" for f, v in ablations.items()))

# %% [markdown]
# What to read in it (the lines under the plot). Fused, each model names motion and timbre together far more often than either modality's head can alone. Whether it also passes the best a sound-only model could ever reach (0.625, the last line) depends on the size of the run: the full-size runs of docs/design.md (119 training clips a motion) pass it by 0.12 to 0.15. With the sound silenced, the fused answer falls back to about what the picture alone gives — modality dropout taught it that silence means "decide from the picture". Which fusion wins is not the point on this task: its label splits into a picture part and a sound part, which adding two answers (late) already models; cross-attention earns its cost where picture and sound must be lined up in time.

# %% [markdown]
# ## Clips from words, and from a first frame (§6.5)
#
# §6.5 says video generation starts from text, a picture or other video. Two generators learn it here from the same caption embeddings:
#
# - `text_gan`, the text's GAN (§3.3) conditioned on words instead of a label: a sprite of one flat colour moved over a two-colour background by a velocity that is a linear map of the caption's embedding; its discriminator also names the clip's motion and colour, so the generator is told what the caption asked for.
# - `text_diffusion`, what the field uses now: a small (2+1)-D U-Net trained by flow matching, sampled in 32 steps with classifier-free guidance; it can also start from a picture, the first frame.
#
# The words come from a video_text run trained here *without* the sound: the one above heard it, and its caption embeddings keep the colour less clearly (docs/design.md measured a linear probe of colour at 0.84 against 1.00), which the generators then draw wrong. Each generator gets the test split's prompts ("a large red star moving left quickly over …") and those of the held-out colour-motion pairs.
#
# The judge is an attributes run (a conv3d backbone, a head per attribute the picture shows) trained on real clips of a dataset of its own in which no pair is held out: a judge that never saw red move left cannot say whether a generated red clip does. Its accuracy on the real test clips is the ceiling the generated clips are read against.

# %%
words_run_dir = os.path.join(WORK_DIR, "words")
config = RunConfig(model="video_text", epochs=TEXT_EPOCHS, batch_size=32, seed=SEED, precision="float32", jit="off", options=VideoTextOptions(init=PRESET))
train(data_dir, words_run_dir, config, verbose=0)
words_run = load_run(words_run_dir)

judge_data_dir = os.path.join(WORK_DIR, "judge_data")
write_multimodal_dataset(judge_data_dir, videos_per_class=VIDEOS_PER_CLASS, heldout_per_pair=0, seed=SEED + 1)
judge_dir = os.path.join(WORK_DIR, "judge")
config = RunConfig(model="attributes", epochs=JUDGE_EPOCHS, num_frames=16, image_size=32, batch_size=32, seed=SEED, precision="float32", jit="off")
train(judge_data_dir, judge_dir, config, verbose=0)
judge = load_run(judge_dir)
for split in ("test", "heldout"):
    report = judge.task_object().evaluate(judge, os.path.join(data_dir, split))
    print(f"the judge on real {split} clips:", ", ".join(f"{k} {v:.2f}" for k, v in report["by_attribute"].items()))

# %%
generators = {}
for name, epochs in (("text_gan", GAN_EPOCHS), ("text_diffusion", DIFFUSION_EPOCHS)):
    run_dir = os.path.join(WORK_DIR, name)
    config = RunConfig(model=name, epochs=epochs, num_frames=16, batch_size=16, seed=SEED, precision="float32", jit="off", options=TextToVideoOptions(text_run=words_run_dir))
    train(data_dir, run_dir, config, verbose=0)
    generators[name] = load_run(run_dir)

prompted = {split: folder_prompts(os.path.join(data_dir, split)) for split in ("test", "heldout")}
written, scores = {}, {}
for name, run in generators.items():
    for split, (paths, texts) in prompted.items():
        out = os.path.join(WORK_DIR, f"{name}_{split}")
        written[name, split] = write_prompted_videos(run, out, texts, seed=SEED)
        scores[name, split] = score_prompted(judge, out, os.path.join(data_dir, split), text_run=words_run)
# The diffusion model again, each held-out clip's first frame given.
paths, texts = prompted["heldout"]
out = os.path.join(WORK_DIR, "text_diffusion_first_frames")
name = "text_diffusion from a first frame"
written[name, "heldout"] = write_prompted_videos(generators["text_diffusion"], out, texts, seed=SEED, first_frames=first_frames_of(paths, 32))
scores[name, "heldout"] = score_prompted(judge, out, os.path.join(data_dir, "heldout"), text_run=words_run)

print(f"{'':42s}{'motion':>7s}{'colour':>7s}{'prompt R@1':>11s}{'Fréchet':>8s}")
for (name, split), figures in scores.items():
    print(f"{name + ', ' + split:42s}{figures['motion_accuracy']:7.2f}{figures['colour_accuracy']:7.2f}{figures['prompt_rank_r1']:11.3f}{figures['frechet_distance']:8.2f}")
print("chance: motion 0.125, colour 0.167, prompt R@1", ", ".join(f"{1 / len(texts):.3f} {split}" for split, (_, texts) in prompted.items()))

# %% [markdown]
# Below, a held-out prompt of four motions, each drawn by the GAN, by the diffusion model, and by the diffusion model from the real clip's first frame; the real clip on the left. Four frames of sixteen, five apart.

# %%
import cv2

motions = [os.path.basename(os.path.dirname(path)) for path in paths]
shown = [motions.index(motion) for motion in ("move_left", "move_right", "grow", "shrink") if motion in motions]
columns = {"real clip": paths, **{name: written[name, "heldout"] for name in ("text_gan", "text_diffusion", "text_diffusion from a first frame")}}
fig, axes = plt.subplots(len(shown), len(columns), figsize=(11, 1.1 * len(shown) + 0.8), squeeze=False)
for row, i in zip(axes, shown):
    for axis, (name, videos) in zip(row, columns.items()):
        frames = read_frames(videos[i])
        strip = [cv2.resize(frames[j], (32, 32), interpolation=cv2.INTER_AREA) for j in np.linspace(0, len(frames) - 1, 4).round().astype(int)]
        axis.imshow(np.concatenate(strip, axis=1))
        axis.set_xticks([])
        axis.set_yticks([])
    row[0].set_ylabel(motions[i], fontsize=7)
for axis, name in zip(axes[0], columns):
    axis.set_title(name, fontsize=8)
plt.tight_layout()

# %% [markdown]
# How to read it. First the judge's lines: on real clips it names the motion and the colour far above chance (one in eight, one in six), so it can tell whether a generated clip shows what was asked; its figures are the ceiling for the generators'. Then the generators: at this size (70 training clips a motion, a few minutes each) both draw the asked-for colour more often than chance and the asked-for motion no more often than chance, and the pictures show why: the GAN paints the colour into its background pattern rather than onto a moving sprite (the failure docs/design.md describes for a background of full colour, here at a budget too small to leave it), and the diffusion model paints noise tinted with it; started from a real first frame, it lets the object dissolve into that noise after the first frame. Generation needs far more steps than recognition. At full size (docs/design.md, "Clips from words": 280 training clips a motion, the GAN for ten epochs, 50 minutes to 1.6 hours on two cores) the GAN drew the asked-for colour in 0.84 of its clips and the asked-for motion in 0.56 (its judge on real clips: 1.00 and 0.92), and 0.60 of the motions when its noise is drawn at half the width it trained on (`generate --truncation 0.5`, three seeds); rebuilt on another machine (stop 45) the same recipe drew the asked-for motion in 0.70 and the colour in 0.83 at that width (three seeds; 0.65 and 0.83 on held-out pairs), past issue 19's bars of 0.6 and 0.8, and keeping the best of eight candidates by the video_text run (`--rerank 8`) did not lift the motion further; after its first five epochs, at the same 38 minutes as three epochs of the diffusion model, it was already far ahead of it (motion 0.51 against 0.15); held-out colour-motion pairs score lower than seen ones, and turning clockwise or anticlockwise is what the GAN draws worst. Steering the GAN by the video_text run's own video encoder (`--guidance`, CLIP guidance) made it draw the named backgrounds and lose its colours (0.50), so it is off by default.
