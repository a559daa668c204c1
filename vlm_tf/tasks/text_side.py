"""The text side of a `text_to_video` run: the frozen text encoder of a finished `video_text`
run (or the run's own copy of it), and the whitening that maps its caption embeddings to what the
generator is conditioned on.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from vlm_tf.tasks.video_text import VOCABULARY_FILE, tokenizer

TEXT_ENCODER_FILE = "text_encoder.keras"


def load_text_side(folder):
    """`(text_encoder, vocabulary)` of a finished `video_text` run, or of a `text_to_video` run
    (which keeps a copy); a one-line error for a folder that holds neither.
    """
    folder = os.fspath(folder)
    own = os.path.join(folder, TEXT_ENCODER_FILE)
    model_path = own if os.path.isfile(own) else os.path.join(folder, "model.keras")
    if not os.path.isfile(model_path):
        _not_a_text_run(folder)
    vocabulary = read_vocabulary(folder)
    model = keras.saving.load_model(model_path)
    text_encoder = model if model_path == own else getattr(model, "text_encoder", None)
    if text_encoder is None:
        raise ValueError(f"{folder}: its model.keras is not a video_text model ({model.name})")
    return text_encoder, vocabulary


def read_vocabulary(folder):
    """The tokenizer's vocabulary a `video_text` run (or a `text_to_video` run's copy) keeps."""
    path = os.path.join(os.fspath(folder), VOCABULARY_FILE)
    if not os.path.isfile(path):
        _not_a_text_run(folder)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _not_a_text_run(folder):
    raise ValueError(
        f"{folder}: expected a finished video_text run (model.keras and {VOCABULARY_FILE}; "
        "`vlm-tf train DATA --task video_text`)"
    )


def load_guide(folder, *, wanted_by="--guidance", instead="pass --guidance 0 to train without it"):
    """The `VideoTextModel` of the finished `video_text` run at `folder`, which guides a GAN
    (`TextVideoGAN`) and whose `text_encoder` then embeds the captions (the model is loaded
    once), or reranks generated clips (`best_candidates`); a one-line error, naming the option
    that `wanted_by` it and what to do `instead`, for any other folder or for a model that hears
    (the generators draw no sound).
    """
    path = os.path.join(os.fspath(folder), "model.keras")
    model = keras.saving.load_model(path) if os.path.isfile(path) else None
    if not hasattr(model, "embed_video"):
        raise ValueError(
            f"{folder}: {wanted_by} wants a video_text run's model.keras (its video encoder judges "
            f"the generated clips); {instead}"
        )
    if model.sound_encoder is not None:
        raise ValueError(
            f"{folder}: a video_text run trained --with-sound cannot judge clips without sound; "
            f"{wanted_by} wants one trained without it; {instead}"
        )
    return model


def best_candidates(guide, prompt_embeddings, candidates, batch=64):
    """Index `(N,)` of the candidate clip of each prompt that `guide` (a `VideoTextModel`) finds
    nearest its prompt: `candidates` are pixel clips `(N, K, T, H, W, 3)`, `prompt_embeddings`
    the prompts' unit embeddings `(N, D)` by the guide's text encoder. DALL·E's reranking by CLIP
    (Ramesh et al., 2021), here by the video_text run the generator's captions came from.
    """
    count, per = candidates.shape[:2]
    flat = candidates.reshape(count * per, *candidates.shape[2:])
    video = np.concatenate(
        [
            np.asarray(guide.embed_frames_of_any_size(flat[i : i + batch].astype(np.float32)))
            for i in range(0, len(flat), batch)
        ]
    ).reshape(count, per, -1)
    return np.einsum("nkd,nd->nk", video, prompt_embeddings).argmax(axis=1)


class Reranker:
    """Keeps, of each prompt's candidate clips, the one the video_text run at `text_run` finds
    nearest the prompt (`generate --rerank`).
    """

    def __init__(self, text_run, prompt_texts):
        self.guide = load_guide(text_run, wanted_by="--rerank", instead="generate without --rerank")
        vocabulary = read_vocabulary(text_run)
        self.prompts = embed_texts(self.guide.text_encoder, vocabulary, prompt_texts)

    def best(self, candidates):
        """The kept clip of each prompt, `(N, T, H, W, 3)`, of `candidates` `(N, K, T, H, W, 3)`."""
        chosen = best_candidates(self.guide, self.prompts, candidates)
        return candidates[np.arange(len(candidates)), chosen]


def fit_whitening(embeddings, floor=1e-3):
    """`{"mean", "matrix"}` that map `embeddings` `(N, D)` to mean 0 and unit covariance (PCA
    whitening), each direction's variance floored at `floor` of the largest.

    A contrastive text encoder spends most of its 64 values on what tells captions apart in
    retrieval; on the multimodal captions the colours differ by cosines of 0.96-0.99 ("a blue
    arrow moving left" against "a cyan arrow moving left"). Whitened, every direction the captions
    vary in reaches the generator at the same scale, a colour's as much as a motion's.
    """
    mean = embeddings.mean(axis=0)
    variances, directions = np.linalg.eigh(np.cov(embeddings - mean, rowvar=False))
    variances = np.maximum(variances, floor * variances.max())
    return {"mean": mean.tolist(), "matrix": (directions / np.sqrt(variances)).tolist()}


def whiten(embeddings, whitening):
    """`embeddings` `(N, D)` whitened by `fit_whitening`'s result, float32."""
    centred = np.asarray(embeddings, np.float64) - np.asarray(whitening["mean"])
    return (centred @ np.asarray(whitening["matrix"])).astype(np.float32)


def embed_texts(text_encoder, vocabulary, texts):
    """`(N, D)` unit embeddings of `texts` by a video_text run's text encoder."""
    tokens = np.asarray(tokenizer(vocabulary)(list(texts)))
    embedded = np.concatenate(
        [
            np.asarray(text_encoder(tokens[i : i + 256]), np.float32)
            for i in range(0, len(tokens), 256)
        ]
    )
    return embedded / np.maximum(np.linalg.norm(embedded, axis=1, keepdims=True), 1e-12)
