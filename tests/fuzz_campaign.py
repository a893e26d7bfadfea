"""The fuzz campaign: run N seeded cases per surface and print the outcome classes.

Usage::

    python tests/fuzz_campaign.py --cases 3000 --seed 1 [--surfaces file,graph,...]
        [--timeout 60] [--memory-gb 8] [--show 20] [--json out.json] [--log out.jsonl]

Each case (see ``tests/fuzzlib.py``) runs in a worker process with an address-space limit
(``--memory-gb``) and a wall-clock limit per case (``--timeout``): a case that runs past it
is a ``hang`` (the worker is killed and replaced), a worker that dies is a ``crash``. The
report counts, per surface, the cases that ended in a correct result (``ok``), a clean
``NirjaxError`` (``clean``), and everything else: ``bare`` exceptions, ``accepted`` bad
input, ``wrong`` answers, ``destroyed`` files, ``hang`` and ``crash``. Cases the generator
could not build are ``skip`` and not counted.

The goal (issue 12): at most 0.5 % non-clean, none of them a hang, crash, destroyed file or
changed answer after a round trip.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import select
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).parent
BAD = ("bare", "accepted", "wrong", "destroyed", "hang", "crash")

WORKER = r"""
import json, os, resource, sys, pathlib
limit = int(sys.argv[2]) << 30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
sys.path.insert(0, sys.argv[1])
import fuzzlib
workdir = pathlib.Path(sys.argv[3])
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    surface, seed = json.loads(line)
    outcome, detail = fuzzlib.classify(surface, seed, workdir)
    print(json.dumps([outcome, detail]), flush=True)
"""


class Worker:
    """A worker process running cases one at a time."""

    def __init__(self, memory_gb: int, workdir: pathlib.Path):
        env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"),
                   OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(HERE), str(memory_gb), str(workdir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=env, bufsize=1)
        self.cases = 0
        line = self._read(300)
        if line is None or "ready" not in line:
            raise RuntimeError("the fuzz worker did not start")

    def _read(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline()

    def run(self, surface, seed, timeout):
        self.proc.stdin.write(json.dumps([surface, seed]) + "\n")
        self.proc.stdin.flush()
        line = self._read(timeout)
        if line is None:
            self.kill()
            return "hang", f"no answer within {timeout} s"
        if not line:
            code = self.proc.wait()
            return "crash", f"worker exited with {code}"
        return tuple(json.loads(line))

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=700, help="cases in all (split over surfaces)")
    ap.add_argument("--seed", type=int, default=1, help="first seed; case i uses seed + i")
    ap.add_argument("--surfaces", default=",".join(
        ["file", "graph", "value", "option", "runtime", "roundtrip", "write"]))
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    ap.add_argument("--memory-gb", type=int, default=8, help="address-space limit per worker")
    ap.add_argument("--show", type=int, default=15, help="non-clean cases to print")
    ap.add_argument("--json", help="write every outcome to this file")
    ap.add_argument("--log", help="append every outcome to this file as it happens (one JSON "
                                  "object a line), so an interrupted campaign can be counted")
    ap.add_argument("--recycle", type=int, default=100,
                    help="start a fresh worker after this many cases (bounds its memory)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import fuzzlib  # noqa: E402  (no jax import here: the parent stays light)

    surfaces = args.surfaces.split(",")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="nirjax_campaign_"))
    worker = Worker(args.memory_gb, workdir)
    counts = {s: collections.Counter() for s in surfaces}
    records = []
    log = open(args.log, "a") if args.log else None
    start = time.time()
    per = max(1, args.cases // len(surfaces))
    for i in range(per):
        for surface in surfaces:
            seed = args.seed + i
            if worker.proc.poll() is not None:
                worker = Worker(args.memory_gb, workdir)
            worker.cases += 1
            if worker.cases > args.recycle:
                worker.kill()
                worker = Worker(args.memory_gb, workdir)
                worker.cases = 1
            outcome, detail = worker.run(surface, seed, args.timeout)
            if outcome in ("hang", "crash"):
                worker = Worker(args.memory_gb, workdir)
                if outcome == "hang":  # a load spike is not a hang: retry once, longer
                    outcome, detail = worker.run(surface, seed, 3 * args.timeout)
                    if outcome == "hang":
                        worker = Worker(args.memory_gb, workdir)
                    else:
                        detail = f"(answered on a retry after a {args.timeout:g} s timeout) {detail}"
            counts[surface][outcome] += 1
            records.append({"surface": surface, "seed": seed, "outcome": outcome,
                            "detail": detail})
            if log is not None:
                log.write(json.dumps(records[-1]) + "\n")
                log.flush()
        if (i + 1) % 10 == 0:
            done = sum(sum(c.values()) for c in counts.values())
            print(f"... {done} cases, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    worker.kill()
    if log is not None:
        log.close()

    total = collections.Counter()
    print(f"{'surface':<10} " + " ".join(f"{k:>9}" for k in
                                        ("cases", "ok", "clean", "skip") + BAD))
    for s in surfaces:
        c = counts[s]
        total.update(c)
        print(f"{s:<10} " + " ".join(f"{v:>9}" for v in (
            sum(c.values()) - c["skip"], c["ok"], c["clean"], c["skip"]) +
            tuple(c[k] for k in BAD)))
    counted = sum(total.values()) - total["skip"]
    bad = sum(total[k] for k in BAD)
    print(f"\n{counted} cases counted, {bad} non-clean ({100 * bad / max(counted, 1):.2f} %); "
          f"{time.time() - start:.0f} s")
    shown = 0
    for r in records:
        if r["outcome"] in BAD and shown < args.show:
            print(f"  {r['surface']}:{r['seed']} {r['outcome']}: {r['detail'][:240]}")
            shown += 1
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(records, indent=1))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
