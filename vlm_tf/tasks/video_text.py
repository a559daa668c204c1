"""Clips and captions in one space (§8.1 ③): `vlm-tf train DATA --task video_text` on a folder
that `make-data --task multimodal` wrote, or any folder of class folders whose videos have a
JSON file beside them with a `captions` list.

Every caption of every training clip is a training pair, so an epoch shows each clip once per
caption; the text encoder's vocabulary is the words of the training captions (`vocabulary.json`
in the run folder), words outside it read as one unknown token. The clips are cropped at random
and nothing else: a flip would contradict "moving left" and a colour change "red". The best
epoch is the one whose validation
clips are found first by their first caption most often (`val_r1`).

`evaluate` ranks the clips of a folder by each clip's first caption (text to video) and the
captions by each clip (video to text), recall@1/5/10; how many of the seven attributes the
first clip found shares with the one asked for; and the accuracy of naming each clip's motion
zero-shot, by prompts: composed (`composed_zero_shot`: every composition of the attributes one
prompt, the motion of the nearest one; `zero_shot_accuracy`) and by motion prompts alone
("something moving left", "it slides to the left", …, a class's prompts averaged as CLIP
ensembles its templates; `zero_shot_motion_prompts_accuracy`). Given the dataset root it
reports the `test` split and, under `heldout`, the colour-motion pairs no training clip
showed.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os

import keras
import numpy as np

from vlm_tf import atomic
from vlm_tf.data import multimodal
from vlm_tf.data.audio import DEFAULT_SAMPLE_RATE, read_sound
from vlm_tf.data.multimodal import MOTION_WORDS, described_videos, partial_captions
from vlm_tf.data.pipeline import make_clip_dataset
from vlm_tf.data.splits import list_videos, readable_videos
from vlm_tf.export import export_video_text

# Registers VideoTextModel and its layers, which a run's model.keras names.
from vlm_tf.models import video_text as _model  # noqa: F401
from vlm_tf.models.registry import get_model_spec
from vlm_tf.tasks.audio_visual import audio_settings, write_audio_settings
from vlm_tf.tasks.base import Report, Task, TaskData, evenly_spaced_clips, skipped_of

VOCABULARY_FILE = "vocabulary.json"
SEQUENCE_LENGTH = 24
RECALL_AT = (1, 5, 10)
# Zero-shot prompt templates; a motion's words fill them (vlm_tf.data.multimodal.MOTION_WORDS).
PROMPT_TEMPLATES = ("something {0}", "it {1}", "an object that {2}")
# What `partial_captions` needs of a clip's attributes.
PHRASED = ("motion", "speed", "shape", "size", "colour", "background")


def _has_all(attributes):
    """Whether a clip's JSON names every attribute `partial_captions` phrases."""
    return isinstance(attributes, dict) and set(PHRASED) <= set(attributes)


def captioned_videos(folder):
    """`(paths, captions, attributes, labels)` of the videos in `folder`'s class folders with a
    JSON file beside them holding captions; a one-line error when none has one.
    """
    paths, captions, attributes, labels = [], [], [], []
    for path, meta in described_videos(folder):
        if not meta.get("captions"):
            continue
        paths.append(path)
        captions.append([str(caption) for caption in meta["captions"]])
        attributes.append(dict(meta.get("attributes", {})))
        labels.append(os.path.basename(os.path.dirname(path)))
    if not paths:
        raise ValueError(
            f"{folder}: no video there has captions (a JSON file beside it with a `captions` "
            "list); `vlm-tf make-data OUT --task multimodal` writes such a dataset"
        )
    return paths, captions, attributes, labels


def build_vocabulary(captions):
    """The words of `captions`, most frequent first, ties in alphabetical order (so a resumed run
    rebuilds the same one).
    """
    counts = collections.Counter(
        word for caption in captions for word in _standardize(caption).split()
    )
    return sorted(counts, key=lambda word: (-counts[word], word))


