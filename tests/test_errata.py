"""docs/errata.md: the claims of the text that a quick test can settle.

Each test is named in its errata section. None trains anything; the models are built with random
weights, which is enough where the point is what a layer can or cannot compute.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.data.synthetic import LABEL_MAPS, render_clip
from vlm_tf.data.transforms import augment_clip
from vlm_tf.models import build_cnn_lstm, build_model

# The text lives beside the repository (../shared/seed); a clone without it skips the tests that
# read it.
SEED_TEXT = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_a7dce6f0493f969e.txt"


def _seed_lines():
    if not SEED_TEXT.exists():
        pytest.skip(f"the text is not at {SEED_TEXT}")
    return SEED_TEXT.read_text(encoding="utf-8").splitlines()


def test_the_section_2_4_graph_is_mermaid_in_a_fence_without_the_mermaid_tag():
    """§2.4: the graph is Mermaid syntax, but its fence names no language, so nothing draws it."""
    lines = _seed_lines()
    section = next(i for i, line in enumerate(lines) if line.startswith("### 2.4"))
    opening = next(i for i in range(section, len(lines)) if lines[i].startswith("```"))
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith("```"))
    body = [line.strip() for line in lines[opening + 1 : closing]]
    assert body[0] == "graph TD"
    assert "A --> B" in body
    assert lines[opening].strip() == "```"


def _step_kernel_widths(layer, features=6):
    layer(np.zeros((1, 5, features), np.float32))
    return layer.cell.kernel.shape, layer.cell.recurrent_kernel.shape


def test_a_plain_rnn_has_no_gates_a_gru_two_and_an_lstm_three():
    """§3.2: input, forget and output gates are the LSTM's; a plain RNN has none.

    Each gate is one more block of `units` columns in the step's kernels: a plain RNN has only the
    candidate state; a GRU adds its update and reset gates; an LSTM its input, forget and output
    gates.
    """
    units, features = 4, 6
    assert _step_kernel_widths(keras.layers.SimpleRNN(units)) == ((features, units), (units, units))
    assert _step_kernel_widths(keras.layers.GRU(units)) == (
        (features, 3 * units),
        (units, 3 * units),
    )
    assert _step_kernel_widths(keras.layers.LSTM(units)) == (
        (features, 4 * units),
        (units, 4 * units),
    )


class _RecordingCell(keras.layers.Layer):
    """h_t = h_{t−1} + sum(x_t), one number per clip, recording the shape of every x_t."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state_size = 1
        self.step_shapes = []

    def call(self, inputs, states):
        self.step_shapes.append(tuple(inputs.shape))
        h = states[0] + keras.ops.sum(inputs, axis=-1, keepdims=True)
        return h, [h]


def test_each_recurrent_step_receives_one_step_of_the_sequence():
    """§4.2.1: x_t is the input at step t, a (batch, features) slice, not the input sequence."""
    cell = _RecordingCell()
    layer = keras.layers.RNN(cell, unroll=True)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    layer(x)
    cell.step_shapes.clear()
    h = layer(x)
    assert cell.step_shapes == [(2, 3)] * 5
    # The state has added up every step's slice: all five were different parts of the sequence.
    np.testing.assert_allclose(np.asarray(h)[:, 0], x.sum(axis=(1, 2)), rtol=1e-5)


def test_the_model_input_has_a_time_axis_besides_height_width_and_channels():
    """§5.2.2: the input is (batch, time, height, width, channels); a batch of frames is refused."""
    model = build_cnn_lstm(num_classes=3, image_size=(32, 32))
    assert tuple(model.input.shape) == (None, None, 32, 32, 3)
    with pytest.raises(ValueError, match="incompatible"):
        model(np.zeros((2, 32, 32, 3), np.float32))


def test_pooling_has_no_parameters_and_cuts_only_those_of_a_layer_sized_by_the_map():
    """§5.3: pooling shrinks the activations; parameters fall only where a layer reads the whole
    map.
    """
    pool = keras.layers.MaxPooling2D(2)
    assert pool(np.zeros((1, 32, 32, 8), np.float32)).shape == (1, 16, 16, 8)
    assert pool.count_params() == 0

    def params_after(layer, size):
        model = keras.Sequential([keras.Input((size, size, 8)), layer])
        return model.count_params()

    # A convolution's kernel does not depend on the size of the map it slides over.
    assert params_after(keras.layers.Conv2D(16, 3), 16) == params_after(
        keras.layers.Conv2D(16, 3), 32
    )
    # A dense layer over the flattened map does: a quarter of the inputs, about a quarter of the
    # weights.
    dense = {
        size: params_after(keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)]), size)
        for size in (16, 32)
    }
    assert dense == {16: (16 * 16 * 8 + 1) * 10, 32: (32 * 32 * 8 + 1) * 10}

    # The text's network at 64×64: pool1 holds nothing; the LSTM's input kernel is where pooling
    # shows, 4 × 64 weights for each of the 31·31·32 flattened values (62·62·32 unpooled).
    text = build_cnn_lstm(num_classes=8, image_size=(64, 64))
    assert text.get_layer("pool1").count_params() == 0
    assert text.get_layer("lstm1").count_params() == 4 * 64 * (31 * 31 * 32 + 64 + 1)


def test_an_order_blind_model_gives_a_clip_and_its_reversal_which_is_another_class_one_answer():
    """§9 Q3: a clip of `move_right` played backwards is a `move_left` clip. The order-blind
    `cnn_mean` answers both the same, so it cannot tell those classes apart; the CNN-LSTM can.
    """
    keras.utils.set_random_seed(0)
    clip, boxes, _ = render_clip("move_right", num_frames=8, size=32, seed=1)
    assert boxes[-1, 0] > boxes[0, 0] + 1  # the object moves right, so backwards it moves left
    assert LABEL_MAPS["time_reversal"]["move_right"] == "move_left"
    clips = np.stack([clip, clip[::-1]]).astype("float32")

    blind = build_model("cnn_mean", num_classes=8, image_size=(32, 32))
    forwards, backwards = np.asarray(blind(clips))
    np.testing.assert_allclose(forwards, backwards, atol=1e-6)

    temporal = build_model("cnn_lstm", num_classes=8, image_size=(32, 32))
    forwards, backwards = np.asarray(temporal(clips))
    assert np.abs(forwards - backwards).max() > 1e-4


def test_augmentation_changes_a_clips_pixels_not_its_size():
    """§9 Q4: augmentation varies the training clips; the model still reads the same tensor, so
    it computes and stores exactly as much as before, and each clip costs the augmentation on
    top.
    """
    clip, _, _ = render_clip("grow", num_frames=8, size=32, seed=2)
    clip = tf.constant(clip, tf.float32)
    augmented, label = augment_clip(clip, tf.constant(4), tf.constant([0, 7], tf.int64))
    assert augmented.shape == clip.shape
    assert augmented.dtype == clip.dtype
    assert int(label) == 4
    assert float(tf.reduce_max(tf.abs(augmented - clip))) > 1.0
