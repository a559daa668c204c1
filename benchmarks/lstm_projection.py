"""Training-step clips/s of the default model with its LSTM's input projection inside Keras' time
loop against taken out of it (`vlm_tf.layers.LSTM`), on this CPU.

    python benchmarks/lstm_projection.py [--precision mixed_bfloat16] [--rounds 6]

Both models are the registered default (`cnn_lstm`) with the same weights; in one its LSTM is
replaced by a stock `keras.layers.LSTM` of the same configuration (Keras' own loop, which on a GPU
becomes cuDNN's fused kernel). They are timed in alternating rounds of three steps in one process
and the ratio printed.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vlm_tf.bench_peers import peer_batch  # noqa: E402
from vlm_tf.layers import recurrent  # noqa: E402
from vlm_tf.models import build_model  # noqa: E402

KERAS_LOOP = "Keras' loop"


def _stock_lstm(layer):
    """`layer` again, or Keras' own LSTM where it is vlm_tf's."""
    if isinstance(layer, recurrent.LSTM):
        return keras.layers.LSTM.from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.precision)
    x, y = peer_batch((8, 16, 64, 64, 3), 8)
    projected = build_model("cnn_lstm", num_classes=8, image_size=(64, 64))
    stock = keras.models.clone_model(projected, clone_function=_stock_lstm)
    stock.set_weights(projected.get_weights())
    models = {KERAS_LOOP: stock, "projected": projected}
    for model in models.values():
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.train_on_batch(x, y)
        model.train_on_batch(x, y)
    times = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            for _ in range(3):
                start = time.perf_counter()
                model.train_on_batch(x, y)
                times[name].append(time.perf_counter() - start)
    rates = {name: len(x) / float(np.median(values)) for name, values in times.items()}
    for name, rate in rates.items():
        print(f"{name:<12s} {rate:7.1f} clips/s")
    ratio = rates["projected"] / rates[KERAS_LOOP]
    print(f"projected / Keras' loop: {ratio:.2f}x ({args.precision})")


if __name__ == "__main__":
    main()
