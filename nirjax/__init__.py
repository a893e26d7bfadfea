"""nirjax: a JIT-compiled simulation engine for NIR graphs in JAX.

>>> import nirjax
>>> model = nirjax.compile(nirjax.example_path("braille_bias_zero"), dt=1e-4)  # doctest: +SKIP
>>> ys = model(xs)  # xs: [T, B, 12] -> ys: [T, B, 7]                             # doctest: +SKIP
"""

from . import kernels
from .compiler import CompiledGraph, GraphState
from .compiler import compile as compile
from .compare import Comparison, Divergence, compare
from .errors import (
    GraphError,
    InputError,
    NirFileError,
    NirjaxError,
    NirjaxWarning,
    ParameterError,
    ResetAmbiguityWarning,
    SemanticsError,
    ShapeError,
)
from .examples import example_path
from .export import to_nir
from .io import file_version, read, read_version, write
from .ir import Program, build_program
from .kernels.surrogate import Surrogate
from .registry import Rule, register
from .semantics import PROFILES, Semantics
from . import profiles
from . import train
from .data import from_nir_data, to_nir_data
from . import data, events, plot, progress

__version__ = "0.1.0"

__all__ = [
    "compile", "CompiledGraph", "GraphState", "Program", "build_program",
    "read", "write", "read_version", "file_version", "to_nir", "example_path",
    "Semantics", "PROFILES", "Surrogate", "Rule", "register", "kernels", "train",
    "compare", "Comparison", "Divergence", "profiles",
    "to_nir_data", "from_nir_data", "data", "events", "plot", "progress",
    "NirjaxError", "NirFileError", "GraphError", "ShapeError", "ParameterError",
    "SemanticsError", "InputError", "NirjaxWarning", "ResetAmbiguityWarning",
]
