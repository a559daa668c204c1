"""The options each task adds to a run's configuration, light enough for the command line's
`--help`.

A task's options are a frozen dataclass; each field is a `train` option
(`--noise-sigma` for `noise_sigma`), with its help text and checks in the
field's metadata, and a key of the run's `config.json`. Tasks without
options of their own take `NoOptions`.
"""

from __future__ import annotations

import dataclasses

from vlm_tf.models.registry import AV_FUSIONS, GAN_LOSSES, MODELS

# Super-resolution factors with measured models (docs/design.md).
SCALES = (2, 4)

# `--augment robust`'s clip and corrupted copies, and their consistency term's weight, as
# measured (docs/robustness.md).
ROBUST_VIEWS = 3
ROBUST_CONSISTENCY = 4.0


def option(default, *, help, choices=None, minimum=None, kind=None, metavar=None):
    """A dataclass field that is also a `train` option: `help` for `--help`, `choices` or an
    inclusive `minimum` checked by `validate`; `kind` parses the command line's text (the
    default's type unless given), `metavar` names its value in `--help`.
    """
    metadata = {"help": help, "choices": choices, "minimum": minimum, "kind": kind}
    return dataclasses.field(default=default, metadata={**metadata, "metavar": metavar})


@dataclasses.dataclass(frozen=True)
class NoOptions:
    def validate(self):
        """Checks every field against its metadata; returns `self`."""
        for field in dataclasses.fields(self):
            value, choices, minimum = (
                getattr(self, field.name),
                field.metadata["choices"],
                field.metadata["minimum"],
            )
            if choices is not None and value not in choices:
                raise ValueError(f"{field.name} must be one of {choices}, received {value!r}")
            if minimum is not None and value is not None and not value >= minimum:
                raise ValueError(f"{field.name} must be at least {minimum}, received {value!r}")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """The options among `values` (a run's flat config dict); other keys are another part's."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _init_option():
    # One field in three tasks' options: `train` shows the first's help, so it speaks for both.
    return option(
        None,
        kind=str,
        metavar="PRESET_OR_RUN",
        help="start from pretrained weights. classify: a backbone preset's name (`vlm-tf "
        "presets`), a preset folder (`vlm-tf export RUN --format preset`) or a finished classify "
        "or pretrain run, with a new head for this data's classes. detect: the same backbones, "
        "as the trunk of the detector built on them (detect_cnn_lstm). denoise, superres, "
        "enhance: a restorer preset's name or a finished run of the same model and scale, "
        "fine-tuned whole. --model, --size and --frames default to the source's",
    )


@dataclasses.dataclass(frozen=True)
class ClassifyOptions(NoOptions):
    init: str | None = _init_option()
    linear_probe: bool = option(
        False,
        help="classify, with --init: train the new head only, the backbone frozen (a linear probe)",
    )
    explain: bool = option(
        False,
        help="classify: each epoch, heat maps of where the model looked on a few validation clips "
        "in TensorBoard (`explanations/`, by `vlm-tf explain`'s default method)",
    )
    consistency: float = option(
        ROBUST_CONSISTENCY,
        minimum=0.0,
        metavar="WEIGHT",
        help="classify, with --augment robust: the weight of the Jensen-Shannon consistency "
        f"between each clip and its {ROBUST_VIEWS - 1} corrupted copies (AugMix; {ROBUST_VIEWS} "
        "forward passes a clip); 0 trains on one corruption for half the clips instead, one pass "
        "a clip",
    )
    dp_l2_clip: float | None = option(
        None,
        kind=float,
        minimum=1e-9,
        metavar="C",
        help="classify: train by DP-SGD, each clip's gradient clipped to L2 norm C (with "
        "--dp-noise-multiplier); the run reports its privacy budget ε (privacy.json)",
    )
    dp_noise_multiplier: float | None = option(
        None,
        kind=float,
        minimum=0.0,
        metavar="SIGMA",
        help="classify, with --dp-l2-clip: the Gaussian noise added to the summed clipped "
        "gradients, in units of C",
    )
    dp_delta: float = option(
        1e-5,
        minimum=1e-12,
        metavar="DELTA",
        help="classify, with --dp-l2-clip: the δ at which ε is stated",
    )

    def validate(self):
        if self.linear_probe and self.init is None:
            raise ValueError("linear_probe trains a new head on a backbone: it needs init")
        if (self.dp_l2_clip is None) != (self.dp_noise_multiplier is None):
            raise ValueError(
                "differentially private training needs both dp_l2_clip and dp_noise_multiplier "
                "(--dp-l2-clip C --dp-noise-multiplier SIGMA)"
            )
        return super().validate()


@dataclasses.dataclass(frozen=True)
class DetectOptions(NoOptions):
    init: str | None = _init_option()


@dataclasses.dataclass(frozen=True)
class AttributesOptions(NoOptions):
    # The backbone starts from this preset or run; without it, a fresh one of the model's encoder.
    init: str | None = _init_option()


@dataclasses.dataclass(frozen=True)
class AdversarialOptions(NoOptions):
    gan_loss: str = option(
        "standard",
        choices=GAN_LOSSES,
        help=(
            "generator loss of gan and fusion: the non-saturating -log D(G(z)), or the text's "
            "D(E(x)) - D(G(z)) of §4.3.1"
        ),
    )


@dataclasses.dataclass(frozen=True)
class TextToVideoOptions(AdversarialOptions):
    text_run: str | None = option(
        None,
        kind=str,
        metavar="VT_RUN",
        help="text_to_video: the finished video_text run whose text encoder embeds the captions "
        "(frozen; copied into the run)",
    )
    guidance: float = option(
        0.0,
        minimum=0.0,
        metavar="W",
        help="text_to_video, text_gan: weight of CLIP guidance in the generator's loss, the text "
        "run's video encoder asked to find each generated clip nearest its own caption (off by "
        "default: measured, it cost the colours more than it gave; docs/design.md; needs a text "
        "run trained without --with-sound)",
    )

    def validate(self):
        if self.text_run is None:
            raise ValueError(
                "text_to_video embeds captions with a video_text run's text encoder: it needs "
                "text_run (--text-run VT_RUN)"
            )
        return super().validate()


@dataclasses.dataclass(frozen=True)
class RestorationOptions(NoOptions):
    init: str | None = _init_option()
    # The degradations of vlm_tf.data.degrade: the super-resolution factor,
    # and the Gaussian part of denoising's noise (pixel values 0-255) on top of its shot noise.
    scale: int = option(
        2,
        choices=SCALES,
        help="superres: the upscaling factor; its training pairs are blurred and shrunk by it",
    )
    noise_sigma: float = option(
        15.0,
        minimum=0.0,
        help=(
            "denoise: the std of the Gaussian noise, in 0-255 pixel values, added to the shot noise"
        ),
    )


# The classifiers whose backbone is a tubelet transformer: what masked video modelling trains.
TUBELET_ENCODERS = tuple(
    name for name, spec in MODELS.items() if spec.builder.endswith(":build_video_transformer")
)
# Self-supervised objectives `vlm-tf pretrain --method` offers, by the registered model of each,
# and the encoder each trains unless told.
PRETRAIN_METHODS = {"masked": "video_mae", "motion": "camera_motion"}
PRETRAIN_ENCODERS = {"masked": "video_transformer_mean", "motion": "cnn_lstm"}


@dataclasses.dataclass(frozen=True)
class PretrainOptions(NoOptions):
    encoder: str = option(
        "video_transformer_mean",
        choices=tuple(name for name, spec in MODELS.items() if spec.task == "classify"),
        metavar="NAME",
        help="pretrain: the classifier whose backbone is pretrained (masked modelling: a tubelet "
        "transformer)",
    )
    mask_ratio: float = option(
        0.9,
        minimum=0.05,
        help="pretrain, masked: the share of each clip's patches hidden, below 1 (VideoMAE's 0.9)",
    )


@dataclasses.dataclass(frozen=True)
class VideoTextOptions(NoOptions):
    # The clip side starts from this backbone; without it, a fresh `cnn_lstm` backbone.
    init: str | None = _init_option()
    with_sound: bool = option(
        False,
        help="video_text: the clip side hears each video's sound track too (a log-mel encoder "
        "beside the backbone, audio_visual's), so a caption that names the sound can be matched",
    )
    partial_captions: bool = option(
        False,
        help="video_text: train on captions that leave attributes out too (the outline with its "
        "motion and no colour, the colour with no motion, ...; made from each clip's attributes), "
        "so that a prompt naming the motion alone finds it whatever the colour",
    )


@dataclasses.dataclass(frozen=True)
class AudioVisualOptions(NoOptions):
    # The picture side starts from this backbone; without it, a fresh `cnn_lstm` backbone.
    init: str | None = _init_option()
    # Late, the default, as measured: level with early and ahead of cross-attention on the
    # multimodal data, and the cheapest (docs/design.md, "Picture and sound").
    fusion: str = option(
        "late",
        choices=AV_FUSIONS,
        help="audio_visual: how picture and sound meet — late (their answers added), early (their "
        "features joined) or cross_attention (the picture asks the sound's time steps)",
    )
    modality_dropout: float = option(
        0.2,
        minimum=0.0,
        metavar="RATE",
        help="audio_visual: the share of training clips heard as silence, and another share seen "
        "as a blank picture, so one modality alone still gets an answer (at most 0.5)",
    )
    label_attribute: str | None = option(
        None,
        kind=str,
        metavar="NAME",
        help="audio_visual: join the class folder and this attribute of the JSON file beside each "
        "video into the label (`sound` on make-data --task multimodal's folders)",
    )

    def validate(self):
        super().validate()
        if self.modality_dropout > 0.5:
            raise ValueError(
                f"modality_dropout must be at most 0.5, received {self.modality_dropout}"
            )
        return self
