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
    flipped_labels = {0: set(), 2: set()}
    for seed in range(30):
        for label in (0, 2):
            out, new_label = transforms.apply_with_label_map(
                transforms.horizontal_flip, clip, tf.constant(label), tf.constant([seed, 0]), table
            )
            was_flipped = np.allclose(out.numpy(), clip.numpy()[:, :, ::-1])
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
