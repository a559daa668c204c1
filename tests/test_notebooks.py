"""Every notebook is built from its source in notebooks/src and stamped (notebooks/build.py), and
every source runs top to bottom, with test-sized parameters where its defaults are a real run.
"""

import importlib.util
import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
_spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOK_DIR / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NAMES = build.names()
CELL_TIMEOUT_S = 900
# Committed outputs stay small enough to review in a diff viewer.
MAX_NOTEBOOK_BYTES = 1_000_000
# Notebooks whose defaults train for minutes (their committed outputs are
# those runs) are executed with these lines appended to the parameters cell.
TEST_PARAMETERS = {
    "ch02_concepts": "\n".join(
        ["ATTENTION_VIDEOS_PER_CLASS = 6", "ATTENTION_EPOCHS = 1", "ATTENTION_SIZE = 32"]
    ),
    "ch05_cnn_lstm": "\n".join(
        ["VIDEOS_PER_CLASS = 6", "FRAMES = 8", "CLIP_FRAMES = 8", "SIZE = 32", "EPOCHS = 2"]
    ),
    "ch09_faq": "\n".join(
        ["LIVE_MODELS = ['cnn_mean', 'cnn_lstm']", "LIVE_EPOCHS = 1", "LIVE_VIDEOS_PER_CLASS = 6"]
    ),
    "ch04_math": "\n".join(
        ["VIDEOS_PER_CLASS = 6", "FRAMES = 8", "CLIP_FRAMES = 8", "SIZE = 32", "EPOCHS = 1"]
    ),
    "ch06_generation": "\n".join(
        ["VIDEOS_PER_CLASS = 6", "FRAMES = 16", "CLASSIFIER_EPOCHS = 1", "GAN_EPOCHS = 1"]
        + ["FUSION_EPOCHS = 1", "PER_CLASS = 2"]
    ),
    "ch06_applications": "\n".join(
        ["VIDEOS_PER_CLASS = 6", "FRAMES = 8", "SIZE = 32", "CLASSIFY_EPOCHS = 1"]
        + ["RESTORE_EPOCHS = 1", "DETECT_VIDEOS = 12", "DETECT_EPOCHS = 1"]
    ),
    "ch07_tools": "\n".join(["VIDEOS_PER_CLASS = 6", "EPOCHS = 2"]),
    "ch08_transfer": "\n".join(["SHOTS = 2", "TEST_CLIPS = 2", "EPOCHS = 1", "RESTORE_FRAMES = 6"]),
    "ch08_trustworthy": "\n".join(
        ["VIDEOS_PER_CLASS = 6", "FRAMES = 8", "SIZE = 32", "EPOCHS = 1", "SEVERITIES = [1, 5]"]
        + [
            "CORRUPTIONS = ['gaussian_noise', 'contrast', 'h264', 'frame_drop']",
            "EXPLAIN_VIDEOS = 8",
        ]
    ),
    # Ten clips a motion: the audio-visual labels (motion + timbre) of the test clips must be
    # among the training clips'.
    "ch08_multimodal": "\n".join(
        ["VIDEOS_PER_CLASS = 10", "HELDOUT_PER_PAIR = 1", "TEXT_EPOCHS = 1", "AV_EPOCHS = 1"]
        + ["JUDGE_EPOCHS = 1", "GAN_EPOCHS = 1", "DIFFUSION_EPOCHS = 1"]
    ),
    "ch08_trends": "\n".join(
        ["VIDEOS_PER_CLASS = 6", "FRAMES = 8", "SIZE = 32", "EPOCHS = 1", "PRUNE_EPOCHS = 1"]
    ),
}


def test_notebooks_exist():
    assert set(NAMES) >= {
        "ch01_glossary",
        "ch02_concepts",
        "ch03_algorithms",
        "ch04_math",
        "ch05_cnn_lstm",
        "ch06_applications",
        "ch06_generation",
        "ch07_tools",
        "ch08_transfer",
        "ch08_multimodal",
        "ch08_trends",
        "ch08_trustworthy",
        "ch09_faq",
    }
    # A notebook without a source could be edited where no review sees it.
    assert {path.stem for path in NOTEBOOK_DIR.glob("*.ipynb")} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_built_from_its_current_source(name):
    notebook = nbformat.read(build.notebook_path(name), as_version=4)
    stamp = build.stamp(notebook)
    rebuild = f"python notebooks/build.py {name}"
    assert stamp is not None, f"notebooks/{name}.ipynb has no build stamp: {rebuild}"
    assert stamp["source_sha256"] == build.sha256(build.source_path(name).read_bytes()), (
        f"notebooks/src/{name}.py changed since notebooks/{name}.ipynb was built: {rebuild}"
    )
    # What `python notebooks/build.py --check` says of it: current by its source.
    assert build.staleness(name)[0] is False
    # Hand edits to the built notebook, which the source stamp alone would not see.
    source = build.read_source(name)
    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        (c.cell_type, c.source) for c in source.cells
    ], f"notebooks/{name}.ipynb's cells differ from notebooks/src/{name}.py"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_parameters_cell_and_small_outputs(name):
    code_cells = [cell for cell in build.read_source(name).cells if cell.cell_type == "code"]
    # The parameters cell comes first, so a caller can override it before anything runs.
    assert "parameters" in code_cells[0].metadata.get("tags", []), (
        f"notebooks/src/{name}.py: the first code cell is not tagged 'parameters'"
    )
    size = build.notebook_path(name).stat().st_size
    assert size < MAX_NOTEBOOK_BYTES, f"notebooks/{name}.ipynb is {size} bytes"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path, monkeypatch, request):
    build.ensure_kernel()
    # The kernel inherits TMPDIR, so the notebook's tempfile.mkdtemp() WORK_DIR
    # lands in tmp_path and is cleaned up with it.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = build.read_source(name)
    parameters = next(cell for cell in notebook.cells if cell.cell_type == "code")
    if name in TEST_PARAMETERS:
        parameters.source += "\n" + TEST_PARAMETERS[name]
    if name == "ch07_tools":
        # The bench's own test measured it already (conftest.quick_bench_report).
        report = request.getfixturevalue("quick_bench_report")
        parameters.source += f"\nBENCH_JSON = {str(report)!r}"
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=build.KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    # Raises CellExecutionError, with the failing cell's traceback, on the first error.
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"


def test_prose_is_taken_without_a_run_only_where_no_code_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "SOURCE_DIR", tmp_path)
    monkeypatch.setattr(build, "NOTEBOOK_DIR", tmp_path)
    source = tmp_path / "ch99_demo.py"
    source.write_text("# %% [markdown]\n# Old words.\n\n# %%\nprint(1)\n")
    notebook = build.read_source("ch99_demo")
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    notebook.metadata["vlm_tf"] = {"source_sha256": build.sha256(source.read_bytes())}
    nbformat.write(notebook, build.notebook_path("ch99_demo"))

    source.write_text("# %% [markdown]\n# New words.\n\n# %%\nprint(1)\n")
    assert build.main(["ch99_demo", "--prose"]) == 0
    updated = nbformat.read(build.notebook_path("ch99_demo"), as_version=4)
    assert updated.cells[0].source == "New words."
    assert updated.cells[1].outputs[0]["text"] == "1\n"
    assert build.stamp(updated)["source_sha256"] == build.sha256(source.read_bytes())

    # A changed code cell needs a run: its output would no longer be its code's.
    source.write_text("# %% [markdown]\n# New words.\n\n# %%\nprint(2)\n")
    with pytest.raises(SystemExit, match="python notebooks/build.py ch99_demo"):
        build.main(["ch99_demo", "--prose"])
