"""Clips from words (§6.5, §8.1 ③): `vlm-tf train DATA --task text_to_video --text-run VT_RUN`
trains a generator conditioned on a caption's embedding, on a folder that `make-data --task
multimodal` wrote (or any folder of class folders whose videos have a JSON file beside them with
`captions` and `attributes`).

The captions are embedded once, before training, by the text encoder of a finished `video_text`
run (frozen: the generator learns to draw what that encoder means by a sentence, as Imagen draws
what a frozen T5 means). Every clip is paired with each of its captions and with short prompts
built from its attributes (`vlm_tf.data.multimodal.prompts`), since users ask in a few words,
not the dataset's long sentences. The text encoder and its vocabulary are copied into the run
folder, so the run alone turns a new prompt into a clip.

Model `text_gan` is §3.3's sprite GAN with the caption's embedding where the class label was:
the projection discriminator takes the embedding through a Dense layer, and its auxiliary
classifiers name the clip's motion and colour (the attributes prompts are scored on), so the
generator is told that its clip must show what the caption says.

`vlm-tf generate RUN --prompt TEXT` writes clips with a JSON beside each (the prompt as its one
caption, the attributes the prompt names); `vlm-tf score-generated ATTRIBUTES_RUN DIR` scores
them (`vlm_tf.tasks.attributes`).
"""

from __future__ import annotations

import os

import numpy as np

from vlm_tf import atomic
from vlm_tf.data.decode import write_video
from vlm_tf.data.multimodal import attributes_in, prompt_splits, prompts
from vlm_tf.models.adversarial import TextVideoGAN
from vlm_tf.models.registry import get_model_spec
from vlm_tf.models.video_diffusion import VideoDiffusion, sample_clips
from vlm_tf.models.video_gan import build_video_discriminator
from vlm_tf.tasks.base import TaskData
from vlm_tf.tasks.generate import (
    DISCRIMINATOR_LR_SCALE,
    GENERATED_FPS,
    AdversarialTask,
)
from vlm_tf.tasks.tensorboard import EpochImages
from vlm_tf.tasks.text_side import (
    TEXT_ENCODER_FILE,
    Reranker,
    embed_texts,
    fit_whitening,
    load_guide,
    load_text_side,
    read_vocabulary,
    whiten,
)
from vlm_tf.tasks.video_text import (
    VOCABULARY_FILE,
    caption_clip_pairs,
    captioned_videos,
    tokenizer,
    with_pair_counts,
)
from vlm_tf.visualize import clip_montage

PROMPTING_FILE = "prompting.json"
# The attributes the discriminator's auxiliary classifiers name, and prompts are scored on.
HEADS = ("motion", "colour")
SAMPLE_PROMPTS = 4


