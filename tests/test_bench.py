"""`vlm-tf bench`: every figure the speed issue asks for, measured side by side, in one run a user
can start.
"""

import json

import numpy as np
import pytest

from vlm_tf import bench
from vlm_tf.bench import measure_matmul_gflops
from vlm_tf.bench_input import measure_decode_ceiling
from vlm_tf.bench_peers import FrameGenerator
from vlm_tf.data.splits import index_directory, probe_files

KEYS = (
    "pipeline_clips_per_s",
    "pipeline_vs_framegenerator",
    "pipeline_vs_decode_ceiling",
    "train_clips_per_s",
    "train_utilisation",
    "input_stall_fraction",
    "train_vs_torch_eager",
    "train_vs_best_peer",
    "best_peer",
    "peers",
    "precision_xla",
    "serve_ms_per_clip",
    "cache_speedup",
    "cached_training_vs_uncached",
    "train_share_of_limit",
    "served_pipeline_vs_decode_ceiling",
    "limit_kind",
    "decode_sparse_vs_sequential",
    "detection_train_clips_per_s",
)


def test_tutorial_loader_reads_the_frames_of_our_clips(tiny_dataset):
    paths, labels, _ = index_directory(tiny_dataset / "test")
    clip, label = next(FrameGenerator(paths[:1], labels[:1], num_frames=5, size=20)())
    assert clip.shape == (5, 20, 20, 3) and int(label) == labels[0]
    assert 0 <= float(np.min(clip)) and float(np.max(clip)) <= 255 and float(np.std(clip)) > 5


def test_decode_ceiling_runs_without_tensorflow(tiny_dataset):
    paths, _, _ = index_directory(tiny_dataset / "test")
    counts, _ = probe_files(paths)
    # The measuring process raises if TensorFlow was imported into it.
    assert measure_decode_ceiling(paths, counts, passes=1) > 0


def test_matmul_ceiling_counts_two_flops_per_multiply_add():
    # Any real CPU does more than 1 GFLOP/s and no 2-core one does 10 TFLOP/s in float32.
    assert 1 < measure_matmul_gflops("float32", n=512, repeats=3) < 10_000


@pytest.mark.slow
def test_bench_json_holds_every_figure(quick_bench_report):
    report = json.loads(quick_bench_report.read_text())
    missing = [key for key in KEYS if key not in report]
    assert not missing, missing
    # Our parallel pipeline against a Python generator decoding one video at a time.
    assert report["pipeline_vs_framegenerator"] > 2, report
    assert 0 < report["pipeline_vs_decode_ceiling"] < 1.5, report
    # The ceiling is the better of a process per core and one thread.
    assert report["decode_ceiling_clips_per_s"] == max(
        report["decode_processes_clips_per_s"], report["decode_one_thread_clips_per_s"]
    )
    assert report["cached_training_vs_uncached"] > 0
    if report["decode_access"] is None:
        assert "not installed" in report["decode_access_note"]
    else:
        assert set(report["decode_sparse_vs_sequential"]) == {"short_gop", "long_gop"}
        for rates in report["decode_access"].values():
            assert rates["sequential_clips_per_s"] > 0 and rates["sparse_clips_per_s"] > 0
    assert 0 <= report["input_stall_fraction"] < 1
    for name in ("cnn_lstm", "cnn_lstm_text"):
        assert report["train_clips_per_s"][name] > 0
        assert 0 < report["train_utilisation"][name] < 1.5, report["train_utilisation"]
        assert report["precision_xla"][name]["auto"] in report["precision_xla"][name]
        # The limit is the lower of the compute ceiling and the memory roofline.
        assert report["limit_kind"][name] in ("ceiling", "roofline")
        assert report["train_share_of_limit"][name] >= report["train_utilisation"][name] * 0.999
        if report["limit_kind"][name] == "roofline":
            # A limit nothing measured went past.
            peers = (report["peers"].get(name) or {}).values()
            fastest = max([report["train_clips_per_s"][name], *peers])
            assert fastest <= report["train_limits"][name]["roofline"], report["train_limits"]
    assert report["serve_ms_per_clip"] > 0 and report["detection_train_clips_per_s"] > 0
    # Energy, marked measured or estimated; a clip's training energy is the mean power over the
    # measured steps at the picked setting's rate, so it cannot exceed the whole benchmark's.
    assert report["energy"]["method"] in ("measured", "estimated")
    assert report["energy"]["joules"] > 0 and report["energy"]["co2_grams"] > 0
    for name, joules in report["train_joules_per_clip"].items():
        assert 0 < joules < report["energy"]["joules"], (name, joules)
    if report["train_vs_torch_eager"] is None:
        assert "not installed" in report["torch_note"]
    else:
        assert report["train_vs_torch_eager"] > 0
    # Ours against the fastest peer that ran, or no ratio where none ran (nothing installed).
    for name, rates in report["peers"].items():
        if not rates:
            assert report["best_peer"][name] is None and report["train_vs_best_peer"][name] is None
            assert report["torch_note"] and report["jax_note"]
            continue
        best = report["best_peer"][name]
        assert rates[best] == max(rates.values())
        assert report["train_vs_best_peer"][name] == pytest.approx(
            report["train_clips_per_s"][name] / rates[best]
        )


def test_a_roofline_that_a_measured_rate_passes_is_not_the_limit():
    def report(ours, peer):
        return {
            "train_limits": {"m": {"ceiling": 500.0, "roofline": 200.0}},
            "limit_kind": {"m": "roofline"},
            "train_share_of_limit": {"m": ours / 200.0},
            "train_utilisation": {"m": ours / 500.0},
            "train_clips_per_s": {"m": ours},
            "peers": {"m": {"PyTorch x": peer}},
        }

    below = report(150.0, 180.0)
    bench._check_limits_against_peers(below)
    assert below["limit_kind"]["m"] == "roofline" and below["limit_note"] is None
    for ours, peer, who in ((250.0, 180.0, "ours"), (150.0, 230.0, "a peer")):
        passed = report(ours, peer)
        bench._check_limits_against_peers(passed)
        assert passed["limit_kind"]["m"] == "ceiling"
        assert passed["train_share_of_limit"]["m"] == ours / 500.0
        assert who in passed["limit_note"]


@pytest.mark.parametrize("name", ["cnn_lstm", "cnn_lstm_text"])
def test_the_pytorch_peer_is_our_model_layer_for_layer(name):
    torch = pytest.importorskip("torch")
    from vlm_tf.bench_peers import build_cnn_lstm_torch
    from vlm_tf.models import build_model
    from vlm_tf.models.registry import get_model_spec

    kwargs = get_model_spec(name).kwargs
    peer = build_cnn_lstm_torch(
        8, size=64, **{k: kwargs[k] for k in ("filters", "frame_difference") if k in kwargs}
    )
    ours = build_model(name, num_classes=8, image_size=(64, 64))
    # PyTorch's LSTM keeps two bias vectors where Keras keeps one: 4 gates x 64 units more.
    assert sum(p.numel() for p in peer.parameters()) == ours.count_params() + 4 * 64
    logits = peer(torch.zeros(2, 16, 3, 64, 64))
    assert tuple(logits.shape) == (2, 8)
