"""The compiler: a NIR graph -> an ordered, typed :class:`Program` -> one jitted scan.

* :mod:`nirjax.compiler.program`: :class:`Program` and :func:`build_program` (flatten,
  validate, infer shapes, bind each node to its rule, order);
* :mod:`nirjax.compiler.passes`: passes over the flattened graph (the graph-level semantics
  of the platform profiles);
* :mod:`nirjax.compiler.schedule`: the staged program (stateless projections applied to whole
  chunks of steps, loops only where there is state);
* :mod:`nirjax.compiler.scan_vjp`: the recompute VJP of every time loop;
* :mod:`nirjax.compiler.options`: :class:`CompileOptions`, every compile option, typed and
  validated;
* :mod:`nirjax.compiler.interpreter`: :class:`Interpreter`, one step of the graph (the
  ``eval_jaxpr``-like walk over the ordered IR; the fan-in sum) and :class:`GraphState`;
* :mod:`nirjax.compiler.loops`: :class:`Loops`, the drivers over time (plain scan, staged
  chunks, the outer chunk loop, one step);
* :mod:`nirjax.compiler.validation`: checks of parameters (the cast to the compute dtype),
  inputs, params, state and records;
* :mod:`nirjax.compiler.memory`: the memory a program needs, estimated from shapes and
  checked against ``nirjax.limits()``;
* :mod:`nirjax.compiler.compiled`: :class:`CompiledGraph`, the facade a user holds, and
  :func:`compile_graph`;
* :mod:`nirjax.compiler.sharding`: the layout of a run on a mesh of devices (the
  ``mesh`` compile option: ``"batch"`` and ``"neurons"`` axes);
* :mod:`nirjax.compiler.distributed`: multi-process runs (``jax.distributed``), meshes and
  per-process data (``nirjax.distributed``).

The compiler takes ``nir.NIRGraph`` objects; reading files is :mod:`nirjax.io`'s job, and
:func:`nirjax.compile` (in :mod:`nirjax.api`) accepts either.
"""

from . import distributed, sharding
from .compiled import CompiledGraph, compile_graph
from .interpreter import GraphState, Interpreter
from .loops import Loops
from .options import CompileOptions
from .memory import MemoryEstimate, check_memory, estimate_memory
from .validation import check_inputs, check_params, check_record, check_state
from .program import IREdge, IRNode, Program, build_program

__all__ = ["distributed", "sharding", "CompiledGraph", "GraphState", "compile_graph",
           "check_record", "check_inputs", "check_state", "check_params", "MemoryEstimate",
           "estimate_memory", "check_memory", "CompileOptions", "Interpreter", "Loops", "Program",
           "IRNode", "IREdge", "build_program"]
