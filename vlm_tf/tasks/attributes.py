"""A clip's attributes (§6.5's generation, scored): `vlm-tf train DATA --task attributes` learns to
name each attribute of the JSON file beside a video (motion, colour, shape, size, speed,
background on a folder that `make-data --task multimodal` wrote) from its picture; the sound,
which the picture does not show, is left out.

Such a run is the judge of prompted generation: `vlm-tf score-generated ATTRIBUTES_RUN DIR --real
DATA` reads the clips `vlm-tf generate RUN --prompt …` wrote, each with the attributes its prompt
named, and reports how often the judge sees the motion and the colour asked for
(`motion_accuracy`, `colour_accuracy`), how often a video_text run ranks a clip's own prompt first
among all the prompts (`prompt_rank_r1`), and the Fréchet distance between generated and real
clips in the judge's features. Clips are cropped at random in training, nothing else: a flip
would contradict the motion, a colour change the colour.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np

from vlm_tf import atomic
from vlm_tf.data.multimodal import described_videos, prompt_splits
from vlm_tf.data.splits import list_videos, readable_videos
from vlm_tf.metrics.classification import frechet_distance
from vlm_tf.models.attributes import with_features
from vlm_tf.models.registry import get_model_spec
from vlm_tf.tasks.base import Report, Task, TaskData, evenly_spaced_clips, skipped_of
from vlm_tf.tasks.video_text import caption_clip_pairs

VALUES_FILE = "attributes.json"
# Attributes the picture cannot show.
UNSEEN = ("sound",)
SCORED = ("motion", "colour")


def attributed_videos(folder):
    """`(paths, attributes)` of the videos under `folder` with a JSON file beside them holding an
    `attributes` object; a one-line error when none has one.
    """
    paths, attributes = [], []
    for path, meta in described_videos(folder):
        if isinstance(meta.get("attributes"), dict):
            paths.append(path)
            attributes.append({k: str(v) for k, v in meta["attributes"].items()})
    if not paths:
        raise ValueError(
            f"{folder}: no video there has attributes (a JSON file beside it with an "
            "`attributes` object); `vlm-tf make-data OUT --task multimodal` writes such a dataset"
        )
    return paths, attributes


class AttributesTask(Task):
    monitor = "val_accuracy"
    caches = True

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        paths, attributes = attributed_videos(train)
        heads = [
            name
            for name in attributes[0]
            if name not in UNSEEN and all(name in a for a in attributes)
        ]
        values = {head: sorted({a[head] for a in attributes}) for head in heads}
        # An attribute with one value in the whole training set teaches nothing.
        values = {head: names for head, names in values.items() if len(names) > 1}
        if not values:
            raise ValueError(
                f"{train}: no attribute takes two values across the training videos' JSON files"
            )
        train_ds = self.clips(paths, attributes, values, cache=cache, first_epoch=first_epoch)
        val_ds = self.clips(*attributed_videos(val), values, cache=cache)
        return TaskData(
            train_ds,
            val_ds,
            list(values),
            train_ds.num_clips,
            train_ds.steps_per_pass,
            skipped_of(train_ds, val_ds),
            endless=True,
            extras={"values": values},
        )

    def clips(self, paths, attributes, values, *, cache=None, first_epoch=None):
        """Batches `(frames, {attribute: value index})` of the readable videos among `paths`; a
        video with a value the training set never had is left out, with the reason.
        """
        import tensorflow as tf

        unknown, known = [], []
        for path, a in zip(paths, attributes):
            strange = [head for head in values if a.get(head) not in values[head]]
            if strange:
                reason = f"its {strange[0]} {a.get(strange[0])!r} is not among the training set's"
                unknown.append({"path": path, "reason": reason})
            else:
                known.append((path, a))
        # One clip a video: the pairs of video_text's with one row each.
        clips = caption_clip_pairs(
            self.config,
            [path for path, _ in known],
            [1] * len(known),
            cache=cache,
            first_epoch=first_epoch,
        )
        tables = {
            head: tf.constant([names.index(a[head]) for _, a in known], tf.int32)
            for head, names in values.items()
        }
        dataset = clips.map(
            lambda frames, row: (frames, {head: tf.gather(t, row) for head, t in tables.items()})
        )
        dataset.skipped = unknown + clips.skipped
        dataset.failed, dataset.num_clips = clips.failed, clips.num_pairs
        dataset.steps_per_pass = getattr(clips, "steps_per_pass", None)
        return dataset

    def build_model(self, data):
        return get_model_spec(self.config.model).build(
            heads={head: len(names) for head, names in data.extras["values"].items()},
            num_frames=self.config.num_frames,
            image_size=self.image_size,
            init=self.options.init,
        )

    def compile(self, model, make_optimizer, jit_compile):
        heads = list(model.output)
        model.compile(
            optimizer=make_optimizer(),
            loss={head: "sparse_categorical_crossentropy" for head in heads},
            metrics={head: ["accuracy"] for head in heads},
            jit_compile=jit_compile,
        )

    def metric_callbacks(self, data, log_dir):
        return [MeanAccuracy(list(data.extras["values"]))]

    def finish(self, run_dir, model, data, best_path):
        atomic.write_json(os.path.join(run_dir, VALUES_FILE), data.extras["values"])

    def describe_result(self, summary):
        heads = [
            k[4 : -len("_accuracy")]
            for k in summary
            if k.startswith("val_") and k.endswith("_accuracy") and k != "val_accuracy"
        ]
        return (
            f"validation accuracy {summary.get('val_accuracy', float('nan')):.3f} on average: "
            + ", ".join(f"{head} {summary[f'val_{head}_accuracy']:.3f}" for head in heads)
        )

    # --- a finished run ---

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        self.refuse_views(run, views)
        paths, attributes = attributed_videos(data_dir)
        named = name_attributes(run, paths)
        values = attribute_values(run)
        by_attribute = {
            head: float(np.mean([n[head] == a.get(head) for n, a in zip(named, attributes)]))
            for head in values
        }
        return AttributesReport(
            num_videos=len(paths),
            accuracy=float(np.mean(list(by_attribute.values()))),
            by_attribute=by_attribute,
        )

    def predict(self, run, paths, *, top=3):
        """Each video's most likely value of every attribute: `label` joins them, `top` lists
        each with its probability.
        """
        results = []
        for path in paths:
            _, _, skipped = readable_videos([path])
            if skipped:
                results.append({"path": os.fspath(path), "error": skipped[0]["reason"]})
                continue
            probabilities = attribute_probabilities(run, [path])
            best = {head: int(np.argmax(p[0])) for head, p in probabilities.items()}
            values = attribute_values(run)
            results.append(
                {
                    "path": os.fspath(path),
                    "label": ", ".join(values[head][k] for head, k in best.items()),
                    "top": [
                        {
                            "label": f"{head}={values[head][k]}",
                            "probability": float(probabilities[head][0][k]),
                        }
                        for head, k in best.items()
                    ],
                }
            )
        return results

    def score_generated(self, run, generated_dir, real_dir, *, reference_dir=None, text_run=None):
        """`PromptedReport` of the prompted clips of `generated_dir` against `real_dir`'s real
        ones; multimodal roots are read split by split (test/ at the top level, heldout/ under
        `heldout`); a finished video_text `text_run` ranks each clip's prompt too.
        """
        if reference_dir is not None:
            raise ValueError(
                "--reference is for a classifier's score; an attributes run compares generated "
                "clips with --real alone"
            )
        generated, real = prompt_splits(generated_dir), prompt_splits(real_dir)
        if set(generated) != set(real):
            raise ValueError(
                f"{generated_dir} and --real {real_dir} must both hold test/ and heldout/ (what "
                "`generate --prompts-from DATA` writes from a multimodal dataset's root), or "
                "neither"
            )
        figures = {
            split: score_prompted(run, generated[split], real[split], text_run=text_run)
            for split in generated
        }
        if None in figures:
            return PromptedReport(**figures[None])
        return PromptedReport(**figures["test"], heldout=figures["heldout"])

    def export(self, run, path):
        raise ValueError(
            f"{run.run_dir} is an attributes run, the judge of `vlm-tf score-generated`; it has no "
            "SavedModel export"
        )


class MeanAccuracy(keras.callbacks.Callback):
    """Adds `val_accuracy`, the mean of the heads' validation accuracies, to each epoch's logs:
    the figure the best epoch is chosen by.
    """

    def __init__(self, heads):
        super().__init__()
        self.heads = heads

    def on_epoch_end(self, epoch, logs=None):
        found = [
            logs[f"val_{head}_accuracy"]
            for head in self.heads
            if logs and f"val_{head}_accuracy" in logs
        ]
        if found:
            logs["val_accuracy"] = float(np.mean(found))


def attribute_values(run):
    """`{attribute: [values]}` of an attributes run, in its heads' order."""
    run.require("attributes", "naming attributes")
    return atomic.read_json(os.path.join(run.run_dir, VALUES_FILE))


