"""Every registered model, saved as `.keras`, loads in a fresh process after `import vlm_tf.layers`,
predicts the same and trains.

Under TensorFlow that is what `vlm-tf evaluate` does with a run. Under JAX
it shows the models are Keras 3 code, not TensorFlow code. Each backend
runs in its own process: Keras picks its backend once, at import. Without
JAX installed (`pip install -e ".[test]"` installs it) the JAX case is
skipped, not passed.
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


BACKENDS = [
    pytest.param("tensorflow", marks=pytest.mark.slow),
    pytest.param(
        "jax",
        marks=[
            pytest.mark.slow,
            pytest.mark.skipif(
                importlib.util.find_spec("jax") is None, reason="JAX is not installed"
            ),
        ],
    ),
]


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Every registered model saved under TensorFlow with its predictions, once for both
    backends.
    """
    folder = tmp_path_factory.mktemp("saved_models")
    frames = np.random.default_rng(0).integers(0, 256, (2, 6, 32, 32, 3)).astype("float32")
    np.save(folder / "frames.npy", frames)
    names = sorted(model_names())
    for name in names:
        model = build_model(name, num_classes=3, num_frames=6, image_size=(32, 32))
        model.save(folder / f"{name}.keras")
        np.save(folder / f"{name}.npy", model.predict(frames, verbose=0))
    (folder / "names.json").write_text(json.dumps(names))
    return folder, names


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_saved_under_tensorflow_load_and_train_in_a_fresh_process(backend, saved_models):
    folder, names = saved_models
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(folder), backend],
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
