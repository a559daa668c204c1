import numpy as np
import tensorflow as tf

from vlm_tf.data import transforms
from vlm_tf.data.synthetic import CLASS_NAMES, LABEL_MAPS


def _clip(seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(0, 255, (6, 20, 24, 3)), tf.float32)


def test_crop_and_colour_are_the_same_for_every_frame():
    static = tf.repeat(_clip()[:1], 6, axis=0)
    for transform in (transforms.random_crop_resize, transforms.random_colour):
        out = transform(static, tf.constant([4, 2])).numpy()
        assert out.shape == static.shape
        assert not np.allclose(out, static.numpy())
        # A static clip stays static: the transform adds no motion.
        np.testing.assert_allclose(out, np.repeat(out[:1], 6, axis=0), atol=1e-4)
        assert out.min() >= 0 and out.max() <= 255


def test_label_map_table():
    table = transforms.label_map_table(LABEL_MAPS["horizontal_flip"], CLASS_NAMES).numpy()
    assert CLASS_NAMES[table[CLASS_NAMES.index("move_left")]] == "move_right"
    assert CLASS_NAMES[table[CLASS_NAMES.index("rotate_cw")]] == "rotate_ccw"
    assert CLASS_NAMES[table[CLASS_NAMES.index("grow")]] == "grow"
    partial = transforms.label_map_table({"a": "b"}, ["a", "b", "c"]).numpy()
    np.testing.assert_array_equal(partial, [1, -1, -1])


def test_flip_relabels_and_never_flips_unmapped_classes():
    clip = _clip()
    table = transforms.label_map_table(
        {"left": "right", "right": "left"}, ["left", "right", "other"]
    )
    whole_frame = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    flipped_labels = {0: set(), 2: set()}
    for seed in range(30):
        for label in (0, 2):
            draws, new_label = transforms.augmentation_draws(
                tf.constant(label),
                tf.constant([seed, 0], tf.int64),
                label_map_tables={"horizontal_flip": table},
            )
            out = transforms.crop_resize_batch(
                clip[None], whole_frame, mirrored=draws["horizontal_flip"][None]
            )[0]
            was_flipped = np.allclose(out.numpy(), clip.numpy()[:, :, ::-1], atol=1e-3)
            flipped_labels[label].add((was_flipped, int(new_label)))
    assert flipped_labels[0] == {(True, 1), (False, 0)}
    assert flipped_labels[2] == {(False, 2)}


def test_augment_clip_is_reproducible_per_seed():
    clip, label = _clip(), tf.constant(0)
    tables = {
        name: transforms.label_map_table(LABEL_MAPS[name], CLASS_NAMES) for name in LABEL_MAPS
    }
    a = transforms.augment_clip(clip, label, tf.constant([1, 1]), label_map_tables=tables)
    b = transforms.augment_clip(clip, label, tf.constant([1, 1]), label_map_tables=tables)
    c = transforms.augment_clip(clip, label, tf.constant([2, 1]), label_map_tables=tables)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    assert not np.allclose(a[0].numpy(), c[0].numpy())


def test_a_batch_is_augmented_as_each_of_its_clips_alone():
    """`augment_batch` applies every clip's own draws: the same clips as `augment_clip` on each,
    the mirror and the time reversal folded into the crop included.
    """
    clips = tf.stack([_clip(seed) for seed in range(6)])
    labels = tf.constant([CLASS_NAMES.index(name) for name in ("move_left", "rotate_cw") * 3])
    tables = {
        name: transforms.label_map_table(LABEL_MAPS[name], CLASS_NAMES) for name in LABEL_MAPS
    }
    seeds = [tf.constant([seed, 5], tf.int64) for seed in range(6)]
    drawn = [
        transforms.augmentation_draws(label, seed, label_map_tables=tables)
        for label, seed in zip(labels, seeds)
    ]
    draws = {name: tf.stack([d[name] for d, _ in drawn]) for name in drawn[0][0]}
    # Both label-mapped transforms apply to some clips and not to others.
    assert 0 < int(tf.reduce_sum(tf.cast(draws["horizontal_flip"], tf.int32))) < 6
    assert 0 < int(tf.reduce_sum(tf.cast(draws["time_reversal"], tf.int32))) < 6
    batch = transforms.augment_batch(clips, draws).numpy()
    for k, (clip, label, seed) in enumerate(zip(clips, labels, seeds)):
        alone, new_label = transforms.augment_clip(clip, label, seed, label_map_tables=tables)
        np.testing.assert_allclose(batch[k], alone.numpy(), atol=1e-3)
        assert int(new_label) == int(drawn[k][1])


def test_a_box_turned_round_mirrors_the_crop_and_reordered_sources_reverse_time():
    clips = tf.stack([_clip(0), _clip(1)])
    boxes = tf.constant([[0.1, 0.05, 0.9, 0.8], [0.0, 0.2, 0.85, 1.0]])
    plain = transforms.crop_resize_batch(clips, boxes).numpy()
    turned = transforms.crop_resize_batch(
        clips, boxes, mirrored=tf.constant([True, False]), reversed_=tf.constant([False, True])
    ).numpy()
    np.testing.assert_allclose(turned[0], plain[0][:, :, ::-1], atol=1e-3)
    np.testing.assert_allclose(turned[1], plain[1][::-1], atol=1e-3)
