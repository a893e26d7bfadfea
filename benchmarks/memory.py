"""Peak memory of backpropagation through long simulations, with and without checkpointing.

The workload: Input 100 -> Affine 1000 -> LIF 1000 with a recurrent Linear 1000x1000 (a
cycle, so a delayed edge) -> Affine 10 -> LI 10, float32, batch 16, dt = 1 ms. One gradient of
a cross-entropy on the LI readout's peak membrane with respect to every parameter, for
T = 1000 ... 10000 steps, under ``nirjax.compile(..., checkpoint=None | "step" | K)``.

Two measurements per configuration, each in a fresh Python process:

* ``xla_temp_mb``: the temporary buffer XLA allocates for the compiled gradient
  (``jax.jit(grad).lower(...).compile().memory_analysis().temp_size_in_bytes``): what the
  backward pass keeps alive, independent of the allocator and of other processes.
* ``rss_peak_mb``: the process's peak resident set size (``ru_maxrss``) after running the
  gradient once, and ``rss_run_mb``: how far running it raised the peak above what importing,
  building and compiling had already reached.

Usage::

    python benchmarks/memory.py                      # the full table (~10 min on 2 cores)
    python benchmarks/memory.py --steps 1000 2000 --modes none 100
    python benchmarks/memory.py --one 1000 step      # one configuration, prints JSON

Results go to ``benchmarks/results/memory_cpu.csv`` and ``memory_cpu.md`` with a description
of the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
N_IN, N_HIDDEN, N_OUT = 100, 1000, 10
BATCH = 16
DT = 1e-3


def build_graph():
    """The benchmark graph (NumPy only, seeded)."""
    import nir
    import numpy as np

    rng = np.random.default_rng(0)
    f32 = np.float32
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([N_IN])),
            "fc_in": nir.Affine(rng.normal(0, N_IN ** -0.5, (N_HIDDEN, N_IN)).astype(f32),
                                np.zeros(N_HIDDEN, f32)),
            "lif": nir.LIF(tau=np.full(N_HIDDEN, 1e-2), r=np.ones(N_HIDDEN), v_leak=np.zeros(N_HIDDEN),
                           v_threshold=np.ones(N_HIDDEN), v_reset=np.zeros(N_HIDDEN)),
            "w_rec": nir.Linear(rng.normal(0, N_HIDDEN ** -0.5, (N_HIDDEN, N_HIDDEN)).astype(f32)),
            "fc_out": nir.Affine(rng.normal(0, N_HIDDEN ** -0.5, (N_OUT, N_HIDDEN)).astype(f32),
                                 np.zeros(N_OUT, f32)),
            "li": nir.LI(tau=np.full(N_OUT, 2e-2), r=np.ones(N_OUT), v_leak=np.zeros(N_OUT)),
            "output": nir.Output(output_type=np.array([N_OUT])),
        },
        edges=[("input", "fc_in"), ("fc_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
               ("lif", "fc_out"), ("fc_out", "li"), ("li", "output")],
        type_check=False,
    )


def _mode(text):
    """``nirjax.compile`` options of a mode name (see the report's legend)."""
    if text == "autodiff":
        return {"checkpoint": None, "fast_backward": False}
    return {"checkpoint": None if text == "none" else ("step" if text == "step" else int(text))}


def measure_one(steps: int, mode: str, batch: int = BATCH) -> dict:
    """Compile and run one gradient in THIS process; return the measurements."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import nirjax
    from nirjax import train

    model = nirjax.compile(build_graph(), dt=DT, **_mode(mode))
    labels = jnp.asarray(np.arange(batch) % N_OUT)

    def loss(params, xs):
        return train.max_membrane_cross_entropy(model.run(params, xs)[0], labels)

    xs = jnp.asarray((np.random.default_rng(1).random((steps, batch, N_IN)) < 0.05).astype(np.float32))
    grad = jax.jit(jax.grad(loss))
    t0 = time.perf_counter()
    compiled = grad.lower(model.params, xs).compile()
    compile_s = time.perf_counter() - t0
    analysis = compiled.memory_analysis()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    grads = compiled(model.params, xs)
    jax.block_until_ready(grads)
    run_s = time.perf_counter() - t0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finite = all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
    return {
        "steps": steps, "checkpoint": mode, "batch": batch,
        "xla_temp_mb": round(analysis.temp_size_in_bytes / 2 ** 20, 1),
        "xla_args_mb": round(analysis.argument_size_in_bytes / 2 ** 20, 1),
        "rss_peak_mb": round(rss_after, 1),
        "rss_run_mb": round(max(0.0, rss_after - rss_before), 1),
        "compile_s": round(compile_s, 2), "grad_s": round(run_s, 2), "grads_finite": finite,
    }


def machine() -> dict:
    """A description of the machine the numbers come from."""
    import jax

    info = {"python": platform.python_version(), "jax": jax.__version__,
            "platform": platform.platform(), "backend": jax.default_backend()}
    try:
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        if commit:
            info["nirjax commit"] = commit
    except OSError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        keep = ("Architecture", "Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                "Socket(s)", "L2 cache", "L3 cache", "Flags")
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in keep and key.strip() != "Flags":
                info[key.strip()] = value.strip()
            if key.strip() == "Flags":
                info["avx512"] = "avx512f" in value
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            total = next(l for l in f if l.startswith("MemTotal"))
        info["RAM"] = f"{int(total.split()[1]) / 2 ** 20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return info


def run_all(steps, modes, batch) -> list:
    rows = []
    for t in steps:
        for mode in modes:
            cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--one", str(t), mode,
                   "--batch", str(batch)]
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")})
            if proc.returncode != 0:
                rows.append({"steps": t, "checkpoint": mode, "batch": batch,
                             "error": proc.stderr.strip().splitlines()[-1][:200]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def write_results(rows, info, tag="cpu", note=""):
    RESULTS.mkdir(parents=True, exist_ok=True)
    fields = ["steps", "checkpoint", "batch", "xla_temp_mb", "xla_args_mb", "rss_peak_mb",
              "rss_run_mb", "compile_s", "grad_s", "grads_finite", "error"]
    with open(RESULTS / f"memory_{tag}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(r)
    lines = [
        "# Peak memory of backpropagation vs number of steps",
        "",
        f"Produced by `python benchmarks/memory.py` on {time.strftime('%Y-%m-%d')}. Workload: "
        f"Input {N_IN} -> Affine {N_HIDDEN} -> LIF {N_HIDDEN} with recurrent Linear "
        f"{N_HIDDEN}x{N_HIDDEN} -> Affine {N_OUT} -> LI {N_OUT}; float32, batch {rows[0]['batch']}, "
        f"dt = {DT:g}; one `jax.grad` of a cross-entropy on the readout's peak membrane with "
        "respect to every parameter. Each row is a fresh process.",
        "",
        "* `xla_temp_mb`: XLA's temporary buffer for the compiled gradient "
        "(`compile().memory_analysis()`), i.e. what the backward pass keeps alive.",
        "* `rss_peak_mb`: the process's peak resident memory; `rss_run_mb`: how much running the "
        "gradient raised it above the peak of importing and compiling.",
        "* `checkpoint`: `autodiff` (`fast_backward=False`) differentiates the time loops with "
        "JAX's own scan VJP and keeps every step's intermediates; `none` (the default) uses "
        "nirjax's recompute VJP, keeping one state per step in the loops; `step` "
        "rematerializes each step under `jax.checkpoint` (autodiff's VJP, the state per "
        "step); `100` scans over chunks of 100 steps, each rematerialized (keeps the state "
        "every 100 steps plus one chunk).",
        "",
        "| steps | checkpoint | xla_temp_mb | rss_peak_mb | rss_run_mb | grad_s | compile_s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['steps']} | {r['checkpoint']} | error: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['steps']} | {r['checkpoint']} | {r['xla_temp_mb']} | {r['rss_peak_mb']} | "
                     f"{r['rss_run_mb']} | {r['grad_s']} | {r['compile_s']} |")
    ok = [r for r in rows if "error" not in r]
    by_mode: dict = {}
    for r in ok:
        by_mode.setdefault(r["checkpoint"], []).append(r)
    lines += ["", "Growth from the shortest to the longest run (XLA temp buffer, MB per 1000 steps):", ""]
    for mode, rs in by_mode.items():
        rs = sorted(rs, key=lambda r: r["steps"])
        if len(rs) >= 2 and rs[-1]["steps"] > rs[0]["steps"]:
            slope = (rs[-1]["xla_temp_mb"] - rs[0]["xla_temp_mb"]) / (rs[-1]["steps"] - rs[0]["steps"]) * 1000
            lines.append(f"* `{mode}`: {slope:.1f} MB per 1000 steps "
                         f"({rs[0]['xla_temp_mb']} MB at T={rs[0]['steps']}, "
                         f"{rs[-1]['xla_temp_mb']} MB at T={rs[-1]['steps']})")
    if note:
        lines += ["", note]
    lines += ["", "Machine:", ""] + [f"* {k}: {v}" for k, v in info.items()] + [""]
    (RESULTS / f"memory_{tag}.md").write_text("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    parser.add_argument("--modes", nargs="+", default=["autodiff", "none", "step", "100"])
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--one", nargs=2, metavar=("STEPS", "MODE"))
    parser.add_argument("--tag", default="cpu", help="suffix of the result files")
    parser.add_argument("--note", default="", help="a remark added to the markdown report")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(int(args.one[0]), args.one[1], args.batch)))
        return
    rows = run_all(args.steps, args.modes, args.batch)
    write_results(rows, machine(), args.tag, args.note)
    print(f"wrote {RESULTS / f'memory_{args.tag}.md'}")


if __name__ == "__main__":
    main()
