"""A clip's attributes named at once: one backbone, a softmax head per attribute.

    frames (B, T, H, W, 3) → backbone (B, F) "features"
        → Dense(K_a, softmax) for each attribute a → {a: (B, K_a)}

What `vlm-tf score-generated` checks prompted clips with (`vlm_tf.tasks.attributes`): a motion
head and a colour head trained on real clips judge whether a generated clip shows what its prompt
asked for, and the features measure how far generated clips lie from real ones.
"""

from __future__ import annotations

import keras

FEATURES = "features"


def build_attribute_classifier(
    *,
    heads,
    num_frames=None,
    image_size=(64, 64),
    encoder="cnn_lstm",
    init=None,
    name="attributes",
):
    """`{attribute: number of values}` heads on the backbone of `init` (a preset or run,
    `load_backbone`) or a fresh one of the registered classifier `encoder`.
    """
    from vlm_tf.models.backbone import build_backbone, load_backbone

    # === Config checks ===
    heads = dict(heads)
    if not heads or any(int(count) < 2 for count in heads.values()):
        raise ValueError(
            f"heads must name at least one attribute, each with at least 2 values, received {heads}"
        )

    # === Inputs ===
    if init is not None:
        backbone = load_backbone(init)
        if tuple(backbone.input_shape[2:4]) != tuple(image_size):
            raise ValueError(
                f"--init {init} sees frames of {backbone.input_shape[2]}x"
                f"{backbone.input_shape[3]}, not the {image_size[0]}x{image_size[1]} asked for; "
                "leave --size out to take the source's"
            )
    else:
        backbone = build_backbone(encoder, image_size=image_size, num_frames=num_frames)
    frames = keras.Input(backbone.input_shape[1:], name="frames")

    # === Layers ===
    features = keras.layers.Identity(name=FEATURES)(backbone(frames))
    # The softmaxes in float32 under mixed precision, as the classifiers' heads.
    outputs = {
        head: keras.layers.Dense(int(count), activation="softmax", dtype="float32", name=head)(
            features
        )
        for head, count in heads.items()
    }

    # === Functional Model ===
    return keras.Model(frames, outputs, name=name)


def with_features(model):
    """An attribute classifier that also returns its backbone's features: frames →
    `[{attribute: probabilities}, features (B, F)]`, the same layers and weights.
    """
    return keras.Model(
        model.input, [model.output, model.get_layer(FEATURES).output], name=f"{model.name}_judge"
    )
