"""Streaming classification frame by frame (vlm_tf.streaming) and `vlm-tf stream`: equal to the
whole model on the last T frames, at a fraction of its encoder work.
"""

import json
import shutil

import numpy as np
import pytest
from helpers import assert_one_line_error, vlm_tf

NUM_FRAMES = 8
SIZE = 32
STREAMED_MODELS = (
    "cnn_lstm",
    "cnn_lstm_text",
    "cnn_mean",
    "cnn_soft_attention",
    "cnn_lstm_soft_attention",
    "video_transformer",
)


def _untrained(name):
    import keras

    from vlm_tf.models.registry import build_model

    keras.utils.set_random_seed(0)
    return build_model(name, num_classes=8, image_size=(SIZE, SIZE))


def _camera_frames(count):
    """Random frames of another size than the model's, as a camera's would be; noise makes every
    frame difference large.
    """
    return np.random.default_rng(1).integers(0, 256, (count, 48, 40, 3), dtype=np.uint8)


def _resized(frames):
    from vlm_tf.data.decode import resize_frame

    return np.stack([resize_frame(frame, (SIZE, SIZE)) for frame in frames]).astype(np.float32)


@pytest.mark.parametrize("name", STREAMED_MODELS)
def test_streaming_equals_the_whole_model_on_the_last_frames(name):
    from vlm_tf.streaming import StreamingClassifier

    model = _untrained(name)
    stream = StreamingClassifier(model, num_frames=NUM_FRAMES)
    assert stream.mode == ("whole_clip" if name == "video_transformer" else "per_frame")
    frames = _camera_frames(NUM_FRAMES + 5)
    resized = _resized(frames)
    for index, frame in enumerate(frames):
        step = stream.update(frame)
        assert step.frame_index == index and step.kept and step.latency_ms > 0
        if index < NUM_FRAMES - 1:
            assert not step.ready and step.probabilities is None and step.label is None
            continue
        # From the 9th frame on, the window's first frame is not the stream's:
        # its feature must be the one with a zero frame difference.
        expected = np.asarray(
            model(resized[None, index - NUM_FRAMES + 1 : index + 1], training=False)
        )[0]
        assert step.ready
        np.testing.assert_allclose(step.probabilities, expected, atol=1e-5)
        assert step.probability == step.probabilities[int(step.label)]


@pytest.mark.parametrize("name, frames_per_call", [("cnn_lstm", 3), ("cnn_mean", 1)])
def test_each_frame_is_one_encoder_call_on_at_most_three_frames(name, frames_per_call):
    """cnn_lstm has frame differences: [window start, previous, new] per frame; cnn_mean has none:
    the new frame alone.
    """
    from vlm_tf.streaming import StreamingClassifier

    stream = StreamingClassifier(_untrained(name), num_frames=NUM_FRAMES)
    encode, clip_lengths = stream._encode_clip, []

    def counting(clip, **kwargs):
        clip_lengths.append(clip.shape[1])
        return encode(clip, **kwargs)

    stream._encode_clip = counting
    for frame in _camera_frames(NUM_FRAMES + 5):
        stream.update(frame)
    # The stream's first frame is alone in its clip; recomputing the window would pass 8 frames a
    # call.
    assert clip_lengths == [1] + [frames_per_call] * (NUM_FRAMES + 4)


def test_stride_keeps_every_kth_frame():
    from vlm_tf.streaming import StreamingClassifier

    model = _untrained("cnn_lstm")
    stream = StreamingClassifier(model, num_frames=NUM_FRAMES, stride=2)
    frames = _camera_frames(2 * NUM_FRAMES + 4)
    resized = _resized(frames)
    steps = [stream.update(frame) for frame in frames]
    assert [step.kept for step in steps] == [index % 2 == 0 for index in range(len(frames))]
    assert [step.ready for step in steps].index(True) == 2 * (NUM_FRAMES - 1)
    for index in (2 * NUM_FRAMES - 2, 2 * NUM_FRAMES, 2 * NUM_FRAMES + 2):
        expected = np.asarray(
            model(resized[None, index - 2 * (NUM_FRAMES - 1) : index + 1 : 2], training=False)
        )[0]
        np.testing.assert_allclose(steps[index].probabilities, expected, atol=1e-5)
        # The skipped frame after it repeats its answer.
        np.testing.assert_array_equal(steps[index + 1].probabilities, steps[index].probabilities)


