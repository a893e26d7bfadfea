"""The memory a compiled program needs, estimated from shapes before anything is allocated.

:func:`estimate_memory` adds up, per sample, the state of every stateful node (a Delay's
ring buffer included), the feedback buffers of delayed edges and every node's output for one
step; :func:`check_memory` compares that (times the batch, plus every step's outputs for a
run) with ``nirjax.limits().max_memory_bytes`` and raises a
:class:`~nirjax.errors.LimitError` naming the largest nodes. These are estimates from
shapes (``jax.eval_shape``), not measurements: XLA may need more (temporaries) or less
(buffers it reuses).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np

from ..errors import LimitError
from ..limits import format_bytes, limits
from .program import Program

__all__ = ["MemoryEstimate", "estimate_memory", "check_memory"]


class MemoryEstimate(NamedTuple):
    """Bytes a compiled program needs per sample (estimates from shapes, not measurements).

    Attributes:
        state: the state of every stateful node and the feedback buffers of delayed edges.
        step: every node's output for one step (what one step of the program holds).
        outputs: the graph's outputs for one step (``run`` returns them for every step).
        largest: ``(node, bytes)`` of the nodes needing most, largest first (at most 3).
        inputs: the graph's inputs for one step (``run`` takes them for every step, cast to
            the compute dtype).
    """

    state: int
    step: int
    outputs: int
    largest: tuple
    inputs: int = 0


def _nbytes(tree) -> int:
    return sum(math.prod(int(d) for d in leaf.shape) * np.dtype(leaf.dtype).itemsize
               for leaf in jax.tree_util.tree_leaves(tree))


def estimate_memory(program: Program, dtype) -> MemoryEstimate:
    """The state and buffer bytes of ``program`` per sample, from shapes alone.

    Args:
        program: the program.
        dtype: the dtype of its values and state.

    Returns:
        A :class:`MemoryEstimate`.
    """
    itemsize = np.dtype(dtype).itemsize
    per_node: dict = {}
    state = 0
    for n in program.nodes:
        size = math.prod(int(d) for d in n.out_shape) * itemsize
        per_node[n.name] = size
        if n.stateful:
            try:
                shapes = jax.eval_shape(lambda n=n: n.rule.init_state(n.params, n.config,
                                                                      n.out_shape, dtype))
            except Exception:  # noqa: BLE001 - a user rule: fall back to the output's size
                shapes = jax.ShapeDtypeStruct(tuple(n.out_shape), dtype)
            s = _nbytes(shapes)
            state += s
            per_node[n.name] += s
    sources = {e.src for e in program.edges if e.delayed}
    state += sum(math.prod(int(d) for d in program.node(s).out_shape) * itemsize for s in sources)
    step = sum(math.prod(int(d) for d in n.out_shape) * itemsize for n in program.nodes)
    outputs = sum(math.prod(int(d) for d in program.node(o).out_shape) * itemsize
                  for o in program.outputs)
    inputs = sum(math.prod(int(d) for d in program.node(i).out_shape) * itemsize
                 for i in program.inputs)
    largest = tuple(sorted(per_node.items(), key=lambda kv: -kv[1])[:3])
    return MemoryEstimate(state, step, outputs, largest, inputs)


def check_memory(estimate: MemoryEstimate, batch: int = 1, steps: int = 0,
                 what: str = "compiling the graph") -> None:
    """Check that ``batch`` samples (and ``steps`` steps of outputs) fit the memory limit.

    Args:
        estimate: from :func:`estimate_memory`.
        batch: samples.
        steps: steps of inputs and outputs a run takes and returns (0: none counted).
        what: how to name the operation in the message.

    Raises:
        LimitError: the estimate exceeds ``nirjax.limits().max_memory_bytes``; the message
            gives the bytes, the largest nodes and how to raise the limit.
    """
    limit = limits().max_memory_bytes
    per_step = estimate.outputs + estimate.inputs
    need = batch * (estimate.state + estimate.step) + steps * batch * per_step
    if need <= limit:
        return
    top = ", ".join(f"{name!r} {format_bytes(b)}" for name, b in estimate.largest)
    parts = [f"state {format_bytes(batch * estimate.state)}",
             f"one step's values {format_bytes(batch * estimate.step)}"]
    if steps:
        parts.append(f"{steps} steps of inputs and outputs {format_bytes(steps * batch * per_step)}")
    raise LimitError(
        f"{what} needs an estimated {format_bytes(need)} for {batch} sample(s) "
        f"({', '.join(parts)}); per sample the largest nodes are {top}. That exceeds the limit "
        f"of {format_bytes(limit)}: if the size is what you mean, raise it with "
        f"nirjax.set_limits(max_memory_bytes=...)"
    )
