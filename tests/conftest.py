import fcntl
import importlib
import os
import tempfile

import pytest

# Before TensorFlow is imported by any test module.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `--precision auto` remembers its CPU measurements; the tests (and the
# commands they start) keep theirs out of the user's home, shared for the session.
os.environ.setdefault("VLM_TF_CACHE_DIR", tempfile.mkdtemp(prefix="vlm_tf_test_cache_"))
# The package sets TensorFlow's start-up environment (its oneDNN kernels) on import: imported here,
# before any test module imports TensorFlow, so the tests and every process they start run as a
# user's `vlm-tf` or `import vlm_tf` does.
importlib.import_module("vlm_tf")

# Each xdist worker (and every process its tests start) computes on its share of the cores: left
# to themselves, two workers' TensorFlow thread pools each take every core, and two trainings side
# by side then ran up to twice as long as one after the other (docs/benchmarks.md, "The test
# suite").
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, _SHARE)


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run tests marked slow (CI does)"
    )


# Under pytest-xdist whole modules go to one worker each (`--dist loadscope`, pyproject.toml), so a
# module's fixtures are built once, and modules are handed out in collection order. The modules
# holding the minutes-long acceptance runs go first, so that the workers finish together.
LONGEST_FIRST = (
    "test_end_to_end.py",
    "test_generation.py",
    "test_notebooks.py",
    "test_detection.py",
    "test_restoration.py",
)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject.toml): a worker per core, at most four. Each worker is a TensorFlow
    process training its own models, on its share of the cores (above); more than four cost memory
    without finishing sooner here.

    The whole suite (`--runslow`) too: one worker kept a core idle a third of the time, as tracing,
    decoding and plotting run on one thread (docs/benchmarks.md, "The test suite").
    """
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
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


def once_for_all_workers(tmp_path_factory, name, make):
    """The folder `name`, filled by `make(folder)` once for the whole run: under pytest-xdist a
    session fixture is otherwise built by every worker whose tests ask for it (the bench report
    below was measured twice, a minute or two each). Workers share the parent of their base
    temporary folders; the first to ask builds the folder under a lock while the others wait.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder.mkdir(exist_ok=True)
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def quick_bench_report(tmp_path_factory):
    """The file of one `vlm-tf bench --quick --json` run, measured once for the whole run: its
    test reads every figure, and the chapter-7 notebook shows it instead of measuring again.
    """
    from helpers import vlm_tf

    def measure(folder):
        done = vlm_tf("bench", "--quick", "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        (folder / "bench.json").write_text(done.stdout)

    return once_for_all_workers(tmp_path_factory, "bench", measure) / "bench.json"
