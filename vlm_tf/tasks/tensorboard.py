"""TensorBoard writers any task can add: the model's graph, and the clips it trains on."""

from __future__ import annotations

import keras
import tensorflow as tf

from vlm_tf.visualize import clip_montage


class ClipSamples(keras.callbacks.Callback):
    """Writes a few training clips, as the model receives them, to TensorBoard as images.

    Seeing the augmented input is the quickest check that frames are in
    order, in RGB and labelled right.
    """

    def __init__(self, dataset, log_dir, class_names, max_clips=4):
        super().__init__()
        self.dataset = dataset
        self.log_dir = log_dir
        self.class_names = class_names
        self.max_clips = max_clips

    def on_train_begin(self, logs=None):
        clips, labels = next(iter(self.dataset))
        labels = labels.numpy()
        if labels.ndim == 2:
            labels = labels.argmax(axis=-1)
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            for i in range(min(self.max_clips, len(labels))):
                name = f"input_clips/{i}_{self.class_names[labels[i]]}"
                tf.summary.image(name, clip_montage(clips[i].numpy())[None], step=0)
        writer.close()


class ModelGraph(keras.callbacks.Callback):
    """Writes the model's forward graph to TensorBoard's Graphs tab.

    `keras.callbacks.TensorBoard(write_graph=True)` writes nothing with
    Keras 3.15 on TensorFlow 2.21: it looks for `function_spec` on the train
    function, an attribute `tf.function` no longer has. Tracing the model
    ourselves gives the graph a reader wants anyway: the layers, not the
    optimizer's bookkeeping.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir

    def on_train_begin(self, logs=None):
        spec = [tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in self.model.inputs]

        def forward(*inputs):
            return self.model(*inputs, training=False)

        graph = tf.function(forward).get_concrete_function(*spec).graph
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            tf.summary.graph(graph)
        writer.close()
