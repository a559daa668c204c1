"""The video-text model: CLIP's loss against NumPy, a text encoder that ignores padding, and a
tiny model that learns to pair clips with their captions and survives a save and load.
"""

import numpy as np
import pytest

from vlm_tf.models.backbone import build_backbone
from vlm_tf.models.video_text import (
    VideoTextModel,
    build_text_encoder,
    caption_vectorizer,
    symmetric_info_nce,
)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_symmetric_info_nce_is_the_mean_of_both_directions_cross_entropies():
    rng = np.random.default_rng(0)
    video, text = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    v = video / np.linalg.norm(video, axis=1, keepdims=True)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = 7.0 * v @ t.T
    expected = -(np.trace(_log_softmax(logits)) + np.trace(_log_softmax(logits.T))) / 10
    loss = float(symmetric_info_nce(video.astype("float32"), text.astype("float32"), 7.0))
    assert loss == pytest.approx(expected, rel=1e-5)
    # Pairs already matched far better than any other cost little.
    assert (
        float(symmetric_info_nce(np.eye(5, dtype="float32"), np.eye(5, dtype="float32"), 50.0))
        < 1e-3
    )


def test_the_text_encoder_reads_words_not_padding():
    vectorizer = caption_vectorizer(["a red square moving left", "a blue star"], sequence_length=8)
    encoder = build_text_encoder(vectorizer.vocabulary_size(), sequence_length=8, embed_dim=16)
    tokens = np.asarray(vectorizer(["a red square moving left", "a blue star"]))
    assert (tokens[1, 3:] == 0).all() and (tokens[0, :5] > 0).all()
    embedded = np.asarray(encoder(tokens))
    # Whatever vector the padding token has, it is masked out of attention and of the mean.
    table = encoder.get_layer("token_embedding")
    weights = np.asarray(table.embeddings).copy()
    weights[0] = np.random.default_rng(1).normal(0, 5, weights.shape[1])
    table.embeddings.assign(weights)
    np.testing.assert_allclose(np.asarray(encoder(tokens)), embedded, atol=1e-5)
    # A word changed moves the embedding.
    changed = tokens.copy()
    changed[1, 1] = tokens[0, 1]
    assert np.abs(np.asarray(encoder(changed))[1] - embedded[1]).max() > 1e-4


@pytest.mark.slow
def test_a_tiny_model_learns_to_pair_clips_with_their_captions_and_saves(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    count = 8
    # Each clip a flat colour of its own; each caption names it: a pairing to learn, nothing more.
    colours = rng.uniform(0, 255, (count, 3)).astype("float32")
    frames = np.broadcast_to(colours[:, None, None, None, :], (count, 4, 32, 32, 3)).copy()
    captions = [f"clip number {word}" for word in "one two three four five six seven eight".split()]
    vectorizer = caption_vectorizer(captions, sequence_length=6)
    tokens = np.asarray(vectorizer(captions))
    model = VideoTextModel(
        build_backbone("cnn_mean", image_size=(32, 32), num_frames=4),
        build_text_encoder(vectorizer.vocabulary_size(), sequence_length=6, dim=32, embed_dim=32),
        embed_dim=32,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    inputs = {"frames": frames, "tokens": tokens}
    before = float(model.evaluate(inputs, batch_size=count, verbose=0))
    model.fit(inputs, batch_size=count, epochs=60, verbose=0)
    after = float(model.evaluate(inputs, batch_size=count, verbose=0))
    assert after < 0.5 * before, (before, after)
    embedded = model(inputs)
    similarity = np.asarray(embedded["video"]) @ np.asarray(embedded["text"]).T
    assert (similarity.argmax(axis=1) == np.arange(count)).mean() >= 0.75

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    again = loaded(inputs)
    np.testing.assert_allclose(np.asarray(again["video"]), np.asarray(embedded["video"]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(again["text"]), np.asarray(embedded["text"]), atol=1e-5)


@pytest.mark.slow
def test_a_model_that_hears_pairs_clips_that_look_alike_by_their_sound_and_saves(tmp_path):
    import keras

    from vlm_tf.models.audio_visual import build_sound_encoder

    keras.utils.set_random_seed(0)
    count, samples, rate = 6, 4000, 8000
    # One picture for every clip; each clip's tone and its caption's word differ.
    frames = np.full((count, 4, 32, 32, 3), 128.0, "float32")
    t = np.arange(samples) / rate
    audio = np.stack([0.5 * np.sin(2 * np.pi * 150 * 2 ** (k / 2) * t) for k in range(count)])
    captions = [f"a tone {word}" for word in "one two three four five six".split()]
    vectorizer = caption_vectorizer(captions, sequence_length=4)
    inputs = {
        "frames": frames,
        "tokens": np.asarray(vectorizer(captions)),
        "audio": audio.astype("float32"),
    }
    model = VideoTextModel(
        build_backbone("cnn_mean", image_size=(32, 32), num_frames=4),
        build_text_encoder(vectorizer.vocabulary_size(), sequence_length=4, dim=32, embed_dim=32),
        embed_dim=32,
        sound_encoder=build_sound_encoder(samples, sample_rate=rate),
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(inputs, batch_size=count, epochs=80, verbose=0)
    embedded = model(inputs)
    similarity = np.asarray(embedded["video"]) @ np.asarray(embedded["text"]).T
    # Chance is 1/6: the picture alone cannot tell the clips apart.
    assert (similarity.argmax(axis=1) == np.arange(count)).mean() >= 0.8

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        np.asarray(loaded(inputs)["video"]), np.asarray(embedded["video"]), atol=1e-5
    )
