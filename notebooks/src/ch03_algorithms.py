# %% [markdown]
# # 第3章 核心算法原理 & 具体操作步骤 · Chapter 3: the pseudo-code, run
#
# Chapter 3 explains its algorithms in four blocks of pseudo-code: a CNN
# (§3.1), an RNN (§3.2), a GAN (§3.3), and the three combined (§3.4). Here
# each block is real code with the text's names (`Conv2D`, `ReLU`,
# `MaxPooling`, `RNN`, `OutputLayer`, `Generator`, `Discriminator`, `Loss`,
# `CNN`, `Fusion`), run on one real clip from the generated dataset, with the
# shape printed at every step. Where `vlm_tf.math` has the NumPy reference of
# an operation, the result is checked against it.
#
# Nothing is trained: every weight is random (seeded), so the numbers show how
# data flows through the algorithms, not what a trained model would say.

# %% tags=["parameters"]
import tempfile

VIDEOS_PER_CLASS = 3       # the fewest write_dataset accepts: one video per class in each of train/val/test
FRAMES = 16                # frames in each video file
SIZE = 64                  # frame height and width in pixels
CLIP_CLASS = "move_right"  # the class whose first training video the notebook runs on
FILTERS = 8                # filters of the §3.1 convolution
UNITS = 16                 # hidden units of the §3.2 RNN
LATENT_DIM = 32            # length of the GAN's noise vector Z (§3.3)
SEED = 0
WORK_DIR = tempfile.mkdtemp(prefix="vlm_tf_ch03_")  # the generated dataset lands here

# %% [markdown]
# Only one video is used, so the dataset is the smallest `write_dataset`
# allows; `SIZE = 64` is the frame size `vlm-tf quickstart` writes, and it
# must stay 4·2^k pixels (16, 32, 64, ...), because the GAN's generator
# builds frames by doubling a 4×4 grid. With these values the notebook runs
# in well under a minute on two CPU cores. Any name in
# `vlm_tf.data.CLASS_NAMES` works as `CLIP_CLASS`.

# %%
import os

# Before TensorFlow loads: silences its C++ info and warning logs (a few
# start-up lines print regardless).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

import vlm_tf
import vlm_tf.data as vdata
from vlm_tf import math as vm
from vlm_tf.visualize import clip_montage

# Small figures keep the committed notebook small.
plt.rcParams.update({"figure.figsize": (8, 3), "figure.dpi": 70})
# Seeds the Keras layers' initial weights; the NumPy ones come from rng.
keras.utils.set_random_seed(SEED)
rng = np.random.default_rng(SEED)
print(f"vlm_tf {vlm_tf.__version__} | TensorFlow {tf.__version__} | Keras {keras.__version__}")

# %% [markdown]
# The clip: `vlm_tf.data.write_dataset` writes the synthetic motion dataset as
# real `.mp4` files, and `vlm_tf.data.read_frames` decodes one back to RGB
# `uint8` frames. The text's `X`, "the input video frame sequence", is those
# frames as float32 in [0, 1].

# %%
DATA_DIR = os.path.join(WORK_DIR, "data")
vdata.write_dataset(DATA_DIR, videos_per_class=VIDEOS_PER_CLASS, num_frames=FRAMES, size=SIZE, seed=SEED)
path = os.path.join(DATA_DIR, "train", CLIP_CLASS, f"{CLIP_CLASS}_0000.mp4")
frames = vdata.read_frames(path)
X = tf.constant(frames, tf.float32) / 255.0
print(f"{os.path.relpath(path, DATA_DIR)}: X {tuple(X.shape)} {X.dtype.name}, (T, H, W, channels)")