class TextToVideoTask(AdversarialTask):
    monitor = None
    discriminator_lr_scale = DISCRIMINATOR_LR_SCALE

    @property
    def diffusion(self):
        """Whether the run's model is the diffusion denoiser rather than the GAN's generator."""
        return is_diffusion(self.config.model)

    @property
    def saved_part(self):
        return "denoiser" if self.diffusion else "generator"

    def check_config(self):
        super().check_config()
        if self.diffusion and self.options.guidance:
            raise ValueError(
                f"--guidance is text_gan's; {self.config.model} follows its caption by "
                "classifier-free guidance"
            )

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        import tensorflow as tf

        text_run = self.options.text_run
        # A guided GAN's guide is the text run's whole model: its text encoder is taken from it.
        guide = load_guide(text_run) if self.options.guidance else None
        if guide is None:
            text_encoder, vocabulary = load_text_side(text_run)
        else:
            text_encoder, vocabulary = guide.text_encoder, read_vocabulary(text_run)
        paths, captions, attributes, _ = captioned_videos(train)
        for path, clip_attributes in zip(paths, attributes):
            missing = [head for head in HEADS if head not in clip_attributes]
            if missing:
                raise ValueError(
                    f"{os.path.splitext(path)[0]}.json: expected attributes "
                    f"{', '.join(HEADS)} beside the captions, missing {', '.join(missing)}"
                )
        values = {head: sorted({a[head] for a in attributes}) for head in HEADS}
        # Every caption of a clip, then the short prompts of its attributes: one pair each.
        texts = [clip + prompts(a) for clip, a in zip(captions, attributes)]
        repeats = [len(clip) for clip in texts]
        embeddings = embed_texts(text_encoder, vocabulary, [t for clip in texts for t in clip])
        whitening = fit_whitening(embeddings)
        condition_table = tf.constant(whiten(embeddings, whitening), tf.float32)
        # The guide compares a generated clip with its caption's own (unwhitened) embedding.
        text_table = None if guide is None else tf.constant(embeddings, tf.float32)
        answer_tables = {
            head: tf.constant(
                np.repeat([values[head].index(a[head]) for a in attributes], repeats), tf.int32
            )
            for head in HEADS
        }
        clips = caption_clip_pairs(
            self.config, paths, repeats, cache=cache, first_epoch=first_epoch
        )

        def pair(frames, row):
            answers = {head: tf.gather(table, row) for head, table in answer_tables.items()}
            element = {"frames": frames, "condition": tf.gather(condition_table, row), **answers}
            if text_table is not None:
                element["text"] = tf.gather(text_table, row)
            return element

        train_ds = with_pair_counts(clips.map(pair), clips)
        # Each epoch's pictures: a training clip's first prompt under clips generated from it.
        shown = [
            int(np.flatnonzero(np.asarray([a["motion"] for a in attributes]) == motion)[0])
            for motion in sorted({a["motion"] for a in attributes})
        ][:SAMPLE_PROMPTS]
        return TaskData(
            train_ds,
            None,
            values["motion"],
            train_ds.num_pairs,
            train_ds.steps_per_pass,
            train_ds.skipped,
            endless=True,
            extras={
                "values": values,
                "text_encoder": text_encoder,
                "vocabulary": vocabulary,
                "sample_prompts": [prompts(attributes[i])[1] for i in shown],
                "condition_dim": embeddings.shape[1],
                "whitening": whitening,
                "guide": guide,
            },
        )

    def build_model(self, data):
        config = self.config
        common = dict(num_frames=config.num_frames, image_size=self.image_size)
        condition_dim = data.extras["condition_dim"]
        if self.diffusion:
            denoiser = get_model_spec(config.model).build(condition_dim=condition_dim, **common)
            return VideoDiffusion(denoiser, seed=config.seed)
        generator = get_model_spec(config.model).build(condition_dim=condition_dim, **common)
        discriminator = build_video_discriminator(
            condition_dim=condition_dim,
            heads={head: len(data.extras["values"][head]) for head in HEADS},
            **common,
        )
        return TextVideoGAN(
            generator,
            discriminator,
            heads=HEADS,
            guide=data.extras["guide"],
            seed=config.seed,
        )

    def compile(self, model, make_optimizer, jit_compile):
        if self.diffusion:
            model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)
        else:
            super().compile(
                model, make_optimizer, jit_compile, guidance_weight=self.options.guidance
            )

    def picture_callbacks(self, model, data, log_dir):
        prompts_shown = data.extras["sample_prompts"]
        embedded = whiten(
            embed_texts(data.extras["text_encoder"], data.extras["vocabulary"], prompts_shown),
            data.extras["whitening"],
        )
        return [
            PromptedClips(
                prompts_shown, embedded, os.path.join(log_dir, "samples"), seed=self.config.seed
            )
        ]

    def finish(self, run_dir, model, data, best_path):
        if not self.diffusion:
            super().finish(run_dir, model, data, best_path)
        atomic.save_model(data.extras["text_encoder"], os.path.join(run_dir, TEXT_ENCODER_FILE))
        atomic.write_json(os.path.join(run_dir, VOCABULARY_FILE), data.extras["vocabulary"])
        atomic.write_json(
            os.path.join(run_dir, PROMPTING_FILE),
            {
                "text_run": os.path.abspath(self.options.text_run),
                "attributes": data.extras["values"],
                "whitening": data.extras["whitening"],
            },
        )

    def describe_result(self, summary):
        if self.diffusion:
            return (
                f"flow-matching loss {summary.get('loss', float('nan')):.4f} (`vlm-tf generate RUN "
                "--prompt TEXT` writes clips)"
            )
        return (
            f"discriminator loss {summary.get('d_loss', float('nan')):.3f}, generator loss "
            f"{summary.get('g_loss', float('nan')):.3f} (`vlm-tf generate RUN --prompt TEXT` "
            "writes clips)"
        )

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        raise ValueError(
            f"{run.run_dir} generates clips from prompts: write them with `vlm-tf generate "
            f"{run.run_dir} --prompts-from {data_dir} --out DIR`, then score them with `vlm-tf "
            "score-generated ATTRIBUTES_RUN DIR --real DATA`"
        )

    def generate(self, run, out, request):
        """Clips of `request.prompts` (each from `request.first_frame` too, on a diffusion run),
        or of the prompt of every captioned video of `request.prompts_from` (from its own first
        frame with `request.first_frames`), test/ and heldout/ of a multimodal root apart.
        """
        if bool(request.prompts) == bool(request.prompts_from):
            raise ValueError(
                f"{run.run_dir} generates from words: give --prompt TEXT (one or more) or "
                "--prompts-from DATA, one of the two"
            )
        if (request.first_frame or request.first_frames) and not is_diffusion(run.config.model):
            raise ValueError(
                f"{run.run_dir} is a {run.config.model} run: it draws from a prompt alone; "
                "--first-frame and --first-frames need a text_diffusion run"
            )
        if request.first_frame and request.prompts_from:
            raise ValueError(
                "--first-frame goes with --prompt; with --prompts-from, --first-frames starts each "
                "clip from its own video's first frame"
            )
        if request.first_frames and not request.prompts_from:
            raise ValueError("--first-frames goes with --prompts-from DATA")
        if request.truncation != 1.0 and is_diffusion(run.config.model):
            raise ValueError(
                f"{run.run_dir} is a {run.config.model} run: --truncation scales a GAN's noise; "
                "a diffusion run samples its own"
            )
        size = run.config.image_size
        jobs = {}
        if request.prompts:
            first = None
            if request.first_frame:
                picture = read_first_frame(request.first_frame, size)
                first = np.repeat(picture[None], len(request.prompts), 0)
            jobs[out] = (list(request.prompts), first)
        else:
            for split, folder in prompt_splits(request.prompts_from).items():
                paths, texts = folder_prompts(folder)
                first = first_frames_of(paths, size) if request.first_frames else None
                jobs[out if split is None else os.path.join(out, split)] = (texts, first)
        written = sum(
            len(
                write_prompted_videos(
                    run,
                    folder,
                    texts,
                    per_prompt=request.per_prompt,
                    seed=request.seed,
                    first_frames=first,
                    truncation=request.truncation,
                    rerank=request.rerank,
                )
            )
            for folder, (texts, first) in jobs.items()
        )
        return [
            f"wrote {written} clips ({request.per_prompt} a prompt) to {out}, a JSON beside each",
            f"score them: vlm-tf score-generated ATTRIBUTES_RUN {out} --real DATA",
        ]

    def export(self, run, path):
        from vlm_tf.export import export_text_to_video

        text_encoder, vocabulary = load_text_side(run.run_dir)
        diffusion = is_diffusion(run.config.model)
        export_text_to_video(
            run.model,
            path,
            tokenizer=tokenizer(vocabulary),
            text_encoder=text_encoder,
            whitening=_whitening(run),
            diffusion=diffusion,
        )
        first = "; from_first_frame a uint8 first_frame (batch, height, width, 3) too"
        return (
            "serving_default takes prompt strings (batch,) and an int32 seed, returns uint8 frames "
            f"(batch, time, height, width, 3){first if diffusion else ''}"
        )


