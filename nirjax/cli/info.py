"""Print what nirjax makes of a graph: node order, types, shapes, delayed edges.

--json prints the same as one JSON object (file, SHA-256, NIR file version, dt, semantics,
inputs and outputs with their shapes, every node with its type, shapes, state fields and
parameter count, every edge with whether it is delayed).

examples:
  nirjax info braille_bias_zero
  nirjax info model.nir --dt 1e-4 --json
"""

from __future__ import annotations

import json

import numpy as np

from . import _common as c


def add_arguments(parser) -> None:
    """The options of ``nirjax info``."""
    c.add_graph_argument(parser)
    parser.add_argument("--semantics", "-s", default="nir", metavar="P",
                        help="platform profile or semantics (default: nir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _state_fields(model, node) -> list:
    if not node.stateful:
        return []
    state = model.init_state(1).nodes.get(node.name)
    return list(getattr(state, "_fields", ())) if state is not None else []


def _n_params(model, name: str) -> int:
    import jax

    p = model.params.get(name) if isinstance(model.params, dict) else None
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(p))) if p is not None else 0


def describe(loaded, model) -> dict:
    """The JSON description of a compiled graph."""
    import nirjax

    program = model.program
    return {
        "file": str(loaded.path),
        "sha256": loaded.sha256,
        "nir_file_version": nirjax.file_version(loaded.graph),
        "dt": float(program.dt),
        "semantics": program.semantics.name,
        "inputs": {n: list(s) for n, s in model.input_shapes.items()},
        "outputs": {n: list(s) for n, s in model.output_shapes.items()},
        "nodes": [
            {"name": n.name, "type": n.type_name, "role": n.role,
             "in_shape": list(n.in_shape), "out_shape": list(n.out_shape),
             "spiking": bool(n.rule.spiking), "state": _state_fields(model, n),
             "parameters": _n_params(model, n.name)}
            for n in program.nodes
        ],
        "edges": [{"src": e.src, "dst": e.dst, "delayed": bool(e.delayed)} for e in program.edges],
        "parameters": sum(_n_params(model, n.name) for n in program.nodes),
        "notes": list(loaded.notes),
    }


def run(args) -> int:
    """Run ``nirjax info``; returns the exit status."""
    loaded = c.load_graph(args.graph)
    model = c.compile_model(loaded, c.resolve_dt(args, loaded), args.semantics)
    if args.json:
        print(json.dumps(describe(loaded, model), indent=2))
        return 0
    for text in loaded.notes:
        c.note(text)
    print(model.program.describe())
    delayed = model.program.delayed_edges
    print("delayed (cycle-closing) edges: "
          + (", ".join(f"{e.src} -> {e.dst}" for e in delayed) or "none"))
    shapes = lambda d: ", ".join(f"{n} {tuple(s)}" for n, s in d.items())
    print(f"inputs: {shapes(model.input_shapes)}; outputs: {shapes(model.output_shapes)}")
    total = sum(_n_params(model, n.name) for n in model.program.nodes)
    print(f"parameters: {total:,}; file SHA-256 {loaded.sha256}")
    return 0
