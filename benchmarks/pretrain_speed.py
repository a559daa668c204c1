"""Pretraining speed: clips/s of each `vlm-tf pretrain --method`, and its share of the ceiling.

    python benchmarks/pretrain_speed.py [--batch-size 16] [--frames 16] [--size 64] [--json]

In one process, like `vlm-tf bench`: the float32 matrix-product ceiling of
this machine (`vlm_tf.bench.measure_matmul_gflops`), then each pretext
model's training step on a batch of random clips, float32 without XLA (what
the shipped preset was trained with), timed in turns
(`vlm_tf.training.runtime.measure_training_rates`). FLOPs per clip are
TensorFlow's own count of the traced training step (forward, backward and
the optimizer's update; `tf.compat.v1.profiler` on the step's graph), so the
masked model's 10 % of visible tubes and its decoder are counted as they
run, not estimated. Utilisation = clips/s × GFLOPs per clip / ceiling.
"""

import argparse
import json


def step_flops(model, clips):
    """Floating-point operations of one training step of `model` on `clips`, per clip."""
    import tensorflow as tf

    variables = model.trainable_variables

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y_pred=model(x, training=True))
        gradients = tape.gradient(loss, variables)
        model.optimizer.apply(gradients, variables)
        return loss

    graph = step.get_concrete_function(tf.TensorSpec(clips.shape, tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, options=options)
    return profile.total_float_ops / clips.shape[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import numpy as np

    from vlm_tf.bench import machine_description, measure_matmul_gflops
    from vlm_tf.models.registry import get_model_spec
    from vlm_tf.tasks.options import PRETRAIN_ENCODERS, PRETRAIN_METHODS
    from vlm_tf.training import runtime

    ceiling = measure_matmul_gflops("float32")
    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 255, (args.batch_size, args.frames, args.size, args.size, 3))
    clips = clips.astype("float32")
    rows = []
    for method, model_name in PRETRAIN_METHODS.items():

        def build(model_name=model_name, method=method):
            return get_model_spec(model_name).build(
                num_frames=args.frames,
                image_size=(args.size, args.size),
                seed=0,
                encoder=PRETRAIN_ENCODERS[method],
            )

        rates = runtime.measure_training_rates(
            build, clips, None, loss=None, candidates=(runtime.BASELINE,), rounds=args.rounds
        )
        rate = rates["/".join(runtime.BASELINE)]
        model = build()
        model.compile(optimizer="adam")
        flops = step_flops(model, clips)
        rows.append(
            {
                "method": method,
                "model": model_name,
                "encoder": PRETRAIN_ENCODERS[method],
                "clips_per_s": rate,
                "gflops_per_clip": flops / 1e9,
                "utilisation": rate * flops / 1e9 / ceiling,
            }
        )
    machine = machine_description()
    print(
        f"{machine['cpu']}, {machine['cores']} cores; float32 matmul ceiling {ceiling:.0f} GFLOP/s"
    )
    print(f"batches of {args.batch_size} clips of {args.frames}x{args.size}x{args.size}, float32")
    for row in rows:
        print(
            f"  {row['method']:<7} ({row['model']}, {row['encoder']}): {row['clips_per_s']:6.1f} "
            f"clips/s, {row['gflops_per_clip']:.3f} GFLOPs/clip a step = "
            f"{row['utilisation']:.2f} of the ceiling"
        )
    if args.json:
        print(json.dumps({"ceiling_gflops": ceiling, "rows": rows}))


if __name__ == "__main__":
    main()
