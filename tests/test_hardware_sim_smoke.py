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
    out = tmp_path / "r"
    result = hardware_sim.main(["--quick", "--targets", "xylo", "--steps", "20",
                                "--batch", "3", "--out", str(out)])
    row = result["rows"][0]
    assert row["target"] == "xylo-audio2"
    if xylo_harness.xylo_python() is None:
        assert "xylo environment" in row["skipped"]
    else:
        assert row["identical_spikes"] is True
        assert len(row["nirjax_samples_per_s"]) == len(row["vendor_samples_per_s"]) == 2
        assert row["ratio"] > 0 and row["ratio_range"][0] <= row["ratio_range"][1]
        assert row["nirjax"]["min"] <= row["nirjax"]["median"] <= row["nirjax"]["max"]
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["target"] == "xylo-audio2"
    md = (tmp_path / "r.md").read_text()
    assert "xylo-audio2" in md and "load average" in md and "command" in md
    assert "xylo-audio2" in capsys.readouterr().out


def test_every_row_is_measured_or_says_why_not():
    case = hardware_sim.prepare("loihi2", 10, 3, 2, 0.2)
    assert case.skipped or (case.nirjax_once is not None and case.vendor_round is not None)
