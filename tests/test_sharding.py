"""Runs over several devices and processes equal the single-device run.

* With 8 host CPU devices (``tests/multidevice_worker.py``, in a subprocess because the device
  count is fixed when JAX starts): the paper graphs (LIF task, Braille RSNN, CNN), a
  recurrent graph (with a Delay in its cycle) and a conv graph, compiled with
  ``mesh=`` over ``"batch"``, ``"neurons"`` and both, give the spikes of the one-device run
  exactly and its states within float tolerance; gradients and Trainer steps agree; the
  compiled HLO has the collectives ``nirjax.compiler.sharding`` documents and no others.
* Two processes on 127.0.0.1 (gloo collectives, two CPU devices each): ``nirjax run`` and
  the training script ``benchmarks/train_distributed.py`` print what one process prints.
* In this process (one device): option and argument validation.

The reference is always an independent run of the same graph on one device, without a
mesh: no sharding constraint and no collective take part in it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import jax
import nir
import numpy as np
import pytest

import nirjax
from nirjax import distributed

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "multidevice_worker.py"
TRAIN = ROOT / "benchmarks" / "train_distributed.py"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update({"JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line in:\n{stdout[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def multi():
    """The worker's comparisons (one subprocess with 8 devices for the whole module)."""
    proc = subprocess.run([sys.executable, str(WORKER), "forward", "gradients", "hlo", "errors"],
                          capture_output=True, text=True, env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return _result(proc.stdout)


GRAPHS = ("lif_task", "braille", "cnn", "recurrent", "conv")
MODES = ("batch", "neurons", "both")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("graph", GRAPHS)
def test_sharded_run_equals_one_device(multi, graph, mode):
    r = multi["forward"][f"{graph}/{mode}"]
    assert r["spikes_equal"], r
    assert r["spikes"] > 0  # the comparison is not between two silent runs
    tol = 1e-6 * max(1.0, r["state_scale"])
    assert r["state_err"] <= tol and r["record_err"] <= tol, r
    # the layout the rules promise: batch blocks on "batch", sharded state on "neurons"
    if mode in ("batch", "both"):
        assert r["out_spec"][1] == "batch" and r["state_spec"][0] == "batch", r
    else:
        assert "batch" not in r["out_spec"] + r["state_spec"], r
    big = graph in ("braille", "cnn", "recurrent", "conv")  # the recorded layer divides
    assert r["node_sharded"] == (big and mode != "batch"), r
    if r["node_sharded"]:
        assert r["state_spec"][1] == "neurons", r


@pytest.mark.parametrize("case", ["recurrent/step", "recurrent/optimize",
                                  "recurrent/checkpoint", "recurrent/associative_scan"])
def test_sharded_step_and_options(multi, case):
    """model.step, the plain one-scan program, chunk checkpointing and the parallel scan
    on ("batch", "neurons")."""
    r = multi["forward"][case]
    assert r["spikes_equal"], r
    assert r["state_err"] <= 1e-5, r
    if case == "recurrent/step":
        assert r["state_spec"] == ["batch", "neurons"]


@pytest.mark.parametrize("case", ["recurrent/batch", "recurrent/neurons", "recurrent/both",
                                  "conv/both"])
def test_sharded_gradients_equal(multi, case):
    r = multi["gradients"][case]
    assert r["loss_rel_err"] <= 1e-6 and r["grad_rel_err"] <= 1e-5, r


def test_sharded_training_equals_one_device(multi):
    """One Trainer step (clipping, Adam, bounds) and a two-step fit of the Braille graph on
    ("batch"=4, "neurons"=2)."""
    r = multi["gradients"]["train/both"]
    assert r["loss_err"] <= 1e-6 and r["fit_loss_err"] <= 1e-5, r
    assert r["params_rel_err"] <= 1e-5 and r["fit_params_rel_err"] <= 1e-5, r
    # the recurrent weight's rows are split over "neurons" (and replicated over "batch")
    assert r["param_spec"] == ["neurons", None]


def _in_loops(collectives, loops):
    loops = {name.lstrip("%") for name in loops}
    return [c for c in collectives if c[0].lstrip("%") in loops]


def test_feedforward_layer_gathers_its_input_once_per_chunk(multi):
    """Linear + LIF with its rows on 8 devices: each device holds 1/8 of the weight and of
    the input, gathers a chunk of the input whole before the matrix product (once per chunk
    of steps, outside the time loop) and computes its own neurons; the LIF layer's loop
    exchanges nothing."""
    r = multi["hlo"]["w5"]
    assert r["weight_shard"] == [512 // 8, 512] and r["spikes_equal"]
    assert [(op, shape.split("{")[0]) for _, op, shape in r["collectives"]] == [
        ("all-gather", "f32[40,8,512]")]
    assert _in_loops(r["collectives"], r["loops"]) == []


def test_recurrent_layer_gathers_spikes_once_per_step(multi):
    """On ("batch"=2, "neurons"=4) the only collective inside the time loop is the
    all-gather of the recurrent layer's spikes before ``w_rec`` (local [4, 8] -> [4, 32]);
    the membranes, currents and the Delay's ring buffer stay split (they would show as more
    all-gathers, e.g. of the [4, L, 32] buffer)."""
    r = multi["hlo"]["recurrent"]
    inside = _in_loops(r["collectives"], r["loops"])
    assert [(op, shape.split("{")[0]) for _, op, shape in inside] == [("all-gather", "f32[4,32]")]
    # outside the loop: the all-gather of a chunk's spikes before fc_out
    outside = [c for c in r["collectives"] if c not in inside]
    assert [c[1] for c in outside] == ["all-gather"]
    # backward: spikes gathered again in the recompute, the input gradient of w_rec summed
    # over the row blocks; nothing bigger than [B, N] per step
    grad_inside = _in_loops(r["grad_collectives"], r["grad_loops"])
    assert {op for _, op, _ in grad_inside} <= {"all-gather", "all-reduce"}
    assert all(s.split("{")[0] == "f32[4,32]" for _, _, s in grad_inside), grad_inside


def test_batch_not_divisible_is_an_input_error(multi):
    for what, message in multi["errors"].items():
        assert message is not None and message.startswith("InputError"), (what, message)
        assert "not divisible by the mesh's 'batch' axis (4 devices)" in message


# ----------------------------------------------------------------------------- two processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(args: list, single: list, timeout: float = 300) -> tuple:
    """Run ``args`` as process 0 and 1 of a 2-process run on 127.0.0.1, two CPU devices
    each, and ``single`` as one process beside them; returns the single process's stdout
    and both of the pair's."""
    port = _free_port()
    reference = subprocess.Popen(single, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=_env(), cwd=ROOT)
    procs = [subprocess.Popen(
        args + ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                "--process-id", str(i), "--local-devices", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        for i in range(2)]
    outs = []
    try:
        for p in [reference] + procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for p in [reference] + procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return outs[0], outs[1:]


def _results_lines(stdout: str) -> list:
    keep = ("output ", "  spike counts", "  predicted", "input:")
    return [line for line in stdout.splitlines() if line.startswith(keep)]


def _printout(stdout: str) -> list:
    """Every line but the timing and the devices line (the only ones that may differ)."""
    return [line for line in stdout.splitlines()
            if not line.startswith(("timing:", "  devices:"))]


def test_two_processes_nirjax_run_prints_the_single_process_results():
    """Both axes across the two processes: batch blocks and the hidden layer's neurons.
    Standard output is the single process's, line for line (gloo's connection messages go
    to standard error)."""
    cli = [sys.executable, "-m", "nirjax.cli", "run", "--steps", "40", "--batch", "8",
           "--record", "lif1.lif:v"]
    single, pair = _two_processes(cli + ["--mesh", "batch=2,neurons=2", "--shard-min", "1"], cli)
    expected = _results_lines(single)
    assert len(expected) == 4 and "devices:" not in single
    for out, rows in zip(pair, ("0..3", "4..7")):
        assert _results_lines(out) == expected
        assert _printout(out) == _printout(single)
        assert (f"mesh batch=2, neurons=2 over 4 devices in 2 process(es); this is process "
                f"{rows == '4..7':d}, feeding batch rows {rows}") in out


def test_two_processes_training_equals_one_process():
    """Each process feeds its own rows; losses and trained parameters are those of one
    process on one device (the gradient is summed across processes by XLA)."""
    script = [sys.executable, str(TRAIN), "--batches", "2", "--epochs", "1", "--batch", "8"]
    single, pair = _two_processes(script, script)
    ref = _result(single)
    assert ref["processes"] == 1 and ref["devices"] == 1
    for out in pair:  # the default mesh: "batch" over the 4 devices
        got = _result(out)
        assert got["processes"] == 2 and got["devices"] == 4
        np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5)
        np.testing.assert_allclose(got["eval_loss"], ref["eval_loss"], rtol=1e-5)
        assert got["acc"] == ref["acc"]
        np.testing.assert_allclose(got["checksum"], ref["checksum"], rtol=1e-6)


# ----------------------------------------------------------------------------- in process


def _small_graph():
    return nir.NIRGraph.from_list(
        nir.Affine(np.array([[1.0, 0.5], [0.2, 1.0]]), np.zeros(2)),
        nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2),
                v_threshold=np.full(2, 0.5)))


