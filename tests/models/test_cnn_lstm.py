import numpy as np
import pytest
from helpers import check_model

from vlm_tf.models import build_cnn_lstm, build_model, model_names


def test_the_texts_listing_fails_as_written():
    """§5.2.1 verbatim (with the undefined names given values): Conv2D cannot take a 5-D video."""
    from tensorflow.keras.layers import LSTM, Conv2D, Dense, Input, MaxPooling2D  # noqa: F401  (the text's imports)
    from tensorflow.keras.models import Model  # noqa: F401

    height, width, channels, num_classes = 64, 64, 3, 8  # noqa: F841  (the listing's names)
    input_layer = Input(shape=(None, height, width, channels))
    with pytest.raises(
        ValueError, match="Kernel shape must have the same length as input|found ndim=5"
    ):
        Conv2D(filters=32, kernel_size=(3, 3), activation="relu")(input_layer)
    # Even on one frame, the LSTM cannot take the pooled 4-D map.
    frame = Input(shape=(height, width, channels))
    pooled = MaxPooling2D(pool_size=(2, 2))(
        Conv2D(filters=32, kernel_size=(3, 3), activation="relu")(frame)
    )
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=4"):
        LSTM(units=64, activation="relu")(pooled)


def test_defaults_follow_the_text():
    model = build_cnn_lstm(num_classes=5, image_size=(32, 32))
    assert [layer.name for layer in model.layers] == [
        "input_layer",
        "rescaling",
        "conv1",
        "pool1",
        "frame_features",
        "lstm1",
        "output_layer",
    ]
    conv = model.get_layer("conv1").layer
    assert (conv.filters, conv.kernel_size, conv.activation.__name__) == (32, (3, 3), "relu")
    assert model.get_layer("pool1").layer.pool_size == (2, 2)
    assert model.get_layer("lstm1").units == 64
    assert model.get_layer("output_layer").activation.__name__ == "softmax"
    # Shape flow of the docstring: 32 → conv 30 → pool 15 → flatten 15·15·32.
    assert model.get_layer("conv1").output.shape == (None, None, 30, 30, 32)
    assert model.get_layer("pool1").output.shape == (None, None, 15, 15, 32)
    assert model.get_layer("frame_features").output.shape == (None, None, 15 * 15 * 32)
    assert model.get_layer("lstm1").activation.__name__ == "tanh"
    text = build_cnn_lstm(num_classes=5, image_size=(32, 32), lstm_activation="relu")
    assert text.get_layer("lstm1").activation.__name__ == "relu"


def test_any_clip_length():
    model = build_cnn_lstm(num_classes=3, image_size=(16, 16))
    for num_frames in (1, 4, 9):
        assert model(np.zeros((2, num_frames, 16, 16, 3), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("frame_features", ["flatten", "global_average"])
def test_frame_feature_choices(frame_features, tmp_path):
    model = build_cnn_lstm(
        num_classes=4,
        image_size=(36, 36),
        filters=(8, 8),
        frame_features=frame_features,
        lstm_units=8,
    )
    # 36 → conv 34 → pool 17 → conv 15 → pool 7.
    assert (
        model.get_layer("frame_features").output.shape[-1]
        == {"flatten": 7 * 7 * 8, "global_average": 8}[frame_features]
    )
    check_model(model, tmp_path=tmp_path)


# The default and the order-blind baseline in the quick loop (the transformer's layers have their
# own quick tests); every model in CI.
QUICK_MODELS = ("cnn_lstm", "cnn_mean")


@pytest.mark.parametrize(
    "name",
    [
        name if name in QUICK_MODELS else pytest.param(name, marks=pytest.mark.slow)
        for name in sorted(model_names())
    ],
)
def test_registered_models(name, tmp_path):
    model = build_model(name, num_classes=8, image_size=(48, 48))
    assert model.name == name
    check_model(model, tmp_path=tmp_path, num_frames=3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_classes=1), "num_classes"),
        (dict(num_classes=3, filters=()), "filters"),
        (dict(num_classes=3, frame_features="mean"), "frame_features"),
        (dict(num_classes=3, image_size=(8, 8), filters=(4, 4)), "too small"),
        (dict(num_classes=3, dropout=1.5), "dropout"),
        (dict(num_classes=3, recurrent="transformer"), "recurrent must be one of .*'transformer'"),
        (
            dict(num_classes=3, recurrent="gru", lstm_activation="relu"),
            "lstm_activation applies to recurrent='lstm' only",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_cnn_lstm(**kwargs)


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(ValueError, match="cnn_lstm_text"):
        build_model("resnet", num_classes=3)
