"""nirjax: a JIT-compiled simulation engine for NIR graphs in JAX.

>>> import nirjax
>>> model = nirjax.compile(nirjax.example_path("braille_bias_zero"), dt=1e-4)  # doctest: +SKIP
>>> ys = model(xs)  # xs: [T, B, 12] -> ys: [T, B, 7]                             # doctest: +SKIP

The public API is re-exported here; the code lives in layers, each importing only the ones
below it (``tests/test_layers.py`` checks this)::

    errors, limits  the NirjaxError hierarchy; the size limits (nirjax.set_limits)
    kernels         numerics only: pure per-sample JAX functions (installed as nirjax.kernels)
    graph           plain-Python graph analysis: flatten, order, cycles, shapes
    semantics       Semantics and the platform profiles
    rules           the rule tables binding each NIR type to its kernel
    compiler        Program, build_program, CompiledGraph
    io              .nir files, export to nir.NIRGraph
    api, analysis,  nirjax.compile (graph or path), compare, training, lowering to chips
    train, lowering
    cli             the command line
"""

import sys as _sys

from . import kernels
from .analysis import Comparison, Divergence, compare
from .api import compile as compile
from .compiler import CompiledGraph, CompileOptions, GraphState, Program, build_program
from .compiler import distributed
from .errors import (
    GraphError,
    InputError,
    LimitError,
    LoweringError,
    LoweringWarning,
    NirFileError,
    NirjaxError,
    NirjaxWarning,
    OptionsError,
    ParameterError,
    ResetAmbiguityWarning,
    SemanticsError,
    ShapeError,
    ShapeWarning,
)
from .examples import example_path
from .io import file_version, read, read_version, to_nir, write
from .limits import Limits, limits, set_limits
from .kernels.surrogate import Surrogate
from .lowering import Lowered, lower
from .rules import Rule, register
from .semantics import PROFILES, Semantics, profiles
from . import train
from . import cost
from .cost import BenchmarkReport, benchmark
from .io.data import from_nir_data, to_nir_data
from .io import data, events
from . import plot, progress

# ``import nirjax.profiles`` keeps working: the profiles live in nirjax.semantics.profiles
_sys.modules[__name__ + ".profiles"] = profiles
# ``import nirjax.data`` / ``nirjax.events``: they live in nirjax.io
_sys.modules[__name__ + ".data"] = data
_sys.modules[__name__ + ".events"] = events
# ``import nirjax.distributed`` / ``from nirjax import distributed``: multi-process runs
_sys.modules[__name__ + ".distributed"] = distributed

__version__ = "0.1.0"

__all__ = [
    "compile", "CompiledGraph", "CompileOptions", "GraphState", "Program", "build_program",
    "read", "write", "read_version", "file_version", "to_nir", "example_path",
    "Semantics", "PROFILES", "Surrogate", "Rule", "register", "kernels", "train",
    "compare", "Comparison", "Divergence", "profiles", "cost", "benchmark", "BenchmarkReport",
    "lower", "Lowered", "to_nir_data", "from_nir_data", "data", "events", "plot", "progress",
    "distributed",
    "NirjaxError", "NirFileError", "GraphError", "LoweringError", "ShapeError", "ParameterError",
    "SemanticsError", "InputError", "OptionsError", "NirjaxWarning", "ResetAmbiguityWarning",
    "LoweringWarning", "LimitError", "ShapeWarning", "Limits", "limits", "set_limits",
]