# %% [markdown]
# ## 3.1 卷积神经网络（CNN）
#
# The text's steps: the input layer turns the frames into a tensor; the
# convolution layer slides a learnable kernel (卷积核, `W`) over each frame,
# moved by the stride (步长), with padding (填充) around the border so edge
# information is not lost; an activation function; a pooling layer
# downsamples. Its pseudo-code:
#
# ```
# # 输入视频帧序列为X，卷积层参数为W（卷积核）、b（偏置项）
# # 卷积操作
# Y = Conv2D(X, W, b)
# # 激活函数
# Y = ReLU(Y)
# # 池化操作
# P = MaxPooling(Y)
# ```
#
# Below, the three functions on TensorFlow ops. A 2-D convolution takes a
# batch of images and `X` is `(T, H, W, 3)`, so the frames are the batch: the
# fold that `vlm_tf.layers.TimeDistributed` does inside a model. Stride and
# padding, the two settings the text names, are arguments with Keras'
# defaults (stride 1, `"VALID"`: no padding). Like `keras.layers.Conv2D`, the
# convolution is a cross-correlation: the kernel is not flipped
# ([errata §4.1.1](../docs/errata.md#411--the-formula-is-convolution-conv2d-computes-cross-correlation)).

# %%
def Conv2D(X, W, b, stride=1, padding="VALID"):
    return tf.nn.bias_add(tf.nn.conv2d(X, W, strides=stride, padding=padding), b)


def ReLU(Y):
    return tf.nn.relu(Y)


def MaxPooling(Y, pool_size=2):
    # The window moves by its own size, as keras.layers.MaxPooling2D does by default.
    return tf.nn.max_pool2d(Y, ksize=pool_size, strides=pool_size, padding="VALID")


# He-normal scale, std √(2 / fan-in): the usual start for a layer followed by ReLU.
W = tf.constant(rng.normal(0.0, np.sqrt(2.0 / (3 * 3 * 3)), (3, 3, 3, FILTERS)), tf.float32)
b = tf.constant(rng.normal(0.0, 0.1, FILTERS), tf.float32)

# 卷积操作
Y = Conv2D(X, W, b)
# 激活函数
Y = ReLU(Y)
# 池化操作
P = MaxPooling(Y)
print(f"X {tuple(X.shape)} → Y = ReLU(Conv2D(X, W, b)) {tuple(Y.shape)} → P = MaxPooling(Y) {tuple(P.shape)}")
print(f"W {tuple(W.shape)}: 3×3 kernels over 3 colour channels, {FILTERS} filters; b {tuple(b.shape)}")

Y_numpy = vm.relu(vm.conv2d(X.numpy(), W.numpy(), b.numpy()))
P_numpy = vm.max_pooling(Y_numpy, 2)
np.testing.assert_allclose(P, P_numpy, atol=1e-5)
print(f"max |TF − vlm_tf.math|: Y {np.abs(Y - Y_numpy).max():.1e}, P {np.abs(P - P_numpy).max():.1e}")
print(f"ReLU set {np.mean(Y.numpy() == 0):.0%} of the responses to 0 and passed the rest unchanged, up to {Y.numpy().max():.2f}")

print()
for stride, padding in ((1, "VALID"), (1, "SAME"), (2, "VALID"), (2, "SAME")):
    print(f"Conv2D(X, W, b, stride={stride}, padding={padding!r:7}) → {tuple(Conv2D(X, W, b, stride, padding).shape)}")

# %% [markdown]
# `"SAME"` padding keeps the frame size, border included; stride 2 halves it.
# The text glosses ReLU as 归一化激活函数, a "normalising" activation; it is
# the rectified linear unit, max(0, x), which zeroes the negative responses
# and leaves the others as they are, bounded by nothing from above
# ([errata §3.1](../docs/errata.md#31--relu-is-not-a-normalised-activation)).
#
# One feature map: the filter whose pooled map varies most over the first
# frame (the others are flatter), before and after pooling, and the same map
# for the last frame. This filter responds to the object, and its response
# moves with it.

