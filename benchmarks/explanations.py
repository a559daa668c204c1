"""Explanations measured: `vlm-tf explain --score` for several classifiers on the quickstart data.

    python benchmarks/explanations.py [--work explanations-work]
        [--models cnn_lstm,cnn_soft_attention,video_transformer]
        [--max-videos 48] [--json]

Each model is trained as `vlm-tf train` trains it on the synthetic motion
set `vlm-tf make-data` writes (its registered recipe, 30 epochs, seed 0),
then every method that applies to it is scored on 48 of the 144 test videos
(6 a class) against the random and centre maps: the pointing game, the
heat inside the object's box, deletion and insertion areas, and frames
removed by temporal occlusion's order against a random one
(`vlm_tf.tasks.explanation_scores`). A run folder already holding
`model.keras` is scored, not trained again; its scores are kept in
`explanation_scores.json`.
"""

import argparse
import json
import os
import sys

# One of each family: the default CNN-LSTM, attention over frames, the transformer. (The
# batch-normalised cnn_lstm_bn_gap is 4.4x slower a pass, and occlusion's 900 passes a clip made
# its scoring take over half an hour here.)
MODELS = ("cnn_lstm", "cnn_soft_attention", "video_transformer")


def score_model(model, data, work, max_videos):
    from vlm_tf.inference import evaluate_directory, load_run
    from vlm_tf.tasks.explanation_scores import score_explanations
    from vlm_tf.training import RunConfig, train

    run_dir = os.path.join(work, "runs", model)
    result_path = os.path.join(run_dir, "explanation_scores.json")
    if os.path.isfile(result_path):
        with open(result_path) as f:
            return json.load(f)
    if not os.path.isfile(os.path.join(run_dir, "model.keras")):
        train(data, run_dir, RunConfig(model=model), verbose=0)
    run = load_run(run_dir)
    test = os.path.join(data, "test")
    result = {
        "model": model,
        "test_accuracy": evaluate_directory(run, test)["accuracy"],
        **score_explanations(run, test, max_videos=max_videos).to_dict(),
    }
    with open(result_path, "w") as f:
        json.dump(result, f)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="explanations-work", help="data and runs")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--max-videos", type=int, default=48)
    parser.add_argument("--json", action="store_true", help="print every model's report too")
    args = parser.parse_args()
    from vlm_tf.data.synthetic import write_dataset

    data = os.path.join(args.work, "quickstart")
    write_dataset(data)
    results = []
    for model in args.models.split(","):
        results.append(score_model(model, data, args.work, args.max_videos))
        print(f"scored {model}", file=sys.stderr, flush=True)
    print("| model (test accuracy) | method | pointing game | heat in box | deletion | insertion |")
    print("|---|---|---|---|---|---|")
    for result in results:
        rows = {**result["methods"], **{f"({k})": v for k, v in result["baselines"].items()}}
        for name, values in rows.items():
            cells = [
                f"{values[key]:.3f}" if key in values else ""
                for key in ("pointing_game", "heat_in_box", "deletion_auc", "insertion_auc")
            ]
            model = f"{result['model']} ({result['test_accuracy']:.3f})"
            print(f"| {model} | {name} | " + " | ".join(cells) + " |")
        frames = result["frames"]
        deletion = f"{frames['deletion_auc']:.3f} ({frames['random_deletion_auc']:.3f})"
        print(f"| {result['model']} | frames by importance (random order) | | | {deletion} | |")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
