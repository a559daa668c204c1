"""Every registered classifier built under mixed bfloat16 (what `--precision auto` picks on an
AVX512_BF16 CPU) saves, loads in a float32 process and predicts the same.

Sub-layers a custom layer makes for itself must compute in the layer's own
policy: loaded where the global policy is float32, a transformer block's
attention once returned float32 into a bfloat16 residual sum and failed.
"""

import keras
import numpy as np
import pytest

import vlm_tf.layers  # noqa: F401 - registers the custom layers for loading
from vlm_tf.models import build_model, model_names


@pytest.mark.parametrize("name", model_names())
def test_bfloat16_model_loads_and_predicts_under_float32(name, tmp_path):
    frames = np.random.default_rng(0).uniform(0, 255, (2, 8, 32, 32, 3)).astype("float32")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(name, num_classes=3, image_size=(32, 32))
        expected = np.asarray(model.predict(frames, verbose=0))
        model.save(tmp_path / "model.keras")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(loaded.predict(frames, verbose=0)), expected, atol=1e-5)
