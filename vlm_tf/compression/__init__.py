"""Making a trained classifier smaller and faster to serve (§8), and measuring its cost in accuracy.

`quantize` writes a classify run's TFLite file with its weights (and, for
int8, its activations) in fewer bits, and evaluates such a file on a
folder of videos. The quantization modes are named here, free of
TensorFlow, so the command line can list them without importing it.
"""

# Post-training quantization modes, from none to most (vlm_tf.tflite.convert_to_tflite):
#   none     float32 weights and arithmetic
#   float16  float16 weights, turned back into float32 when the file loads: half the size,
#            float arithmetic
#   dynamic  int8 weights; activations quantized on the fly, per op, where a kernel can
#   int8     int8 weights and activations, the activations' ranges calibrated on real clips
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