class PromptedClips(EpochImages):
    """Each epoch, one TensorBoard image per prompt: clips generated from it by fixed noise, so the
    images show the same samples improving.
    """

    def __init__(self, prompt_texts, embedded, log_dir, *, per_prompt=2, seed=0):
        super().__init__(log_dir)
        self.prompt_texts = prompt_texts
        self.condition = np.repeat(embedded, per_prompt, axis=0)
        self.per_prompt = per_prompt
        self.seed = seed

    def images(self, epoch, logs):
        if isinstance(self.model, VideoDiffusion):
            generated = sample_clips(self.model.denoiser, self.condition, seed=self.seed)
        else:
            generated = _draw(self.model.generator, self.condition, seed=self.seed)
        return {
            f"generated/{k}_{'_'.join(text.split())}": np.concatenate(
                [
                    clip_montage(clip)
                    for clip in generated[k * self.per_prompt : (k + 1) * self.per_prompt]
                ],
                axis=0,
            )
            for k, text in enumerate(self.prompt_texts)
        }


def is_diffusion(model_name):
    return get_model_spec(model_name).builder.endswith(":build_video_denoiser")


def _draw(generator, condition, *, seed, truncation=1.0):
    """A GAN generator's uint8 clips for `condition (N, D)`, from the noise of `seed` scaled by
    `truncation` (BigGAN's truncation trick, as a scale: below 1, clips nearer the middle of
    what the generator draws, less varied and truer to the prompt; docs/design.md).
    """
    latent_dim = generator.input_shape[0][-1]
    noise = truncation * np.random.default_rng(seed).normal(size=(len(condition), latent_dim))
    clips = generator.predict([noise.astype(np.float32), condition], batch_size=32, verbose=0)
    return np.round(np.clip(clips, 0, 255)).astype(np.uint8)