def test_bad_arguments_and_frames_raise_one_line():
    from vlm_tf.streaming import StreamingClassifier

    model = _untrained("cnn_mean")
    with pytest.raises(ValueError, match="num_frames"):
        StreamingClassifier(model)
    with pytest.raises(ValueError, match="stride"):
        StreamingClassifier(model, num_frames=NUM_FRAMES, stride=0)
    with pytest.raises(ValueError, match="2 class names"):
        StreamingClassifier(model, num_frames=NUM_FRAMES, class_names=["a", "b"])
    stream = StreamingClassifier(model, num_frames=NUM_FRAMES)
    with pytest.raises(ValueError, match="uint8 RGB"):
        stream.update(np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        stream.update(np.zeros((SIZE, SIZE, 3), np.float32))


def test_frame_stream_yields_what_read_frames_decodes(tmp_path):
    from vlm_tf.data.decode import VideoReadError, read_frame_stream, read_frames, write_video

    video = write_video(tmp_path / "clip.avi", _camera_frames(5))
    np.testing.assert_array_equal(np.stack(list(read_frame_stream(video))), read_frames(video))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoReadError, match="broken.mp4"):
        next(read_frame_stream(tmp_path / "broken.mp4"))


@pytest.fixture
def tiny_run(classify_run):
    return classify_run[0]


@pytest.mark.slow
def test_stream_command_ends_on_the_label_predict_gives_for_the_same_frames(tiny_run, tiny_dataset):
    from vlm_tf.data.decode import probe_video
    from vlm_tf.inference import load_run, predict_videos

    video = sorted((tiny_dataset / "test").glob("*/*.mp4"))[0]
    # `predict` samples T frames uniformly over the video, the stream sees the
    # last T consecutive ones: for an 8-frame video and T = 8 both are every frame.
    assert probe_video(video).num_frames == NUM_FRAMES
    done = vlm_tf("stream", tiny_run, video, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    *frames, last = [json.loads(line) for line in done.stdout.splitlines()]
    summary = last["summary"]
    assert [frame["frame"] for frame in frames] == list(range(NUM_FRAMES))
    assert [frame["ready"] for frame in frames] == [False] * (NUM_FRAMES - 1) + [True]
    [expected] = predict_videos(load_run(tiny_run), [video])
    assert summary["label"] == frames[-1]["label"] == expected["label"]
    assert summary["probability"] == pytest.approx(
        expected["probabilities"][expected["label"]], abs=1e-5
    )
    assert (
        summary["frames"] == summary["kept_frames"] == NUM_FRAMES and summary["mode"] == "per_frame"
    )
    assert 0 < summary["latency_ms"]["median"] <= summary["latency_ms"]["p95"]

    done = vlm_tf("stream", tiny_run, video, "--every", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("frame")] == [
        "3",
        "7",
    ]
    assert f"final: {expected['label']}" in done.stdout


@pytest.mark.slow
def test_stream_command_refuses_bad_input_in_one_line(tiny_run, tmp_path):
    assert_one_line_error(
        vlm_tf("stream", tiny_run, tmp_path / "gone.mp4"), "gone.mp4", "not found"
    )
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    assert_one_line_error(vlm_tf("stream", tiny_run, tmp_path / "broken.mp4"), "broken.mp4")
    # The same run folder, declared a denoising run: the task in config.json is what is checked.
    other = tmp_path / "denoise_run"
    shutil.copytree(tiny_run, other)
    config = json.loads((other / "config.json").read_text())
    config["run"]["model"] = "denoise_window"
    (other / "config.json").write_text(json.dumps(config))
    assert_one_line_error(vlm_tf("stream", other, tmp_path / "broken.mp4"), "denoise", "classify")
