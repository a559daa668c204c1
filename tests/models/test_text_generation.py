"""Generation from words: the prompts made from a clip's attributes and read back from text, and
§3.3's sprite GAN conditioned on a vector instead of a label (what a caption's embedding feeds).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.data.multimodal import (
    COLOURS,
    MOTION_WORDS,
    attributes_in,
    captions,
    draw_attributes,
    partial_captions,
    prompts,
)
from vlm_tf.models.adversarial import TextVideoGAN
from vlm_tf.models.video_gan import build_video_discriminator, build_video_generator
from vlm_tf.models.video_text import VideoTextModel
from vlm_tf.tasks.text_side import best_candidates, fit_whitening, whiten
from vlm_tf.tasks.video_text import PROMPT_TEMPLATES


def test_every_caption_and_prompt_reads_back_as_the_attributes_it_was_made_from():
    rng = np.random.default_rng(0)
    for k in range(64):
        attributes = draw_attributes(rng, list(MOTION_WORDS)[k % 8], list(COLOURS))
        for text in captions(attributes) + prompts(attributes):
            found = attributes_in(text)
            assert {"motion", "colour", "shape"} <= set(found), text
            assert all(attributes[name] == value for name, value in found.items()), text
    assert prompts(attributes)[0].startswith(f"a {attributes['size']} {attributes['colour']}")
    assert attributes_in("a red star moving left quickly") == {
        "colour": "red",
        "shape": "star",
        "motion": "move_left",
        "speed": "fast",
    }
    # Two colours named: which one the clip has is not said, so neither is read.
    assert "colour" not in attributes_in("a red or blue star that grows")


def test_partial_captions_leave_attributes_out_and_never_phrase_a_prompt_template():
    rng = np.random.default_rng(1)
    template_starts = tuple(t.split("{")[0] for t in PROMPT_TEMPLATES)
    for k in range(48):
        attributes = draw_attributes(rng, list(MOTION_WORDS)[k % 8], list(COLOURS))
        named = [attributes_in(text) for text in partial_captions(attributes)]
        for text, found in zip(partial_captions(attributes), named):
            assert all(attributes[name] == value for name, value in found.items()), text
            assert not text.startswith(template_starts), text
            assert text.split()[0] == ("an" if text.split()[1][0] in "aeiou" else "a"), text
        # The motion without the colour, and the colour without the motion.
        assert any("motion" in f and "colour" not in f for f in named)
        assert any("colour" in f and "motion" not in f for f in named)


def test_the_conditioned_players_take_a_vector_and_name_each_head():
    generator = build_video_generator(
        condition_dim=5, latent_dim=8, num_frames=4, image_size=(8, 8), filters=16, motion_units=8
    )
    condition = np.eye(5, dtype=np.float32)[[0, 3]]
    clips = np.asarray(generator([np.zeros((2, 8), np.float32), condition]))
    assert clips.shape == (2, 4, 8, 8, 3) and not np.allclose(clips[0], clips[1], atol=1e-3)
    discriminator = build_video_discriminator(
        condition_dim=5,
        heads={"motion": 8, "colour": 6},
        num_frames=4,
        image_size=(8, 8),
        filters=4,
    )
    logit, motion, colour = discriminator([clips, condition])
    assert (logit.shape, motion.shape, colour.shape) == ((2, 1), (2, 8), (2, 6))
    # The projection: the same clips beside other captions score differently.
    assert not np.allclose(logit, discriminator([clips, condition[::-1]])[0])
    with pytest.raises(ValueError, match="one of num_classes .* and condition_dim"):
        build_video_generator(num_classes=3, condition_dim=5)


@pytest.mark.slow
def test_a_text_conditioned_gan_learns_which_colour_a_condition_asks_for():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    which = rng.integers(0, 2, 128)
    clips = np.full((128, 4, 8, 8, 3), 128.0, np.float32)
    for clip, colour, x in zip(clips, which, rng.integers(0, 5, 128)):
        clip[:, 2:5, x : x + 3] = (220, 30, 30) if colour == 0 else (30, 30, 220)
    batches = (
        tf.data.Dataset.from_tensor_slices(
            {
                "frames": clips,
                "condition": np.eye(2, dtype=np.float32)[which],
                "colour": which.astype(np.int32),
            }
        )
        .shuffle(128, seed=0)
        .batch(16)
        .repeat()
    )
    generator = build_video_generator(
        condition_dim=2, latent_dim=8, num_frames=4, image_size=(8, 8), filters=16, motion_units=8
    )
    discriminator = build_video_discriminator(
        condition_dim=2, heads={"colour": 2}, num_frames=4, image_size=(8, 8), filters=8
    )
    gan = TextVideoGAN(generator, discriminator, heads=("colour",), seed=0)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(6e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
    )
    gan.fit(batches, steps_per_epoch=200, epochs=1, verbose=0)
    noise = rng.normal(size=(32, 8)).astype(np.float32)
    red_minus_blue = [
        float(np.mean(np.diff(np.asarray(generator([noise, np.tile(c, (32, 1))]))[..., [2, 0]])))
        for c in np.eye(2, dtype=np.float32)
    ]
    # Condition 0 was always a red object, condition 1 a blue one.
    assert red_minus_blue[0] > 5 and red_minus_blue[1] < -5, red_minus_blue


def test_whitened_caption_embeddings_have_unit_covariance_and_a_faint_direction_grows():
    rng = np.random.default_rng(0)
    # Unit vectors that differ mostly along one direction and faintly along another (a colour).
    loud, faint = rng.normal(size=(400, 1)), rng.normal(size=(400, 1))
    embeddings = np.concatenate([loud, 0.05 * faint, 0.5 * rng.normal(size=(400, 6))], axis=1)
    whitening = fit_whitening(embeddings)
    whitened = whiten(embeddings, whitening)
    np.testing.assert_allclose(np.cov(whitened, rowvar=False), np.eye(8), atol=1e-4)
    np.testing.assert_allclose(whitened.mean(axis=0), 0.0, atol=1e-5)
    # One standard deviation along the faint direction moves a whitened embedding as far as one
    # along the loud direction, where before it moved it 20 times less.
    centre = embeddings.mean(axis=0)
    steps = np.stack(
        [centre, centre + [1.0, 0, 0, 0, 0, 0, 0, 0], centre + [0, 0.05, 0, 0, 0, 0, 0, 0]]
    )
    moved = np.linalg.norm(whiten(steps, whitening)[1:] - whiten(steps, whitening)[:1], axis=1)
    assert 0.5 < moved[1] / moved[0] < 2.0, moved


# The text embeddings of "red" and "blue" in `_colour_guide`'s space.
TEXTS = (np.array([[1.0, -1.0], [-1.0, 1.0]]) / np.sqrt(2.0)).astype(np.float32)


def _colour_guide():
    """A `VideoTextModel` whose video embedding is a clip's mean red and blue less mid-grey: a
    red object on grey is nearest the text embedding (1, -1)/√2, a blue one (-1, 1)/√2.
    """
    clips = keras.Input((None, 8, 8, 3))
    backbone = keras.Model(clips, keras.layers.GlobalAveragePooling3D()(clips))
    tokens = keras.Input((1,))
    text_encoder = keras.Model(tokens, keras.layers.Dense(2)(tokens))
    guide = VideoTextModel(backbone, text_encoder, embed_dim=2)
    guide.video_projection.build((None, 3))
    red_and_blue = np.array([[1, 0], [0, 0], [0, 1]]) / 64.0
    guide.video_projection.set_weights([red_and_blue, -np.full(2, 128 / 64.0)])
    return guide


def _colour_batches(which):
    rng = np.random.default_rng(1)
    clips = np.full((len(which), 4, 8, 8, 3), 128.0, np.float32)
    for clip, colour, x in zip(clips, which, rng.integers(0, 5, len(which))):
        clip[:, 2:5, x : x + 3] = (220, 30, 30) if colour == 0 else (30, 30, 220)
    return (
        tf.data.Dataset.from_tensor_slices(
            {
                "frames": clips,
                "condition": TEXTS[which],
                "text": TEXTS[which],
                "colour": which.astype(np.int32),
            }
        )
        .shuffle(len(which), seed=0)
        .batch(16)
        .repeat()
    )


def _colour_gap(guidance_weight, steps=150):
    """How much redder than bluer a generator's clips are when the text asks for red, less when
    it asks for blue, after `steps` of GAN training without D's colour head; and the guide
    (None without guidance) with its weights before training.
    """
    keras.utils.set_random_seed(0)
    generator = build_video_generator(
        condition_dim=2, latent_dim=8, num_frames=4, image_size=(8, 8), filters=16, motion_units=8
    )
    discriminator = build_video_discriminator(
        condition_dim=2, heads={"colour": 2}, num_frames=4, image_size=(8, 8), filters=8
    )
    guide = _colour_guide() if guidance_weight else None
    before = guide.get_weights() if guide else None
    gan = TextVideoGAN(generator, discriminator, heads=("colour",), guide=guide, seed=0)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(6e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        class_weight=0.0,
        guidance_weight=guidance_weight,
    )
    which = np.random.default_rng(0).integers(0, 2, 64)
    gan.fit(_colour_batches(which), steps_per_epoch=steps, epochs=1, verbose=0)
    noise = np.random.default_rng(5).normal(size=(32, 8)).astype(np.float32)
    red_minus_blue = [
        float(np.mean(np.diff(np.asarray(generator([noise, np.tile(text, (32, 1))]))[..., [2, 0]])))
        for text in TEXTS
    ]
    return red_minus_blue[0] - red_minus_blue[1], gan, before


@pytest.mark.slow
def test_clip_guidance_teaches_the_generator_and_leaves_the_guide_as_it_was():
    unguided, _, _ = _colour_gap(0.0)
    guided, gan, before = _colour_gap(1.0)
    # D's projection alone tells red from blue a little; the guide, which knows the colours
    # already, teaches G much faster (measured: 143 against 39 pixel values).
    assert guided > unguided + 50, (guided, unguided)
    assert "guidance" in [metric.name for metric in gan.metrics]
    for was, now in zip(before, gan.guide.get_weights()):
        np.testing.assert_array_equal(was, now)
    with pytest.raises(ValueError, match="needs a guide"):
        TextVideoGAN(gan.generator, gan.discriminator, heads=("colour",)).compile(
            d_optimizer="adam", g_optimizer="adam", guidance_weight=1.0
        )


def test_reranking_keeps_the_candidate_the_guide_finds_nearest_each_prompt():
    """Three candidates a prompt, drawn at twice the guide's frame size: grey, a red square and a
    blue one, in a different order for each prompt; the red prompt keeps the red one, the blue
    prompt the blue one.
    """
    candidates = np.full((2, 3, 4, 16, 16, 3), 128, np.uint8)
    order = [(0, 1, 2), (2, 0, 1)]  # where the grey, red and blue candidates lie, for each prompt
    for prompt, (_, red, blue) in enumerate(order):
        candidates[prompt, red, :, 4:12, 4:12] = (220, 30, 30)
        candidates[prompt, blue, :, 4:12, 4:12] = (30, 30, 220)
    best = best_candidates(_colour_guide(), TEXTS, candidates, batch=4)
    np.testing.assert_array_equal(best, [order[0][1], order[1][2]])
