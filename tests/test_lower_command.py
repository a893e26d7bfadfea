"""``nirjax lower FILE --target T -o OUT [--dt DT] [--report]`` (nirjax/cli/lower.py),
driven through an argparse parser built here as the CLI package builds it."""

from __future__ import annotations

import argparse
import os

import nir
import numpy as np

from nirjax.cli import lower as command
from nirjax.lowering.xylo import quantize as xq

BRAILLE = os.path.join(os.path.dirname(__file__), "data", "paper",
                       "braille_noDelay_noBias_subtract.nir")


def _main(argv):
    parser = argparse.ArgumentParser(prog="nirjax")
    sub = parser.add_subparsers(dest="command")
    command.add_arguments(sub.add_parser("lower"))
    return command.run(parser.parse_args(argv))


def test_lower_writes_the_vendor_file_and_report(tmp_path, capsys):
    out = tmp_path / "braille.npz"
    status = _main(["lower", BRAILLE, "--target", "xylo-audio2", "-o", str(out), "--dt", "1e-4",
                    "--report"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    with np.load(out) as data:
        assert tuple(data.files) == xq.SPEC_KEYS
        assert data["weights_in"].shape == (12, 40, 1)
    assert "Resources" in captured.out and "hidden neurons" in captured.out
    assert f"wrote {out}" in captured.out


def test_options_reach_the_target(tmp_path, capsys):
    out = tmp_path / "b.npz"
    assert _main(["lower", BRAILLE, "-t", "xylo-audio2", "-o", str(out), "--dt", "1e-4",
                  "-O", "method=channel", "-O", "compat=fixed"]) == 0
    capsys.readouterr()
    assert _main(["lower", BRAILLE, "-t", "xylo-audio2", "-o", str(out), "--dt", "1e-4",
                  "-O", "nonsense=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nonsense" in err


def test_errors_are_one_line_with_status_2(tmp_path, capsys):
    out = tmp_path / "x.npz"
    # unknown target
    assert _main(["lower", BRAILLE, "-t", "xylo-audio9", "-o", str(out), "--dt", "1e-4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nirjax lower: error:") and err.count("\n") == 1
    assert "xylo-audio2" in err
    # missing dt
    assert _main(["lower", BRAILLE, "-t", "xylo-audio2", "-o", str(out)]) == 2
    assert "dt" in capsys.readouterr().err
    # missing file
    assert _main(["lower", str(tmp_path / "none.nir"), "-t", "xylo-audio2", "-o", str(out),
                  "--dt", "1e-4"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    # design rules: every violation on the one line
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(np.array([20])), "fc": nir.Linear(rng.normal(size=(1200, 20))),
        "lif": nir.CubaLIF(tau_syn=np.full(1200, 2e-3), tau_mem=np.full(1200, 4e-3),
                           r=np.full(1200, 4.0), v_leak=np.zeros(1200),
                           v_threshold=np.ones(1200), w_in=np.full(1200, 2.0)),
        "fc2": nir.Linear(rng.normal(size=(9, 1200))),
        "ro": nir.CubaLIF(tau_syn=np.full(9, 2e-3), tau_mem=np.full(9, 4e-3), r=np.full(9, 4.0),
                          v_leak=np.zeros(9), v_threshold=np.ones(9), w_in=np.full(9, 2.0)),
        "output": nir.Output(np.array([9]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "ro"), ("ro", "output")])
    path = tmp_path / "big.nir"
    nir.write(path, g)
    assert _main(["lower", str(path), "-t", "xylo-audio2", "-o", str(out), "--dt", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "1200 hidden neurons" in err and "20 input channels" in err and "9 readout" in err
    assert not out.exists()