def _standardize(text):
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace())


def tokenizer(vocabulary):
    """A `TextVectorization` with `vocabulary`, padding to `SEQUENCE_LENGTH`."""
    return keras.layers.TextVectorization(
        vocabulary=list(vocabulary), output_sequence_length=SEQUENCE_LENGTH, name="tokenizer"
    )


class VideoTextTask(Task):
    monitor = "val_r1"
    caches = True

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        import tensorflow as tf

        paths, captions, attributes, labels = captioned_videos(train)
        if self.options.partial_captions:
            captions = [
                clip + partial_captions(a) if _has_all(a) else clip
                for clip, a in zip(captions, attributes)
            ]
        vocabulary = build_vocabulary(c for clip in captions for c in clip)
        tokens = tokenizer(vocabulary)
        # One training pair per caption: the clip's path once per caption, labelled by its row.
        sizes = [len(clip) for clip in captions]
        table = tf.constant(np.asarray(tokens([c for clip in captions for c in clip])), tf.int32)
        sound = val_sound = None
        extras = {"vocabulary": vocabulary}
        val_paths, val_captions, _, _ = captioned_videos(val)
        if self.options.with_sound:
            sound, has_sound = read_sound(paths, DEFAULT_SAMPLE_RATE)
            if not has_sound.any():
                raise ValueError(
                    f"{train}: no video has a sound track, and --with-sound hears them "
                    "(`vlm-tf make-data OUT --task multimodal` writes videos with sound)"
                )
            val_sound = read_sound(val_paths, DEFAULT_SAMPLE_RATE, sound.shape[1])[0]
            extras.update(num_samples=sound.shape[1], sample_rate=DEFAULT_SAMPLE_RATE)
        train_ds = self._pairs(paths, sizes, table, sound, cache=cache, first_epoch=first_epoch)
        val_table = tf.constant(np.asarray(tokens([clip[0] for clip in val_captions])), tf.int32)
        val_ds = self._pairs(val_paths, [1] * len(val_paths), val_table, val_sound, cache=cache)
        return TaskData(
            train_ds,
            val_ds,
            sorted(set(labels)),
            train_ds.num_pairs,
            train_ds.steps_per_pass,
            skipped_of(train_ds, val_ds),
            endless=True,
            extras=extras,
        )

    def _pairs(self, paths, repeats, token_table, sound=None, *, cache=None, first_epoch=None):
        """Batches `{"frames", "tokens"}`: the clip of `paths[i]`, `repeats[i]` times, with the
        next `repeats[i]` rows of `token_table` (and `"audio"`, row i of `sound`, when given).
        """
        import tensorflow as tf

        clips = caption_clip_pairs(
            self.config, paths, repeats, cache=cache, first_epoch=first_epoch
        )
        if sound is None:
            dataset = clips.map(
                lambda frames, row: {"frames": frames, "tokens": tf.gather(token_table, row)}
            )
        else:
            sound_table = tf.constant(sound, tf.float32)
            # Caption row → the clip it was written for.
            clip_of_row = tf.constant(np.repeat(np.arange(len(paths)), repeats), tf.int32)
            dataset = clips.map(
                lambda frames, row: {
                    "frames": frames,
                    "tokens": tf.gather(token_table, row),
                    "audio": tf.gather(sound_table, tf.gather(clip_of_row, row)),
                }
            )
        return with_pair_counts(dataset, clips)

    def build_model(self, data):
        return get_model_spec(self.config.model).build(
            # TextVectorization's two of its own: 0 pads, 1 stands for every unknown word.
            vocabulary_size=len(data.extras["vocabulary"]) + 2,
            sequence_length=SEQUENCE_LENGTH,
            num_frames=self.config.num_frames,
            image_size=self.image_size,
            init=self.options.init,
            num_samples=data.extras.get("num_samples"),
            sample_rate=data.extras.get("sample_rate"),
        )

    def compile(self, model, make_optimizer, jit_compile):
        model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)

    def metric_callbacks(self, data, log_dir):
        return [ValidationRecall(data.validation)]

    def finish(self, run_dir, model, data, best_path):
        atomic.write_json(os.path.join(run_dir, VOCABULARY_FILE), data.extras["vocabulary"])
        if "num_samples" in data.extras:
            write_audio_settings(run_dir, data.extras["num_samples"], data.extras["sample_rate"])

    def describe_result(self, summary):
        return (
            f"validation text-to-video recall@1 {summary.get('val_r1', float('nan')):.3f}, "
            f"loss {summary.get('loss', float('nan')):.4f}"
        )

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        self.refuse_views(run, views)
        splits = [os.path.join(data_dir, name) for name in ("test", "heldout")]
        if all(os.path.isdir(split) for split in splits):
            seen, heldout = (self.score(run, split) for split in splits)
            return VideoTextReport(**seen, heldout=heldout)
        return VideoTextReport(**self.score(run, data_dir))

    def score(self, run, folder):
        """The figures of `VideoTextReport` for the captioned videos of `folder`."""
        paths, captions, attributes, labels = captioned_videos(folder)
        videos = embed_videos(run, paths)
        texts = _text_embeddings(run, [clip[0] for clip in captions])
        similarity = texts @ videos.T
        found = similarity.argmax(axis=1)
        asked = [(q, f) for q, f in enumerate(found) if attributes[q]]
        names = list(attributes[asked[0][0]]) if asked else []
        # Per attribute: how often the first clip found has the one the caption names.
        by_attribute = {
            name: float(
                np.mean([attributes[q].get(name) == attributes[f].get(name) for q, f in asked])
            )
            for name in names
        }
        agreement = float(np.mean(list(by_attribute.values()))) if names else float("nan")
        classes = list(run.class_names)
        prompts = [t.format(*MOTION_WORDS[c]) for c in classes for t in PROMPT_TEMPLATES]
        prompt_embeddings = _text_embeddings(run, prompts)
        per_class = prompt_embeddings.reshape(len(classes), len(PROMPT_TEMPLATES), -1).mean(1)
        predicted = (videos @ per_class.T).argmax(axis=1)
        labels = np.asarray(labels)
        return {
            "num_videos": len(paths),
            "text_to_video": recall_at(similarity),
            "video_to_text": recall_at(similarity.T),
            "attribute_agreement": agreement,
            "attribute_agreement_by_name": by_attribute,
            "zero_shot_accuracy": float(np.mean(composed_zero_shot(run, videos) == labels)),
            "zero_shot_motion_prompts_accuracy": float(
                np.mean(np.asarray(classes)[predicted] == labels)
            ),
        }

    def export(self, run, path):
        heard = run.model.sound_encoder is not None
        num_samples = audio_settings(run)[0] if heard else None
        with open(os.path.join(run.run_dir, VOCABULARY_FILE), encoding="utf-8") as f:
            export_video_text(
                run.model, path, tokenizer=tokenizer(json.load(f)), num_samples=num_samples
            )
        sound = f" and float32 audio (batch, {num_samples})" if heard else ""
        return (
            f"embed_video takes uint8 frames (batch, time, height, width, 3){sound}, embed_text "
            "caption strings (batch,); both return unit `embedding` vectors in one space"
        )


