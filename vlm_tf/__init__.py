"""vlm_tf: the Keras/TensorFlow reference implementation of the video-large-model text."""

__version__ = "0.1.0"
