"""Training steps with TensorFlow's oneDNN kernels on and off, and whether TensorFlow turns them on
by itself on this machine.

    python benchmarks/onednn.py [--steps 5] [--rounds 3]

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it starts; left unset,
it turns oneDNN on only where the processor has AVX-512 VNNI, BF16 or AMX.
`import vlm_tf` sets it to 1 unless the caller chose otherwise. Each
setting times, in a process of its own, one training step of the default
classifier (`cnn_lstm`, 16 frames of 64x64, batch 8) and one of the GAN's
discriminator (Conv3D layers, 16 frames of 32x32, batch 8, the gradient
with respect to its weights and its input, as the generator's step needs),
on random clips after a warm-up; the two settings take turns round after
round so a slow spell of the machine falls on both. Prints the median
seconds per step and the ratios.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

STEPS = r"""
import json, sys, time
import numpy as np, tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
from vlm_tf.models import build_model
from vlm_tf.models.video_gan import build_video_discriminator

steps = int(sys.argv[1])
rng = np.random.default_rng(0)


def median_seconds(step):
    step()
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


classifier = build_model("cnn_lstm", num_classes=8, image_size=(64, 64))
classifier.compile(optimizer="adam", loss="categorical_crossentropy")
clips = rng.uniform(0, 255, (8, 16, 64, 64, 3)).astype("float32")
labels = np.eye(8, dtype="float32")[rng.integers(0, 8, 8)]

discriminator = build_video_discriminator(num_classes=8, num_frames=16, image_size=(32, 32))
small = tf.constant(rng.uniform(0, 255, (8, 16, 32, 32, 3)).astype("float32"))
classes = tf.constant(rng.integers(0, 8, 8).astype("int32"))


@tf.function
def discriminator_step():
    with tf.GradientTape() as tape:
        tape.watch(small)
        logit, class_logits = discriminator([small, classes], training=True)
        loss = tf.reduce_mean(logit) + tf.reduce_mean(class_logits)
    return tape.gradient(loss, [small, *discriminator.trainable_variables])


print(json.dumps({
    "onednn": bool(_pywrap_util_port.IsMklEnabled()),
    "classifier": median_seconds(lambda: classifier.train_on_batch(clips, labels)),
    "discriminator": median_seconds(discriminator_step),
}))
"""

# What TensorFlow chooses by itself: a process that never imports vlm_tf, the variable unset.
TENSORFLOWS_CHOICE = (
    "from tensorflow.python.util import _pywrap_util_port; print(_pywrap_util_port.IsMklEnabled())"
)


def run(script, *args, onednn=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chosen = run(TENSORFLOWS_CHOICE) == "True"
    print(f"TensorFlow's own choice here: oneDNN {'on' if chosen else 'off'}")
    seconds = {setting: {"classifier": [], "discriminator": []} for setting in ("1", "0")}
    for _ in range(args.rounds):
        for setting in seconds:
            result = json.loads(run(STEPS, str(args.steps), onednn=setting))
            assert result["onednn"] == (setting == "1"), result
            for part in ("classifier", "discriminator"):
                seconds[setting][part].append(result[part])
    print(
        f"{os.cpu_count()} cores, float32, batch 8, median of {args.steps} steps x {args.rounds} "
        "rounds"
    )
    for part, what in (
        ("classifier", "default classifier step (cnn_lstm, 16x64x64)"),
        ("discriminator", "GAN discriminator gradient (Conv3D, 16x32x32)"),
    ):
        on, off = (float(np.median(seconds[setting][part])) for setting in ("1", "0"))
        print(f"{what:48s} on {on:8.4f} s  off {off:8.4f} s  off / on {off / on:6.1f}x")


if __name__ == "__main__":
    main()
