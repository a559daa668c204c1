"""vlm_tf: the Keras/TensorFlow reference implementation of the video-large-model text."""

import os

# TensorFlow turns its oneDNN kernels on by itself only where the processor has AVX-512 VNNI, BF16
# or AMX. Elsewhere (an AMD EPYC without AVX-512) its own kernels train the default model at half
# the speed and take a Conv3D's gradient some 140 times longer, which made the GAN's discriminator
# the whole of a run (docs/benchmarks.md, "TensorFlow without oneDNN"). Read once, when TensorFlow
# starts, so it is set before any module here imports TensorFlow; a value the caller set is kept.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
