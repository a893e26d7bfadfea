"""Compile options: one frozen, validated value.

Every option of :func:`nirjax.compile` other than the graph, ``dt``, the semantics and the
rules is a field of :class:`CompileOptions`, checked when the value is built (types first:
``True`` is not an int here, ``"1e-4"`` is not a number), so a bad option fails at compile
with an :class:`~nirjax.errors.OptionsError` naming it, never later inside a run. A new option
is one field, its check in :meth:`CompileOptions.__post_init__` and its line in the docstring.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from ..errors import OptionsError
from .sharding import check_mesh

__all__ = ["CompileOptions", "PRECISIONS"]

#: Matmul/conv precisions passed to XLA.
PRECISIONS = (None, "highest", "high", "default")


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _positive_int(name, value, allow_none=False, extra=""):
    if value is None and allow_none:
        return None
    if not (_is_int(value) and value >= 1):
        none = "None or " if allow_none else ""
        raise OptionsError(f"compile option {name}={value!r}: expected {none}a positive int{extra}"
                           f" ({type(value).__name__} given)")
    return int(value)


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise OptionsError(f"compile option {name}={value!r}: expected True or False "
                           f"({type(value).__name__} given)")
    return bool(value)


def _dtype_name(name, value):
    """The name of a floating dtype (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, (bool, numbers.Number)):
        raise OptionsError(f"compile option {name}={value!r}: expected a dtype such as "
                           f"'float32', got a {type(value).__name__}")
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise OptionsError(f"compile option {name}={value!r}: not a dtype; expected e.g. "
                           f"'float32', 'float64' or 'bfloat16'") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise OptionsError(
            f"compile option {name}={value!r}: expected a floating dtype (float32, float64, "
            f"bfloat16, float16); integer (hardware) arithmetic is not a dtype choice but a "
            f"rule table (Semantics(arithmetic=...))")
    return dtype.name


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """How a graph is compiled and run (nothing here changes what is simulated, only how).

    Args:
        dtype: floating dtype of the values, state and parameters; ``None``: float32, or
            float64 when ``jax_enable_x64`` is on. (An integer rule table computes in its
            own dtype; leave this unset then.)
        precision: matmul/conv precision passed to XLA: ``"highest"`` (default; keeps
            float32 exact on GPUs that would otherwise use TF32), ``"high"``,
            ``"default"`` or ``None``.
        checkpoint: memory for backpropagation through long runs. ``None``: keep what
            the backward pass of each loop needs for every step (with ``fast_backward``,
            one state per step; stateless projections keep their outputs for every step);
            ``"step"``: rematerialize each step in the backward pass (``jax.checkpoint`` of
            the scan body, autodiff's VJP); an int ``K``: run in chunks of ``K`` steps,
            each rematerialized in the backward pass, keeping only the state every ``K``
            steps (memory ~ ``T/K + K`` steps). Results agree in every mode up to the last
            bit (rematerialized code may be fused differently).
        unroll: steps unrolled per scan iteration (``lax.scan``'s ``unroll``), >= 1.
        optimize: run the staged program (:mod:`nirjax.compiler.schedule`: stateless
            projections applied to whole chunks of steps at once, loops only where there is
            state); ``False`` runs the plain one-scan reference program.
        chunk: steps per chunk of the staged program (default: from ``chunk_bytes``).
        chunk_bytes: memory budget of one chunk's intermediate values (default 8 MiB:
            chunks that stay in a CPU's last-level cache ran W1 of the speed benchmark
            20 % faster than 64 MiB chunks; at least 8 steps per chunk).
        matmul_dtype: ``None`` (matrix products in ``dtype``) or ``"bfloat16"``: Affine,
            Linear and Conv round their operands to bfloat16 and accumulate in ``dtype``
            (faster on accelerators with bf16 units; weights lose precision, spikes do not).
            State and neuron updates stay in ``dtype``. An explicit choice, never automatic.
        donate_state: let ``run`` reuse the memory of the ``state`` passed in (the caller
            must not use that state object again).
        pallas: run LIF layers of the staged program with the fused Pallas kernel of
            :mod:`nirjax.kernels.pallas_lif` (``True``; GPU/TPU) or in Pallas interpret mode
            (``"interpret"``, any backend, for testing). Off by default: it has not been
            measured to win on any platform available to this project.
        associative_scan: solve reset-free linear dynamics (LI, CubaLI, the synaptic current
            of CubaLIF) with a parallel prefix scan over each chunk
            (:mod:`nirjax.kernels.linear_scan`): ``O(log K)`` depth instead of ``K``
            dependent steps. Equal to the sequential update up to float rounding.
        fast_backward: differentiate every time loop with :mod:`nirjax.compiler.scan_vjp`'s
            hand-written VJP (saves one state per step and recomputes each step in the
            backward pass; the gradient of autodiff up to float rounding, 2-3x faster on
            CPU). Reverse mode only: set ``False`` for ``jax.jvp`` / ``jax.jacfwd``.
        mesh: a ``jax.sharding.Mesh`` with axes named ``"batch"`` (split the batch: data
            parallel) and/or ``"neurons"`` (split large layers: model parallel), to run over
            several devices, or processes of a ``jax.distributed`` run; ``None``: one
            device. The rules (which nodes are split, where the collectives fall) are in
            :mod:`nirjax.compiler.sharding`. Results equal those of one device up to the
            order of floating-point sums.
        shard_min: with a ``"neurons"`` axis, nodes whose output has fewer values per
            sample than this stay whole on every device (default 1024).

    Raises:
        OptionsError: naming the option, the value given and what is expected.

    >>> CompileOptions(unroll=2).unroll
    2
    >>> CompileOptions(unroll=True)
    Traceback (most recent call last):
    ...
    nirjax.errors.OptionsError: compile option unroll=True: expected a positive int (bool given)
    """

    dtype: Any = None
    precision: Any = "highest"
    checkpoint: Any = None
    unroll: int = 1
    optimize: bool = True
    chunk: Any = None
    chunk_bytes: int = 8 << 20
    matmul_dtype: Any = None
    donate_state: bool = False
    pallas: Any = False
    associative_scan: bool = False
    fast_backward: bool = True
    mesh: Any = None
    shard_min: int = 1024

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)
        put("dtype", _dtype_name("dtype", self.dtype))
        if not (self.precision is None or (isinstance(self.precision, str)
                                           and self.precision in PRECISIONS)):
            raise OptionsError(
                f"compile option precision={self.precision!r}: expected one of "
                f"{', '.join(map(repr, PRECISIONS))}")
        if self.checkpoint is not None and self.checkpoint != "step":
            put("checkpoint", _positive_int("checkpoint", self.checkpoint,
                                            extra=", None or 'step'"))
        put("unroll", _positive_int("unroll", self.unroll))
        put("chunk", _positive_int("chunk", self.chunk, allow_none=True))
        put("chunk_bytes", _positive_int("chunk_bytes", self.chunk_bytes, extra=" (bytes)"))
        put("matmul_dtype", _dtype_name("matmul_dtype", self.matmul_dtype))
        for name in ("optimize", "donate_state", "associative_scan", "fast_backward"):
            put(name, _flag(name, getattr(self, name)))
        if not (isinstance(self.pallas, (bool, np.bool_)) or self.pallas == "interpret"):
            raise OptionsError(f"compile option pallas={self.pallas!r}: expected False, True or "
                               f"'interpret'")
        if not isinstance(self.pallas, str):
            put("pallas", bool(self.pallas))
        if self.mesh is not None:
            check_mesh(self.mesh)
            if self.pallas:
                raise OptionsError("compile options mesh and pallas: the fused Pallas kernel "
                                   "does not run sharded; use pallas=False with a mesh")
        put("shard_min", _positive_int("shard_min", self.shard_min, extra=" (values per sample)"))

    @classmethod
    def of(cls, options: Any = None) -> "CompileOptions":
        """``options`` as CompileOptions: ``None`` (the defaults), a mapping of fields, or a
        CompileOptions (returned as is).

        Raises:
            OptionsError: an unknown option (the valid ones are listed) or a bad value.
        """
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if not isinstance(options, Mapping):
            raise OptionsError(f"compile options must be a CompileOptions or a mapping of "
                               f"options, got {type(options).__name__}")
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise OptionsError(
                f"unknown compile option(s) {unknown}; valid options: "
                f"{', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**options)

    def replace(self, **changes) -> "CompileOptions":
        """A copy with ``changes`` (validated)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return CompileOptions.of({**current, **changes})
