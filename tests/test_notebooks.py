"""Execute the notebooks in notebooks/ and fail on any error (they also assert their results)."""

from __future__ import annotations

import pathlib
import shutil
import warnings

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _execute(path, workdir):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    work = workdir / path.name
    shutil.copy(path, work)
    nb = nbformat.read(work, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    # the kernel is a child process that our warnings-as-errors filter does not reach; the
    # client's own plumbing (zmq, jupyter_client) may warn about things unrelated to the notebook
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.execute()  # raises CellExecutionError, naming the cell, on any error
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = _execute(path, tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", [])), "the notebook should draw its plots"


def test_a_failing_notebook_fails(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    bad = tmp_path / "src" / "bad.ipynb"
    bad.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, bad)
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="boom"):
        _execute(bad, tmp_path)
