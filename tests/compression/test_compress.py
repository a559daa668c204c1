"""`vlm-tf compress`: each method from the command line, and the table that compares a run with what
compressing it made.
"""

import json
import re

import pytest
from helpers import assert_one_line_error, vlm_tf


def test_quantize_needs_a_mode_and_prune_a_fraction(classify_run, tmp_path):
    done = vlm_tf("compress", classify_run[0], "--method", "quantize")
    assert_one_line_error(done, "--quantize float16, dynamic or int8")
    done = vlm_tf("compress", tmp_path, "--method", "prune", "--sparsity", "1.5")
    assert done.returncode != 0 and "between 0 and 1" in done.stderr


@pytest.fixture
def small_run(classify_run):
    return classify_run[0]


def _table_rows(stdout):
    return [
        line
        for line in stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| model")
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, options, written",
    [
        ("prune", ["--sparsity", "0.6", "--epochs", "1"], "run_pruned60"),
        ("distill", ["--epochs", "1"], "run_distilled_cnn_lstm_narrow"),
        ("quantize", ["--quantize", "dynamic"], "run/model_dynamic.tflite"),
    ],
)
def test_each_method_writes_its_result_and_compares_it(
    small_run, tiny_dataset, method, options, written
):
    done = vlm_tf(
        "compress",
        small_run,
        "--method",
        method,
        *options,
        "--evaluate",
        tiny_dataset / "test",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (small_run.parent / written).exists()
    rows = _table_rows(done.stdout)
    assert len(rows) == 2, done.stdout
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    # The run is its own reference: ratio 1.00 in both ratio columns.
    assert cells[0][-2:] == ["1.00", "1.00"]
    accuracy = float(cells[1][2])
    assert 0.0 <= accuracy <= 1.0
    if method == "prune":
        report = json.loads((small_run.parent / written / "compression.json").read_text())
        assert abs(report["sparsity"] - 0.6) < 0.01
        # Zeros compress: the pruned model's gzipped TFLite file is the smaller.
        assert float(cells[1][-2]) < 0.9
    if method == "distill":
        assert int(cells[1][1].replace(",", "")) < int(cells[0][1].replace(",", ""))
    if method == "quantize":
        assert float(cells[1][3]) < float(cells[0][3]) / 2
    assert re.search(r"on .*test, each as a TFLite file", done.stdout)