def judge_videos(run, paths):
    """`({attribute: (N, K) probabilities}, (N, F) backbone features)` of the videos at `paths`,
    an evenly spaced clip each, in one pass: the features are the Fréchet distance's space.
    """
    _, clips = evenly_spaced_clips(run, paths)
    both = with_features(run.model)
    batches = [both(frames, training=False) for frames, _ in clips]
    heads = batches[0][0]
    return (
        {head: np.concatenate([np.asarray(b[0][head]) for b in batches]) for head in heads},
        np.concatenate([np.asarray(b[1], np.float64) for b in batches]),
    )


def attribute_probabilities(run, paths):
    """`{attribute: (N, K) probabilities}` of the videos at `paths`, an evenly spaced clip each."""
    return judge_videos(run, paths)[0]


def most_likely(run, probabilities):
    """`[{attribute: value}]`: the most likely value of each attribute, for each row."""
    values = attribute_values(run)
    best = {head: p.argmax(axis=1) for head, p in probabilities.items()}
    count = len(next(iter(best.values())))
    return [{head: values[head][best[head][i]] for head in values} for i in range(count)]


def name_attributes(run, paths):
    """`[{attribute: value}]`, the most likely value of each, for the videos at `paths`."""
    return most_likely(run, attribute_probabilities(run, paths))


