"""Simulate a graph under several platform profiles and show where their spikes diverge.

The first profile is the reference. For each other profile: its output spikes, the share of
compared values (every spiking node and Output node, every step and sample) identical to the
reference's, and the first divergence (step, node, sample, neuron). --plot draws the spikes
of every compared node against the reference's, with the first divergence marked.

examples:
  nirjax compare braille_bias_zero --profiles nir,snntorch,lava
  nirjax compare model.nir --dt 1e-4 --profiles nir,snntorch,lava --input spikes.npy --plot div.png
"""

from __future__ import annotations

import json

from . import _common as c


def add_arguments(parser) -> None:
    """The options of ``nirjax compare``."""
    c.add_graph_argument(parser)
    parser.add_argument("--profiles", "-p", default="nir,exact", metavar="P1,P2,...",
                        help="comma-separated profiles, the reference first (default nir,exact; "
                             "see nirjax.PROFILES)")
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="draw where the spikes diverge (needs matplotlib)")
    parser.add_argument("--sample", type=int, default=None,
                        help="the sample --plot draws (default: that of the first divergence)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_quiet_arguments(parser)
    c.add_input_arguments(parser)


def _report_json(report) -> dict:
    out = {"reference": report.reference, "steps": report.steps, "batch": report.batch,
           "nodes": list(report.nodes), "profiles": {}}
    for p in report.profiles:
        d = None if p == report.reference else report.divergence(p)
        out["profiles"][p] = {
            "output_spikes": report.spike_count(p),
            "identical": 1.0 if p == report.reference else report.agreement(p),
            "first_divergence": None if d is None else {
                "step": d.step, "node": d.node, "sample": d.sample, "index": list(d.index),
                "reference_value": d.reference_value, "value": d.value, "nodes": list(d.nodes)},
        }
    return out


def run(args) -> int:
    """Run ``nirjax compare``; returns the exit status."""
    import nirjax

    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if len(profiles) < 2:
        raise nirjax.SemanticsError(f"--profiles {args.profiles!r}: give at least two profiles, "
                                    f"e.g. nir,snntorch")
    unknown = [p for p in profiles if p not in nirjax.PROFILES]
    if unknown:
        raise nirjax.SemanticsError(f"--profiles: unknown profile {unknown[0]!r}; known: "
                                    f"{', '.join(sorted(nirjax.PROFILES))}")
    loaded = c.load_graph(args.graph)
    plot_path = c.check_plot_path(args.plot) if args.plot else None
    dt = c.resolve_dt(args, loaded)
    model = c.compile_model(loaded, dt, profiles[0])
    xs, info = c.load_input(args, model)
    report = nirjax.compare(loaded.graph, xs, dt=dt, profiles=profiles)
    if args.json:
        print(json.dumps(_report_json(report), indent=2))
    else:
        if not args.quiet:
            for text in loaded.notes:
                c.note(text)
        print(f"{loaded.path}: dt = {model.program.dt:g}")
        for line in c.describe_input(xs, info):
            print(line)
        print(report.table())
    if plot_path is not None:
        from .. import plot

        fig = plot.divergence(report, sample=args.sample, dt=float(model.program.dt),
                              title=f"{loaded.path.name}: where the profiles' spikes diverge")
        try:
            fig.savefig(plot_path, dpi=100)
        except (OSError, ValueError) as exc:
            raise nirjax.InputError(f"--plot {str(plot_path)!r}: cannot write it ({exc})") from None
        if not args.json:
            print(f"wrote {plot_path}")
    return 0
