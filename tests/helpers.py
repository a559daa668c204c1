"""Shared test helpers: the one model check every model test calls, videos from another encoder, and
the CLI run as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

# The shared classify run's settings (conftest.classify_run).
TINY_CLASSIFY = dict(
    model="cnn_lstm",
    epochs=2,
    num_frames=8,
    image_size=32,
    batch_size=8,
    precision="float32",
    jit="off",
)


def check_model(model, *, tmp_path, num_frames=4, batch_size=2, class_names=None):
    """Output shape, config round-trip, one fit step on tf.data, .keras and SavedModel round-trips.

    The SavedModel is loaded back in a separate Python process that imports
    only TensorFlow, as a server would.
    """
    import keras
    import tensorflow as tf

    from vlm_tf.export import export_saved_model

    _, _, height, width, channels = model.input_shape
    num_classes = model.output_shape[-1]
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (batch_size, num_frames, height, width, channels), dtype=np.uint8)
    clips = frames.astype(np.float32)

    outputs = np.asarray(model(clips, training=False))
    assert outputs.shape == (batch_size, num_classes)
    np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, rtol=1e-5)

    rebuilt = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    assert rebuilt.count_params() == model.count_params()

    labels = tf.one_hot(rng.integers(0, num_classes, batch_size), num_classes)
    dataset = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(batch_size)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights))

    expected = np.asarray(model(clips, training=False))
    keras_path = os.path.join(tmp_path, "model.keras")
    model.save(keras_path)
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(keras_path)(clips, training=False)), expected, atol=1e-6
    )

    class_names = class_names or [f"class_{k}" for k in range(num_classes)]
    saved_path = export_saved_model(
        model, os.path.join(tmp_path, "saved_model"), class_names=class_names
    )
    served = serve_in_subprocess(saved_path, frames)
    np.testing.assert_allclose(np.asarray(served["probabilities"]), expected, atol=1e-5)
    assert served["class_name"] == [class_names[k] for k in expected.argmax(axis=-1)]


def serve_in_subprocess(saved_model_path, frames):
    """Runs the SavedModel's serving_default on uint8 `frames` in a process with only plain
    TensorFlow imported; probabilities, class indices and class names as lists.
    """
    out = call_signature_in_subprocess(saved_model_path, frames=frames)
    return {
        "probabilities": out["probabilities"].tolist(),
        "class_index": out["class_index"].tolist(),
        "class_name": [name.decode() for name in out["class_name"]],
    }


def write_foreign_video(path, frames, *, fps, codec):
    """Encodes RGB `frames` with FFmpeg's own encoders through PyAV (libx264, libvpx-vp9, mpeg4...).

    These are files OpenCV's writer cannot make (H.264, VP9), as a user's
    camera or download would be.
    """
    from vlm_tf.data.corpus import encode_video

    return encode_video(path, np.asarray(frames, np.uint8), fps=fps, codec=codec)


# (container, encoder, frame size (w, h), fps): every clip of the camera-motion
# set cycles through these, so each class mixes codecs, sizes and rates.
FOREIGN_FORMATS = (
    ("mp4", "libx264", (160, 120), 30),
    ("webm", "libvpx-vp9", (96, 72), 24),
    ("avi", "mpeg4", (128, 128), 15),
    ("mkv", "libx264", (112, 84), 25),
)
CAMERA_CLASSES = ("pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out")


def _texture(rng, size):
    """A natural-looking RGB texture: multi-octave noise plus random strokes and discs."""
    import cv2

    image = np.zeros((size, size, 3), np.float32)
    for octave in range(2, 7):
        cells = 2**octave
        coarse = rng.uniform(0, 1, (cells, cells, 3)).astype(np.float32)
        image += cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) / octave
    image = (image - image.min()) / (image.max() - image.min()) * 255
    for _ in range(40):
        colour = rng.uniform(0, 255, 3).tolist()
        if rng.uniform() < 0.5:
            centre = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.circle(image, centre, int(rng.integers(3, size // 12)), colour, -1, cv2.LINE_AA)
        else:
            start, end = (tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2))
            cv2.line(image, start, end, colour, int(rng.integers(1, 5)), cv2.LINE_AA)
    return image


def render_camera_clip(label, rng, width, height, num_frames):
    """A camera moving over a texture: pans and tilts move the content, zooms scale it."""
    import cv2

    source = _texture(rng, 3 * max(width, height))
    side = source.shape[0]
    view_w, view_h = side / 3, side / 3 * height / width
    cx, cy = (
        side / 2 + rng.uniform(-0.2, 0.2) * side / 3,
        side / 2 + rng.uniform(-0.2, 0.2) * side / 3,
    )
    travel = rng.uniform(0.3, 0.6) * view_w
    zoom = rng.uniform(1.4, 1.9)
    frames = []
    for t in np.linspace(0.0, 1.0, num_frames):
        x, y, scale = cx, cy, 1.0
        # Content moves left when the camera pans right, and so on: the class
        # names say what the viewer sees the content do.
        if label == "pan_left":
            x = cx + (t - 0.5) * travel
        elif label == "pan_right":
            x = cx - (t - 0.5) * travel
        elif label == "tilt_up":
            y = cy + (t - 0.5) * travel
        elif label == "tilt_down":
            y = cy - (t - 0.5) * travel
        elif label == "zoom_in":
            scale = zoom ** (-t)
        else:
            scale = zoom ** (t - 1)
        w, h = view_w * scale, view_h * scale
        box = np.float32([[x - w / 2, y - h / 2], [x + w / 2, y - h / 2], [x - w / 2, y + h / 2]])
        target = np.float32([[0, 0], [width, 0], [0, height]])
        warp = cv2.getAffineTransform(box, target)
        frame = cv2.warpAffine(
            source, warp, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        frame += rng.normal(0, 3, frame.shape)
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def write_camera_motion_dataset(root, *, train_per_class=24, test_per_class=8, seed=0):
    """`root/{train,test}/<camera class>/clip_NNN.<ext>`, encoded by FFmpeg in mixed formats.

    Different in every way from vlm_tf's own data: camera motion over
    texture instead of an object on a background, 20-45 frames at 15-30 fps,
    four frame sizes, H.264 / VP9 / MPEG-4 in mp4 / webm / avi / mkv.
    """
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label in CAMERA_CLASSES:
            folder = os.path.join(root, split, label)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                container, codec, (width, height), fps = FOREIGN_FORMATS[
                    (i + CAMERA_CLASSES.index(label)) % len(FOREIGN_FORMATS)
                ]
                frames = render_camera_clip(label, rng, width, height, int(rng.integers(20, 46)))
                write_foreign_video(
                    os.path.join(folder, f"clip_{i:03d}.{container}"), frames, fps=fps, codec=codec
                )
    return root


def text_notation_weights(layer, gates):
    """A recurrent layer's Keras weights (x·K + h·R + b, gate blocks in `gates` order) under the
    text's names.

    The text writes W_g[h_{t-1}, x_t] + b_g, so W_g = [R_g.T, K_g.T].
    """
    kernel, recurrent, bias = (np.asarray(w) for w in layer.weights)
    units = recurrent.shape[0]
    weights = {}
    for index, gate in enumerate(gates):
        part = slice(index * units, (index + 1) * units)
        weights[f"W_{gate}"] = np.concatenate([recurrent[:, part].T, kernel[:, part].T], axis=1)
        weights[f"b_{gate}"] = bias[part]
    return weights


class _HelperProcess:
    """A Python process kept for the test process's lifetime that answers one JSON line per JSON
    request line. Started on first use (and again if it died); its own stderr goes to a file,
    quoted if it dies.
    """

    def __init__(self, script):
        self.script = script
        self.process = None
        self.errors = tempfile.NamedTemporaryFile(prefix="vlm_tf_test_helper_", suffix=".log")

    def ask(self, request):
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-c", self.script],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errors,
                text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                cwd="/",
            )
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            with open(self.errors.name) as errors:
                raise AssertionError(f"the helper process exited: {errors.read()[-3000:]}")
        return json.loads(line)


# A server as a user would run one: a Python that imports TensorFlow and nothing of vlm_tf, loads
# the SavedModel and calls its signature. One such process serves every request of a test process:
# each fresh interpreter cost about 5 s of TensorFlow import, paid by some thirty tests.
_PLAIN_TENSORFLOW = _HelperProcess(
    textwrap.dedent(
        """
        import json, sys, traceback
        import numpy as np
        import tensorflow as tf
        for line in sys.stdin:
            request = json.loads(line)
            try:
                serve = tf.saved_model.load(request["model"]).signatures[request["signature"]]
                inputs = np.load(request["inputs"])
                out = serve(**{name: tf.constant(inputs[name]) for name in inputs.files})
                assert "vlm_tf" not in sys.modules
                np.savez(request["outputs"], **{k: v.numpy() for k, v in out.items()})
                reply = {"ok": True}
            except Exception:
                reply = {"ok": False, "error": traceback.format_exc()[-3000:]}
            print(json.dumps(reply), flush=True)
        """
    )
)


def call_signature_in_subprocess(saved_model_path, signature="serving_default", **inputs):
    """Runs a SavedModel's `signature` on NumPy `inputs` in a separate process with only plain
    TensorFlow imported; its outputs as NumPy arrays.
    """
    inputs_path = os.path.join(saved_model_path, os.pardir, "inputs.npz")
    outputs_path = os.path.join(saved_model_path, os.pardir, "outputs.npz")
    np.savez(inputs_path, **inputs)
    reply = _PLAIN_TENSORFLOW.ask(
        {
            "model": str(saved_model_path),
            "signature": signature,
            "inputs": inputs_path,
            "outputs": outputs_path,
        }
    )
    assert reply["ok"], reply["error"]
    # String outputs (class names) come back as object arrays.
    with np.load(outputs_path, allow_pickle=True) as outputs:
        return {name: outputs[name] for name in outputs.files}


# `vlm-tf` commands run as forks of one process that has imported TensorFlow and Keras and run
# nothing on them, so each command is a process of its own (its exit status, output, environment,
# working folder, TensorFlow runtime and locks its own) without paying the 5 s import again: some
# 150 commands in the suite. vlm_tf itself (and OpenCV, whose threads would not survive a fork) is
# imported after the fork. The kill and multi-worker tests start `python -m vlm_tf.cli` themselves.
_COMMANDS = _HelperProcess(
    textwrap.dedent(
        """
        import json, os, signal, sys, traceback
        import keras, tensorflow
        for line in sys.stdin:
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                code = 70
                try:
                    signal.alarm(request["timeout"])
                    os.chdir(request["cwd"])
                    os.environ.clear()
                    os.environ.update(request["env"])
                    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
                    from vlm_tf.cli import main
                    try:
                        code = main(request["args"])
                    except SystemExit as exit:  # argparse: errors, --help, --version
                        code = exit.code if isinstance(exit.code, int) else exit.code is not None
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
        """
    )
)
_OUTPUTS = tempfile.mkdtemp(prefix="vlm_tf_test_commands_")
# The slowest command (an acceptance run beside other work) takes about 11 minutes.
COMMAND_TIMEOUT_S = 1800


def vlm_tf(*args, cwd=None):
    """Runs `vlm-tf ARGS` in a process of its own; a `subprocess.CompletedProcess`."""
    args = [str(arg) for arg in args]
    stdout, stderr = os.path.join(_OUTPUTS, "stdout"), os.path.join(_OUTPUTS, "stderr")
    reply = _COMMANDS.ask(
        {
            "args": args,
            "cwd": os.fspath(cwd or os.getcwd()),
            "env": {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            "stdout": stdout,
            "stderr": stderr,
            "timeout": COMMAND_TIMEOUT_S,
        }
    )
    with open(stdout, encoding="utf-8") as out, open(stderr, encoding="utf-8") as err:
        return subprocess.CompletedProcess(
            ["vlm-tf", *args], reply["returncode"], out.read(), err.read()
        )


def assert_one_line_error(done, *needles):
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("vlm-tf")]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def write_fading_dataset(
    root, *, train_per_class=16, val_per_class=4, test_per_class=8, num_frames=8, size=32, seed=0
):
    """`root/{train,val,test}/{brighten,darken}/clip_NNN.mp4`: textured clips growing lighter or
    darker.

    A task any of the models learns in a few epochs at test size, for tests
    about how a run trains (workers, resuming) rather than what it can learn.
    """
    from vlm_tf.data.decode import write_video

    rng = np.random.default_rng(seed)
    ramp = np.linspace(-60, 60, num_frames)[:, None, None, None]
    for split, count in (
        ("train", train_per_class),
        ("val", val_per_class),
        ("test", test_per_class),
    ):
        for label, direction in (("brighten", 1), ("darken", -1)):
            folder = os.path.join(root, split, label)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                texture = rng.uniform(70, 185, (1, size, size, 3))
                frames = np.clip(texture + direction * ramp, 0, 255).astype(np.uint8)
                write_video(os.path.join(folder, f"clip_{i:03d}.mp4"), frames)
    return root