# --- scoring prompted clips ---


def score_prompted(run, generated, real, *, text_run=None):
    """The figures of `PromptedReport` for the clips in `generated` (what `vlm-tf generate`
    wrote: a JSON beside each with its prompt and the attributes it named) against the real
    clips of `real`; with a video_text `text_run`, the prompt's retrieval rank too.
    """
    values = attribute_values(run)
    paths, asked = attributed_videos(generated)
    probabilities, features = judge_videos(run, paths)
    named = most_likely(run, probabilities)
    figures = {"num_videos": len(paths)}
    for head in SCORED:
        judged = [(n[head], a[head]) for n, a in zip(named, asked) if head in a and head in values]
        figures[f"{head}_accuracy"] = (
            float(np.mean([seen == wanted for seen, wanted in judged])) if judged else None
        )
    figures["attribute_accuracy"] = {
        head: float(np.mean([n[head] == a[head] for n, a in zip(named, asked) if head in a]))
        for head in values
        if any(head in a for a in asked)
    }
    figures["prompt_rank_r1"] = None if text_run is None else prompt_rank_r1(text_run, paths)
    real_paths = list_videos(real)
    figures["frechet_distance"] = frechet_distance(judge_videos(run, real_paths)[1], features)
    return figures


def prompt_rank_r1(text_run, paths):
    """How often a video_text run ranks a generated clip's own prompt (its JSON's first caption)
    first among the distinct prompts of all the clips at `paths`.
    """
    from vlm_tf.tasks.video_text import _text_embeddings, embed_videos

    prompt_of = []
    for path in paths:
        with open(os.path.splitext(path)[0] + ".json", encoding="utf-8") as f:
            prompt_of.append(json.load(f)["captions"][0])
    distinct = sorted(set(prompt_of))
    similarity = embed_videos(text_run, paths) @ _text_embeddings(text_run, distinct).T
    found = [distinct[i] for i in similarity.argmax(axis=1)]
    return float(np.mean([f == p for f, p in zip(found, prompt_of)]))


@dataclasses.dataclass
class AttributesReport(Report):
    num_videos: int
    accuracy: float
    by_attribute: dict

    def lines(self):
        return [
            f"{self.num_videos} videos: attributes named right {self.accuracy:.3f} on average",
            "  " + ", ".join(f"{head} {share:.3f}" for head, share in self.by_attribute.items()),
        ]


@dataclasses.dataclass
class PromptedReport(Report):
    num_videos: int
    motion_accuracy: float | None
    colour_accuracy: float | None
    attribute_accuracy: dict
    prompt_rank_r1: float | None
    frechet_distance: float
    heldout: dict | None = None

    OPTIONAL = ("heldout",)

    def lines(self):
        def figures(values, where):
            def share(value):
                return "n/a" if value is None else f"{value:.3f}"

            return [
                f"{where}: {values['num_videos']} generated clips; the judge sees the prompted "
                f"motion in {share(values['motion_accuracy'])}, the prompted colour in "
                f"{share(values['colour_accuracy'])}; prompt ranked first "
                f"{share(values['prompt_rank_r1'])}; Fréchet distance to real clips "
                f"{values['frechet_distance']:.3f}",
                "  every attribute the prompts named: "
                + ", ".join(f"{k} {v:.3f}" for k, v in values["attribute_accuracy"].items()),
            ]

        own = {key: value for key, value in self.to_dict().items() if key != "heldout"}
        lines = figures(own, "seen compositions" if self.heldout else "prompts")
        if self.heldout:
            lines += figures(self.heldout, "held-out colour-motion pairs")
        return lines