def embed_videos(run, paths):
    """`(N, D)` unit embeddings of the videos at `paths`, each an evenly spaced clip."""
    readable, clips = evenly_spaced_clips(run, paths)
    if run.model.sound_encoder is None:
        return np.concatenate([np.asarray(run.model.embed_video(frames)) for frames, _ in clips])
    num_samples, sample_rate = audio_settings(run)
    sound = read_sound(readable, sample_rate, num_samples)[0]
    embedded, start = [], 0
    for frames, _ in clips:
        audio = sound[start : start + len(frames)]
        embedded.append(np.asarray(run.model.embed_video(frames, audio)))
        start += len(frames)
    return np.concatenate(embedded)


def recall_at(similarity, ks=RECALL_AT):
    """`{"r1", "r5", "r10"}`: how often row i's own column (the diagonal) is among its k most
    similar.
    """
    own = np.diag(similarity)[:, None]
    ranks = (similarity > own).sum(axis=1)
    return {f"r{k}": float(np.mean(ranks < k)) for k in ks}


def caption_clip_pairs(config, paths, repeats, *, cache=None, first_epoch=None):
    """Batches `(frames, row)`: a clip of `paths[i]` once for each of its `repeats[i]` caption
    rows (rows numbered across all paths in order), at `config`'s frames, size, batch and seed;
    each video probed once, an unreadable one left out (`.skipped`). With `first_epoch`, training
    clips: shuffled, sampled at random and cropped (a crop keeps every caption true; a flip,
    "moving left", or a colour change would not); an endless stream of epochs from that one.
    """
    training = first_epoch is not None
    _, counts, skipped = readable_videos(paths)
    unreadable = {item["path"] for item in skipped}
    starts = np.cumsum([0, *repeats])
    readable = [
        (path, start, repeat)
        for path, start, repeat in zip(paths, starts[:-1], repeats)
        if path not in unreadable
    ]
    pair_paths, rows, pair_counts = [], [], []
    for (path, start, repeat), count in zip(readable, counts):
        pair_paths += [path] * repeat
        rows += list(range(start, start + repeat))
        pair_counts += [count] * repeat
    clips = make_clip_dataset(
        pair_paths,
        rows,
        pair_counts,
        class_names=[str(row) for row in range(int(starts[-1]))],
        num_frames=config.num_frames,
        image_size=(config.image_size, config.image_size),
        batch_size=config.batch_size,
        shuffle=training,
        seed=config.seed,
        sampling_mode="random" if training else "uniform",
        augment="crop" if training else False,
        cache=cache,
        first_pass=first_epoch,
    )
    clips.skipped, clips.num_pairs = skipped, len(rows)
    return clips


