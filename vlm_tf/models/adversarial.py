"""Adversarial training (§3.3 对抗训练, §4.3): `VideoGAN` and `FramePredictionGAN`.

`FramePredictionGAN` is the §3.4 fusion predictor's. Both are
`keras.Model`s with their own `compile(d_optimizer, g_optimizer, ...)`
and `train_step`, so `fit`, callbacks, TensorBoard and `BackupAndRestore`
work as for any Keras model. Each step trains the discriminator once,
then the generator once, on fresh noise.

The losses, on the discriminator's logits l (D(x) = sigmoid(l)):

    D_Loss (§4.3.2)       −log D(x) − log(1 − D(G(z)))   = softplus(−l_real) + softplus(l_fake)
    "standard" G_Loss     −log D(G(z))                     = softplus(−l_fake)
                          (non-saturating, the default)
    "text" G_Loss (§4.3.1)  D(E(x)) − D(G(z)), E the identity (docs/errata.md)

Written on logits they are exact where the probabilities would round to 0
or 1; `vlm_tf.math` holds the same losses on probabilities and the tests
check one against the other.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from vlm_tf.metrics.image import frame_quality
from vlm_tf.models.registry import GAN_LOSSES
from vlm_tf.models.video_text import symmetric_info_nce

# The fusion model's generator loss: the squared error plus this much of
# the adversarial loss. With L1 and pix2pix's 1 : 0.01 the predictor learnt
# to copy the last frame (its mask went to zero, PSNR exactly the
# baseline's after 8 epochs): the adversarial term, about 7 once the
# discriminator wins, outweighed a reconstruction term near 0.02.
FUSION_ADVERSARIAL_WEIGHT = 1e-4


def discriminator_loss(real_logits, fake_logits):
    """§4.3.2: mean −log σ(l_real) + mean −log(1 − σ(l_fake))."""
    return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(
        tf.nn.softplus(fake_logits)
    )


def generator_loss(fake_logits, real_logits=None, *, kind="standard"):
    """G's loss: `"standard"` −log σ(l_fake); `"text"` σ(l_real) − σ(l_fake).

    `"text"` is the §4.3.1 form with E the identity.
    """
    if kind == "standard":
        return tf.reduce_mean(tf.nn.softplus(-fake_logits))
    if kind == "text":
        return tf.reduce_mean(tf.sigmoid(real_logits)) - tf.reduce_mean(tf.sigmoid(fake_logits))
    raise ValueError(f"loss must be one of {GAN_LOSSES}, received {kind!r}")


def _class_loss(labels, class_logits):
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=class_logits)
    )


def _check_loss(loss):
    if loss not in GAN_LOSSES:
        raise ValueError(f"loss must be one of {GAN_LOSSES}, received {loss!r}")
    return loss


def shift_clips(clips, max_shift, seed):
    """Moves every clip of the batch by one random offset of up to `max_shift` pixels.

    The clip is zero-padded, and the offset is the same for all its frames.

    The discriminator sees real and generated clips through this
    (differentiable) augmentation, as DiffAugment does: a few hundred
    training clips are otherwise memorised within a few epochs, and the
    generator's gradient turns to noise. One offset for the whole clip
    leaves the motion, which the label is about, unchanged.
    """
    if not max_shift:
        return clips
    batch = tf.shape(clips)[0]
    height, width = clips.shape[2], clips.shape[3]
    padded = tf.pad(clips, [[0, 0], [0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
    offsets = tf.random.stateless_uniform(
        (batch, 2), seed=seed, minval=0, maxval=2 * max_shift + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(height)[None]
    cols = offsets[:, 1:] + tf.range(width)[None]
    # (B, H) and (B, W) index sets → gather rows, then columns, per clip.
    shifted = tf.gather(padded, rows, axis=2, batch_dims=1)
    return tf.gather(shifted, cols, axis=3, batch_dims=1)


class VideoGAN(keras.Model):
    """A conditional video GAN.

    `generator([noise, label])` → clip,
    `discriminator([clip, label])` → logit.

    `fit` takes batches of `(clips, labels)` with integer labels and clips
    in [0, 255] (what `video_dataset_from_directory(label_mode="int")`
    yields). Calling the model generates: `gan([noise, label])`.
    """

    def __init__(self, generator, discriminator, *, latent_dim=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim or generator.input_shape[0][-1]
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        # Both players are built functional models: nothing is left to build
        # (BackupAndRestore refuses an unbuilt model).
        self.built = True

    def compile(
        self,
        *,
        d_optimizer,
        g_optimizer,
        loss="standard",
        augment_shift=2,
        augment_noise=8.0,
        class_weight=1.0,
        **kwargs,
    ):
        """`loss`: the generator's, `"standard"` (non-saturating) or `"text"` (§4.3.1).

        D's is always §4.3.2.

        `augment_shift`: the largest shift in pixels of `shift_clips`, applied
        to every clip the discriminator sees (0 turns it off).
        `augment_noise`: the standard deviation, in pixel values, of Gaussian
        noise added to every clip the discriminator sees. The data's clips
        carry sensor noise of up to 8 that a generator of smooth images
        does not make; under the same noise the discriminator cannot tell
        the two apart by it (0 turns it off).
        `class_weight`: weight of the auxiliary classifier's cross-entropy,
        added to D's loss on real clips and to G's on generated ones: G is
        told directly that a "move_left" clip must look like one to a
        classifier, not only like some real clip (0 turns it off).
        """
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_kind = _check_loss(loss)
        self.augment_shift = int(augment_shift)
        self.augment_noise = float(augment_noise)
        self.class_weight = float(class_weight)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def optimizer_variables(self):
        """`[(optimizer, variables)]`: what `train_step` applies each optimizer to."""
        return [
            (self.d_optimizer, self.discriminator.trainable_weights),
            (self.g_optimizer, self.generator.trainable_weights),
        ]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _noise(self, batch):
        return keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)

    def _judge(self, clips, condition, training):
        """D's `(logit, [auxiliary classifiers' logits])` on augmented `clips`."""
        seed = keras.random.randint((2,), 0, 2**30, seed=self.seed_generator)
        clips = shift_clips(clips, self.augment_shift, seed)
        if self.augment_noise:
            clips = clips + keras.random.normal(
                tf.shape(clips), stddev=self.augment_noise, seed=self.seed_generator
            )
        logit, *heads = self.discriminator([clips, condition], training=training)
        return logit, heads

    def _unpack(self, data):
        """`(clips, condition, answers)`: the real clips, what both players are conditioned on,
        and the auxiliary classifiers' right answers, one per head of D.
        """
        clips, labels = data
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        return clips, labels, [labels]

    def _heads_loss(self, answers, heads):
        return tf.add_n([_class_loss(answer, logits) for answer, logits in zip(answers, heads)])

    def _guidance_loss(self, fake, data):
        """A term of G's loss beyond D's verdicts (none here; `TextVideoGAN`'s CLIP guidance)."""
        return 0.0

    def train_step(self, data):
        clips, condition, answers = self._unpack(data)
        batch = tf.shape(clips)[0]

        # Discriminator: real clips up, generated ones down (§4.3.2).
        fake = self.generator([self._noise(batch), condition], training=True)
        with tf.GradientTape() as tape:
            real_logits, real_heads = self._judge(clips, condition, True)
            fake_logits, _ = self._judge(fake, condition, True)
            d_loss = discriminator_loss(
                real_logits, fake_logits
            ) + self.class_weight * self._heads_loss(answers, real_heads)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        # Generator: fresh noise, the discriminator fixed.
        with tf.GradientTape() as tape:
            fake = self.generator([self._noise(batch), condition], training=True)
            fake_logits, fake_heads = self._judge(fake, condition, False)
            # The text's loss needs D(E(x)); it carries no gradient to G.
            real_term = tf.stop_gradient(real_logits) if self.loss_kind == "text" else None
            g_loss = (
                generator_loss(fake_logits, real_term, kind=self.loss_kind)
                + self.class_weight * self._heads_loss(answers, fake_heads)
                + self._guidance_loss(fake, data)
            )
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(tf.reduce_mean(tf.sigmoid(real_logits)))
        self.d_fake_tracker.update_state(tf.reduce_mean(tf.sigmoid(fake_logits)))
        return {m.name: m.result() for m in self.metrics}


class TextVideoGAN(VideoGAN):
    """`VideoGAN` conditioned on a vector, a caption's embedding: `generator([noise, condition])`
    → clip, `discriminator([clip, condition])` → `[logit, *head logits]`.

    `fit` takes dict batches `{"frames", "condition", **answers}`: clips in [0, 255], condition
    vectors `(B, D)`, and an integer answer `(B,)` for each of `heads`, the auxiliary
    classifiers of D in the order it outputs them (the caption's motion and colour, say): G is
    told not only to look real beside its caption but that its clip shows what the caption says.

    `guide`, a frozen `VideoTextModel` (the one whose text encoder embedded the captions), adds
    CLIP guidance to G's loss: `guidance_weight` (`compile`) times the symmetric InfoNCE of the
    generated clips' video embeddings, by the guide, against their captions' text embeddings
    (the batches' `"text"`, unit `(B, D)`), at the guide's learned temperature. D's heads learn
    what a motion looks like from the few clips of this run while G learns to fool them; the
    guide has already learnt it from every caption, and does not move. Generated clips are
    resized to the guide's frame size on the way in.
    """

    def __init__(self, generator, discriminator, *, heads, guide=None, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        self.heads = tuple(heads)
        self.guide = guide
        if guide is not None:
            guide.trainable = False
        self.guidance_tracker = keras.metrics.Mean(name="guidance")
        self.guidance_weight = 0.0

    def compile(self, *, guidance_weight=0.0, **kwargs):
        """`guidance_weight`: of the guide's InfoNCE in G's loss (0 turns it off); the rest as
        `VideoGAN.compile`.
        """
        if guidance_weight and self.guide is None:
            raise ValueError("guidance_weight > 0 needs a guide (a VideoTextModel)")
        super().compile(**kwargs)
        self.guidance_weight = float(guidance_weight)

    @property
    def metrics(self):
        return super().metrics + ([self.guidance_tracker] if self.guidance_weight else [])

    def _unpack(self, data):
        answers = [tf.cast(tf.reshape(data[head], [-1]), tf.int32) for head in self.heads]
        return data["frames"], data["condition"], answers

    def _guidance_loss(self, fake, data):
        if not self.guidance_weight:
            return 0.0
        video = self.guide.embed_frames_of_any_size(fake, training=False)
        loss = symmetric_info_nce(video, data["text"], tf.stop_gradient(self.guide.scale()))
        self.guidance_tracker.update_state(loss)
        return self.guidance_weight * loss


def split_clip(clips, observed_frames, predicted_frames):
    """`(B, T, ...)` → the first `observed_frames` and the `predicted_frames` after them."""
    if clips.shape[1] is not None and clips.shape[1] < observed_frames + predicted_frames:
        raise ValueError(
            f"clips of {clips.shape[1]} frames are too short to observe {observed_frames} and "
            f"predict {predicted_frames}"
        )
    return clips[:, :observed_frames], clips[
        :, observed_frames : observed_frames + predicted_frames
    ]


class FramePredictionGAN(keras.Model):
    """§3.4 trained: `predictor(observed)` → the next frames.

    It learns by reconstruction plus an adversarial loss.

    `fit` takes `(clips, labels)` batches (labels unused) of at least
    `observed_frames + predicted_frames` frames; the first frames are the
    input, the next ones the target. The generator's loss is

        reconstruction_weight · mean ((Y − truth) / 255)²  +  adversarial_weight · −log D([X, Y])

    where the (unconditional) discriminator judges the observed frames
    followed by the predicted ones against the observed frames followed by
    the true ones. The squared error alone predicts the average of the possible
    futures, a blur; the adversarial term pulls the prediction towards one
    sharp future, at some cost in PSNR. `adversarial_weight=0` trains by
    reconstruction only.
    """

    def __init__(self, predictor, discriminator=None, **kwargs):
        super().__init__(**kwargs)
        self.predictor = predictor
        self.discriminator = discriminator
        self.observed_frames = predictor.input_shape[1]
        self.predicted_frames = predictor.output_shape[1]
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("g_loss", "reconstruction", "d_loss", "psnr", "ssim")
        }
        self.built = True

    def compile(
        self,
        *,
        g_optimizer,
        d_optimizer=None,
        reconstruction_weight=1.0,
        adversarial_weight=FUSION_ADVERSARIAL_WEIGHT,
        loss="standard",
        **kwargs,
    ):
        """`loss` is the adversarial term's kind, as for `VideoGAN.compile`."""
        super().compile(**kwargs)
        self.loss_kind = _check_loss(loss)
        if adversarial_weight and (self.discriminator is None or d_optimizer is None):
            raise ValueError("adversarial_weight > 0 needs a discriminator and a d_optimizer")
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.reconstruction_weight = float(reconstruction_weight)
        self.adversarial_weight = float(adversarial_weight)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def optimizer_variables(self):
        """`[(optimizer, variables)]`: what `train_step` applies each optimizer to."""
        pairs = [(self.g_optimizer, self.predictor.trainable_weights)]
        if self.adversarial_weight:
            pairs.append((self.d_optimizer, self.discriminator.trainable_weights))
        return pairs

    def call(self, inputs, training=False):
        return self.predictor(inputs, training=training)

    def _reconstruction(self, predicted, future):
        # Mean squared error on [0, 1]: the quantity PSNR is the log of.
        return tf.reduce_mean(tf.square((predicted - future) / 255.0))

    def train_step(self, data):
        observed, future = split_clip(
            data[0] if isinstance(data, tuple) else data,
            self.observed_frames,
            self.predicted_frames,
        )
        if self.adversarial_weight:
            predicted = self.predictor(observed, training=True)
            with tf.GradientTape() as tape:
                real_logits = self.discriminator(
                    tf.concat([observed, future], axis=1), training=True
                )
                fake_logits = self.discriminator(
                    tf.concat([observed, predicted], axis=1), training=True
                )
                d_loss = discriminator_loss(real_logits, fake_logits)
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
            self.trackers["d_loss"].update_state(d_loss)
        with tf.GradientTape() as tape:
            predicted = self.predictor(observed, training=True)
            reconstruction = self._reconstruction(predicted, future)
            g_loss = self.reconstruction_weight * reconstruction
            if self.adversarial_weight:
                fake_logits = self.discriminator(
                    tf.concat([observed, predicted], axis=1), training=False
                )
                real_term = tf.stop_gradient(real_logits) if self.loss_kind == "text" else None
                g_loss += self.adversarial_weight * generator_loss(
                    fake_logits, real_term, kind=self.loss_kind
                )
        grads = tape.gradient(g_loss, self.predictor.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.predictor.trainable_weights))
        self.trackers["g_loss"].update_state(g_loss)
        self._update_quality(predicted, future, reconstruction)
        return {
            name: tracker.result()
            for name, tracker in self.trackers.items()
            if name != "d_loss" or self.adversarial_weight
        }

    def test_step(self, data):
        observed, future = split_clip(
            data[0] if isinstance(data, tuple) else data,
            self.observed_frames,
            self.predicted_frames,
        )
        predicted = self.predictor(observed, training=False)
        self._update_quality(predicted, future, self._reconstruction(predicted, future))
        return {name: self.trackers[name].result() for name in ("reconstruction", "psnr", "ssim")}

    def _update_quality(self, predicted, future, reconstruction):
        self.trackers["reconstruction"].update_state(reconstruction)
        psnr, ssim = frame_quality(predicted, future)
        self.trackers["psnr"].update_state(tf.reduce_mean(psnr))
        self.trackers["ssim"].update_state(tf.reduce_mean(ssim))
