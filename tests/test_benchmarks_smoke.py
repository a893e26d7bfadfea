"""Smoke test of the speed benchmark harness (no timing is asserted).

Runs ``benchmarks/speed.py`` for nirjax only, on a tiny version of the Braille workload, in a
temporary directory, and checks that the harness produced a complete, well-formed result.
Also checks that the generated workloads are the graphs the README describes and that they
spike at realistic rates (a property of the benchmark inputs, not of any speed).
"""

from __future__ import annotations

import csv
import json
import pathlib
import sys

import nir
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import speed  # noqa: E402
import workloads  # noqa: E402


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_quick_run_nirjax_only(tmp_path):
    speed.main([
        "--quick", "--frameworks", "nirjax", "--workloads", "W3", "--steps", "20",
        "--batch", "2", "--compile-T", "20,40", "--gemm-n", "64", "--min-repeats", "1",
        "--max-repeats", "1", "--out-dir", str(tmp_path / "results"),
        "--graphs-dir", str(tmp_path / "graphs"), "--name", "smoke",
    ])
    results = tmp_path / "results"
    rows = _csv(results / "smoke.csv")
    assert [(r["workload"], r["framework"], r["status"]) for r in rows] == [("W3", "nirjax", "ok")]
    r = rows[0]
    assert r["reason"] == ""
    assert float(r["fwd_ms"]) > 0 and float(r["fwdbwd_ms"]) > 0
    assert float(r["gemm_gflops"]) > 0
    assert (r["T"], r["B"]) == ("20", "2")
    # both spiking nodes of the Braille graph are reported
    assert sorted(k.split("=")[0] for k in r["rates"].split(";")) == ["lif1.lif", "lif2"]
    raw = json.loads((results / "smoke.json").read_text())["results"][0]
    assert raw["grad_finite"] is True
    import jax
    import nirjax

    with pytest.warns(nirjax.ResetAmbiguityWarning):  # the paper's Braille file predates 1.0.6
        model = nirjax.compile(str(tmp_path / "graphs" / "W3.nir"), dt=1e-4)
    assert raw["grad_arrays"] == len(jax.tree_util.tree_leaves(model.params))
    compile_rows = _csv(results / "smoke_compile.csv")
    assert [int(c["T"]) for c in compile_rows] == [20, 40]
    # outputs grow with T, so XLA's output buffer for T=40 is twice that for T=20
    out20, out40 = (float(c["out_mb"]) for c in compile_rows)
    assert out40 == pytest.approx(2 * out20, rel=1e-4)
    assert (results / "smoke.md").read_text().count("| W3 | nirjax |") >= 2
    assert (results / "smoke_machine.md").exists()
    # --quick: two interleaved rounds per phase in the persistent worker; the reported
    # medians are those of the rounds, the set-up measurement is kept aside
    assert [len(raw["rounds"][p]) for p in ("fwd", "fwdbwd")] == [2, 2]
    assert raw["fwd"]["n"] == 2 and raw["fwd"]["min"] <= raw["fwd"]["median"] <= raw["fwd"]["max"]
    assert "setup_fwd" in raw and len(raw["round_load"]) == 2
    md = (results / "smoke.md").read_text()
    assert "## Interleaved rounds" in md and "## Table for the README" in md


