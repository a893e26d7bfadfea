"""The reference documentation (mkdocs + mkdocstrings, mkdocs.yml) builds with warnings as
errors, offline, and holds the API reference and the README's guides."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _fences():
    spec = importlib.util.spec_from_file_location("griffe_doctests", ROOT / "docs" / "griffe_doctests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_build_strict(tmp_path):
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx"):
        pytest.importorskip(module, reason="the docs tools are not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(site)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    page = lambda name: (site / name).read_text(encoding="utf-8")
    assert "Platform profiles" in page("index.html")  # the README's guides
    compile_page = page("api/compile.html")
    assert "nirjax.compile" in compile_page and "CompiledGraph" in compile_page
    assert "to_nir_data" in page("api/data.html") and "to_frames" in page("api/data.html")
    assert "divergence" in page("api/plot.html")
    assert "lif_step" in page("api/kernels.html")  # the kernels, installed from kernels/
    assert "nirjax run" in page("index.html") and "Lowering to hardware" in page("index.html")
    assert "DesignRuleError" in page("api/lowering.html") and "Lowered" in page("api/lowering.html")
    assert "lowering_check" in page("api/cost.html")
    assert "network_step" in page("api/kernels.html")  # the chip kernels (kernels/xylo.py)
    # doctest examples render as code, Sphinx roles as code spans
    assert "language-pycon" in page("api/data.html") or "pycon" in page("api/data.html")
    assert ":class:" not in page("api/data.html")


def test_doctest_fences_and_roles():
    fences = _fences()
    text = "Intro.\n\n>>> x = [1][0]\n>>> x\n1\n\nAfter.\n\n```\n>>> kept\n```"
    assert fences.fence_doctests(text) == (
        "Intro.\n\n```pycon\n>>> x = [1][0]\n>>> x\n1\n```\n\nAfter.\n\n```\n>>> kept\n```")
    assert fences._ROLE.sub(lambda m: f"`{m.group(1)}`", ":class:`~nirjax.Semantics` and "
                            ":func:`nirjax.compile`") == "`nirjax.Semantics` and `nirjax.compile`"
