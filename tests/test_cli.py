"""The ``nirjax`` command line: ``nirjax run`` (default: the paper's Braille graph),
``nirjax info``, and exit code 2 with a message on bad input."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import numpy as np
import pytest

import nirjax
import nirjax.cli
import oracle
from builders import paper_path, read_quiet


def _total_spikes(text):
    match = re.search(r"output 'output': shape \((\d+), (\d+), (\d+)\), (\d+) spikes in total", text)
    assert match, text
    return tuple(int(g) for g in match.groups())


def _generated_input(steps, batch, rate, seed):
    """The input ``nirjax run`` documents: Bernoulli spikes from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, 12)) < rate).astype(np.float64)


def test_run_without_argument_simulates_braille(capsys):
    assert nirjax.cli.main([]) == 0
    out = capsys.readouterr().out
    assert "braille_noDelay_bias_zero.nir" in out
    assert "NIR file version 0.2.0" in out and "dt = 0.0001" in out
    assert "lif1.w_rec (previous step)" in out  # the program listing
    steps, batch, classes, total = _total_spikes(out)
    assert (steps, batch, classes) == (256, 16, 7)
    # the reported spike count is what the shipped graph does on that input
    model = nirjax.compile(read_quiet(nirjax.example_path("braille_bias_zero")), dt=1e-4)
    ys = np.asarray(model(_generated_input(256, 16, 0.1, 0).astype(np.float32)))
    assert total == int(ys.sum()) > 0


def test_run_reports_what_the_oracle_computes(capsys):
    assert nirjax.cli.main(["run", "--steps", "30", "--batch", "3", "--seed", "5",
                            "--rate", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "30 steps x 3 samples" in out
    _, _, _, total = _total_spikes(out)
    graph = read_quiet(paper_path("braille_bias_zero"))
    ref, _ = oracle.run_graph(graph, _generated_input(30, 3, 0.3, 5), 1e-4)
    assert total == int(ref.sum()) > 0


def test_run_file_with_semantics(capsys, tmp_path):
    path = tmp_path / "braille.nir"
    path.write_bytes(paper_path("braille_subtract").read_bytes())
    assert nirjax.cli.main(["run", str(path), "--dt", "1e-4", "--semantics", "exact",
                            "--steps", "20", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "semantics = 'exact'" in out and "braille.nir" in out


def test_info(capsys):
    with pytest.warns(nirjax.ResetAmbiguityWarning):
        assert nirjax.cli.main(["info", "braille_bias_zero"]) == 0
    out = capsys.readouterr().out
    assert "delayed (cycle-closing) edges: lif1.w_rec -> lif1.lif" in out
    assert "CubaLIF" in out and "(38,)" in out


def test_info_feedforward_graph_has_no_delayed_edges(capsys):
    with pytest.warns(nirjax.ResetAmbiguityWarning):
        assert nirjax.cli.main(["info", "cnn_sinabs"]) == 0
    out = capsys.readouterr().out
    assert "delayed (cycle-closing) edges: none" in out
    assert "(2, 34, 34)" in out


@pytest.mark.parametrize("content", [None, b"not hdf5", "truncated"])
def test_bad_file_exits_with_code_2(capsys, tmp_path, content):
    path = tmp_path / "bad.nir"
    if content == "truncated":
        path.write_bytes(paper_path("lif_norse").read_bytes()[:3000])
    elif content is not None:
        path.write_bytes(content)
    for command in ("run", "info"):
        assert nirjax.cli.main([command, str(path), "--dt", "1e-4"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nirjax: error:") and "bad.nir" in err


def test_malformed_graph_and_missing_dt_exit_with_code_2(capsys, tmp_path):
    assert nirjax.cli.main(["run", str(paper_path("braille_bias_zero_subgraph")), "--dt", "1e-4"]) == 2
    assert "'lif'" in capsys.readouterr().err
    path = tmp_path / "lif.nir"
    path.write_bytes(paper_path("lif_norse").read_bytes())
    with pytest.warns(nirjax.ResetAmbiguityWarning):
        assert nirjax.cli.main(["info", str(path)]) == 2  # a user file needs --dt
    err = capsys.readouterr().err
    assert "dt" in err and "1e-4" in err


def test_console_script_is_installed():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("nirjax") == "nirjax.cli:main"


def test_command_in_subprocess(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "nirjax.cli", "run", "--steps", "20", "--batch", "2"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert _total_spikes(ok.stdout)[:3] == (20, 2, 7)
    bad = subprocess.run([sys.executable, "-m", "nirjax.cli", "run", str(tmp_path / "missing.nir"),
                          "--dt", "1e-4"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert "missing.nir" in bad.stderr and "Traceback" not in bad.stderr
