"""Model builders (`build_*` → `keras.Model`) and the registry behind `--model`.

Also backbones with their presets.

Builders are resolved on first use (`vlm_tf.models.build_cnn_lstm`), so
importing the registry stays free of TensorFlow.
"""

from vlm_tf.models.registry import (
    DEFAULT_MODEL,
    MODELS,
    ModelSpec,
    build_model,
    get_model_spec,
    model_names,
    register_model,
)

_BUILDERS = {
    "attach_head": "vlm_tf.models.backbone",
    "backbone_of": "vlm_tf.models.backbone",
    "build_backbone": "vlm_tf.models.backbone",
    "classifier_from_preset": "vlm_tf.models.backbone",
    "load_backbone": "vlm_tf.models.backbone",
    "save_backbone_preset": "vlm_tf.models.backbone",
    "VideoBackbone": "vlm_tf.models.backbone",
    "build_masked_video_model": "vlm_tf.models.masked",
    "build_cnn_lstm": "vlm_tf.models.cnn_lstm",
    "build_fusion_model": "vlm_tf.models.video_gan",
    "build_video_discriminator": "vlm_tf.models.video_gan",
    "build_video_generator": "vlm_tf.models.video_gan",
}


def __getattr__(name):
    if name in _BUILDERS:
        import importlib

        return getattr(importlib.import_module(_BUILDERS[name]), name)
    raise AttributeError(f"module 'vlm_tf.models' has no attribute {name!r}")


__all__ = [
    "DEFAULT_MODEL",
    "attach_head",
    "backbone_of",
    "build_backbone",
    "classifier_from_preset",
    "load_backbone",
    "save_backbone_preset",
    "VideoBackbone",
    "build_masked_video_model",
    "MODELS",
    "ModelSpec",
    "build_cnn_lstm",
    "build_fusion_model",
    "build_model",
    "build_video_discriminator",
    "build_video_generator",
    "get_model_spec",
    "model_names",
    "register_model",
]
