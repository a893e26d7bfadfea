"""The ``nirjax`` command line: ``run`` (default: the paper's Braille graph), ``info``,
``compare``; every input format; the .npz and NIR-data outputs checked against a Python run of
the same model; one-line errors with exit status 2."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys
import warnings

import nir
import numpy as np
import pytest

import nirjax
import nirjax.cli
import oracle
from builders import paper_path, read_quiet
from nirjax import events as ev


def _total_spikes(text):
    match = re.search(r"output 'output': shape \((\d+), (\d+), (\d+)\), (\d+) spikes in total", text)
    assert match, text
    return tuple(int(g) for g in match.groups())


def _generated_input(steps, batch, rate, seed):
    """The input ``nirjax run`` documents: Bernoulli spikes from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, 12)) < rate).astype(np.float64)


def _model(name, dt=1e-4, semantics="nir"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        return nirjax.compile(read_quiet(paper_path(name)), dt=dt, semantics=semantics)


def _copy(tmp_path, name):
    path = tmp_path / f"{name}.nir"
    path.write_bytes(paper_path(name).read_bytes())
    return path


# ------------------------------------------------------------------ run: generated input

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
    path = _copy(tmp_path, "braille_subtract")
    assert nirjax.cli.main(["run", str(path), "--dt", "1e-4", "--semantics", "exact",
                            "--steps", "20", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "semantics = 'exact'" in out and "braille_subtract.nir" in out


# ------------------------------------------------------------------ run: outputs

def test_run_npz_holds_what_python_computes(tmp_path, capsys):
    graph_path = _copy(tmp_path, "braille_bias_zero")
    rng = np.random.default_rng(7)
    xs = (rng.random((60, 3, 12)) < 0.2).astype(np.float32)
    np.save(tmp_path / "x.npy", xs)
    out = tmp_path / "out.npz"
    assert nirjax.cli.main(["run", str(graph_path), "--dt", "1e-4", "--semantics", "snntorch",
                            "--input", str(tmp_path / "x.npy"), "--output", str(out),
                            "--record", "lif1.lif", "lif1.lif:v", "--record", "fc2"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "record 'lif1.lif:v': shape (60, 3, 38)" in text
    model = _model("braille_bias_zero", semantics="snntorch")
    ys, _, rec = model.run(model.params, xs, record=["lif1.lif", ("lif1.lif", "v"), "fc2"])
    f = np.load(out)
    assert set(f.files) == {"output/output", "record/lif1.lif", "record/lif1.lif/v",
                            "record/fc2", "input/input", "metadata", "dt", "semantics",
                            "graph_sha256", "nirjax_version"}
    np.testing.assert_array_equal(f["output/output"], np.asarray(ys))
    np.testing.assert_array_equal(f["record/lif1.lif"], np.asarray(rec["lif1.lif"]))
    np.testing.assert_array_equal(f["record/lif1.lif/v"], np.asarray(rec[("lif1.lif", "v")]))
    np.testing.assert_array_equal(f["record/fc2"], np.asarray(rec["fc2"]))
    np.testing.assert_array_equal(f["input/input"], xs)
    meta = json.loads(str(f["metadata"]))
    digest = hashlib.sha256(graph_path.read_bytes()).hexdigest()
    assert meta["graph_sha256"] == str(f["graph_sha256"]) == digest
    assert meta["dt"] == float(f["dt"]) == 1e-4
    assert meta["semantics"] == str(f["semantics"]) == "snntorch"
    assert meta["nirjax_version"] == str(f["nirjax_version"]) == nirjax.__version__
    assert meta["input"]["kind"] == "array" and meta["input"]["path"].endswith("x.npy")
    assert meta["records"] == ["lif1.lif", "lif1.lif:v", "fc2"]
    assert meta["semantics_fields"]["reset_flag"] == nirjax.PROFILES["snntorch"].reset_flag
    # the saved input reproduces the run
    again = tmp_path / "again.npz"
    assert nirjax.cli.main(["run", str(graph_path), "--dt", "1e-4", "--semantics", "snntorch",
                            "--input", str(out), "--output", str(again), "-q"]) == 0
    np.testing.assert_array_equal(np.load(again)["output/output"], f["output/output"])


def test_run_nir_data_output_and_input(tmp_path, capsys):
    rng = np.random.default_rng(8)
    xs = (rng.random((40, 2, 12)) < 0.25).astype(np.float32)
    np.savez(tmp_path / "x.npz", input=xs)
    out = tmp_path / "out.h5"
    assert nirjax.cli.main(["run", "braille_bias_zero", "--input", str(tmp_path / "x.npz"),
                            "--output", str(out), "--record", "lif1.lif:v", "lif2"]) == 0
    capsys.readouterr()
    model = _model("braille_bias_zero")
    ys, _, rec = model.run(model.params, xs, record=[("lif1.lif", "v"), "lif2"])
    data = nir.read_data(str(out))  # NIR's own reader
    obs = {k: v.observables for k, v in data.nodes.items()}
    assert set(obs) == {"input", "output", "lif1.lif", "lif2"}
    np.testing.assert_array_equal(obs["output"]["spikes"].data,
                                  np.transpose(np.asarray(ys), (1, 0, 2)) > 0)
    np.testing.assert_array_equal(obs["lif1.lif"]["v"].data,
                                  np.transpose(np.asarray(rec[("lif1.lif", "v")]), (1, 0, 2)))
    np.testing.assert_array_equal(obs["input"]["spikes"].data, np.transpose(xs, (1, 0, 2)) > 0)
    assert obs["output"]["spikes"].dt == pytest.approx(1e-4)
    meta = nirjax.data.read_metadata(out)
    assert meta["semantics"] == "nir" and meta["example"] == "braille_bias_zero"
    # NIR data as input: the Input node's observable
    again = tmp_path / "again.npz"
    assert nirjax.cli.main(["run", "braille_bias_zero", "--input", str(out), "--output",
                            str(again)]) == 0
    assert "(NIR data)" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(again)["output/output"], np.asarray(ys))
    # spikes as events
    ev_out = tmp_path / "events.nird"
    assert nirjax.cli.main(["run", "braille_bias_zero", "--input", str(tmp_path / "x.npz"),
                            "--output", str(ev_out), "--events", "-q"]) == 0
    spikes = nir.read_data(str(ev_out)).nodes["output"].observables["spikes"]
    assert isinstance(spikes, nir.EventData)
    assert int((spikes.idx >= 0).sum()) == int(np.asarray(ys).sum())


def test_run_input_layouts(tmp_path, capsys):
    import h5py

    rng = np.random.default_rng(9)
    one = (rng.random((25, 12)) < 0.3).astype(np.float32)  # [T, *shape]: one sample
    np.save(tmp_path / "one.npy", one)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["spikes"] = one[:, None].astype(bool)
    model = _model("braille_bias_zero")
    expected = int(np.asarray(model(one[:, None])).sum())
    for name in ("one.npy", "x.h5"):
        assert nirjax.cli.main(["run", "--input", str(tmp_path / name)]) == 0
        steps, batch, _, total = _total_spikes(capsys.readouterr().out)
        assert (steps, batch, total) == (25, 1, expected)


def test_run_event_input(tmp_path, capsys):
    # a small camera graph: Input (2, 6, 5) -> Flatten -> Linear -> LIF
    rng = np.random.default_rng(10)
    w = rng.normal(0, 1.0, (4, 60))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2, 6, 5])),
               "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([2, 6, 5])}),
               "fc": nir.Linear(w),
               "lif": nir.LIF(tau=np.full(4, 2e-3), r=np.full(4, 20.0), v_leak=np.zeros(4),
                              v_threshold=np.ones(4), v_reset=np.zeros(4)),
               "output": nir.Output(np.array([4]))},
        edges=[("input", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")])
    path = tmp_path / "cam.nir"
    nirjax.write(path, graph)
    size = (5, 6, 2)  # (W, H, P)
    samples = [ev.make_events(rng, size, n, 3_000) for n in (400, 250, 320)]
    np.savez(tmp_path / "events.npz", *samples)
    out = tmp_path / "out.npz"
    assert nirjax.cli.main(["run", str(path), "--dt", "2e-4", "--input", str(tmp_path / "events.npz"),
                            "--output", str(out), "--record", "lif:v"]) == 0
    text = capsys.readouterr().out
    assert "970 events binned to 15 steps x 3 samples" in text
    f = np.load(out)
    # an independent count: per event, step = t // 200 us
    counts = np.zeros((15, 3, 2, 6, 5), np.float32)
    for b, e in enumerate(samples):
        for row in e:
            counts[row["t"] // 200, b, row["p"], row["y"], row["x"]] += 1
    np.testing.assert_array_equal(f["input/input"], counts)
    model = nirjax.compile(path, dt=2e-4)
    ys, _, rec = model.run(model.params, counts, record=[("lif", "v")])
    np.testing.assert_array_equal(f["output/output"], np.asarray(ys))
    np.testing.assert_array_equal(f["record/lif/v"], np.asarray(rec[("lif", "v")]))
    meta = json.loads(str(f["metadata"]))
    assert meta["input"]["kind"] == "events" and meta["input"]["sensor_size"] == [5, 6, 2]
    # an explicit window, in a .npy (one sample)
    np.save(tmp_path / "one.npy", samples[0])
    assert nirjax.cli.main(["run", str(path), "--dt", "2e-4", "--input", str(tmp_path / "one.npy"),
                            "--t-start", "1000", "--steps", "5", "--sensor-size", "5,6,2"]) == 0
    text = capsys.readouterr().out
    inside = int(np.sum((samples[0]["t"] >= 1000) & (samples[0]["t"] < 2000)))
    assert f"{400 - inside} events outside the time window" in text


def test_run_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    assert nirjax.cli.main(["run", "--steps", "40", "--batch", "2", "--record", "lif1.lif:v",
                            "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png2 = tmp_path / "spikes.png"  # without --record: the spiking layers
    assert nirjax.cli.main(["run", "--steps", "40", "--batch", "2", "--plot", str(png2)]) == 0
    assert png2.stat().st_size > 5_000


# ------------------------------------------------------------------ progress

def test_run_in_segments_equals_one_run():
    model = _model("braille_bias_zero")
    rng = np.random.default_rng(11)
    xs = (rng.random((203, 4, 12)) < 0.15).astype(np.float32)
    record = ["lif1.lif", ("lif1.lif", "v"), ("lif2", "i_syn")]
    ys, state, rec = model.run(model.params, xs, record=record)
    import io

    stream = io.StringIO()
    ys2, state2, rec2 = nirjax.progress.run(model, model.params, xs, record=record,
                                            segment=17, progress=True, stream=stream)
    np.testing.assert_array_equal(ys2, np.asarray(ys))
    for k in record:
        np.testing.assert_array_equal(rec2[k], np.asarray(rec[k]))
    for a, b in zip(jax_leaves(state2), jax_leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2 and lines[-1].startswith("run: 203/203 steps (100%)")
    assert "steps/s" in lines[0] and "left" in lines[0]


def jax_leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


def test_progress_only_on_a_terminal(tmp_path):
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert not nirjax.progress.enabled(None, io.StringIO())
    assert nirjax.progress.enabled(None, Tty())
    assert not nirjax.progress.enabled(False, Tty())
    tty = Tty()
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0]).__next__
    bar = nirjax.progress.Progress(30, "steps", "run", stream=tty, clock=clock, min_interval=0)
    bar.update(10)
    bar.update(10)
    bar.update(10)
    bar.close()
    text = tty.getvalue()
    assert text.startswith("\rrun: 10/30 steps (33%)") and text.endswith("\n")
    assert "20/30 steps (67%), 10 steps/s, 1.0 s left" in text  # rate after the first update
    # the command: nothing on a pipe, progress with --progress
    cmd = [sys.executable, "-m", "nirjax.cli", "run", "--steps", "60", "--batch", "2"]
    quiet = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "steps/s" not in quiet.stderr
    loud = subprocess.run(cmd + ["--progress"], capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and "run: 60/60 steps (100%)" in loud.stderr
    assert _total_spikes(loud.stdout) == _total_spikes(quiet.stdout)


def test_fit_progress_follows_the_same_rule(capsys):
    import optax

    g = nir.NIRGraph.from_list(nir.Affine(np.ones((2, 1)), np.zeros(2)),
                               nir.LI(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2)))
    model = nirjax.compile(g, dt=1e-4)
    trainer = nirjax.train.Trainer(model, nirjax.train.trace_mse, optax.adam(1e-1))
    batches = [(np.ones((10, 2, 1), np.float32), np.full((10, 2, 2), 0.5, np.float32))] * 3
    nirjax.train.fit(trainer, model.params, batches, epochs=2)  # stderr is not a terminal
    assert capsys.readouterr().err == ""
    nirjax.train.fit(trainer, model.params, batches, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "fit: 6/6 steps (100%)" in err and "loss" in err


# ------------------------------------------------------------------ info

def test_info(capsys):
    assert nirjax.cli.main(["info", "braille_bias_zero"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "delayed (cycle-closing) edges: lif1.w_rec -> lif1.lif" in out
    assert "CubaLIF" in out and "(38,)" in out
    assert "before 1.0.6" in captured.err  # the reader's note, on stderr


def test_info_feedforward_graph_has_no_delayed_edges(capsys):
    assert nirjax.cli.main(["info", "cnn_sinabs"]) == 0
    out = capsys.readouterr().out
    assert "delayed (cycle-closing) edges: none" in out
    assert "(2, 34, 34)" in out


def test_info_json(tmp_path, capsys):
    path = _copy(tmp_path, "braille_bias_zero")
    assert nirjax.cli.main(["info", str(path), "--dt", "1e-4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    model = _model("braille_bias_zero")
    assert [n["name"] for n in info["nodes"]] == [n.name for n in model.program.nodes]
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["inputs"] == {"input": [12]} and info["outputs"] == {"output": [7]}
    delayed = [(e["src"], e["dst"]) for e in info["edges"] if e["delayed"]]
    assert delayed == [("lif1.w_rec", "lif1.lif")]
    lif1 = next(n for n in info["nodes"] if n["name"] == "lif1.lif")
    assert lif1["state"] == ["i_syn", "v"] and lif1["spiking"]
    fc1 = next(n for n in info["nodes"] if n["name"] == "fc1")
    assert fc1["parameters"] == 38 * 12 + 38
    assert info["nir_file_version"] == "0.2.0" and info["notes"]


# ------------------------------------------------------------------ compare

def test_compare(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    graph = read_quiet(paper_path("lif_norse"))
    x = np.zeros((1000, 1), np.float32)  # [T, *shape]: one sample
    x[np.loadtxt(paper_path("lif_norse").with_suffix(".csv"), delimiter=",")[:, 0] > 0] = 1
    np.save(tmp_path / "x.npy", x)
    png = tmp_path / "div.png"
    path = _copy(tmp_path, "lif_norse")
    args = ["compare", str(path), "--dt", "1e-4", "--profiles", "nir,snntorch,lava",
            "--input", str(tmp_path / "x.npy")]
    assert nirjax.cli.main(args + ["--plot", str(png)]) == 0
    out = capsys.readouterr().out
    report = nirjax.compare(graph, x[:, None], dt=1e-4, profiles=["nir", "snntorch", "lava"])
    assert report.table() in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert nirjax.cli.main(args + ["--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["reference"] == "nir" and got["profiles"]["snntorch"]["first_divergence"] is None
    lava = got["profiles"]["lava"]["first_divergence"]
    assert lava["step"] == 460 and lava["node"] == report.divergence("lava").node
    assert got["profiles"]["lava"]["output_spikes"] == 4


# ------------------------------------------------------------------ commands and errors

def test_help_lists_every_command(capsys):
    assert nirjax.cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in nirjax.cli.COMMANDS:
        assert (f"    {cmd.name} " in out) == cmd.available(), cmd
    assert {"run", "info", "compare"} <= {c.name for c in nirjax.cli.available_commands()}
    for cmd in nirjax.cli.available_commands():
        assert nirjax.cli.main([cmd.name, "--help"]) == 0
        text = capsys.readouterr().out
        assert "examples:" in text and f"nirjax {cmd.name}" in text


def test_a_command_module_is_registered_when_it_exists(tmp_path, monkeypatch, capsys):
    (tmp_path / "fake_nirjax_cmd.py").write_text(
        '"""Do a fake thing.\n\nexamples:\n  nirjax fake 3\n"""\n'
        "def add_arguments(parser):\n    parser.add_argument('n', type=int)\n"
        "def run(args):\n    print('fake', args.n * 2)\n    return 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(nirjax.cli, "COMMANDS", nirjax.cli.COMMANDS + (
        nirjax.cli.Command("fake", "fake_nirjax_cmd", "a fake command"),))
    assert nirjax.cli.main(["--help"]) == 0
    assert "fake" in capsys.readouterr().out
    assert nirjax.cli.main(["fake", "21"]) == 0
    assert capsys.readouterr().out == "fake 42\n"
    assert nirjax.cli.main(["fake", "x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    # lower and bench come with their packages; absent modules are not offered
    assert nirjax.cli.Command("lower", "nirjax.cli.lower", "").available() == (
        importlib.util.find_spec("nirjax.lowering") is not None
        and importlib.util.find_spec("nirjax.cli.lower") is not None)


@pytest.mark.parametrize("content", [None, b"not hdf5", "truncated"])
def test_bad_file_exits_with_code_2(capsys, tmp_path, content):
    path = tmp_path / "bad.nir"
    if content == "truncated":
        path.write_bytes(paper_path("lif_norse").read_bytes()[:3000])
    elif content is not None:
        path.write_bytes(content)
    for command in ("run", "info", "compare"):
        assert nirjax.cli.main([command, str(path), "--dt", "1e-4"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nirjax: error:") and "bad.nir" in err and err.count("\n") == 1


def _bad_inputs(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((10, 2, 5), np.float32))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 12)), b=np.zeros((4, 12)))
    (tmp_path / "garbage.npy").write_bytes(b"garbage")
    e = np.zeros(3, dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    e["x"] = 40
    np.save(tmp_path / "events.npy", e)
    cnn = ["run", "cnn_sinabs", "--steps", "5"]
    np.save(tmp_path / "empty.npy", np.zeros((0, 2, 12), np.float32))
    np.save(tmp_path / "nan.npy", np.full((5, 2, 12), np.nan, np.float32))
    fx = np.zeros(2, dtype=[("x", float), ("t", int), ("p", int)])
    fx["x"] = [0.5, 1]
    np.save(tmp_path / "float_x.npy", fx)
    return [
        (["run", "--input", str(tmp_path / "empty.npy")], "no time steps"),
        (["run", "--input", str(tmp_path / "nan.npy")], "NaN"),
        (["run", "--input", str(tmp_path)], "not a file"),
        (["run", "--input", str(tmp_path / "float_x.npy")], "float_x.npy"),
        (["run", "--plot", str(tmp_path / "x.xyz")], "unknown image format"),
        (cnn + ["--input", str(tmp_path / "events.npy"), "--t-stop", "9"], "not both"),
        (["run", "--input", str(tmp_path / "wrong.npy")], "does not fit Input 'input'"),
        (["run", "--input", str(tmp_path / "text.npy")], "expected numbers"),
        (["run", "--input", str(tmp_path / "two.npz")], "'a', 'b'"),
        (["run", "--input", str(tmp_path / "garbage.npy")], "cannot read"),
        (["run", "--input", str(tmp_path / "missing.npy")], "no such file"),
        (cnn + ["--input", str(tmp_path / "events.npy")], "'x'"),
        (cnn + ["--input", str(tmp_path / "events.npy"), "--sensor-size", "3,3"], "W,H,P"),
        (["run", "--input", str(tmp_path / "events.npy")], "sensor size"),
        (["run", "--record", "nope"], "'nope'"),
        (["run", "--record", "lif2:nope"], "nope"),
        (["run", "--semantics", "nope"], "unknown semantics profile 'nope'"),
        (["run", "--steps", "0"], "--steps"),
        (["run", "--rate", "2"], "--rate"),
        (["run", "--dt", "abc"], "--dt"),
        (["run", "--dt", "-1"], "dt"),
        (["run", "--bogus"], "--bogus"),
        (["run", "--output", str(tmp_path / "no" / "out.npz")], "does not exist"),
        (["run", "--output", str(tmp_path)], "is a directory"),
        (["compare", "lif_norse", "--profiles", "nir"], "at least two"),
        (["compare", "lif_norse", "--profiles", "nir,zzz"], "'zzz'"),
        (["info"], "FILE"),
        (["frobnicate"], "frobnicate"),
    ]


def test_every_bad_input_is_one_line_and_status_2(tmp_path, capsys):
    for argv, needle in _bad_inputs(tmp_path):
        assert nirjax.cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error:" in err and needle in err, (argv, err)
        assert "Traceback" not in err


def test_malformed_graph_and_missing_dt_exit_with_code_2(capsys, tmp_path):
    assert nirjax.cli.main(["run", str(paper_path("braille_bias_zero_subgraph")), "--dt", "1e-4"]) == 2
    assert "'lif'" in capsys.readouterr().err
    path = _copy(tmp_path, "lif_norse")
    assert nirjax.cli.main(["info", str(path)]) == 2  # a user file needs --dt
    err = capsys.readouterr().err
    assert "--dt" in err and "1e-4" in err and "lif_norse.nir" in err


def test_console_script_is_installed():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("nirjax") == "nirjax.cli:main"


def test_command_in_subprocess(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "nirjax.cli", "run", "--steps", "20", "--batch", "2"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert _total_spikes(ok.stdout)[:3] == (20, 2, 7)
    for argv in (["run", str(tmp_path / "missing.nir"), "--dt", "1e-4"],
                 ["run", "--input", str(tmp_path / "missing.npy")],
                 ["run", "--nonsense"]):
        bad = subprocess.run([sys.executable, "-m", "nirjax.cli", *argv], capture_output=True,
                             text=True, timeout=300)
        assert bad.returncode == 2
        assert "missing" in bad.stderr or "nonsense" in bad.stderr
        assert "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1


def test_progress_module_doctests():
    import doctest

    assert doctest.testmod(nirjax.progress).failed == 0
    with pytest.raises(nirjax.InputError, match="time steps"):
        nirjax.progress.run(_model("braille_bias_zero"), None, np.zeros((0, 1, 12), np.float32))


def test_nir_data_input_written_by_nir(tmp_path, capsys):
    """A recording another tool wrote with nir.write_data: [samples, steps, neurons] bool, the
    Input node's only observable under any name."""
    rng = np.random.default_rng(12)
    grid = rng.random((3, 30, 12)) < 0.2
    nir.write_data(str(tmp_path / "rec.h5"), nir.NIRGraphData(nodes={
        "input": nir.NIRNodeData(observables={"events": nir.TimeGriddedData(grid, 1e-4)})}))
    out = tmp_path / "out.npz"
    assert nirjax.cli.main(["run", "--input", str(tmp_path / "rec.h5"), "--output", str(out)]) == 0
    xs = np.transpose(grid, (1, 0, 2)).astype(np.float32)
    model = _model("braille_bias_zero")
    np.testing.assert_array_equal(np.load(out)["input/input"], xs)
    np.testing.assert_array_equal(np.load(out)["output/output"], np.asarray(model(xs)))
    capsys.readouterr()
    # a recording at another dt is refused, naming both
    nir.write_data(str(tmp_path / "slow.h5"), nir.NIRGraphData(nodes={
        "input": nir.NIRNodeData(observables={"spikes": nir.TimeGriddedData(grid, 1e-3)})}))
    assert nirjax.cli.main(["run", "--input", str(tmp_path / "slow.h5")]) == 2
    err = capsys.readouterr().err
    assert "dt = 0.001" in err and "dt = 0.0001" in err and err.count("\n") == 1