def conditions(run, texts):
    """What a finished `text_to_video` run's model is conditioned on for `texts`: their embeddings
    by the run's copy of the text encoder, whitened as in training.
    """
    return whiten(embed_texts(*load_text_side(run.run_dir), texts), _whitening(run))


def _whitening(run):
    """The `{"mean", "matrix"}` a text_to_video run whitened its captions' embeddings by."""
    path = os.path.join(run.run_dir, PROMPTING_FILE)
    prompting = atomic.read_json(path) if os.path.isfile(path) else {}
    whitening = prompting.get("whitening") if isinstance(prompting, dict) else None
    if not isinstance(whitening, dict) or not {"mean", "matrix"} <= set(whitening):
        raise ValueError(
            f"{path}: expected the text_to_video run's whitening (mean and matrix), as `vlm-tf "
            "train --task text_to_video` writes it"
        )
    return whitening


# --- using a finished run ---


def generate_from_prompts(run, prompt_texts, *, first_frames=None, seed=0, truncation=1.0):
    """Clips of a `text_to_video` run for `prompt_texts`, one each, from seeded noise: uint8
    `(N, T, H, W, 3)`; a diffusion run starts clip i from `first_frames[i]` (pixels `(N, H, W,
    3)`) when given; a GAN's noise is scaled by `truncation`.
    """
    return prompt_drawer(run, prompt_texts, first_frames=first_frames, truncation=truncation)(seed)


def prompt_drawer(run, prompt_texts, *, first_frames=None, truncation=1.0):
    """`draw(seed)`: `generate_from_prompts` at a seed, the prompts embedded once for every seed."""
    run.require("text_to_video", "generating clips from prompts")
    empty = [text for text in prompt_texts if not str(text).strip()]
    if empty or not len(prompt_texts):
        raise ValueError("every prompt needs words; received an empty one")
    condition = conditions(run, prompt_texts)
    if is_diffusion(run.config.model):
        return lambda seed: sample_clips(run.model, condition, first_frame=first_frames, seed=seed)
    if first_frames is not None:
        raise ValueError(
            f"{run.run_dir} is a {run.config.model} run: it draws from a prompt alone; a first "
            "frame needs a text_diffusion run"
        )
    return lambda seed: _draw(run.model, condition, seed=seed, truncation=truncation)


