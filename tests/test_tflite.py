"""Every registered model converts to TFLite with built-in ops only and gives the Keras model's probabilities."""

import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.export import convert_to_tflite
from vlm_tf.models import build_model, model_names


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(model_names()))
def test_registered_model_runs_in_the_tflite_interpreter(name):
    model = build_model(name, num_classes=8, image_size=(32, 32))
    frames = np.random.default_rng(0).integers(0, 256, (1, 4, 32, 32, 3), dtype=np.uint8)
    # Raises TFLiteConversionError, naming the ops, if anything outside the built-in set is needed.
    interpreter = tf.lite.Interpreter(model_content=convert_to_tflite(model, num_frames=4))
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert source["dtype"] == np.uint8 and tuple(source["shape"]) == (1, 4, 32, 32, 3)
    interpreter.set_tensor(source["index"], frames)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(sink["index"]), model(frames.astype("float32")), atol=1e-5)