def with_pair_counts(dataset, clips):
    """`dataset`, a map of `caption_clip_pairs`' `clips`, with their bookkeeping attributes."""
    dataset.skipped, dataset.failed, dataset.num_pairs = (
        clips.skipped,
        clips.failed,
        clips.num_pairs,
    )
    dataset.steps_per_pass = getattr(clips, "steps_per_pass", None)
    return dataset


class ValidationRecall(keras.callbacks.Callback):
    """Adds `val_r1`, text-to-video recall@1 of the validation clips by their first caption, to
    each epoch's logs.
    """

    def __init__(self, validation):
        super().__init__()
        self.validation = validation

    def on_epoch_end(self, epoch, logs=None):
        videos, texts = [], []
        for batch in self.validation:
            embedded = self.model(batch, training=False)
            videos.append(np.asarray(embedded["video"]))
            texts.append(np.asarray(embedded["text"]))
        similarity = np.concatenate(texts) @ np.concatenate(videos).T
        if logs is not None:
            logs["val_r1"] = recall_at(similarity)["r1"]


@dataclasses.dataclass
class VideoTextReport(Report):
    num_videos: int
    text_to_video: dict
    video_to_text: dict
    attribute_agreement: float
    zero_shot_accuracy: float
    zero_shot_motion_prompts_accuracy: float
    attribute_agreement_by_name: dict | None = None
    heldout: dict | None = None

    OPTIONAL = ("heldout", "attribute_agreement_by_name")

    def lines(self):
        def figures(values, where):
            return [
                f"{where}: {values['num_videos']} videos; text to video "
                + " ".join(f"R@{k[1:]} {v:.3f}" for k, v in values["text_to_video"].items())
                + "; video to text "
                + " ".join(f"R@{k[1:]} {v:.3f}" for k, v in values["video_to_text"].items()),
                f"  attributes the first clip found shares with the caption's: "
                f"{values['attribute_agreement']:.3f}",
                f"  zero-shot motion accuracy by composed prompts "
                f"{values['zero_shot_accuracy']:.3f}, by motion prompts alone "
                f"{values['zero_shot_motion_prompts_accuracy']:.3f}",
            ] + (
                [
                    "  by attribute: "
                    + ", ".join(
                        f"{name} {share:.3f}"
                        for name, share in values["attribute_agreement_by_name"].items()
                    )
                ]
                if values.get("attribute_agreement_by_name")
                else []
            )

        own = {key: value for key, value in self.to_dict().items() if key != "heldout"}
        lines = figures(own, "seen compositions" if self.heldout else "videos")
        if self.heldout:
            lines += figures(self.heldout, "held-out colour-motion pairs")
        return lines


