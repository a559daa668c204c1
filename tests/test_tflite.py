"""Every registered model converts to TFLite with built-in ops only and gives the Keras model's
probabilities.
"""

import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.models import build_model, model_names
from vlm_tf.tflite import convert_to_tflite


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
    np.testing.assert_allclose(
        interpreter.get_tensor(sink["index"]), model(frames.astype("float32")), atol=1e-5
    )


@pytest.mark.slow
def test_a_mixed_precision_model_converts_as_its_float32_copy():
    """`--precision auto` trains in mixed bfloat16 on this CPU; its LSTM loop in bfloat16 would need
    the Flex delegate (TensorListReserve).
    """
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = build_model("cnn_lstm", num_classes=8, image_size=(32, 32))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.get_layer("lstm1").dtype_policy.compute_dtype == "bfloat16"
    frames = np.random.default_rng(1).integers(0, 256, (1, 4, 32, 32, 3), dtype=np.uint8)
    for quantize, clips in (("none", None), ("int8", frames)):
        interpreter = tf.lite.Interpreter(
            model_content=convert_to_tflite(
                model, num_frames=4, quantize=quantize, representative_clips=clips
            )
        )
        interpreter.allocate_tensors()
        (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.set_tensor(source["index"], frames)
        interpreter.invoke()
        # bfloat16 keeps 8 bits of mantissa: the float32 file differs from the model by its
        # round-off.
        np.testing.assert_allclose(
            interpreter.get_tensor(sink["index"]),
            model(frames.astype("float32")),
            atol=0.02 if quantize == "none" else 0.06,
        )
    # The model itself is left as it was.
    assert model.get_layer("lstm1").dtype_policy.compute_dtype == "bfloat16"
