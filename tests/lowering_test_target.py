"""A tiny integer target for testing the lowering core (``nirjax.lower`` / ``Lowered``).

Target ``"test-int"`` (family ``"test"``): graphs of Input, Linear, IF and Output nodes.

* Linear: weights rounded to integers ``round(scale * W)`` (8-bit: ``|w| <= 127``, else a
  violation); the integer rule is ``y = W_int @ x`` in int32.
* IF: ``v' = v + x``; spike ``z = v' > theta`` with ``theta = floor(scale * v_threshold)``
  (so that for integer ``v`` the test equals the float ``v > scale * v_threshold``);
  ``v = 0`` on a spike. The float IF integrates ``dt * r * x``: ``dt * r`` must be 1 (else a
  warning: the chip's gain is 1). ``v_reset`` must be 0 (else a violation).

It exists only to exercise the core; its rules are written here from scratch.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import nir
import numpy as np

from nirjax.lowering import (LoweringResult, MappingRecord, QuantizationRecord, Violation,
                             collapse_ports, raise_violations, rebind_program,
                             register_target, resource)
from nirjax.rules import FLOAT, Rule, RuleTable, register_table

NAME = "test-int"
MAX_W = 127


class IntWeight(NamedTuple):
    weight: np.ndarray


class IntIFParams(NamedTuple):
    threshold: np.ndarray


class IntIFState(NamedTuple):
    v: jnp.ndarray


def _none(*args):
    return None


def _if_step(coeffs, state, x, cfg):
    v = state.v + x
    z = (v > coeffs.threshold).astype(jnp.int32)
    return IntIFState(jnp.where(z > 0, 0, v)), z


TABLE = register_table(RuleTable(NAME, {
    "Input": FLOAT["Input"],
    "Output": FLOAT["Output"],
    "Linear": Rule(params=lambda name, node: None, config=_none,
                   apply=lambda c, x, cfg: jnp.dot(c.weight, x)),
    "IF": Rule(params=lambda name, node: None, config=_none,
               init_state=lambda p, cfg, shape, dtype: IntIFState(jnp.zeros(shape, jnp.int32)),
               step=_if_step, spiking=True),
}, dtype=np.int32, doc="test integer Linear + IF"))


def lower_test(program, params, options):
    scale = float(options.get("scale", 1.0))
    nodes, edges = collapse_ports(program)
    violations, warnings, quant, mapping, ints, res = [], [], [], [], {}, {}
    for name, n in nodes.items():
        if n.type_name not in TABLE:
            violations.append(Violation(name, "node_type", "Input, Linear, IF, Output",
                                        n.type_name, f"{n.type_name} is not supported"))
            continue
        p = params.get(name)
        if n.type_name == "Linear":
            w = np.round(scale * p.weight)
            if np.max(np.abs(w)) > MAX_W:
                violations.append(Violation(name, "weight_range", MAX_W,
                                            int(np.max(np.abs(w))),
                                            f"|weight| up to {int(np.max(np.abs(w)))}, the "
                                            f"chip has {MAX_W}"))
            err = float(np.max(np.abs(w / scale - p.weight)))
            quant.append(QuantizationRecord(name, "weight", scale,
                                            float(np.max(np.abs(p.weight))), err,
                                            err / max(float(np.max(np.abs(p.weight))), 1e-30)))
            if err > 0:
                warnings.append(Violation(name, "weight_rounding", 0, err,
                                          f"weights rounded by up to {err:g}", "warning"))
            ints[name] = IntWeight(w.astype(np.int32))
            res[name] = {"weights": resource(np.count_nonzero(w), 4096)}
        elif n.type_name == "IF":
            if np.any(p.v_reset != 0):
                violations.append(Violation(name, "v_reset", 0, float(np.max(p.v_reset))))
            gain = float(np.max(np.abs(p.r * program.dt - 1)))
            if gain > 1e-9:
                warnings.append(Violation(name, "gain", 1.0, gain,
                                          f"r*dt differs from 1 by {gain:g}", "warning"))
            theta = np.floor(scale * p.v_threshold)
            ints[name] = IntIFParams(theta.astype(np.int32))
            res[name] = {"neurons": resource(n.out_shape[0], 64)}
        mapping.append(MappingRecord(name, n.type_name, "core 0", name))
    raise_violations(NAME, violations)
    integer = rebind_program(program, TABLE, params=ints)
    total = {"neurons": resource(sum(r["neurons"]["used"] for r in res.values()
                                     if "neurons" in r), 64)}
    res["total"] = total

    def export(path):
        np.savez(path, **{k: np.asarray(v[0]) for k, v in ints.items()})

    def to_nir():
        out = {}
        for name, n in nodes.items():
            if n.type_name == "Linear":
                out[name] = nir.Linear(weight=ints[name].weight.astype(float))
            elif n.type_name == "IF":
                size = n.out_shape[0]
                out[name] = nir.IF(r=np.full(size, 1.0 / program.dt),
                                   v_threshold=ints[name].threshold.astype(float) + 0.5,
                                   v_reset=np.zeros(size))
            else:
                out[name] = n.source
        return nir.NIRGraph(nodes=out, edges=list(edges))

    return LoweringResult(
        program=integer, resources=res, quantization=quant, mapping=mapping, export=export,
        to_nir=to_nir, record_names={name: (name, None) for name in nodes},
        notes=["test target"], warnings=warnings, input_range=(0, 3))


TARGET = register_target(NAME, lower_test, family="test", doc="a test integer target",
                         options={"scale": "integer units per float unit"})