def test_one_device_mesh_equals_no_mesh():
    mesh = jax.make_mesh((1,), ("batch",))
    xs = np.random.default_rng(0).random((30, 3, 2)).astype(np.float32)
    ref = nirjax.compile(_small_graph(), dt=1e-4)
    model = nirjax.compile(_small_graph(), dt=1e-4, mesh=mesh)
    assert np.array_equal(np.asarray(model(xs)), np.asarray(ref(xs)))
    assert model.sharding.batch_size == 1 and "batch=1" in model.sharding.describe()
    placed = model.shard_inputs(xs)
    assert isinstance(placed, jax.Array) and placed.sharding.spec[1] == "batch"


@pytest.mark.parametrize("mesh, message", [
    ("batch", "expected a jax.sharding.Mesh"),
    (lambda: jax.make_mesh((1,), ("data",)), "unknown: ['data']"),
])
def test_bad_mesh_is_an_options_error(mesh, message):
    mesh = mesh() if callable(mesh) else mesh
    with pytest.raises(nirjax.OptionsError, match=re.escape(message)):
        nirjax.compile(_small_graph(), dt=1e-4, mesh=mesh)


def test_mesh_options_are_checked():
    mesh = jax.make_mesh((1,), ("neurons",))
    with pytest.raises(nirjax.OptionsError, match="pallas"):
        nirjax.CompileOptions(mesh=mesh, pallas=True)
    with pytest.raises(nirjax.OptionsError, match="shard_min=0"):
        nirjax.CompileOptions(mesh=mesh, shard_min=0)
    assert nirjax.CompileOptions(mesh=mesh).replace(unroll=2).mesh is mesh


