"""Speed benchmark: the same NIR graph and input in nirjax, Spyx, Norse and snnTorch.

For every workload (see ``benchmarks/workloads.py``) the harness writes the graph as a
``.nir`` file and a spike input as ``.npy``, then starts one separate process per framework,
each in that framework's own Python environment, which imports the same file with the
framework's own importer and measures (see ``benchmarks/runners/``):

* forward time and forward+backward time (gradient of ``mean((sum_t y - 0.1 T)^2)`` with
  respect to every trainable parameter; surrogate gradients through spikes), median of
  repeated synchronised calls after a first (compiling) call, with min/max;
* sample-steps per second (``B * T / forward time``);
* compile time (first call minus steady state; for torch the import time too) and, for
  nirjax, ahead-of-time compile time and XLA memory for several T;
* peak memory (RSS growth of a steady-state call; XLA's compiled memory analysis for JAX);
* spike rates of every spiking layer;
* a float32 GEMM timed in the same process with the framework's own backend, and the
  workload's matmul/conv GFLOP/s as a fraction of it.

Interleaved rounds (default): every framework's runner stays alive after its own set-up
measurements as a worker process (``runners/common.py``), and the harness alternates the
frameworks round by round, A B A B ..., for forward and then forward+backward (``--rounds``,
default 7; 2 with ``--quick``; ``--round-time`` seconds of calls per framework and round).
The reported times are medians over the rounds with quartiles and range; nirjax's speed-up
over a peer is given as the median and range of the per-round ratios (both measured in the
same round, under the same load); every goal of issue 13 gets a verdict: ``met`` (every
round meets it), ``not met`` (no round does) or ``within noise``. The fraction of the CPUs
other processes used is recorded per round, the load average at start and end. The Markdown
report ends with the table for the README (``docs/README_speed_section.md``).
``--rounds 0`` runs each framework once in a process of its own, one after the other.

Results go to ``benchmarks/results/``: ``<name>.csv`` (one row per workload and framework),
``<name>_compile.csv`` (nirjax compile time and memory vs T), ``<name>.json`` (everything the
runners returned), ``<name>.md`` (tables and goal check), ``<name>.png`` and a machine
description.

Run::

    NIRJAX_PEERS_DIR=/path/to/.peers python benchmarks/speed.py   # the committed results
    python benchmarks/speed.py --quick --frameworks nirjax,spyx --workloads W3 --steps 20 \
        --batch 2 --compile-T 20 --gemm-n 64 --min-repeats 1 --max-repeats 1   # < 1 min
    python benchmarks/speed.py --quick --frameworks nirjax --workloads W3
    python benchmarks/speed.py --workloads W1,W2 --nirjax-opt unroll=4 --name w12_unroll4

Peer environments: ``tests/peers/setup_peers.sh`` builds them under ``.peers/`` (pinned
versions: torch 2.13.0 CPU, Norse 1.1.0, snnTorch 1.0.0, nirtorch 2.6, Spyx 1.0.0 and 0.1.20,
jax 0.10.2, nir 1.0.8), where the harness finds them (or ``$NIRJAX_PEERS_DIR``); or point it
at other environments with ``--python-spyx PATH`` (also ``--python-norse``,
``--python-snntorch``, ``--python-snntorch-rnnfix``, ``--python-spyx01``,
``--python-nirjax``) or the variables ``NIRJAX_BENCH_PYTHON_<FRAMEWORK>`` (``-`` as ``_``).
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as wl  # noqa: E402

RUNNERS = HERE / "runners"
FRAMEWORKS = {
    # name: (runner script, environment under .peers, built by tests/peers/setup_peers.sh)
    "nirjax": ("nirjax_runner.py", None),
    "spyx": ("spyx_runner.py", "spyx"),
    "norse": ("torch_runner.py", "torch"),
    "snntorch": ("torch_runner.py", "torch"),
    "snntorch-rnnfix": ("torch_runner.py", "torch"),
    "spyx01": ("spyx_runner.py", "spyx01"),
}
DEFAULT_FRAMEWORKS = ("nirjax", "spyx", "norse", "snntorch", "snntorch-rnnfix")
PEERS = ("spyx", "spyx01", "norse", "snntorch")


# ----------------------------------------------------------------------------- set-up


def parse_opt(items) -> dict:
    """``key=value`` strings -> dict; values parsed as Python literals where possible."""
    opts = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--nirjax-opt expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            opts[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            opts[key.strip()] = value
    return opts


def find_python(framework: str, args) -> str | None:
    """The interpreter to run ``framework`` with (CLI flag, env var, the .peers environments)."""
    flag = getattr(args, f"python_{framework.replace('-', '_')}", None)
    if flag:
        return flag
    env = os.environ.get(f"NIRJAX_BENCH_PYTHON_{framework.upper().replace('-', '_')}")
    if env:
        return env
    if framework == "nirjax":
        return sys.executable
    peers = pathlib.Path(os.environ.get("NIRJAX_PEERS_DIR", HERE.parent / ".peers"))
    candidate = peers / FRAMEWORKS[framework][1] / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def matmul_flops(nir_path: pathlib.Path, dt: float) -> tuple[float, dict]:
    """Multiply-add FLOPs per sample and step of the graph's Affine/Linear/Conv nodes."""
    import warnings

    import nirjax
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = nirjax.compile(str(nir_path), dt=dt).program
    per_node = {}
    for n in program.nodes:
        if n.type_name in ("Affine", "Linear"):
            per_node[n.name] = 2.0 * np.size(n.params.weight)
        elif n.type_name in ("Conv1d", "Conv2d"):
            w = np.shape(n.params.weight)
            per_node[n.name] = 2.0 * float(np.prod(n.out_shape)) * float(np.prod(w[1:]))
    return float(sum(per_node.values())), per_node


# ----------------------------------------------------------------------------- running


