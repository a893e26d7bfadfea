"""The fused Pallas LIF kernel against the plain staged program, on one W5 graph per size.

For each N: compiles the W5 graph (``N -> Linear NxN -> LIF``) twice, with ``pallas=True``
(``"interpret"`` with ``--interpret``, for a CPU dry run) and with ``pallas=False`` (the
reference: the same staged program with the jnp LIF update), runs both on the same spike
input and reports the largest difference of the membrane potentials, the fraction of
differing spikes, and the forward time of each (median of interleaved rounds A B A B).
Writes one JSON file.

Usage::

    python benchmarks/gpu/pallas_check.py --out OUT.json [--sizes 512,4096] [--steps 500]
        [--batch 16] [--rounds 5] [--interpret]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/: workloads

import workloads as wl  # noqa: E402


def main(argv=None):
    """Run the check; returns the result dict (also written to ``--out``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sizes", default="512,1024,2048,4096,8192,16384")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--interpret", action="store_true", help="Pallas interpret mode (CPU)")
    p.add_argument("--graphs-dir", default="/tmp/nirjax_pallas_graphs")
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np

    import nirjax

    out = {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
           "jax": jax.__version__, "nirjax": nirjax.__version__, "interpret": args.interpret,
           "steps": args.steps, "batch": args.batch, "sizes": []}
    for n in (int(s) for s in args.sizes.split(",")):
        w = wl.WORKLOADS[f"W5-{n}"]
        nir_path, x_path = wl.build(w, pathlib.Path(args.graphs_dir), args.steps, args.batch)
        x = jnp.asarray(np.load(x_path).astype(np.float32))
        entry = {"N": n}
        try:
            runs = {}
            for name, opt in (("pallas", "interpret" if args.interpret else True),
                              ("reference", False)):
                model = nirjax.compile(str(nir_path), dt=w.dt, pallas=opt)
                state = model.init_state(args.batch)
                fn = jax.jit(lambda p, xs, s, m=model: m.run(p, xs, s, record=[("lif1", "v")]))
                t0 = time.perf_counter()
                ys, _, rec = jax.block_until_ready(fn(model.params, x, state))
                runs[name] = {"fn": fn, "args": (model.params, x, state), "ys": ys,
                              "v": rec[("lif1", "v")], "first_s": time.perf_counter() - t0,
                              "times": []}
            for _ in range(args.rounds):
                for r in runs.values():
                    t0 = time.perf_counter()
                    jax.block_until_ready(r["fn"](*r["args"]))
                    r["times"].append(time.perf_counter() - t0)
            a, b = runs["pallas"], runs["reference"]
            entry.update(
                max_abs_v_diff=float(jnp.max(jnp.abs(a["v"] - b["v"]))),
                spike_mismatch=float(jnp.mean(a["ys"] != b["ys"])),
                spike_rate=float(jnp.mean(b["ys"])),
                **{f"{k}_ms": 1e3 * statistics.median(r["times"]) for k, r in runs.items()},
                **{f"{k}_rounds_ms": [1e3 * t for t in r["times"]] for k, r in runs.items()},
                **{f"{k}_first_s": r["first_s"] for k, r in runs.items()},
            )
            entry["speedup_median"] = statistics.median(
                t_ref / t_pal for t_pal, t_ref in zip(a["times"], b["times"]))
            entry["status"] = "ok"
        except Exception as e:  # report and go on with the next size
            entry.update(status="n/a", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
        print(json.dumps({k: v for k, v in entry.items() if not k.endswith("rounds_ms")}), flush=True)
        out["sizes"].append(entry)
    pathlib.Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
