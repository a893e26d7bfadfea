"""Per-device memory and time of W5 with its neurons split over 1, 2, 4 and 8 devices.

W5 is the Open Neuromorphic benchmark network of ``workloads.py``: Input N -> Linear NxN ->
LIF N, T = 500 steps, batch 16, float32. Each configuration runs in a fresh process whose
CPU is split into D host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=D``);
the model is compiled with ``mesh=`` a ``"neurons"`` axis of size D (D = 1: no mesh, the
single-device program). Measured per configuration:

* **XLA's compiled memory analysis, per device** (``jit(...).lower(...).compile()
  .memory_analysis()`` of the SPMD program, which is one device's program): arguments
  (weights, input), outputs, temporaries, for a forward run ``model.run`` at the full
  T = 500 and for the gradient of a loss with respect to every parameter (training). Only
  compiled, never run at T = 500 (no memory is allocated for the analysis).
* **Buffers resident per device**: after a run, the bytes of every live ``jax.Array``
  shard on each device (``addressable_shards``), largest device reported: what the run
  actually holds (weights, input, output) on each device.
* **Time** of a forward run at T = 20 (median of 3 after a warm-up). INDICATIVE ONLY: the
  D "devices" are slices of the same 2 shared CPU cores here, so splitting cannot make a
  run faster, and other users' jobs move these numbers by tens of percent.

The weights are drawn in float32 with a fixed seed (``W5`` of ``workloads.py`` draws them
in float64, 2 GiB of host memory at N = 16384, for the same distribution); memory and time
do not depend on their values.

Usage::

    python benchmarks/scaling.py                       # N = 8192, 16384; D = 1, 2, 4, 8
    python benchmarks/scaling.py --sizes 1024 --devices 1 2
    python benchmarks/scaling.py --one 8192 4          # one configuration, prints JSON
    python benchmarks/scaling.py --sizes 8192 --tag cpu_8192     # one size at a time ...
    python benchmarks/scaling.py --combine results/scaling_cpu_8192.json results/scaling_cpu_16384.json

    python benchmarks/scaling.py --platform gpu --devices 1 --sizes 8192 16384 32768 --out DIR --tag gpu

``--platform gpu`` runs on the first D GPUs (``JAX_PLATFORMS=cuda``; no device-count flag)
and also reports each device's peak bytes in use (``device.memory_stats()``);
``benchmarks/gpu/scaling_gpu.sh`` is the prepared run for a GPU machine.

Results: ``benchmarks/results/scaling_cpu.{md,json}`` with the machine description
(``--out DIR`` writes elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
STEPS, BATCH, TIME_STEPS = 500, 16, 20
DT, TAU = 1e-4, 2e-3
MB = 2 ** 20


def w5_graph(n: int, seed: int = 5):
    """W5: N -> Linear NxN -> LIF N (as ``workloads.graph_w5``, weights drawn in float32)."""
    import nir
    import numpy as np

    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((n, n), dtype=np.float32)
    weight *= np.float32(1.5 * (TAU / DT) / np.sqrt(n))
    lif = nir.LIF(tau=np.full(n, TAU), r=np.ones(n), v_leak=np.zeros(n),
                  v_threshold=np.ones(n), v_reset=np.zeros(n))
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n])}),
               "fc1": nir.Linear(weight=weight), "lif1": lif,
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")])


def _analysis(compiled) -> dict:
    a = compiled.memory_analysis()
    return {"args_mb": a.argument_size_in_bytes / MB, "out_mb": a.output_size_in_bytes / MB,
            "temp_mb": a.temp_size_in_bytes / MB,
            "total_mb": (a.argument_size_in_bytes + a.output_size_in_bytes
                         + a.temp_size_in_bytes - a.alias_size_in_bytes) / MB}


def _resident_per_device() -> dict:
    """Bytes of live array shards on each device (MB)."""
    import jax

    per: dict = {}
    for arr in jax.live_arrays():
        for shard in arr.addressable_shards:
            per[shard.device.id] = per.get(shard.device.id, 0) + shard.data.nbytes
    return {str(k): v / MB for k, v in sorted(per.items())}


def measure_one(n: int, devices: int) -> dict:
    """Compile, analyse and time one configuration in THIS process (D devices already set)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import nirjax

    if jax.device_count() < devices:
        raise SystemExit(f"{devices} devices asked for, {jax.device_count()} present "
                         f"({jax.default_backend()})")
    t0 = time.perf_counter()
    options = {}
    if devices > 1:
        options = {"mesh": jax.make_mesh((devices,), ("neurons",),
                                         devices=jax.devices()[:devices])}
    model = nirjax.compile(w5_graph(n), dt=DT, **options)
    build_s = time.perf_counter() - t0

    def spec(shape, name):
        sharding = None
        if model.sharding is not None:
            plan = model.sharding
            sharding = plan.sharding(plan.batched(2, 1, plan.value_spec(name)))
        return jax.ShapeDtypeStruct(shape, jnp.float32, sharding=sharding)

    abstract = lambda tree: jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)
    xs_full = spec((STEPS, BATCH, n), "input")
    fwd = jax.jit(lambda p, x: model.run(p, x)[0])
    t0 = time.perf_counter()
    forward = _analysis(fwd.lower(abstract(model.params), xs_full).compile())
    compile_s = time.perf_counter() - t0

    def loss(p, x):
        ys, _, rec = model.run(p, x, record=[("lif1", "v")])
        return jnp.mean(rec[("lif1", "v")] ** 2) + jnp.mean(ys)

    t0 = time.perf_counter()
    backward = _analysis(jax.jit(jax.grad(loss)).lower(abstract(model.params), xs_full).compile())
    compile_grad_s = time.perf_counter() - t0

    # a real (short) run: time and the buffers it holds on each device
    rng = np.random.default_rng(1005)
    xs = (rng.random((TIME_STEPS, BATCH, n), dtype=np.float32) < 0.05).astype(np.float32)
    xs = model.shard_inputs(xs)
    ys = fwd(model.params, xs)
    jax.block_until_ready(ys)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(fwd(model.params, xs))
        times.append(time.perf_counter() - t0)
    resident = _resident_per_device()
    peaks = {}
    for dev in jax.devices()[:devices]:
        stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
        if stats and "peak_bytes_in_use" in stats:
            peaks[str(dev.id)] = stats["peak_bytes_in_use"] / MB
    rate = float(np.asarray(jax.device_get(ys)).mean())
    weight = model.params["fc1"].weight
    return {
        "n": n, "devices": devices, "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "device_peak_mb": max(peaks.values()) if peaks else None,
        "weight_shard": list(weight.addressable_shards[0].data.shape),
        "forward": forward, "backward": backward,
        "resident_max_mb": max(resident.values()), "resident_per_device_mb": resident,
        "time_ms_T20": 1e3 * sorted(times)[1], "spike_rate": rate,
        "build_s": build_s, "compile_fwd_s": compile_s, "compile_grad_s": compile_grad_s,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_all(sizes, devices, platform="cpu") -> list:
    rows = []
    for n in sizes:
        for d in devices:
            if platform == "cpu":
                env = {**os.environ, "JAX_PLATFORMS": "cpu",
                       "XLA_FLAGS": f"--xla_force_host_platform_device_count={d}"}
            else:  # the first d GPUs of the machine
                env = {**os.environ, "JAX_PLATFORMS": "cuda"}
            proc = subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()),
                                   "--one", str(n), str(d)], capture_output=True, text=True,
                                  env=env)
            if proc.returncode != 0:
                rows.append({"n": n, "devices": d,
                             "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def write_results(rows, info, tag="cpu", out=None):
    results = RESULTS if out is None else pathlib.Path(out)
    results.mkdir(parents=True, exist_ok=True)
    gpu = any(r.get("backend") == "gpu" for r in rows)
    (results / f"scaling_{tag}.json").write_text(json.dumps(
        {"machine": info, "steps": STEPS, "batch": BATCH, "time_steps": TIME_STEPS,
         "results": rows}, indent=1))
    ok = [r for r in rows if "error" not in r]
    base = {r["n"]: r for r in ok if r["devices"] == 1}
    lines = [
        "# W5 with its neurons split over devices: memory and time per device",
        "",
        f"Produced by `python benchmarks/scaling.py` on {time.strftime('%Y-%m-%d')}. W5: "
        f"Input N -> Linear NxN -> LIF N, T = {STEPS}, batch {BATCH}, float32, compiled with "
        + ("`mesh=` a `\"neurons\"` axis over the first D GPUs (one fresh process per row; "
           if gpu else
           "`mesh=` a `\"neurons\"` axis over D host CPU devices "
           "(`--xla_force_host_platform_device_count=D`, one fresh process per row; ")
        + "D = 1 is the single-device program without a mesh). Every array of size N is split "
        "into D blocks: the weight's rows, the input, the LIF state and the output.",
        "",
        "Memory per device, from XLA's analysis of the compiled SPMD program (one device's "
        "share; compiled at the full T, not run):",
        "",
        "| N | D | weight block | forward: args + out + temp = total MB | x of D=1 | "
        "training (grad): total MB | x of D=1 | resident after a run (max device) MB |",
        "|---:|---:|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']} | {r['devices']} | error: {r['error']} | | | | | |")
            continue
        f, b = r["forward"], r["backward"]
        b0 = base.get(r["n"])
        fr = f"{f['total_mb'] / b0['forward']['total_mb']:.3f}" if b0 else "-"
        br = f"{b['total_mb'] / b0['backward']['total_mb']:.3f}" if b0 else "-"
        lines.append(
            f"| {r['n']} | {r['devices']} | {r['weight_shard'][0]} x {r['weight_shard'][1]} | "
            f"{f['args_mb']:.0f} + {f['out_mb']:.0f} + {f['temp_mb']:.0f} = "
            f"{f['total_mb']:.0f} | {fr} | {b['args_mb']:.0f} + {b['out_mb']:.0f} + "
            f"{b['temp_mb']:.0f} = {b['total_mb']:.0f} | {br} | {r['resident_max_mb']:.0f} |")
    cores = os.cpu_count()
    caveat = ("measured on GPUs, each device its own chip" if gpu else
              f"**indicative only**: the D devices share the same {cores} CPU cores of this "
              f"machine (other jobs may have been using them), so the speed-up of separate "
              f"devices cannot show fully; on separate devices (GPUs, hosts) each device does "
              f"1/D of the matrix product and the LIF update")
    lines += [
        "",
        f"Time of a forward run at T = {TIME_STEPS} (batch {BATCH}), median of 3 — {caveat}.",
        "",
        "| N | D | forward ms (T = 20) | output spike rate | compile forward s | "
        "compile grad s | process peak RSS MB | device peak MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ok:
        peak = r.get("device_peak_mb")
        lines.append(f"| {r['n']} | {r['devices']} | {r['time_ms_T20']:.0f} | "
                     f"{r['spike_rate']:.3f} | {r['compile_fwd_s']:.1f} | "
                     f"{r['compile_grad_s']:.1f} | {r['rss_peak_mb']:.0f} | "
                     f"{'-' if peak is None else f'{peak:.0f}'} |")
    lines += ["", "Machine:", ""] + [f"* {k}: {v}" for k, v in info.items()] + [""]
    (results / f"scaling_{tag}.md").write_text("\n".join(lines))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--one", type=int, nargs=2, metavar=("N", "D"))
    parser.add_argument("--tag", default="cpu", help="suffix of the result files")
    parser.add_argument("--platform", choices=("cpu", "gpu"), default="cpu",
                        help="cpu: D host devices of this CPU; gpu: the first D GPUs")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="directory of the result files (default benchmarks/results)")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="write the report from earlier runs' JSON files (e.g. one per "
                             "size, run separately to bound memory) instead of measuring")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return
    if args.combine:
        parts = [json.loads(pathlib.Path(f).read_text()) for f in args.combine]
        rows = [r for part in parts for r in part["results"]]
        where = write_results(rows, parts[-1]["machine"], args.tag, args.out)
        print(f"wrote {where / f'scaling_{args.tag}.md'}")
        return
    sys.path.insert(0, str(HERE))
    if args.platform == "gpu":
        # this parent process only describes the machine: it must not take the GPUs'
        # memory from the measuring processes
        os.environ["JAX_PLATFORMS"] = "cpu"
    from memory import machine

    info = machine()
    if args.platform == "gpu":
        info["backend"] = "gpu"
        try:
            info["GPUs"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                 "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    rows = run_all(args.sizes, args.devices, args.platform)
    where = write_results(rows, info, args.tag, args.out)
    print(f"wrote {where / f'scaling_{args.tag}.md'}")


if __name__ == "__main__":
    main()
