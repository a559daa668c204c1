"""The audio-visual model: modality dropout, the three fusions, the log-mel audio encoder."""

import numpy as np
import pytest

from vlm_tf.layers import ModalityDropout
from vlm_tf.models.audio_visual import build_audio_encoder, build_audio_visual_model

RATE, SAMPLES, FRAMES, SIZE, CLASSES = 16000, 8000, 4, 32, 5


def _inputs(batch, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.uniform(1, 255, (batch, FRAMES, SIZE, SIZE, 3)).astype("float32"),
        "audio": rng.uniform(-1, 1, (batch, SAMPLES)).astype("float32"),
    }


def test_modality_dropout_silences_or_blanks_a_share_of_clips_never_both_and_only_in_training():
    frames = np.ones((4000, 1, 1, 1, 1), "float32")
    audio = np.ones((4000, 3), "float32")
    layer = ModalityDropout(0.25, seed=1)
    seen, heard = (np.asarray(x) for x in layer(frames, audio, training=True))
    blanked, silenced = seen.reshape(-1) == 0, (heard == 0).all(axis=1)
    assert 0.22 < blanked.mean() < 0.28 and 0.22 < silenced.mean() < 0.28
    assert not (blanked & silenced).any()
    # What is kept is kept whole.
    assert set(np.unique(heard)) <= {0.0, 1.0}
    kept_frames, kept_audio = layer(frames, audio, training=False)
    assert np.array_equal(kept_frames, frames) and np.array_equal(kept_audio, audio)
    with pytest.raises(ValueError, match="at most|in \\[0, 0.5\\]"):
        ModalityDropout(0.6)


@pytest.fixture(scope="module")
def models():
    return {
        fusion: build_audio_visual_model(
            num_classes=CLASSES,
            num_samples=SAMPLES,
            sample_rate=RATE,
            num_frames=FRAMES,
            image_size=(SIZE, SIZE),
            encoder="cnn_mean",
            fusion=fusion,
            seed=0,
        )
        for fusion in ("early", "late", "cross_attention")
    }


def test_late_fusion_adds_the_two_heads_answers_and_the_others_learn_their_own(models):
    x = _inputs(3)
    for fusion, model in models.items():
        out = {name: np.asarray(value) for name, value in model(x, training=False).items()}
        assert {name: value.shape for name, value in out.items()} == {
            name: (3, CLASSES) for name in ("fused", "video", "audio")
        }
        added = np.allclose(out["fused"], out["video"] + out["audio"], atol=1e-5)
        assert added == (fusion == "late"), fusion
    # Cross-attention asks the sound's steps: the fused answer changes when the sound does,
    # and so does the early one.
    louder = {**x, "audio": x["audio"][:, ::-1].copy()}
    for fusion in ("early", "cross_attention"):
        model = models[fusion]
        before = np.asarray(model(x, training=False)["fused"])
        after = np.asarray(model(louder, training=False)["fused"])
        assert not np.allclose(before, after, atol=1e-4), fusion


def test_the_model_saves_and_loads_with_the_same_answers(models, tmp_path):
    import keras

    x = _inputs(2, seed=3)
    path = tmp_path / "av.keras"
    models["cross_attention"].save(path)
    loaded = keras.models.load_model(path)
    for name in ("fused", "video", "audio"):
        np.testing.assert_allclose(
            loaded(x, training=False)[name],
            models["cross_attention"](x, training=False)[name],
            atol=1e-5,
        )


def test_the_audio_encoder_tells_a_low_tone_from_a_high_one_and_keeps_silence_finite():
    import keras

    keras.utils.set_random_seed(0)
    encoder = build_audio_encoder(SAMPLES, sample_rate=RATE, dim=16)
    t = np.arange(SAMPLES) / RATE
    tones = np.stack(
        [0.5 * np.sin(2 * np.pi * hz * t) for hz in (220, 230, 880)] + [np.zeros(SAMPLES)]
    ).astype("float32")
    tokens = np.asarray(encoder(tones))
    assert tokens.shape == (4, SAMPLES // 160 // 8 + 1, 16) and np.isfinite(tokens).all()
    pooled = tokens.mean(axis=1)
    near = np.linalg.norm(pooled[0] - pooled[1])
    far = np.linalg.norm(pooled[0] - pooled[2])
    # Untrained: only the log-mel front end can make 220 Hz nearer 230 Hz than 880 Hz.
    assert far > near


def test_an_unknown_fusion_is_refused_by_name():
    with pytest.raises(ValueError, match="fusion must be one of"):
        build_audio_visual_model(
            num_classes=2, num_samples=SAMPLES, sample_rate=RATE, num_frames=FRAMES,
            image_size=(SIZE, SIZE), fusion="middle",
        )  # fmt: skip
