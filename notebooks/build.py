"""Builds the chapter notebooks from their sources, and checks that the committed ones are current.

Each walkthrough is written in `notebooks/src/<name>.py` (Jupytext's percent format: it diffs and
reviews like code); the `.ipynb` beside this file is what a reader opens, with the outputs of
one execution at the notebook's own (real) parameters. Building stamps into the notebook's
metadata, under `vlm_tf`, the SHA-256 of the source it came from and of every `vlm_tf` module
the kernel had imported at the end, so a notebook whose source changed since can no longer pass
for current (`tests/test_notebooks.py` checks the source stamp of every notebook).

    python notebooks/build.py                  # every notebook, one after the other
    python notebooks/build.py ch05_cnn_lstm    # one (or several) by name
    python notebooks/build.py --check          # which are stale, by source or by code; no run

`--check` exits 1 when a notebook's source changed since it was built (what the test fails
on); a change to the `vlm_tf` code it imported is reported but does not fail, since most code
changes leave a walkthrough's story as it was — rebuild the ones it names when they matter.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import jupytext
import nbformat

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parent
SOURCE_DIR = NOTEBOOK_DIR / "src"
REPO_DIR = NOTEBOOK_DIR.parent
KERNEL_NAME = "python3"
SOURCE_FORMAT = "py:percent"
# The sources carry cell tags only (the parameters cell's); execution times and the like stay
# out of the diffs.
JUPYTEXT_FILTERS = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "tags,-all"}
# A real run trains for minutes in some cells.
CELL_TIMEOUT_S = 3600
# Run after the notebook's own cells and removed again: which vlm_tf files the kernel imported.
IMPORTED_MODULES_CELL = (
    "import json as _json, sys as _sys\n"
    "print(_json.dumps(sorted({_m.__file__ for _n, _m in list(_sys.modules.items())\n"
    "    if (_n == 'vlm_tf' or _n.startswith('vlm_tf.')) and getattr(_m, '__file__', None)})))"
)


def source_path(name):
    return SOURCE_DIR / f"{name}.py"


def notebook_path(name):
    return NOTEBOOK_DIR / f"{name}.ipynb"


def names():
    """Every notebook with a source, in chapter order."""
    return sorted(path.stem for path in SOURCE_DIR.glob("ch*.py"))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_source(name):
    """The notebook a source describes, without outputs, as `nbformat` holds it."""
    notebook = jupytext.read(source_path(name), fmt=SOURCE_FORMAT)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": KERNEL_NAME}
    }
    return notebook


def code_digest(modules):
    """One hash over vlm_tf files, given by their paths inside the repository: paths and bytes."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        digest.update(module.encode() + b"\0" + (REPO_DIR / module).read_bytes() + b"\0")
    return digest.hexdigest()


def stamp(notebook):
    """The build stamp of a committed notebook, or None for one built some other way."""
    return notebook.metadata.get("vlm_tf")


def ensure_kernel():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        from ipykernel import kernelspec

        kernelspec.install(user=True)


def build(name):
    """Executes `name`'s source at its own parameters and writes the stamped `.ipynb`."""
    import nbclient

    ensure_kernel()
    source = source_path(name)
    notebook = read_source(name)
    notebook.cells.append(nbformat.v4.new_code_cell(IMPORTED_MODULES_CELL))
    started = time.perf_counter()
    # The notebooks put their datasets and runs under tempfile.mkdtemp(): the kernel inherits
    # TMPDIR, so they land here and go with it.
    with tempfile.TemporaryDirectory(prefix=f"vlm_tf_{name}_") as work:
        nbclient.NotebookClient(
            notebook,
            kernel_name=KERNEL_NAME,
            timeout=CELL_TIMEOUT_S,
            record_timing=False,
            resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        ).execute(env={**os.environ, "TMPDIR": work, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - started
    modules_cell = notebook.cells.pop()
    files = json.loads("".join(output.get("text", "") for output in modules_cell.outputs))
    modules = sorted(pathlib.Path(f).resolve().relative_to(REPO_DIR).as_posix() for f in files)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            # TensorFlow's and absl's start-up lines on stderr are noise to a reader; errors
            # raise above, so nothing a reader needs is dropped.
            cell.outputs = [out for out in cell.outputs if out.get("name") != "stderr"]
    notebook.metadata["vlm_tf"] = {
        "source": source.relative_to(REPO_DIR).as_posix(),
        "source_sha256": sha256(source.read_bytes()),
        "code_sha256": code_digest(modules),
        "modules": modules,
        "built": datetime.date.today().isoformat(),
        "seconds": round(seconds),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    target = notebook_path(name)
    partial = target.with_suffix(".ipynb.partial")
    nbformat.write(notebook, partial)
    partial.replace(target)
    return seconds


def update_prose(name):
    """Takes the source's markdown into the committed notebook `name` without running it, where
    every code cell is the one the notebook ran (each output is still its code's), and stamps the
    new source; a one-line refusal otherwise.
    """
    path = notebook_path(name)
    built = nbformat.read(path, as_version=4)
    source = read_source(name)

    def shape(notebook):
        return [(c.cell_type, c.source if c.cell_type == "code" else "") for c in notebook.cells]

    if stamp(built) is None or shape(built) != shape(source):
        raise SystemExit(
            f"{name}: its code cells changed since it ran; build it: "
            f"python notebooks/build.py {name}"
        )
    for cell, new in zip(built.cells, source.cells):
        if cell.cell_type == "markdown":
            cell.source = new.source
    built.metadata["vlm_tf"]["source_sha256"] = sha256(source_path(name).read_bytes())
    partial = path.with_suffix(".ipynb.partial")
    nbformat.write(built, partial)
    partial.replace(path)


def staleness(name):
    """`(source_stale, code_stale)` of the committed notebook `name`, from its stamp."""
    path = notebook_path(name)
    if not path.exists():
        return True, True
    built = stamp(nbformat.read(path, as_version=4))
    if built is None:
        return True, True
    source_stale = built["source_sha256"] != sha256(source_path(name).read_bytes())
    modules = built["modules"]
    present = all((REPO_DIR / module).is_file() for module in modules)
    return source_stale, not present or built["code_sha256"] != code_digest(modules)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Build the chapter notebooks from notebooks/src, or check their stamps."
    )
    parser.add_argument("names", nargs="*", help="notebooks to build (default: every one)")
    parser.add_argument("--check", action="store_true", help="report stale notebooks, run none")
    parser.add_argument(
        "--prose",
        action="store_true",
        help="take only the sources' changed markdown into the notebooks, run none (refused where "
        "a code cell changed)",
    )
    args = parser.parse_args(argv)
    known = names()
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(
            f"no source notebooks/src/{unknown[0]}.py; the sources are: {', '.join(known)}"
        )
    chosen = args.names or known
    if args.check:
        failed = False
        for name in chosen:
            source_stale, code_stale = staleness(name)
            failed |= source_stale
            state = (
                "source changed" if source_stale else "code changed" if code_stale else "current"
            )
            print(f"{name}: {state}")
        return 1 if failed else 0
    if args.prose:
        for name in chosen:
            update_prose(name)
            print(f"{name}: prose taken from its source", flush=True)
        return 0
    for name in chosen:
        print(f"{name}: building ...", flush=True)
        print(f"{name}: built in {build(name):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