def _cpu_jiffies() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_idle(max_wait: float, threshold: float = 0.15, window: float = 3.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes use < ``threshold`` of the CPUs.

    Returns the busy fraction of the last window.
    """
    deadline = time.time() + max_wait
    while True:
        b0, t0 = _cpu_jiffies()
        time.sleep(window)
        b1, t1 = _cpu_jiffies()
        busy = (b1 - b0) / max(t1 - t0, 1e-9)
        if busy < threshold or time.time() >= deadline:
            return busy


def run_one(framework: str, python: str, spec: dict, workdir: pathlib.Path,
            timeout: float) -> dict:
    """Run one framework on one workload in its own process; returns the result dict."""
    tag = f"{spec['workload']}_{framework}"
    spec_path = workdir / f"{tag}.spec.json"
    out_path = workdir / f"{tag}.out.json"
    log_path = workdir / f"{tag}.log"
    spec = dict(spec, framework=framework)
    spec_path.write_text(json.dumps(spec, indent=1))
    if out_path.exists():
        out_path.unlink()
    cmd = [python, str(RUNNERS / FRAMEWORKS[framework][0]), str(spec_path), str(out_path)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="2")
    threads = int(spec.get("threads") or 0)
    pin = None
    if threads > 0:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        # XLA:CPU sizes its thread pools from the CPU affinity mask
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        pin = lambda: os.sched_setaffinity(0, cpus)  # noqa: E731
    t0 = time.time()
    busy0, _ = _cpu_jiffies()
    ours0 = _children_cpu()
    try:
        with open(log_path, "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  timeout=timeout, cwd=str(HERE.parent), preexec_fn=pin)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        return {"framework": framework, "workload": spec["workload"], "status": "n/a",
                "reason": f"timed out after {timeout:.0f} s", "wall_s": time.time() - t0}
    if out_path.exists():
        result = json.loads(out_path.read_text())
    else:
        tail = log_path.read_text()[-1500:] if log_path.exists() else ""
        last = [line for line in tail.strip().splitlines() if line.strip()][-1:] or [""]
        result = {"framework": framework, "workload": spec["workload"], "status": "n/a",
                  "reason": f"runner exited with code {rc}: {last[0][:300]}"}
    result["python_path"] = python
    result["measured_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    wall = time.time() - t0
    busy1, _ = _cpu_jiffies()
    # CPU time other processes used while this one ran, as a fraction of the machine
    foreign = max(0.0, (busy1 - busy0) - (_children_cpu() - ours0))
    result["foreign_cpu"] = foreign / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0
    return result


# ----------------------------------------------------------------------------- interleaved rounds


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (float(fields[11]) + float(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Worker:
    """One framework's runner kept alive between rounds (``"serve": true``, see runners/common.py).

    The runner first does everything it does on its own (compile, the first measurements,
    memory, rates, GEMM) and writes its result file; then it answers timing commands.
    """

    def __init__(self, framework: str, python: str, spec: dict, workdir: pathlib.Path):
        import queue
        import threading

        self.framework = framework
        tag = f"{spec['workload']}_{framework}"
        self.out_path = workdir / f"{tag}.out.json"
        spec_path = workdir / f"{tag}.spec.json"
        spec_path.write_text(json.dumps(dict(spec, framework=framework, serve=True), indent=1))
        if self.out_path.exists():
            self.out_path.unlink()
        self.log_path = workdir / f"{tag}.log"
        self.log = open(self.log_path, "w")
        env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONUNBUFFERED="1")
        threads = int(spec.get("threads") or 0)
        pin = None
        if threads > 0:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[var] = str(threads)
            cpus = sorted(os.sched_getaffinity(0))[:threads]
            pin = lambda: os.sched_setaffinity(0, cpus)  # noqa: E731
        cmd = [python, str(RUNNERS / FRAMEWORKS[framework][0]), str(spec_path), str(self.out_path)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env, cwd=str(HERE.parent),
                                     preexec_fn=pin, text=True, bufsize=1)
        self.lines: "queue.Queue" = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                if line.startswith("@@ "):
                    self.lines.put(json.loads(line[3:]))
                else:
                    self.log.write(line)
            self.lines.put(None)  # end of output: the runner exited

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        self.t0 = time.time()

    def _next(self, timeout: float):
        import queue

        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return {"error": f"no answer within {timeout:.0f} s"}

    def ready(self, timeout: float) -> dict:
        """Wait for the set-up to finish; returns the runner's result dict."""
        msg = self._next(timeout)
        if self.out_path.exists():
            result = json.loads(self.out_path.read_text())
        else:
            self.proc.kill()
            tail = self.log_path.read_text()[-1500:] if self.log_path.exists() else ""
            last = [line for line in tail.strip().splitlines() if line.strip()][-1:] or [""]
            why = (msg or {}).get("error") or f"runner exited with code {self.proc.poll()}"
            result = {"framework": self.framework, "status": "n/a",
                      "reason": f"{why}: {last[0][:300]}"}
        self.serving = bool(msg and msg.get("ready"))
        self.phases = (msg or {}).get("phases", [])
        result["wall_s"] = time.time() - self.t0
        return result

    def time(self, phase: str, repeats: int, timeout: float, warmup: int = 1) -> list | None:
        """Seconds of ``repeats`` synchronised calls of ``phase`` after ``warmup`` untimed
        ones (None if unavailable)."""
        if not self.serving or phase not in self.phases:
            return None
        self.proc.stdin.write(json.dumps({"phase": phase, "repeats": repeats, "warmup": warmup}) + "\n")
        self.proc.stdin.flush()
        msg = self._next(timeout)
        if not msg or "times" not in msg:
            self.serving = msg is not None and "no answer" not in str(msg.get("error", ""))
            return None
        return msg["times"]

    def close(self) -> None:
        """Ask the worker to quit (kill it if it does not within 30 s)."""
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()
        self.pump.join(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self.log.close()


def _quantiles(values: list) -> dict:
    """Median, quartiles (inclusive method), min, max and count of a list."""
    import statistics

    v = sorted(values)
    if len(v) >= 2:
        q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
    else:
        q1 = q3 = v[0]
    return {"median": statistics.median(v), "q1": q1, "q3": q3, "min": v[0], "max": v[-1],
            "n": len(v)}


def interleave(workers: dict, rounds: int, round_time: float, phases=("fwd", "fwdbwd"),
               timeout: float = 3600.0, log=print, pause: float = 0.0) -> dict:
    """Alternate the frameworks round by round (A B A B ...) for every phase.

    A round of a framework is one untimed call (the previous framework's turn has evicted
    its data from the caches; skipped for calls over a second) and then ``repeats``
    synchronised calls (as many as fill
    ``round_time`` seconds by the set-up measurement, at least one); its time is the median
    of those calls.
    ``pause`` seconds pass between two frameworks' turns, so that threads the previous one
    left spinning (OpenMP, XLA's pool) are asleep before the next is timed.
    Returns ``{"rounds": {framework: {phase: [round times]}}, "load": [...]}`` where ``load``
    has, per round, the load average and the fraction of the CPUs used by processes other
    than the workers.
    """
    times: dict = {f: {p: [] for p in phases} for f in workers}
    load = []
    repeats, warm = {}, {}
    for f, (w, res) in workers.items():
        for p in phases:
            med = (res.get(p) or {}).get("median")
            repeats[(f, p)] = max(1, min(50, int(round_time / med))) if med else 1
            warm[(f, p)] = 0 if med and med > 1.0 else 1
    for k in range(rounds):
        b0, t0 = _cpu_jiffies()
        own0 = sum(_proc_cpu(w.proc.pid) for w, _ in workers.values())
        for p in phases:
            for f, (w, _) in workers.items():
                if pause > 0 and len(workers) > 1:
                    time.sleep(pause)
                ts = w.time(p, repeats[(f, p)], timeout, warm[(f, p)])
                if ts:
                    times[f][p].append(sorted(ts)[len(ts) // 2])
        b1, t1 = _cpu_jiffies()
        own1 = sum(_proc_cpu(w.proc.pid) for w, _ in workers.values())
        foreign = max(0.0, (b1 - b0) - (own1 - own0)) / max(t1 - t0, 1e-9)
        load.append({"round": k + 1, "loadavg_1min": os.getloadavg()[0], "foreign_cpu": foreign})
        log(f"    round {k + 1}/{rounds}: " + ", ".join(
            f"{f} " + "/".join(f"{1e3 * times[f][p][-1]:.1f}" if times[f][p] else "-" for p in phases)
            for f in workers) + f" ms; other processes {100 * foreign:.0f} % of the CPUs")
    return {"rounds": times, "load": load, "repeats": {f"{f}/{p}": n for (f, p), n in repeats.items()}}


def ratio_stats(rounds: dict, peer: str, phase: str, base: str = "nirjax") -> dict | None:
    """Per-round ratios ``peer time / base time`` (> 1: ``base`` is faster): median, min, max."""
    a = rounds.get(base, {}).get(phase) or []
    b = rounds.get(peer, {}).get(phase) or []
    pairs = [y / x for x, y in zip(a, b) if x > 0]
    if not pairs:
        return None
    ratio_of_medians = _quantiles(b)["median"] / _quantiles(a)["median"]
    return dict(_quantiles(pairs), ratio_of_medians=ratio_of_medians)


def verdict(stats: dict | None, need: float) -> str:
    """``met`` if every round meets ``need``, ``not met`` if none does, else ``within noise``."""
    if not stats:
        return "n/a"
    if stats["min"] >= need:
        return "met"
    if stats["max"] < need:
        return "not met"
    return "within noise"


def run_workload_sequential(wname, f, py, meta, opts, compile_T, w, workdir, args) -> dict:
    """One framework on one workload in a process of its own (``--rounds 0``)."""
    spec = dict(meta)
    if f == "nirjax":
        spec["options"] = opts
        spec["compile_T"] = compile_T if w.kind != "onb" else []
    print(f"[{wname}] {f:9s} ...", flush=True)
    if py is None:
        return {"framework": f, "workload": wname, "status": "n/a",
                "reason": f"no Python environment for {f} (run tests/peers/setup_peers.sh "
                          f"or pass --python-{f})"}
    res = None
    for attempt in range(1 + max(args.retries, 0)):
        if args.wait_idle > 0:
            wait_idle(args.wait_idle)
        new = run_one(f, py, spec, workdir, args.timeout)
        new["attempts"] = attempt + 1
        if res is None or (new["status"] == "ok" and new.get("foreign_cpu", 1.0)
                           < res.get("foreign_cpu", 1.0)):
            res = new
        if (res["status"] != "ok" or res.get("foreign_cpu", 0.0) <= args.max_other_load
                or attempt == max(args.retries, 0)):
            break
        print(f"    (other processes used {100 * new.get('foreign_cpu', 0):.0f} % of the "
              f"CPUs: again)", flush=True)
    return res


def run_workload_interleaved(wname, frameworks, pythons, meta, opts, compile_T, w, workdir,
                             args) -> list:
    """Every framework on one workload: set-up one after the other, then interleaved rounds.

    Each framework's runner starts in its own process and does its set-up measurements
    alone (compile, first calls, memory, rates, GEMM); the runners then stay alive and the
    harness alternates them round by round (:func:`interleave`). The reported forward and
    forward+backward times are the medians over the rounds (``fwd``/``fwdbwd``: median,
    quartiles, min, max); the set-up measurement is kept as ``setup_fwd``/``setup_fwdbwd``.
    """
    workers, out = {}, []
    try:
        for f in frameworks:
            spec = dict(meta)
            if f == "nirjax":
                spec["options"] = opts
                spec["compile_T"] = compile_T if w.kind != "onb" else []
            py = pythons[f]
            if py is None:
                out.append({"framework": f, "workload": wname, "status": "n/a",
                            "reason": f"no Python environment for {f} (run "
                                      f"tests/peers/setup_peers.sh or pass --python-{f})"})
                continue
            if args.wait_idle > 0:
                wait_idle(args.wait_idle)
            print(f"[{wname}] {f:9s} set-up ...", end=" ", flush=True)
            worker = Worker(f, py, spec, workdir)
            res = worker.ready(args.timeout)
            res.setdefault("workload", wname)
            res["python_path"] = py
            res["measured_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
            print(res["status"] + (f" ({res.get('reason', '')[:120]})" if res["status"] != "ok" else "")
                  + f" in {res['wall_s']:.0f} s", flush=True)
            out.append(res)
            if res["status"] == "ok" and worker.serving:
                workers[f] = (worker, res)
            else:
                worker.close()
        phases = ("fwd",) if args.no_backward else ("fwd", "fwdbwd")
        print(f"[{wname}] {args.rounds} interleaved rounds of {', '.join(workers)} "
              f"(forward / forward+backward ms per round)", flush=True)
        il = interleave(workers, args.rounds, args.round_time, phases, args.timeout,
                        pause=args.pause)
    finally:
        for worker, _ in workers.values():
            worker.close()
    loads = [x["foreign_cpu"] for x in il["load"]] or [0.0]
    for res in out:
        f = res["framework"]
        if f not in workers:
            continue
        res["rounds"] = il["rounds"][f]
        res["round_repeats"] = {p: il["repeats"].get(f"{f}/{p}") for p in phases}
        res["round_load"] = il["load"]
        res["foreign_cpu"] = sorted(loads)[len(loads) // 2]
        for p in phases:
            if res.get(p):
                res[f"setup_{p}"] = res[p]
            if il["rounds"][f][p]:
                res[p] = _quantiles(il["rounds"][f][p])
    return out


# ----------------------------------------------------------------------------- reporting

CSV_FIELDS = [
    "workload", "framework", "status", "T", "B", "fwd_ms", "fwd_min_ms", "fwd_max_ms", "fwd_n",
    "fwdbwd_ms", "fwdbwd_min_ms", "fwdbwd_max_ms", "fwdbwd_n", "sample_steps_per_s",
    "train_sample_steps_per_s", "fwd_compile_s", "fwdbwd_compile_s", "setup_s", "import_s",
    "fwd_rss_mb", "fwdbwd_rss_mb", "fwd_phase_rss_mb", "fwdbwd_phase_rss_mb",
    "process_peak_rss_mb", "xla_fwd_temp_mb", "xla_fwd_out_mb", "xla_fwdbwd_temp_mb",
    "gflop_per_fwd", "fwd_gflops", "gemm_gflops", "fwd_frac_gemm", "fwdbwd_frac_gemm",
    "n_params", "grad_arrays", "grad_nonzero_arrays", "output_rate", "rates", "versions",
    "foreign_cpu", "notes", "reason",
]


def _compile_rows(results: list) -> list:
    """nirjax's compile time and XLA memory vs T, one row per (workload, T)."""
    out = []
    for res in results:
        for c in res.get("compile_vs_T") or []:
            out.append({"workload": res["workload"], "T": c["T"], "lower_s": c["lower_s"],
                        "compile_s": c["compile_s"], "total_s": c["total_s"],
                        "temp_mb": _mb(c.get("temp_bytes")), "out_mb": _mb(c.get("output_bytes")),
                        "arg_mb": _mb(c.get("argument_bytes"))})
    return out


def _mb(v):
    return None if v is None else v / 2 ** 20


def row(result: dict, w: dict) -> dict:
    """One CSV row from a runner's result."""
    r = {"workload": result["workload"], "framework": result["framework"],
         "status": result["status"], "T": w["steps"], "B": w["batch"],
         "reason": result.get("reason") or result.get("bwd_reason", ""),
         "foreign_cpu": result.get("foreign_cpu")}
    if result["status"] != "ok":
        return r
    fwd, fb = result.get("fwd"), result.get("fwdbwd")
    samples = w["steps"] * w["batch"]
    gflop = w["flops_per_sample_step"] * samples / 1e9
    r.update(
        fwd_ms=fwd["median"] * 1e3, fwd_min_ms=fwd["min"] * 1e3, fwd_max_ms=fwd["max"] * 1e3,
        fwd_n=fwd["n"], sample_steps_per_s=samples / fwd["median"],
        fwd_compile_s=result.get("fwd_compile_s"), setup_s=result.get("setup_s"),
        import_s=result.get("import_s"), fwd_rss_mb=_mb(result.get("fwd_rss_bytes")),
        fwd_phase_rss_mb=_mb(result.get("fwd_phase_rss_bytes")),
        process_peak_rss_mb=_mb(result.get("process_peak_rss_bytes")),
        xla_fwd_temp_mb=_mb((result.get("fwd_xla") or {}).get("temp_bytes")),
        xla_fwd_out_mb=_mb((result.get("fwd_xla") or {}).get("output_bytes")),
        gflop_per_fwd=gflop, fwd_gflops=gflop / fwd["median"],
        gemm_gflops=result.get("gemm_gflops"), n_params=result.get("n_params"),
        output_rate=result.get("output_mean"),
        rates=";".join(f"{k}={v:.4f}" for k, v in (result.get("rates") or {}).items()),
        versions=";".join(f"{k}={v}" for k, v in (result.get("versions") or {}).items()),
        notes=" ".join(result.get("notes") or []),
    )
    if result.get("gemm_gflops"):
        r["fwd_frac_gemm"] = r["fwd_gflops"] / result["gemm_gflops"]
    if fb:
        r.update(fwdbwd_ms=fb["median"] * 1e3, fwdbwd_min_ms=fb["min"] * 1e3,
                 fwdbwd_max_ms=fb["max"] * 1e3, fwdbwd_n=fb["n"],
                 train_sample_steps_per_s=samples / fb["median"],
                 fwdbwd_compile_s=result.get("bwd_compile_s"),
                 fwdbwd_rss_mb=_mb(result.get("fwdbwd_rss_bytes")),
                 fwdbwd_phase_rss_mb=_mb(result.get("fwdbwd_phase_rss_bytes")),
                 xla_fwdbwd_temp_mb=_mb((result.get("fwdbwd_xla") or {}).get("temp_bytes")),
                 grad_arrays=result.get("grad_arrays"),
                 grad_nonzero_arrays=result.get("grad_nonzero_arrays"))
        if result.get("gemm_gflops"):
            # backward ~ 2x the forward's matmul work (input and weight gradients)
            r["fwdbwd_frac_gemm"] = 3 * gflop / fb["median"] / result["gemm_gflops"]
    return r


def _fmt(v, spec="{:.3g}"):
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return spec.format(v)
    return str(v)


def table(rows: list, fields: list, headers: list) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(f)) for f in fields) + " |")
    return "\n".join(lines)


def summary_table(rows: list, frameworks: list) -> str:
    """Workloads x frameworks: forward / forward+backward ms and nirjax's speed-up."""
    by = {(r["workload"], r["framework"]): r for r in rows}
    names = list(dict.fromkeys(r["workload"] for r in rows))
    peers = [f for f in frameworks if f != "nirjax"]
    head = ["workload"] + [f"{f} fwd / fwd+bwd [ms]" for f in frameworks]
    if "nirjax" in frameworks:
        head += [f"nirjax speed-up vs {f} (fwd / fwd+bwd)" for f in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(r):
        if not r or r.get("status") != "ok":
            return "n/a"
        return f"{_fmt(r.get('fwd_ms'))} / {_fmt(r.get('fwdbwd_ms')) if r.get('fwdbwd_ms') else 'n/a'}"

    def ratio(a, b, key):
        return f"{b[key] / a[key]:.2f}x" if a and b and a.get(key) and b.get(key) else "n/a"

    for n in names:
        cells = [n] + [cell(by.get((n, f))) for f in frameworks]
        if "nirjax" in frameworks:
            a = by.get((n, "nirjax"))
            for f in peers:
                b = by.get((n, f))
                cells.append(f"{ratio(a, b, 'fwd_ms')} / {ratio(a, b, 'fwdbwd_ms')}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _round_values(res: dict, phase: str) -> list:
    """The per-round times of a result (the set-up median if it has no rounds)."""
    rounds = (res.get("rounds") or {}).get(phase)
    if rounds:
        return list(rounds)
    med = (res.get(phase) or {}).get("median")
    return [med] if med else []


def _range(stats: dict | None, fmt="{:.2f}x") -> str:
    if not stats:
        return "n/a"
    return (f"{fmt.format(stats['median'])} (rounds {fmt.format(stats['min'])}-"
            f"{fmt.format(stats['max'])}, n={stats['n']})")


def goals(results: list, wmeta: dict) -> list:
    """The CPU goals of issue 13 from the interleaved rounds: ``(goal, measured, verdict)``.

    A speed-up goal is checked on the per-round ratios ``peer time / nirjax time`` of the
    same round (:func:`ratio_stats`): ``met`` if every round meets it, ``not met`` if none
    does, ``within noise`` otherwise (:func:`verdict`). Fractions of the GEMM rate likewise
    per round (the GEMM measured once in nirjax's process).
    """
    by = {(r["workload"], r["framework"]): r for r in results}
    rounds = {}
    for (w, f), r in by.items():
        if r.get("status") == "ok":
            rounds.setdefault(w, {})[f] = {p: _round_values(r, p) for p in ("fwd", "fwdbwd")}
    out = []

    def speedup(w, peer, phase, need, label):
        if (w, "nirjax") not in by or (w, peer) not in by:
            return
        st = ratio_stats(rounds.get(w, {}), peer, phase)
        why = "" if st else f" ({(by[(w, peer)].get('reason') or by[(w, 'nirjax')].get('reason') or 'no rounds')[:60]})"
        out.append((f"{w} {label} >= {need:g}x {peer}", _range(st) + why, verdict(st, need)))

    def gemm_fraction(w, phase, factor, need, label):
        r = by.get((w, "nirjax"))
        if not r or r.get("status") != "ok" or not r.get("gemm_gflops"):
            return
        gflop = wmeta[w]["flops_per_sample_step"] * wmeta[w]["steps"] * wmeta[w]["batch"] / 1e9
        vals = [factor * gflop / t / r["gemm_gflops"] for t in _round_values(r, phase) if t]
        if not vals:
            return
        st = _quantiles(vals)
        out.append((label, _range(st, "{:.0%}") + f" of {r['gemm_gflops']:.1f} GFLOP/s",
                    verdict(st, need)))

    for w in ("W4", "W6"):
        speedup(w, "spyx", "fwd", 1.5, "forward")
        speedup(w, "spyx", "fwdbwd", 3.0, "forward+backward")
        r = by.get((w, "nirjax"))
        if r and r.get("bwd_compile_s") is not None:
            out.append((f"{w} backward compile < 2 s", f"{r['bwd_compile_s']:.2f} s",
                        "met" if r["bwd_compile_s"] < 2.0 else "not met"))
    for w in ("W1", "W2", "W3"):
        speedup(w, "spyx", "fwdbwd", 1.2, "forward+backward")
    gemm_fraction("W1", "fwdbwd", 3.0, 0.8,
                  "W1 forward+backward >= 80 % of the dense limit (3x forward FLOPs at the GEMM rate)")
    for w in ("W1", "W2"):
        speedup(w, "spyx", "fwd", 1.2, "forward")
    gemm_fraction("W1", "fwd", 1.0, 0.9, "W1 forward >= 90 % of the float32 GEMM rate")
    for w in ("W1", "W2"):
        for peer in ("norse", "snntorch"):
            speedup(w, peer, "fwd", 4.0, "forward")
    return out


def rounds_table(results: list) -> str:
    """Per workload and framework: median [quartiles] (min-max) over the interleaved rounds."""
    lines = ["| workload | framework | forward [ms] median [IQR] (min-max, rounds) | "
             "fwd+bwd [ms] median [IQR] (min-max, rounds) | other processes' CPU use (median of rounds) |",
             "|---|---|---|---|---|"]

    def cell(s):
        if not s or "q1" not in s:
            return "-"
        k = 1e3
        return (f"{k * s['median']:.3g} [{k * s['q1']:.3g}-{k * s['q3']:.3g}] "
                f"({k * s['min']:.3g}-{k * s['max']:.3g}, n={s['n']})")

    for r in results:
        if r.get("status") != "ok":
            continue
        lines.append(f"| {r['workload']} | {r['framework']} | {cell(r.get('fwd'))} | "
                     f"{cell(r.get('fwdbwd'))} | {100 * (r.get('foreign_cpu') or 0):.0f} % |")
    return "\n".join(lines)


def ratio_table(results: list) -> str:
    """nirjax's speed-up over every peer per workload: median of per-round ratios (range)."""
    rounds = {}
    for r in results:
        if r.get("status") == "ok":
            rounds.setdefault(r["workload"], {})[r["framework"]] = {
                p: _round_values(r, p) for p in ("fwd", "fwdbwd")}
    lines = ["| workload | peer | forward speed-up | forward+backward speed-up |", "|---|---|---|---|"]
    for w, fw in rounds.items():
        if "nirjax" not in fw:
            continue
        for peer in fw:
            if peer == "nirjax":
                continue
            lines.append(f"| {w} | {peer} | {_range(ratio_stats(fw, peer, 'fwd'))} | "
                         f"{_range(ratio_stats(fw, peer, 'fwdbwd'))} |")
    return "\n".join(lines)


def readme_table(results: list, wmeta: dict) -> str:
    """The table for the README's Speed section (docs/README_speed_section.md)."""
    by = {(r["workload"], r["framework"]): r for r in results if r.get("status") == "ok"}
    rounds = {}
    for (w, f), r in by.items():
        rounds.setdefault(w, {})[f] = {p: _round_values(r, p) for p in ("fwd", "fwdbwd")}
    lines = ["| workload | T x B | nirjax fwd / fwd+bwd [ms] | Spyx fwd / fwd+bwd [ms] | "
             "speed-up vs Spyx fwd / fwd+bwd | speed-up vs Norse fwd | speed-up vs snnTorch fwd |",
             "|---|---|---|---|---|---|---|"]

    def ms(w, f):
        r = by.get((w, f))
        if not r:
            return "n/a"
        fb = (r.get("fwdbwd") or {}).get("median")
        return f"{1e3 * r['fwd']['median']:.3g} / " + (f"{1e3 * fb:.3g}" if fb else "n/a")

    def sp(w, peer, phase):
        st = ratio_stats(rounds.get(w, {}), peer, phase)
        return f"{st['median']:.2f}x ({st['min']:.2f}-{st['max']:.2f})" if st else "n/a"

    for w in rounds:
        if (w, "nirjax") not in by:
            continue
        m = wmeta.get(w, {})
        lines.append(f"| {w} | {m.get('steps')} x {m.get('batch')} | {ms(w, 'nirjax')} | {ms(w, 'spyx')} | "
                     f"{sp(w, 'spyx', 'fwd')} / {sp(w, 'spyx', 'fwdbwd')} | {sp(w, 'norse', 'fwd')} | "
                     f"{sp(w, 'snntorch', 'fwd')} |")
    return "\n".join(lines)


def plot(rows: list, compile_rows: list, path: pathlib.Path, title: str) -> bool:
    """Bar charts of forward and forward+backward time, W5 scaling and compile vs T."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    frameworks = [f for f in FRAMEWORKS if any(r["framework"] == f for r in rows)]
    names = list(dict.fromkeys(r["workload"] for r in rows))
    colors = {"nirjax": "#d62728", "spyx": "#1f77b4", "spyx01": "#17becf", "norse": "#2ca02c",
              "snntorch": "#ff7f0e", "snntorch-rnnfix": "#ffbb78"}
    by = {(r["workload"], r["framework"]): r for r in rows}
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    width = 0.8 / max(len(frameworks), 1)
    for ax, key, label in ((axes[0, 0], "fwd_ms", "forward"),
                           (axes[0, 1], "fwdbwd_ms", "forward + backward")):
        for i, f in enumerate(frameworks):
            xs, ys, lo, hi = [], [], [], []
            for j, n in enumerate(names):
                r = by.get((n, f), {})
                v = r.get(key)
                if v:
                    xs.append(j + (i - (len(frameworks) - 1) / 2) * width)
                    ys.append(v)
                    lo.append(v - (r.get(key.replace("_ms", "_min_ms")) or v))
                    hi.append((r.get(key.replace("_ms", "_max_ms")) or v) - v)
            # bars: median over the interleaved rounds; whiskers: their min-max
            ax.bar(xs, ys, width, label=f, color=colors.get(f), yerr=[lo, hi], capsize=2)
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30)
        ax.set_ylabel("time per batch [ms] (median; lower is better)")
        ax.set_title(label)
        ax.legend(fontsize=8)
    ax = axes[1, 0]
    w5 = [n for n in names if n.startswith("W5-")]
    for f in frameworks:
        pts = [(int(n.split("-")[1]), by[(n, f)]["sample_steps_per_s"]) for n in w5
               if by.get((n, f), {}).get("sample_steps_per_s")]
        if pts:
            ax.plot(*zip(*pts), "o-", label=f, color=colors.get(f))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("N (W5: Linear NxN + LIF, T=500, B=16)")
    ax.set_ylabel("forward sample-steps / s")
    ax.set_title("W5 scaling")
    if w5:
        ax.legend(fontsize=8)
    ax = axes[1, 1]
    for n in dict.fromkeys(c["workload"] for c in compile_rows):
        pts = sorted((c["T"], c["total_s"]) for c in compile_rows if c["workload"] == n)
        ax.plot(*zip(*pts), "o-", label=n)
    ax.set_xscale("log")
    ax.set_xlabel("T (time steps)")
    ax.set_ylabel("nirjax trace + compile [s]")
    ax.set_ylim(bottom=0)
    ax.set_title("nirjax compile time vs T (forward)")
    if compile_rows:
        ax.legend(fontsize=8)
    fig.suptitle(title + "\nbars: median over interleaved rounds, whiskers: min-max")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def machine(results: list, args, started: str, load: tuple) -> str:
    """A Markdown description of the machine and software the run used."""
    lscpu = _sh("lscpu")
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                  if line.startswith("Model name")), platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in lscpu.splitlines()
                  if line.startswith("Flags")), [])
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    mem = next((line for line in _sh("cat /proc/meminfo").splitlines()
                if line.startswith("MemTotal")), "")
    os_name = next((line.split("=", 1)[1].strip('"') for line in
                    _sh("cat /etc/os-release").splitlines() if line.startswith("PRETTY_NAME")),
                   platform.platform())
    versions = {}
    gemm = {}
    for r in results:
        if r.get("versions"):
            versions.setdefault(r["framework"], (r.get("python"), r["versions"],
                                                 r.get("python_path")))
        if r.get("gemm_gflops"):
            gemm.setdefault(r["framework"], []).append(r["gemm_gflops"])
    commit = _sh(f"git -C {shlex.quote(str(HERE.parent))} rev-parse --short HEAD")
    dirty = _sh(f"git -C {shlex.quote(str(HERE.parent))} status --porcelain -- nirjax kernels")
    lines = [
        "# Machine and software of the speed benchmark", "",
        f"* date: {started} (UTC)",
        f"* CPU: {model}; {os.cpu_count()} logical CPUs "
        f"({_sh('nproc')} usable); SIMD: {', '.join(simd) or '?'}",
        f"* memory: {mem.split(':', 1)[1].strip() if mem else '?'}",
        f"* OS: {os_name}, kernel {platform.release()}",
        f"* load average at start / end: {load[0]} / {load[1]}",
        f"* nirjax commit: {commit}{' (with uncommitted changes in nirjax/ or kernels/)' if dirty else ''}",
        f"* command: `python benchmarks/speed.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`",
        "", "## Software per framework (each ran in its own process)", "",
        "| framework | python | packages | interpreter |", "|---|---|---|---|",
    ]
    for f, (py, ver, path) in versions.items():
        lines.append(f"| {f} | {py} | {', '.join(f'{k} {v}' for k, v in ver.items())} | `{path}` |")
    lines += ["", "## float32 GEMM measured in each process (GFLOP/s, median over the workloads)",
              "", f"n = {args.gemm_n}: `jnp.dot` for the JAX frameworks, `torch.mm` for torch.", ""]
    for f, vals in gemm.items():
        vals = sorted(vals)
        lines.append(f"* {f}: {vals[len(vals) // 2]:.1f} (min {vals[0]:.1f}, max {vals[-1]:.1f})")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small T, few repeats, small GEMM (a smoke run, not a measurement)")
    p.add_argument("--workloads", help="comma list: W1,W2,W3,W4,W5 (default sizes) or W5-N")
    p.add_argument("--frameworks", default=",".join(DEFAULT_FRAMEWORKS),
                   help=f"comma list of {', '.join(FRAMEWORKS)}")
    for f in FRAMEWORKS:
        p.add_argument(f"--python-{f}", dest=f"python_{f.replace('-', '_')}", metavar="PATH",
                       help=f"Python interpreter of the {f} environment")
    p.add_argument("--nirjax-opt", action="append", metavar="KEY=VALUE",
                   help="keyword argument for nirjax.compile (repeatable), e.g. unroll=4")
    p.add_argument("--steps", type=int, help="override T of every workload")
    p.add_argument("--batch", type=int, help="override B of every workload")
    p.add_argument("--no-backward", action="store_true", help="skip forward+backward")
    p.add_argument("--min-repeats", type=int)
    p.add_argument("--max-repeats", type=int)
    p.add_argument("--min-time", type=float, help="seconds of steady-state calls per measurement")
    p.add_argument("--compile-T", default=None, help="T values for nirjax's compile/memory vs T")
    p.add_argument("--gemm-n", type=int)
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds per workload and phase (default 7; 2 with --quick; "
                        "0: one process per framework after the other, no rounds)")
    p.add_argument("--round-time", type=float, default=None,
                   help="seconds of calls per framework and round (default 1; 0 with --quick: "
                        "one call)")
    p.add_argument("--pause", type=float, default=None,
                   help="seconds between two frameworks' turns in a round (default 0.5; 0.1 "
                        "with --quick)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per framework process")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each process, wait up to SECONDS until other processes use "
                        "< 15 %% of the CPUs (a shared machine disturbs timings)")
    p.add_argument("--retries", type=int, default=0,
                   help="re-run a measurement up to this many times while other processes "
                        "used more than --max-other-load of the CPUs; the least disturbed "
                        "run is kept")
    p.add_argument("--max-other-load", type=float, default=0.1,
                   help="fraction of the CPUs other processes may use during a measurement "
                        "before --retries re-runs it (default 0.1)")
    p.add_argument("--threads", type=int, default=0,
                   help="run every framework on this many CPUs (affinity mask, OpenMP/MKL and "
                        "torch threads); 0 (default) keeps each framework's own default")
    p.add_argument("--out-dir", default=str(HERE / "results"))
    p.add_argument("--graphs-dir", default=str(HERE / "graphs"),
                   help="where the generated .nir files and inputs go (not committed)")
    p.add_argument("--name", help="results file stem (default speed_cpu, or speed_cpu_quick)")
    p.add_argument("--update", action="store_true",
                   help="merge into the existing <name>.json: re-measure only the given "
                        "workloads x frameworks and keep every other result")
    args = p.parse_args(argv)

    names = wl.parse_names(args.workloads, args.quick)
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for f in frameworks:
        if f not in FRAMEWORKS:
            raise SystemExit(f"unknown framework {f!r}; known: {', '.join(FRAMEWORKS)}")
    opts = parse_opt(args.nirjax_opt)
    quick = args.quick
    name = args.name or ("speed_cpu_quick" if quick else "speed_cpu")
    if args.rounds is None:
        args.rounds = 2 if quick else 7
    if args.pause is None:
        args.pause = 0.1 if quick else 0.5
    if args.round_time is None:
        args.round_time = 0.0 if quick else 1.0
    min_repeats = args.min_repeats or (2 if quick else 5)
    max_repeats = args.max_repeats or (3 if quick else 30)
    min_time = args.min_time if args.min_time is not None else (0.0 if quick else 3.0)
    gemm_n = args.gemm_n or (512 if quick else 2048)
    args.gemm_n = gemm_n
    compile_T = ([int(t) for t in args.compile_T.split(",")] if args.compile_T
                 else ([100, 1000] if quick else [100, 1000, 10000]))
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graphs = pathlib.Path(args.graphs_dir)
    workdir = graphs / "runs"
    workdir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load_start = " ".join(f"{v:.2f}" for v in os.getloadavg())

    pythons = {f: find_python(f, args) for f in frameworks}
    results, rows, compile_rows = [], [], []
    wmeta = {}
    for wname in names:
        w = wl.WORKLOADS[wname]
        steps = args.steps or (max(20, w.steps // 5) if quick else w.steps)
        batch = args.batch or (min(w.batch, 8) if quick else w.batch)
        nir_path, x_path = wl.build(w, graphs, steps, batch)
        flops, per_node = matmul_flops(nir_path, w.dt)
        meta = {"workload": wname, "description": w.description, "nir_path": str(nir_path),
                "input_path": str(x_path), "dt": w.dt, "steps": steps, "batch": batch,
                "input_rate": w.input_rate, "flops_per_sample_step": flops,
                "min_repeats": min_repeats, "max_repeats": max_repeats, "min_time": min_time,
                "gemm_n": gemm_n, "backward": not args.no_backward, "threads": args.threads}
        wmeta[wname] = meta
        if args.rounds > 0:
            r_list = run_workload_interleaved(wname, frameworks, pythons, meta, opts, compile_T,
                                              w, workdir, args)
        else:
            r_list = [run_workload_sequential(wname, f, pythons[f], meta, opts, compile_T, w,
                                              workdir, args) for f in frameworks]
        for res in r_list:
            results.append(res)
            r = row(res, meta)
            rows.append(r)
            if res["status"] == "ok":
                print(f"[{wname}] {res['framework']:9s} fwd {r['fwd_ms']:.1f} ms"
                      + (f", fwd+bwd {r['fwdbwd_ms']:.1f} ms" if r.get("fwdbwd_ms") else "")
                      + f", rates {r['rates']}", flush=True)
                if r.get("reason"):
                    print(f"    {r['reason'][:160]}")
            else:
                print(f"[{wname}] {res['framework']:9s} n/a: {res.get('reason', '')[:160]}", flush=True)
            compile_rows += _compile_rows([res])
    load_end = " ".join(f"{v:.2f}" for v in os.getloadavg())
    old_json = out_dir / f"{name}.json"
    if args.update and old_json.exists():
        old = json.loads(old_json.read_text())
        fresh = {(r["workload"], r["framework"]) for r in results}
        kept = [r for r in old["results"] if (r["workload"], r["framework"]) not in fresh]
        for r in kept:
            r.setdefault("started", old.get("started"))
        merged_meta = dict(old.get("workloads", {}), **wmeta)
        order = list(dict.fromkeys(list(old.get("workloads", {})) + list(wmeta)))
        fw_order = list(FRAMEWORKS)
        results = sorted(kept + results, key=lambda r: (order.index(r["workload"]),
                                                        fw_order.index(r["framework"])))
        wmeta = {k: merged_meta[k] for k in order}
        rows = [row(r, wmeta[r["workload"]]) for r in results]
        compile_rows = [c for c in _compile_rows(results)]
        frameworks = list(dict.fromkeys(r["framework"] for r in results))
        started = f"{old.get('started')} (updated {started})"

    # ------------------------------------------------------------------ write everything
    with open(out_dir / f"{name}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    if compile_rows:
        with open(out_dir / f"{name}_compile.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, list(compile_rows[0]))
            writer.writeheader()
            for r in compile_rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    (out_dir / f"{name}.json").write_text(json.dumps(
        {"started": started, "argv": sys.argv[1:], "workloads": wmeta, "results": results},
        indent=1, default=float))
    machine_md = machine(results, args, started, (load_start, load_end))
    (out_dir / ("machine.md" if name == "speed_cpu" else f"{name}_machine.md")).write_text(machine_md)

    main_fields = ["workload", "framework", "fwd_ms", "fwdbwd_ms", "sample_steps_per_s",
                   "fwd_compile_s", "fwdbwd_compile_s", "process_peak_rss_mb",
                   "fwd_phase_rss_mb", "fwdbwd_phase_rss_mb", "xla_fwd_temp_mb",
                   "xla_fwdbwd_temp_mb", "fwd_gflops", "gemm_gflops", "fwd_frac_gemm"]
    main_headers = ["workload", "framework", "forward [ms]", "fwd+bwd [ms]",
                    "sample-steps/s", "compile fwd [s]", "compile fwd+bwd [s]",
                    "process peak RSS [MB]", "RSS growth fwd [MB]", "RSS growth fwd+bwd [MB]",
                    "XLA temp fwd [MB]", "XLA temp fwd+bwd [MB]", "GFLOP/s",
                    "GEMM peak GFLOP/s", "fraction of GEMM"]
    ok = [r for r in rows if r["status"] == "ok"]
    na = [r for r in rows if r["status"] != "ok" or r.get("reason")]
    goal_rows = goals(results, wmeta)
    md = [f"# Speed benchmark ({name}, {started} UTC)", "",
          "Medians over interleaved rounds (see below) after each framework's compiling/warm-up "
          "calls; see the machine description for the load.",
          "", summary_table(rows, frameworks), "", table(ok, main_fields, main_headers), ""]
    spread = [dict(r, fwd_spread=f"{r['fwd_min_ms']:.3g}-{r['fwd_max_ms']:.3g} (n={r['fwd_n']})",
                   fb_spread=(f"{r['fwdbwd_min_ms']:.3g}-{r['fwdbwd_max_ms']:.3g} (n={r['fwdbwd_n']})"
                              if r.get("fwdbwd_ms") else "-"),
                   load=f"{100 * (r.get('foreign_cpu') or 0):.0f} %") for r in ok]
    md += ["## Spread and spike rates", "",
           table(spread, ["workload", "framework", "fwd_spread", "fb_spread", "load", "rates"],
                 ["workload", "framework", "forward min-max [ms]", "fwd+bwd min-max [ms]",
                  "other processes' CPU use", "spike rate per spiking layer"]), ""]
    if na:
        md += ["## Not applicable (the framework could not import or run the workload)", "", table(na, ["workload", "framework", "reason"],
                                               ["workload", "framework", "reason"]), ""]
    if compile_rows:
        md += ["## nirjax compile time and XLA memory vs T (forward, ahead-of-time)", "",
               table(compile_rows, ["workload", "T", "lower_s", "compile_s", "total_s", "temp_mb",
                                    "out_mb"],
                     ["workload", "T", "trace+lower [s]", "XLA compile [s]", "total [s]",
                      "XLA temp [MB]", "outputs [MB]"]), ""]
    interleaved = any(r.get("rounds") for r in results)
    if interleaved:
        md += ["## Interleaved rounds", "",
               "Each framework ran in its own persistent process; the harness alternated them "
               "round by round (A B A B ...), so every framework saw the same machine load. A "
               "round's time is the median of its calls; the table gives the median, the "
               "quartiles and the range over the rounds.", "", rounds_table(results), "",
               "## nirjax's speed-up (per-round ratios peer time / nirjax time: median and range)",
               "", ratio_table(results), ""]
    if goal_rows:
        md += ["## Goals (issue 13, CPU)", "",
               "met: every round meets the goal; not met: no round does; within noise: some do.",
               "", "| goal | measured | verdict |", "|---|---|---|"]
        md += [f"| {g} | {m} | {v} |" for g, m, v in goal_rows]
        md.append("")
    readme = readme_table(results, wmeta)
    md += ["## Table for the README (docs/README_speed_section.md)", "",
           f"Measured {started} UTC; load average at start / end {load_start} / {load_end}.", "",
           readme, ""]
    (out_dir / f"{name}.md").write_text("\n".join(md))
    cpu = machine_md.splitlines()[3].split(":", 1)[1].split(";")[0].strip()
    plotted = plot(rows, compile_rows, out_dir / f"{name}.png",
                   f"Same NIR graph and input in each framework: {cpu}, {os.cpu_count()} CPUs, {started} UTC")
    print()
    print("\n".join(md))
    print(f"\nwrote {out_dir / (name + '.csv')}, {name}.md, {name}.json"
          + (f", {name}.png" if plotted else " (no matplotlib: pip install -e '.[bench]' for the plot)"))
    return rows


if __name__ == "__main__":
    main()