def folder_prompts(folder):
    """`(paths, prompts)`: every captioned video in `folder`'s class folders and its prompt, the
    first of `multimodal.prompts`, naming every attribute of its JSON file the picture shows.
    """
    paths, _, attributes, _ = captioned_videos(folder)
    texts = []
    for path, clip_attributes in zip(paths, attributes):
        try:
            texts.append(prompts(clip_attributes)[0])
        except KeyError as missing:
            raise ValueError(
                f"{os.path.splitext(path)[0]}.json: its attributes lack {missing}, which a prompt "
                "names (`vlm-tf make-data OUT --task multimodal` writes them all)"
            ) from None
    return paths, texts


def first_frames_of(paths, size):
    """The first frame of each video at `paths`, RGB uint8 `(N, size, size, 3)`."""
    import cv2

    from vlm_tf.data.decode import read_frames

    return np.stack(
        [
            cv2.resize(read_frames(path)[0], (size, size), interpolation=cv2.INTER_AREA)
            for path in paths
        ]
    )


def read_first_frame(path, size):
    """The picture at `path` as RGB uint8 `(size, size, 3)`, resized (area-averaged) to the run's
    frames; a one-line error for a file that is not a readable image.
    """
    import cv2

    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file (--first-frame wants a picture: png, jpg, ...)")
    picture = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if picture is None:
        raise ValueError(f"{path}: not a readable image (--first-frame wants a png, jpg, ...)")
    picture = cv2.resize(picture, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)


def write_prompted_videos(
    run, out_dir, prompt_texts, *, per_prompt=1, seed=0, first_frames=None, truncation=1.0, rerank=1
):
    """Writes `per_prompt` clips of each of `prompt_texts` as `out_dir/<motion>/generated_NNNN.mp4`
    (`prompted/` for a prompt that names no motion), each with a JSON beside it: the prompt as its
    one caption, the attributes the prompt names, the run and its text run. Clip k of a prompt
    comes from the noise stream `(seed, k)`; `first_frames` (one per prompt) start a diffusion
    run's clips. With `rerank` K > 1, clip k is the one of K candidates (streams `(seed, k, j)`)
    that the run's video_text run finds nearest the prompt (`text_side.best_candidates`).
    Returns the paths.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ValueError(f"{out_dir} already exists and is not empty; choose another folder")
    if int(per_prompt) < 1:
        raise ValueError(f"per_prompt must be a positive integer, received {per_prompt!r}")
    if int(rerank) < 1:
        raise ValueError(f"rerank must be a positive integer, received {rerank!r}")
    prompting = atomic.read_json(os.path.join(run.run_dir, PROMPTING_FILE))
    asked = [attributes_in(text) for text in prompt_texts]
    # A motion's folder is one of multimodal.MOTION_WORDS' names, never a word of the prompt.
    folders = [os.path.join(out_dir, a.get("motion", "prompted")) for a in asked]
    draw = prompt_drawer(run, prompt_texts, first_frames=first_frames, truncation=truncation)
    reranker = Reranker(prompting["text_run"], prompt_texts) if rerank > 1 else None
    clips = []
    for k in range(per_prompt):
        if reranker is None:
            clips.append(draw([seed, k]))
            continue
        candidates = np.stack([draw([seed, k, j]) for j in range(rerank)], axis=1)
        clips.append(reranker.best(candidates))
    clips = np.stack(clips, axis=1)
    counts, paths = {}, []
    for text, attributes, folder, prompt_clips in zip(prompt_texts, asked, folders, clips):
        os.makedirs(folder, exist_ok=True)
        for clip in prompt_clips:
            index = counts[folder] = counts.get(folder, -1) + 1
            stem = os.path.join(folder, f"generated_{index:04d}")
            atomic.write_json(
                stem + ".json",
                {
                    "captions": [text],
                    "attributes": attributes,
                    "generator_run": os.path.abspath(run.run_dir),
                    "text_run": prompting["text_run"],
                    "candidates": rerank,
                },
            )
            paths.append(write_video(stem + ".mp4", clip, fps=GENERATED_FPS))
    return paths