# %%
k = int(np.argmax(np.std(P[0], axis=(0, 1))))
last = len(frames) - 1
panels = [
    (frames[0], "X, frame 0"),
    (Y[0, :, :, k], f"Y, map {k}"),
    (P[0, :, :, k], f"P, map {k}"),
    (frames[last], f"X, frame {last}"),
    (P[last, :, :, k], f"P, map {k}, frame {last}"),
]
fig, axes = plt.subplots(1, len(panels), figsize=(8, 1.9))
for ax, (image, title) in zip(axes, panels):
    ax.imshow(image, cmap="gray", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()


# %% [markdown]
# ## 3.2 循环神经网络（RNN）
#
# The text's steps: the input layer; a hidden layer whose hidden state
# (隐藏状态) is updated frame by frame, with gates (门控机制: input, forget and
# output gates) controlling what passes; an output layer that makes the
# prediction. Its pseudo-code:
#
# ```
# # 输入视频帧序列为X，隐藏状态为h，模型参数为W、b
# # 递归操作
# h = RNN(h, X, W, b)
# # 输出层
# Y = OutputLayer(h)
# ```
#
# `RNN(·)` is left abstract. The plain recurrent cell makes it concrete:
# $h_t = \tanh(W[h_{t-1}, x_t] + b)$, §4.2.1's recursion, which is
# `vlm_tf.math.rnn_step` and what `keras.layers.SimpleRNN` computes. The gates
# belong to an LSTM (`vlm_tf.math.lstm_step`; the chapter 4 notebook checks it
# against `keras.layers.LSTM`). Two corrections ([errata §3.2](../docs/errata.md#32--the-hidden-state-is-not-the-current-frames-features)): the
# pseudo-code passes the whole clip `X` where the recursion takes one frame
# $x_t$ at a time, so below `RNN` is called in a loop over the frames; and the
# hidden state is not "the features of the current frame", it folds in every
# frame so far.
#
# Each $x_t$ is frame t's pooled map from §3.1, flattened, as the
# `frame_features` layer of `build_cnn_lstm` does; flattening keeps where
# things are in the frame, which averaging the map would lose.

# %%
def RNN(h, x_t, W, b):
    # W multiplies the concatenation [h_{t-1}, x_t], the text's notation (§4.2.1).
    return tf.tanh(tf.linalg.matvec(W, tf.concat([h, x_t], axis=0)) + b)


def hidden_states(x):
    h = tf.zeros(UNITS)
    states = []
    for x_t in x:
        # 递归操作
        h = RNN(h, x_t, W, b)
        states.append(h)
    return tf.stack(states)


x = tf.reshape(P, (len(P), -1))
# The text reuses the names W and b in every block; from here on they are the RNN's.
# Initialised as keras.layers.SimpleRNN does: the recurrent part orthogonal, so
# the state does not fade within a few frames; the input part Glorot-uniform.
W_h, _ = np.linalg.qr(rng.normal(size=(UNITS, UNITS)))
limit = np.sqrt(6.0 / (x.shape[1] + UNITS))
W_x = rng.uniform(-limit, limit, (UNITS, x.shape[1]))
W = tf.constant(np.concatenate([W_h, W_x], axis=1), tf.float32)
b = tf.zeros(UNITS)

states = hidden_states(x)
h = states[-1]
print(f"x {tuple(x.shape)}: {len(x)} frames, {x.shape[1]} features each; W {tuple(W.shape)}, b {tuple(b.shape)}")
print(f"h_1 … h_T {tuple(states.shape)}; the last, h_T {tuple(h.shape)}, is what the output layer reads")

h_numpy = np.zeros(UNITS)
for x_t in x.numpy():
    h_numpy = vm.rnn_step(h_numpy, x_t, W.numpy(), b.numpy())
print(f"h_T: max |TF − vlm_tf.math.rnn_step| = {np.abs(h - h_numpy).max():.1e}")

# Change only the first frame (its features set to zero): h_T changes too.
blanked = tf.concat([tf.zeros_like(x[:1]), x[1:]], axis=0)
print(f"h_T with frame 0 blanked differs by up to {np.abs(hidden_states(blanked)[-1] - h).max():.1e}: the state remembers frame 0")

OutputLayer = keras.layers.Dense(len(vdata.CLASS_NAMES), activation="softmax", name="OutputLayer")
# 输出层
Y = OutputLayer(h[None])
print(f"\nY = OutputLayer(h_T): {tuple(Y.shape)}, summing to {float(tf.reduce_sum(Y)):.3f}")
print("  " + ", ".join(f"{name} {p:.2f}" for name, p in zip(vdata.CLASS_NAMES, Y[0].numpy())))

fig, ax = plt.subplots(figsize=(8, 2.2))
image = ax.imshow(states.numpy().T, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
ax.set(xlabel="frame t", ylabel="unit", title="hidden states h_t (tanh: in (−1, 1))")
ax.title.set_fontsize(10)
fig.colorbar(image, ax=ax, pad=0.01)
plt.show()

# %% [markdown]
# With untrained weights the probabilities say nothing about the clip; the
# point is the shapes: `(T, H, W, 3)` frames → `(T, F)` frame features → one
# `(UNITS,)` state per frame → `(1, 8)` class probabilities. `build_cnn_lstm` is this
# pipeline as a Keras model, with an LSTM for the plain cell.

# %% [markdown]
# ## 3.3 生成对抗网络（GAN）
#
# The text's steps: a generator (生成器) turns noise into a frame sequence; a
# discriminator (判别器) judges whether a sequence is real or generated;
# adversarial training (对抗训练) lowers both players' losses in turn. Its
# pseudo-code:
#
# ```
# # 生成器
# X_fake = Generator(Z)
# # 判别器
# Y_fake = Discriminator(X_fake)
# Y_real = Discriminator(X)
# # 对抗训练
# D_loss = Loss(Y_fake, Y_real)
# G_loss = Loss(Y_fake)
# ```
#
# `Loss` is one name for two losses. With two arguments it is the
# discriminator's, §4.3.2's $D_{loss} = -\log D(x) - \log(1 - D(G(z)))$
# (`vm.discriminator_loss`). With one it is the generator's: §4.3.1 prints
# $G_{loss} = D(E(x)) - D(G(z))$ with an encoder $E$ it never defines and a
# gradient that vanishes when the discriminator rejects the fakes
# ([errata §4.3.1](../docs/errata.md#431--g_loss--dex--dgz-is-not-the-usual-generator-loss)), so `Loss` uses the standard non-saturating
# $-\log D(G(z))$ (`vm.generator_loss_nonsaturating`), and the text's form is
# printed next to it with $E$ the identity (`vm.encoder_identity`,
# `vm.generator_loss_text`).
#
# The models are the package's, `vlm_tf.models.build_video_generator` and
# `build_video_discriminator`, untrained here (`vlm-tf train --model gan`
# trains them; docs/design.md, "The video GAN"):
#
# - **generator**: `[Z (B, LATENT_DIM), label (B,)]` → a clip `(B, T, H, W, 3)`
#   in [0, 255]. A content code decodes a still two-colour background and one
#   flat-coloured sprite (an object shape with opacity); each class has a
#   velocity (in position, scale and angle), integrated over the frames, and
#   a GRU over time adds a small per-clip correction to it;
# - **discriminator**: `[clip, label]` → a real/fake logit and class logits.
#   3-D convolutions over the frames next to their differences, so it judges
#   motion, not only single frames. The text's $D(x)$, a probability, is the
#   sigmoid of the logit.

# %%
from vlm_tf.models import build_video_discriminator, build_video_generator

LABEL = tf.constant([vdata.CLASS_NAMES.index(CLIP_CLASS)], tf.int32)  # the class the clips are conditioned on
Generator = build_video_generator(num_classes=len(vdata.CLASS_NAMES), latent_dim=LATENT_DIM, num_frames=FRAMES, image_size=(SIZE, SIZE))
Discriminator = build_video_discriminator(num_classes=len(vdata.CLASS_NAMES), num_frames=FRAMES, image_size=(SIZE, SIZE))
print(f"{Generator.name}: {Generator.count_params():,} weights; {Discriminator.name}: {Discriminator.count_params():,} weights")


# %%
def Loss(Y_fake, Y_real=None):
    # The text's one name for both players' losses: with Y_real the discriminator's, without it the generator's.
    if Y_real is None:
        return vm.generator_loss_nonsaturating(Y_fake)
    return vm.discriminator_loss(Y_real, Y_fake)


def D(clip):
    # D(x) of §4.3: the probability that the clip is real, for pixels in [0, 1] like X.
    logit, _ = Discriminator([clip * 255.0, LABEL])
    return tf.sigmoid(logit).numpy()


Z = tf.constant(rng.normal(size=(1, LATENT_DIM)), tf.float32)
# 生成器
X_fake = Generator([Z, LABEL]) / 255.0
# 判别器
Y_fake = D(X_fake)
Y_real = D(X[None])
# 对抗训练
D_loss = Loss(Y_fake, Y_real)
G_loss = Loss(Y_fake)

print(f"Z {tuple(Z.shape)} → X_fake {tuple(X_fake.shape)}, values in [{float(tf.reduce_min(X_fake)):.3f}, {float(tf.reduce_max(X_fake)):.3f}]")
print(f"Y_real = D(X) = {float(Y_real[0, 0]):.3f}    Y_fake = D(X_fake) = {float(Y_fake[0, 0]):.3f}")
print(f"D_loss = Loss(Y_fake, Y_real) = {D_loss:.3f}    (2 ln 2 = {2 * np.log(2):.3f}: D answering 0.5 to both)")
print(f"G_loss = Loss(Y_fake)         = {G_loss:.3f}    (ln 2 = {np.log(2):.3f})")
G_loss_text = vm.generator_loss_text(D(vm.encoder_identity(X[None])), Y_fake)
print(f"the text's G_Loss = D(E(x)) − D(G(z)), E the identity: {G_loss_text:.3f}")

fig, axes = plt.subplots(2, 1, figsize=(6, 2.0))
for ax, clip, title in zip(axes, (frames, X_fake[0].numpy() * 255), ("X: the real clip", "X_fake = Generator([Z, label]), untrained")):
    ax.imshow(clip_montage(clip), interpolation="nearest")
    ax.set_title(title, fontsize=9, loc="left")
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The untrained generator draws a blurred sprite over a smooth two-colour
# background, and already moves it: each class starts with a small random
# velocity. The untrained
# discriminator's scores mean nothing yet: its class projection is a dot
# product over thousands of random features, so its first verdicts are
# confident and arbitrary (another seed gives others), and the losses sit far
# from the values of a discriminator that cannot tell (2 ln 2 for `D_loss`,
# ln 2 for `G_loss`, 0 for the text's form). The text's form is
# D(x) − D(G(z)): its sign says only which of the two clips the untrained
# discriminator happens to prefer; had it judged the real clip fake, the
# generator would be rewarded for having learnt nothing.
#
# Training, the text's 对抗训练, alternates gradient steps: the
# discriminator's on `D_loss`, the generator's on `G_loss`.
# `vlm_tf.training.gan.VideoGAN` does this in its `train_step`, with the
# losses as TensorFlow ops on the logits (checked against these NumPy
# functions in `tests/training/test_gan.py`).

# %% [markdown]
# ## 3.4 结合CNN、RNN和GAN的多模态融合 · CNN + RNN + GAN fusion
#
# The text's steps: spatial features with a CNN, temporal features with an
# RNN, the two fused into one "multimodal" feature vector, high-quality frames
# generated with a GAN, and an output layer for the prediction. Its
# pseudo-code:
#
# ```
# # 空间特征提取
# X_space = CNN(X)
# # 时序特征提取
# X_time = RNN(X)
# # 融合特征
# X_multimodal = Fusion(X_space, X_time)
# # 生成高质量视频帧
# X_fake = Generator(X_multimodal)
# # 输出层
# Y = OutputLayer(X_fake)
# ```
#
# Two corrections ([errata §3.4](../docs/errata.md#34--multimodal-fusion-fuses-two-views-of-one-modality)). It is feature fusion, not
# multimodal fusion: spatial and temporal features of the same frames are
# one modality, video, seen two ways (a second modality would be audio or
# text). And `X_time = RNN(X)` runs the RNN on the raw frames, which reads
# every pixel of a frame as one long vector; here, as everywhere in `vlm_tf`,
# the RNN reads the CNN's per-frame features, `X_time = RNN(X_space)`. The
# line-by-line cell below prints both shapes. One more mismatch: step 5 of the text makes
# the prediction "from the multimodal feature vector", the pseudo-code from
# `X_fake`; the code follows the pseudo-code.
#
# `vlm_tf.models.build_fusion_model` makes the pseudo-code a next-frame
# predictor, one functional model whose parts carry the text's names: it
# observes the first half of a clip and predicts the second half
# (`vlm-tf train --model fusion`):
#
# - `CNN`: per frame, two stride-2 `Conv2D` → `(B, T, H/4, W/4, 64)` maps;
# - `RNN`: a `ConvLSTM2D` over those maps, whose state keeps where things are;
# - `Fusion`: the last frame's map next to the RNN's state;
# - `Generator`: upsampling convolutions back to `(H, W)`, a colour, a mask
#   and a flow for each predicted frame;
# - `OutputLayer`: warps the last observed frame by the flow and pastes the
#   generated colour where the mask says, so what moves is moved and what
#   does not is copied. Its prediction
#   is frames, the pseudo-code's `Y`; trained, a discriminator judging the
#   observed + predicted frames makes the `Generator` a GAN's.

# %%
from vlm_tf.models import build_fusion_model

OBSERVED = FRAMES // 2  # frames the fusion model sees; it predicts the rest
fusion_model = build_fusion_model(observed_frames=OBSERVED, predicted_frames=FRAMES - OBSERVED, image_size=(SIZE, SIZE))
print(f"{fusion_model.name}: {fusion_model.count_params():,} weights; parts: {', '.join(layer.name for layer in fusion_model.layers[1:])}")

# %% [markdown]
# The pseudo-code, line by line, with the model's parts (from here on `RNN`
# and `Generator` are the fusion model's, not §3.2's and §3.3's). Keras'
# `Concatenate` takes its inputs as one list, hence `Fusion([...])`, and the
# `OutputLayer` needs the observed frames too, to warp.

# %%
CNN, RNN, Fusion, Generator, OutputLayer = (fusion_model.get_layer(name) for name in ("CNN", "RNN", "Fusion", "Generator", "OutputLayer"))
observed = X[None, :OBSERVED] * 255.0  # the model takes pixels in [0, 255]

# 空间特征提取
X_space = CNN(observed)
# 时序特征提取
X_time = RNN(X_space)
# 融合特征
X_multimodal = Fusion([X_space[:, -1], X_time])
# 生成高质量视频帧
X_fake = Generator(X_multimodal)
# 输出层
Y = OutputLayer([X_fake, observed])

print(f"X as RNN(X) would read it: {tuple(tf.reshape(observed, (1, OBSERVED, -1)).shape)}  (every pixel of a frame in one vector)")
print(f"X_space = CNN(X):          {tuple(X_space.shape)}")
print(f"X_time = RNN(X_space):     {tuple(X_time.shape)}")
print(f"X_multimodal:              {tuple(X_multimodal.shape)}")
print(f"X_fake:                    {tuple(X_fake.shape)}  (colour, mask, flow per predicted frame)")
print(f"Y = OutputLayer(X_fake):   {tuple(Y.shape)}, the next {FRAMES - OBSERVED} frames")
np.testing.assert_allclose(Y, fusion_model(observed), atol=1e-3)
print("\nY equals fusion_model(X): the model is these five lines.")

fig, ax = plt.subplots(figsize=(6, 1.1))
ax.imshow(clip_montage(Y[0].numpy()), interpolation="nearest")
ax.set_title("Y: the predicted frames, untrained", fontsize=9, loc="left")
ax.axis("off")
plt.show()

# %% [markdown]
# ## Summary: pseudo-code → code
#
# | the text's name | here | in `vlm_tf` |
# |---|---|---|
# | `Conv2D`, `ReLU`, `MaxPooling` (§3.1) | `tf.nn.conv2d` + bias, `tf.nn.relu`, `tf.nn.max_pool2d`; the frames as the batch | `vm.conv2d`, `vm.relu`, `vm.max_pooling`; `conv1` / `pool1` of `build_cnn_lstm` |
# | `RNN`, `OutputLayer` (§3.2) | a tanh cell looped over the frames; `Dense(8, softmax)` | `vm.rnn_step`; `lstm1` / `output_layer` of `build_cnn_lstm` |
# | `Generator`, `Discriminator`, `Loss` (§3.3) | `build_video_generator`, `build_video_discriminator`; `vm.discriminator_loss`, `vm.generator_loss_nonsaturating` | the losses in `vlm_tf.math` and `vlm_tf.training.gan`; `vlm-tf train --model gan`, `vlm-tf generate` |
# | `CNN`, `RNN`, `Fusion`, `Generator`, `OutputLayer` (§3.4) | the parts of `build_fusion_model` | `vlm-tf train --model fusion`, `vlm-tf predict-frames` |