def _text_embeddings(run, texts, batch=2048):
    with open(os.path.join(run.run_dir, VOCABULARY_FILE), encoding="utf-8") as f:
        tokens = tokenizer(json.load(f))
    texts = list(texts)
    return np.concatenate(
        [
            np.asarray(run.model.embed_text(np.asarray(tokens(texts[i : i + batch]))))
            for i in range(0, len(texts), batch)
        ]
    )


def composed_zero_shot(run, videos):
    """The motion each of `videos` (unit embeddings) is named by zero-shot, composed: every
    composition of the caption grammar's attributes (`multimodal.compositions`: each of the run's
    motions with every colour, outline, size, speed, background and sound) is a prompt, in the
    captions' first phrasing, and a clip takes the motion of the prompt it lies nearest. As
    compositional zero-shot learning scores every attribute-object pair, held-out ones included:
    the text side composes "red" and "moving left" it never read together.
    """
    compositions = list(multimodal.compositions(run.class_names))
    prompts = _text_embeddings(run, [multimodal.captions(a)[0] for a in compositions])
    nearest = (videos @ prompts.T).argmax(axis=1)
    return np.asarray([compositions[i]["motion"] for i in nearest])


def _require_video_text(run, what):
    if not hasattr(run.model, "embed_text"):
        raise ValueError(
            f"{run.run_dir} is a {run.config.model} run: {what} needs a video_text run "
            "(`vlm-tf train DATA --task video_text`)"
        )


def retrieve(run, text, folder, *, top=5):
    """The `top` videos of `folder` (any depth) nearest the caption `text`, most similar first:
    `[{"path", "similarity"}]`, similarity the cosine of the two embeddings.
    """
    _require_video_text(run, "retrieval by text")
    if not text.strip():
        raise ValueError("the text to retrieve videos by is empty")
    paths = list_videos(folder)
    similarity = embed_videos(run, paths) @ _text_embeddings(run, [text])[0]
    order = np.argsort(-similarity, kind="stable")[:top]
    return [{"path": paths[i], "similarity": float(similarity[i])} for i in order]


def classify_by_prompts(run, videos, prompts):
    """Zero-shot: for each video, the prompt its clip is nearest, with a probability per prompt
    (a softmax of the model's scaled similarities, as in training): `[{"path", "label",
    "probabilities"}]`.
    """
    _require_video_text(run, "classifying by prompts")
    if not prompts or any(not prompt.strip() for prompt in prompts):
        raise ValueError(f"every prompt needs words; received {list(prompts)!r}")
    logits = float(run.model.scale()) * embed_videos(run, videos) @ _text_embeddings(run, prompts).T
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return [
        {
            "path": path,
            "label": prompts[int(np.argmax(row))],
            "probabilities": {prompt: float(p) for prompt, p in zip(prompts, row)},
        }
        for path, row in zip(videos, probabilities)
    ]
