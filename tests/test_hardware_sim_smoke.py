"""Smoke test of benchmarks/hardware_sim.py (no timing is asserted): with the xylo vendor
environment, nirjax's lowered simulation and XyloSim give identical spikes and a ratio; without
it the row says why it was skipped."""

from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "peers"))

import hardware_sim  # noqa: E402
import xylo_harness  # noqa: E402


def test_xylo_row(tmp_path, capsys):
    out = tmp_path / "r.json"
    result = hardware_sim.main(["--targets", "xylo", "--steps", "20", "--batch", "3",
                                "--repeat", "1", "--out", str(out)])
    row = result["rows"][0]
    assert row["target"] == "xylo-audio2"
    if xylo_harness.xylo_python() is None:
        assert "xylo environment" in row["skipped"]
    else:
        assert row["identical_spikes"] is True
        assert row["ratio"] > 0 and row["nirjax_samples_per_s"] > 0
    assert json.loads(out.read_text())["rows"][0]["target"] == "xylo-audio2"
    assert "xylo-audio2" in capsys.readouterr().out


def test_every_row_is_measured_or_says_why_not():
    row = hardware_sim.measure("loihi2", 10, 2, 1, 0.2)
    assert row["skipped"] if "skipped" in row else "identical_spikes" in row