def test_neuron_layout_rules():
    """Which nodes the "neurons" axis splits (the rules of nirjax.compiler.sharding),
    checked on a plan for a 4-device axis without needing 4 devices."""
    from nirjax.compiler.sharding import ShardingPlan

    rng = np.random.default_rng(0)
    g = nir.NIRGraph.from_list(
        nir.Affine(rng.normal(size=(2048, 10)), np.zeros(2048)),
        nir.LIF(tau=np.full(2048, 1e-3), r=np.ones(2048), v_leak=np.zeros(2048),
                v_threshold=np.ones(2048)),
        nir.Affine(rng.normal(size=(6, 2048)), np.zeros(6)))
    program = nirjax.compile(g, dt=1e-4).program
    names = [n.name for n in program.nodes]

    class FourDevices:  # the mesh's shape and names are all a plan reads besides the devices
        axis_names = ("neurons",)
        shape = {"neurons": 4}

    plan = ShardingPlan.__new__(ShardingPlan)
    plan.mesh, plan.program, plan.shard_min = FourDevices(), program, 1024
    plan.batch_size, plan.neuron_size = 1, 4
    layouts = {n.name: plan._layout(n) for n in program.nodes}
    plan.layouts = layouts
    sharded = [name for name in names if layouts[name].sharded]
    assert [program.node(n).type_name for n in sharded] == ["Affine", "LIF"]
    assert "10 values per sample < shard_min=1024" in layouts[names[0]].reason
    assert "6 values per sample < shard_min=1024" in layouts[names[-2]].reason
    affine, lif = sharded
    assert plan.param_spec(affine, "weight", (2048, 10)) == ("neurons", None)
    assert plan.param_spec(affine, "bias", (2048,)) == ("neurons",)
    assert plan.param_spec(lif, "tau", (2048,)) == ("neurons",)
    assert plan.param_spec(lif, "tau", ()) == ()
    assert plan.input_spec(affine) == (None,)      # whole before the matrix product
    assert plan.input_spec(lif) == ("neurons",)    # elementwise: the local block
    assert plan.leaf_spec(lif, (3, 2048)) == (None, "neurons")  # e.g. a delay line


def test_distributed_arguments_are_checked():
    with pytest.raises(nirjax.OptionsError, match="HOST:PORT"):
        distributed.initialize("localhost", 2, 0)
    with pytest.raises(nirjax.OptionsError, match="0..1"):
        distributed.initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(nirjax.OptionsError, match="before JAX starts its devices"):
        jax.devices()
        distributed.initialize("127.0.0.1:1234", 2, 1)
    with pytest.raises(nirjax.OptionsError, match="unknown or repeated"):
        distributed.parse_mesh("batch=2,batch=2")
    with pytest.raises(nirjax.OptionsError, match="needs 2 devices, there are 1"):
        distributed.make_mesh(batch=2)
    import argparse

    parser = distributed.add_distributed_arguments(argparse.ArgumentParser())
    with pytest.raises(nirjax.OptionsError, match="go together"):
        distributed.setup(parser.parse_args(["--coordinator", "127.0.0.1:1234"]))
    assert distributed.setup(parser.parse_args([])) is None


def test_single_process_helpers():
    mesh = distributed.make_mesh()
    assert dict(mesh.shape) == {"batch": 1}
    assert distributed.process_rows(6, mesh) == slice(0, 6)
    x = np.arange(12.0).reshape(2, 6)
    g = distributed.global_batch(x, mesh, batch_axis=1)
    assert g.shape == (2, 6) and g.sharding.spec[1] == "batch"
    assert np.array_equal(distributed.gather(g), x)


def test_cli_rejects_an_incomplete_process_group(capsys):
    from nirjax.cli import main

    assert main(["run", "--coordinator", "127.0.0.1:1234", "--steps", "2"]) == 2
    assert "go together" in capsys.readouterr().err
