"""Exceptions and warnings raised by nirjax.

Every error nirjax raises on bad input is a :class:`NirjaxError`. Each message names the
culprit (file, node, edge or field), says what was found and what was expected, and, where
there is one, suggests the fix. The subclasses also derive from the matching built-in
exception (``ValueError``, ``TypeError``, ``OSError``) so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "NirjaxError",
    "NirFileError",
    "GraphError",
    "LoweringError",
    "ShapeError",
    "ParameterError",
    "SemanticsError",
    "InputError",
    "OptionsError",
    "NirjaxWarning",
    "ResetAmbiguityWarning",
    "LoweringWarning",
]


class NirjaxError(Exception):
    """Base class of every error nirjax raises on bad input."""


class NirFileError(NirjaxError, OSError):
    """A ``.nir`` file cannot be read or written (not HDF5, truncated, malformed)."""


class GraphError(NirjaxError, ValueError):
    """The graph's structure is invalid: unknown node type, dangling or duplicate edge, ..."""


class LoweringError(GraphError):
    """A graph breaks a design rule of the arithmetic or chip it is compiled for: a NIR type
    the target's rule table has no rule for, a parameter the target cannot represent, ...

    Attributes:
        violations: every broken design rule as a record (``node``, ``rule``, ``limit``,
            ``value``; see :class:`nirjax.lowering.Violation`), empty when the error is not
            about design rules (e.g. an unknown target).
        target: the target's name, or ``None``.
    """

    def __init__(self, message: str = "", violations=(), target=None):
        super().__init__(message)
        self.violations = tuple(violations)
        self.target = target


class ShapeError(NirjaxError, ValueError):
    """Shapes do not agree between two connected nodes, or cannot be inferred."""


class ParameterError(NirjaxError, ValueError):
    """A node parameter is invalid: NaN, non-positive time constant, wrong shape, ..."""


class SemanticsError(NirjaxError, ValueError):
    """A semantics option (integrator, reset mode, dt, ...) is missing or invalid."""


class OptionsError(NirjaxError, ValueError):
    """A compile option has a wrong type or value, or is unknown
    (:class:`~nirjax.compiler.CompileOptions`)."""


class InputError(NirjaxError, ValueError):
    """An array passed to a compiled graph has the wrong shape, rank, keys or dtype."""


class NirjaxWarning(UserWarning):
    """Base class of nirjax's warnings."""


class ResetAmbiguityWarning(NirjaxWarning):
    """A file predates NIR 1.0.6, so the reset mode its exporter meant is ambiguous."""


class LoweringWarning(NirjaxWarning):
    """Lowering to a chip approximates the graph: the message says what changes and by how
    much (a rounding beyond the quantization step, a vendor's quirk reproduced, ...)."""
