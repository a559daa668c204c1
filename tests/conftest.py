import os
import tempfile

# Before TensorFlow is imported by any test module.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `--precision auto` remembers its CPU measurements; the tests (and the
# commands they start) keep theirs out of the user's home, shared for the session.
os.environ.setdefault("VLM_TF_CACHE_DIR", tempfile.mkdtemp(prefix="vlm_tf_test_cache_"))

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run tests marked slow (CI does)"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """The synthetic dataset at test size: 8 classes, 4/1/1 videos per split, 8 frames of 32x32."""
    from vlm_tf.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("tiny_dataset")
    write_dataset(root, videos_per_class=6, num_frames=8, size=32, seed=3)
    return root


@pytest.fixture(scope="session")
def classify_run(tiny_dataset, tmp_path_factory):
    """`(run_dir, train_result, config)` of the default model trained on `tiny_dataset`, once a
    session, for every test that only needs a finished classify run. Tests that write into a run
    write beside it or copy it first.
    """
    from helpers import TINY_CLASSIFY

    from vlm_tf.training import RunConfig, train

    config = RunConfig(**TINY_CLASSIFY)
    run_dir = tmp_path_factory.mktemp("classify") / "run"
    result = train(tiny_dataset, run_dir, config, verbose=0)
    return run_dir, result, config