def test_ratio_statistics_and_verdicts():
    rounds = {"nirjax": {"fwd": [1.0, 2.0, 1.0]}, "spyx": {"fwd": [3.0, 3.0, 1.5]}}
    st = speed.ratio_stats(rounds, "spyx", "fwd")
    assert (st["min"], st["median"], st["max"], st["n"]) == (1.5, 1.5, 3.0, 3)
    assert st["ratio_of_medians"] == 3.0
    assert speed.verdict(st, 1.2) == "met"
    assert speed.verdict(st, 2.0) == "within noise"
    assert speed.verdict(st, 3.5) == "not met"
    assert speed.verdict(None, 1.0) == "n/a"
    q = speed._quantiles([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (q["median"], q["q1"], q["q3"], q["min"], q["max"]) == (3.0, 2.0, 4.0, 1.0, 5.0)


def test_goals_from_rounds():
    results = [
        {"workload": "W1", "framework": "nirjax", "status": "ok", "gemm_gflops": 100.0,
         "rounds": {"fwd": [0.010, 0.012], "fwdbwd": [0.03, 0.03]}},
        {"workload": "W1", "framework": "spyx", "status": "ok",
         "rounds": {"fwd": [0.013, 0.013], "fwdbwd": [0.03, 0.06]}},
    ]
    wmeta = {"W1": {"flops_per_sample_step": 1e6, "steps": 100, "batch": 10}}  # 1 GFLOP
    g = {goal: (measured, v) for goal, measured, v in speed.goals(results, wmeta)}
    assert g["W1 forward >= 1.2x spyx"][1] == "within noise"  # 1.3x and 1.08x
    assert g["W1 forward+backward >= 1.2x spyx"][1] == "within noise"  # 1x and 2x
    # 1 GFLOP per forward in 10 and 12 ms: 100 and 83 GFLOP/s of a 100 GFLOP/s GEMM
    assert g["W1 forward >= 90 % of the float32 GEMM rate"][1] == "within noise"
    # dense limit 3 GFLOP at 100 GFLOP/s = 30 ms, reached in both rounds
    key = "W1 forward+backward >= 80 % of the dense limit (3x forward FLOPs at the GEMM rate)"
    assert g[key][1] == "met"
    assert not any(goal.startswith("W4") for goal in g)  # no W4 results: no W4 goals


def test_unknown_nirjax_option_is_reported_not_crashed(tmp_path):
    rows = speed.main([
        "--quick", "--frameworks", "nirjax", "--workloads", "W3", "--steps", "10",
        "--batch", "1", "--compile-T", "10", "--gemm-n", "32", "--min-repeats", "1",
        "--max-repeats", "1", "--no-backward", "--nirjax-opt", "no_such_option=3",
        "--out-dir", str(tmp_path / "r"), "--graphs-dir", str(tmp_path / "g"), "--name", "bad",
    ])
    assert rows[0]["status"] == "n/a"
    assert "no_such_option" in rows[0]["reason"]


def test_parse_opt_literals():
    assert speed.parse_opt(["unroll=4", "checkpoint=None", "dtype=bfloat16"]) == {
        "unroll": 4, "checkpoint": None, "dtype": "bfloat16"}


def test_generated_graphs_have_the_documented_shapes(tmp_path):
    for name, expect in (("W1", [("fc1", (512, 700)), ("fc2", (512, 512)), ("fc3", (20, 512))]),
                         ("W2", [("fc1", (256, 700)), ("lif1.w_rec", (256, 256)),
                                 ("fc2", (20, 256))]),
                         ("W5-512", [("fc1", (512, 512))])):
        path, x_path = workloads.build(workloads.WORKLOADS[name], tmp_path, steps=7, batch=3)
        g = nir.read(str(path))
        assert [(k, g.nodes[k].weight.shape) for k, _ in expect] == expect
        x = np.load(x_path)
        assert x.shape[:2] == (7, 3) and set(np.unique(x)) <= {0, 1}
    w2 = nir.read(str(tmp_path / "W2.nir"))
    assert ("lif1.w_rec", "lif1.lif") in w2.edges and ("lif1.lif", "lif1.w_rec") in w2.edges


@pytest.mark.parametrize("name", ["W1", "W2", "W6"])
def test_workloads_spike_at_realistic_rates(tmp_path, name):
    import nirjax

    w = workloads.WORKLOADS[name]
    path, x_path = workloads.build(w, tmp_path, steps=100 if name != "W6" else 30, batch=4)
    model = nirjax.compile(str(path), dt=w.dt)
    spiking = [n.name for n in model.program.nodes if n.rule.spiking]
    x = np.load(x_path).astype(np.float32)
    _, _, rec = model.run(model.params, x, model.init_state(4), record=spiking)
    rates = {k: float(np.mean(v)) for k, v in rec.items()}
    assert len(rates) == {"W1": 3, "W2": 2, "W6": 3}[name]
    for layer, rate in rates.items():
        assert 0.01 < rate < 0.5, (layer, rate)


def test_update_merges_into_existing_results(tmp_path):
    common = ["--quick", "--frameworks", "nirjax", "--steps", "10", "--batch", "1",
              "--compile-T", "10", "--gemm-n", "32", "--min-repeats", "1", "--max-repeats", "1",
              "--no-backward", "--out-dir", str(tmp_path / "r"), "--graphs-dir",
              str(tmp_path / "g"), "--name", "u"]
    speed.main(common + ["--workloads", "W3,W5-512"])
    first = json.loads((tmp_path / "r" / "u.json").read_text())["results"]
    speed.main(common + ["--workloads", "W3", "--update"])
    merged = json.loads((tmp_path / "r" / "u.json").read_text())["results"]
    assert [(r["workload"], r["framework"]) for r in merged] == [("W3", "nirjax"),
                                                                 ("W5-512", "nirjax")]
    assert merged[1] == dict(first[1], started=merged[1]["started"])  # kept as it was
    assert merged[0]["pid"] != first[0]["pid"]  # re-measured
    assert len(_csv(tmp_path / "r" / "u.csv")) == 2


def test_hardware_sim_speck_cases_run():
    """The speck and spinnaker2 cases of the hardware benchmark run (nirjax only; the
    vendor side is exercised in test_speck_vendor.py). No timing is asserted."""
    import hardware_sim_speck

    out = hardware_sim_speck.speck_case(batch=2, steps=3, repeats=1, vendor=False)
    assert out["target"] == "speck" and out["nirjax_samples_per_s"] > 0
    out = hardware_sim_speck.spinnaker2_case(batch=2, steps=3, repeats=1)
    assert out["target"] == "spinnaker2" and out["nirjax_samples_per_s"] > 0
