"""`vlm-tf bench`, `vlm-tf quickstart` and `vlm-tf data-service`: speed side by side, the main job
end to end, and decoding for training on other processes or machines.
"""

from __future__ import annotations

import json
import os
import sys
import time

from vlm_tf.cli.common import CommandError, non_negative_int, positive_int, say
from vlm_tf.cli.data import DATA_DEFAULTS, make_classification_data
from vlm_tf.cli.export import export_run
from vlm_tf.cli.train import train_run
from vlm_tf.training.config import LOG_DIR, MODEL_FILE, SAVED_MODEL_DIR, RunConfig

QUICKSTART_DIR = "vlm_tf_quickstart"
# A fixed default, so that the address workers and trainers are given can be written down once.
DEFAULT_DISPATCHER_PORT = 5050


def cmd_bench(args):
    from vlm_tf.bench import format_report, run_bench

    report = run_bench(
        quick=args.quick,
        data_dir=args.data,
        progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True),
    )
    say(json.dumps(report) if args.json else format_report(report))


def cmd_quickstart(args):
    from vlm_tf.inference import evaluate_directory, load_run

    data_dir = os.path.join(args.out, "data")
    run_dir = os.path.join(args.out, "run")
    say(f"[1/4] making the synthetic dataset in {data_dir}")
    make_classification_data(
        data_dir,
        videos_per_class=args.videos_per_class,
        frames=DATA_DEFAULTS["frames"],
        size=DATA_DEFAULTS["size"],
        seed=DATA_DEFAULTS["seed"],
    )
    config = RunConfig(epochs=args.epochs)
    if os.path.isfile(os.path.join(run_dir, MODEL_FILE)):
        say(f"[2/4] {run_dir} already holds a finished run; using it")
    else:
        say(f"[2/4] training {config.model} for {config.epochs} epochs into {run_dir}")
        train_run(data_dir, run_dir, config, 2)
    say(f"[3/4] evaluating on {os.path.join(data_dir, 'test')}")
    report = evaluate_directory(load_run(run_dir), os.path.join(data_dir, "test"))
    say("\n".join(report.lines()))
    saved_model = os.path.join(run_dir, SAVED_MODEL_DIR)
    say("[4/4] exporting")
    if os.path.isdir(saved_model) and os.listdir(saved_model):
        say(f"SavedModel: {saved_model} (already exported)")
    else:
        export_run(run_dir, saved_model)
    say("")
    say(f"test accuracy: {report['accuracy']:.3f} on {report['num_videos']} videos")
    say(f"TensorBoard:   tensorboard --logdir {os.path.join(run_dir, LOG_DIR)}")
    say(f"SavedModel:    {saved_model}")
    say(f"Keras model:   {os.path.join(run_dir, MODEL_FILE)}")


def cmd_data_service(args):
    from vlm_tf.data import service

    if args.join is None:
        dispatcher = service.start_dispatcher(args.port)
        address = service.dispatcher_address(dispatcher, args.host)
        say(f"dispatcher at {address}")
    else:
        address = service.check_address(args.join)
    workers = service.spawn_workers(address, args.workers, args.host)
    say(
        f"{args.workers} workers decoding for {address}; train with `vlm-tf train DATA --out RUN "
        f"--data-service {address}`; Ctrl-C stops"
    )
    try:
        # Short sleeps, not one blocking wait: Ctrl-C's signal can land on one of TensorFlow's
        # threads, and Python raises it only when its main thread next runs, which a wait for a
        # process that never ends would not let it do (a test saw the command outlive a minute).
        while any(worker.poll() is None for worker in workers):
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.terminate()
    failed = [worker.returncode for worker in workers if worker.returncode]
    if failed:
        raise CommandError(f"{len(failed)} of {len(workers)} workers ended with status {failed[0]}")


def _add_data_service(commands):
    p = commands.add_parser(
        "data-service",
        help="decode training clips in worker processes, here or for a trainer elsewhere",
        description=(
            "Start a tf.data service dispatcher and worker processes that decode and augment "
            "training batches for `vlm-tf train --data-service HOST:PORT` (classify runs), or "
            "(--join) workers for a dispatcher on another machine. Serves until Ctrl-C "
            '(docs/distributed.md, "Decoding elsewhere").'
        ),
    )
    p.add_argument(
        "--port",
        type=non_negative_int,
        default=DEFAULT_DISPATCHER_PORT,
        help="the dispatcher's port; 0: any free one (default: %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="worker processes to start, a core each (default: this machine's cores, %(default)s)",
    )
    p.add_argument(
        "--join",
        metavar="HOST:PORT",
        help="start only workers, for the dispatcher at HOST:PORT",
    )
    p.add_argument(
        "--host",
        default="localhost",
        help=(
            "the name the trainer reaches this machine by; give it when the trainer runs elsewhere "
            "(default: %(default)s)"
        ),
    )
    p.set_defaults(func=cmd_data_service)


def _add_bench(commands, defaults):
    p = commands.add_parser(
        "bench",
        help=(
            "speed side by side: the input pipeline against the TF tutorial's loader and OpenCV "
            "alone, training against the machine's matmul ceiling, precision and XLA, serving"
        ),
        description=(
            "Measure vlm_tf's speed as ratios against what you would otherwise run, on the same "
            "files and shapes, in one run (docs/benchmarks.md)."
        ),
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes: a smoke run of about a minute, noisy ratios",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help=(
            "read this folder of <class>/<video> files (its train/ if it has one) instead of "
            "writing synthetic videos"
        ),
    )
    p.set_defaults(func=cmd_bench)


def _add_quickstart(commands, defaults):
    p = commands.add_parser(
        "quickstart", help="make-data + train + evaluate + export, about 5 minutes on 2 CPU cores"
    )
    p.add_argument("--out", default=QUICKSTART_DIR, metavar="DIR", help="(default: ./%(default)s)")
    p.add_argument(
        "--videos-per-class",
        type=positive_int,
        default=DATA_DEFAULTS["videos_per_class"],
        help="(default: %(default)s)",
    )
    p.add_argument(
        "--epochs", type=positive_int, default=defaults.epochs, help="(default: %(default)s)"
    )
    p.set_defaults(func=cmd_quickstart)


def add_commands(commands):
    defaults = RunConfig()
    _add_bench(commands, defaults)
    _add_quickstart(commands, defaults)
    _add_data_service(commands)
