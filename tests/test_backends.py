"""Every registered model, saved as `.keras` under TensorFlow, loads in a fresh process running
Keras on JAX after `import vlm_tf.layers`, predicts the same and trains.

It shows the models are Keras 3 code, not TensorFlow code, and that
`import vlm_tf.layers` alone registers every layer a saved model names.
Under TensorFlow the same round trip is every model's own test
(`helpers.check_model`: `.keras` saved, loaded, same outputs, one step);
it ran here in a fresh process too until the suite had to fit its time,
which the JAX process covers. Keras picks its backend once, at import,
hence the process. Without JAX installed (`pip install -e ".[test]"`
installs it) the test is skipped, not passed.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vlm_tf.models import build_model, model_names

LOADER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import keras
    import vlm_tf.layers  # registers the custom layers for loading

    folder, backend = sys.argv[1:]
    assert keras.backend.backend() == backend, keras.backend.backend()
    frames = np.load(os.path.join(folder, "frames.npy"))
    labels = keras.utils.to_categorical(np.arange(len(frames)) % 3, 3)
    results = {}
    for name in json.load(open(os.path.join(folder, "names.json"))):
        model = keras.models.load_model(os.path.join(folder, name + ".keras"))
        probabilities = np.asarray(model.predict(frames, verbose=0))
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        loss = float(model.train_on_batch(frames, labels))
        trained = np.asarray(model.predict(frames, verbose=0))
        results[name] = {
            "max_difference": float(
                np.abs(probabilities - np.load(os.path.join(folder, name + ".npy"))).max()
            ),
            "loss": loss,
            "moved_by_training": float(np.abs(trained - probabilities).max()),
        }
    print(json.dumps(results))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_models_saved_under_tensorflow_load_and_train_under_jax(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (2, 6, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "frames.npy", frames)
    names = sorted(model_names())
    for name in names:
        model = build_model(name, num_classes=3, num_frames=6, image_size=(32, 32))
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.npy", model.predict(frames, verbose=0))
    (tmp_path / "names.json").write_text(json.dumps(names))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path), "jax"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(results) == names
    for name, result in results.items():
        assert result["max_difference"] < 1e-4, (name, result)
        assert np.isfinite(result["loss"]) and result["moved_by_training"] > 1e-6, (name, result)
