"""Each model's training recipe, and the optimizer and learning-rate schedule a run gets from it."""

import numpy as np
import pytest

from vlm_tf.training import RunConfig
from vlm_tf.training.config import RECIPE_DEFAULTS
from vlm_tf.training.loop import make_optimizer


def test_recipe_fills_only_what_the_run_leaves_open():
    text = RunConfig(model="cnn_lstm").resolved()
    assert (text.optimizer, text.learning_rate, text.weight_decay, text.warmup_epochs) == (
        "adam",
        1e-3,
        0.0,
        0,
    )
    transformer = RunConfig(model="video_transformer").resolved()
    assert (
        transformer.optimizer == "adamw"
        and transformer.learning_rate < RECIPE_DEFAULTS["learning_rate"]
    )
    assert transformer.warmup_epochs > 0 and transformer.weight_decay > 0
    mine = RunConfig(model="video_transformer", learning_rate=5e-4, warmup_epochs=0).resolved()
    assert (mine.optimizer, mine.learning_rate, mine.warmup_epochs) == ("adamw", 5e-4, 0)
    assert RunConfig(model="video_transformer").resolved() == transformer.resolved(), (
        "resolving twice changes nothing"
    )
    text_way = RunConfig(model="video_transformer", optimizer="adam").resolved()
    assert (text_way.optimizer, text_way.weight_decay) == ("adam", 0.0), (
        "the recipe's decay goes with its adamw"
    )
    with pytest.raises(ValueError, match="weight_decay=0.1 needs optimizer='adamw'"):
        RunConfig(model="cnn_lstm", weight_decay=0.1).resolved()


@pytest.mark.parametrize(
    "field, value",
    [("optimizer", "sgd"), ("weight_decay", -0.1), ("warmup_epochs", -1), ("learning_rate", 0.0)],
)
def test_bad_optimizer_fields_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        RunConfig(**{field: value}).resolved()


def _rates(config, steps_per_epoch):
    schedule = make_optimizer(config, steps_per_epoch)._learning_rate
    return np.array(
        [
            float(schedule(step)) if callable(schedule) else float(schedule)
            for step in range(config.epochs * steps_per_epoch + 1)
        ]
    )


def test_warmup_then_cosine_to_zero():
    config = RunConfig(model="video_transformer", epochs=10).resolved()
    rates = _rates(config, steps_per_epoch=4)
    warmup = config.warmup_epochs * 4
    assert rates[0] == 0.0
    assert np.all(np.diff(rates[: warmup + 1]) > 0), "rises linearly during the warmup"
    assert rates[warmup] == pytest.approx(config.learning_rate)
    assert np.all(np.diff(rates[warmup:]) <= 1e-12), "then only falls"
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)


def test_constant_schedule_holds_after_the_warmup_and_warmup_is_at_most_half_the_run():
    rates = _rates(
        RunConfig(model="cnn_lstm", epochs=3, lr_schedule="constant", warmup_epochs=1).resolved(),
        steps_per_epoch=5,
    )
    assert rates[0] == 0.0 and np.allclose(rates[5:], 1e-3)
    rates = _rates(
        RunConfig(model="cnn_lstm", epochs=2, warmup_epochs=10).resolved(), steps_per_epoch=5
    )
    assert rates.argmax() == 5, "a warmup longer than the run is cut to half of it"
    assert np.allclose(
        _rates(RunConfig(model="cnn_lstm", epochs=2, lr_schedule="constant").resolved(), 5), 1e-3
    ), "the text's fixed rate"


def test_adamw_decays_kernels_but_not_biases_norms_or_positions():
    import keras

    config = RunConfig(
        model="video_transformer",
        epochs=1,
        learning_rate=0.1,
        weight_decay=0.5,
        warmup_epochs=0,
        lr_schedule="constant",
    ).resolved()
    optimizer = make_optimizer(config, steps_per_epoch=1)
    names = ("kernel", "bias", "gamma", "temporal_position", "class_token")
    variables = [keras.Variable(np.ones(3, "float32"), name=name) for name in names]
    optimizer.apply_gradients([(np.zeros(3, "float32"), v) for v in variables])
    after = {name: float(v.numpy()[0]) for name, v in zip(names, variables)}
    assert after["kernel"] == pytest.approx(1.0 - 0.1 * 0.5)
    assert all(after[name] == 1.0 for name in names[1:]), after
