"""Rules and rule tables: one table per arithmetic, all keyed by NIR type name.

A :class:`Rule` says how one NIR type is simulated: its parameters, static options, shape
rule and pure kernel. A :class:`RuleTable` maps NIR type names to rules for one arithmetic
(as jax keeps one table per interpretation of its primitives, all with the same keys):

* ``"float"`` (:mod:`nirjax.rules.float`): every NIR type, in the compile's floating dtype;
* integer (hardware) tables such as ``"loihi"`` (:mod:`nirjax.rules.loihi`): the types a chip
  runs, in the chip's integer arithmetic. A table declares the dtype of the values flowing
  along its edges (``dtype``); the compiled scan is the same for every table.

Tables are registered by name (:func:`register_table`); :func:`get_table` looks one up, and
:func:`register` binds a NIR type to a user rule inside a registered table. Per compile,
``nirjax.compile(..., rules={...})`` merges rules over the table without touching the
registry (:meth:`RuleTable.with_rules`).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Optional

import numpy as np

from ..errors import ParameterError, SemanticsError
from ..graph.shapes import SHAPE_RULES

__all__ = ["Rule", "RuleTable", "register_table", "get_table", "table_names", "register",
           "rule_for", "known_types", "shape_rule"]


class Rule(NamedTuple):
    """How nirjax simulates one NIR type.

    Attributes:
        params: ``(name, node) -> NamedTuple | None``: the node's trainable parameters as
            NumPy arrays, validated, field names equal to the NIR field names.
        config: ``(name, node, in_shape, out_shape, semantics, dt, options) -> hashable``:
            the static kernel options (``options`` is the compile's
            :class:`~nirjax.compiler.CompileOptions`).
        apply: stateless kernel ``(coeffs, x, cfg) -> y`` (``None`` for stateful types).
        prepare: ``(params, cfg) -> coeffs``, computed once per run outside the time loop.
        init_state: ``(params, cfg, shape, dtype) -> state`` for stateful types.
        step: stateful kernel ``(coeffs, state, x, cfg) -> (state, y)``.
        feedthrough: ``cfg -> bool``: whether the output depends on the same step's input.
        emit: ``(coeffs, state, cfg) -> y`` for types without feedthrough.
        absorb: ``(coeffs, state, x, cfg) -> state`` for types without feedthrough.
        shape: the shape rule from :mod:`nirjax.graph.shapes`.
        spiking: whether the output is spikes (used by reports and lowering).
        chunk: ``(cfg, method) -> fn | None``: a whole-chunk implementation of a stateful
            type, ``fn(coeffs, state, xs, interpret) -> (state, ys)`` on a chunk ``xs``
            ``[K, B, *in_shape]`` and a batched state, for ``method`` ``"associative_scan"``
            or ``"pallas"`` (the compile options of the same names; ``interpret`` runs a
            Pallas kernel in interpret mode); ``None`` where the node's configuration has
            none (the compiler then runs the step in a scan).
        elementwise: whether the kernel treats every element of the node's value on its
            own: each coefficient broadcasts against the (unbatched) value shape and each
            state field has that shape (neurons, Scale, Threshold). The compiler may then
            permute the axes of value, state and coefficients together (the channels-last
            layout of convolution stacks) and give the backward pass per-sample copies of
            the coefficients.
        apply_last: the stateless kernel on a channels-last sample, ``(coeffs, x, cfg) ->
            y`` with the channel axis (axis 0 of the NIR shape) moved last in ``x`` and
            ``y`` (Conv1d, Conv2d, pooling); ``None`` if the type has none.
    """

    params: Callable
    config: Callable
    apply: Optional[Callable] = None
    prepare: Callable = lambda params, cfg: params
    init_state: Optional[Callable] = None
    step: Optional[Callable] = None
    feedthrough: Callable = lambda cfg: True
    emit: Optional[Callable] = None
    absorb: Optional[Callable] = None
    shape: Optional[Callable] = None
    spiking: bool = False
    chunk: Optional[Callable] = None
    elementwise: bool = False
    apply_last: Optional[Callable] = None

    @property
    def stateful(self) -> bool:
        """Whether the type carries state across steps."""
        return self.init_state is not None


def _type_name(nir_type: Any) -> str:
    return nir_type if isinstance(nir_type, str) else getattr(nir_type, "__name__", repr(nir_type))


def _complete(name: str, rule: Any, where: str) -> Rule:
    """``rule`` with its shape rule filled in from the built-in one of type ``name``."""
    if not isinstance(rule, Rule):
        raise ParameterError(f"{where}: the rule for {name!r} must be a nirjax.Rule, got "
                             f"{type(rule).__name__}")
    if rule.shape is None:
        if name not in SHAPE_RULES:
            raise ParameterError(f"{where}: a rule for the new type {name!r} needs a shape rule "
                                 f"(Rule(shape=...))")
        rule = rule._replace(shape=SHAPE_RULES[name])
    return rule


@dataclasses.dataclass(frozen=True)
class RuleTable(Mapping):
    """An immutable mapping NIR type name -> :class:`Rule` for one arithmetic.

    Attributes:
        name: the table's name (``"float"``, ``"loihi"``, ...).
        rules: type name -> rule (read-only).
        dtype: the dtype of the values on the graph's edges and of the state: ``None`` for
            the compile's floating dtype (float tables), e.g. ``numpy.int32`` for an integer
            (hardware) table. Inputs are cast to it; parameters of an integer table are
            never cast to a float dtype.
        doc: one line saying what the table computes, for messages.

    >>> from nirjax.rules import get_table
    >>> table = get_table("loihi")
    >>> table.name, table.dtype, "LIF" in table, "CubaLIF" in table
    ('loihi', dtype('int32'), True, False)
    """

    name: str
    rules: Mapping
    dtype: Any = None
    doc: str = ""

    def __post_init__(self):
        complete = {_type_name(k): _complete(_type_name(k), r, f"rule table {self.name!r}")
                    for k, r in dict(self.rules).items()}
        object.__setattr__(self, "rules", types.MappingProxyType(complete))
        if self.dtype is not None:
            object.__setattr__(self, "dtype", np.dtype(self.dtype))

    def __getitem__(self, type_name: str) -> Rule:
        return self.rules[type_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    @property
    def integer(self) -> bool:
        """Whether the table computes in an integer dtype."""
        return self.dtype is not None and np.issubdtype(self.dtype, np.integer)

    def with_rules(self, rules: Mapping) -> "RuleTable":
        """A new table with ``rules`` (NIR type or type name -> :class:`Rule`) merged over
        this one's; a rule without a shape rule gets the built-in one of its type."""
        if not isinstance(rules, Mapping):
            raise ParameterError(f"rules must be a mapping of NIR type -> nirjax.Rule, got "
                                 f"{type(rules).__name__}")
        if not rules:
            return self
        merged = dict(self.rules)
        merged.update({_type_name(k): v for k, v in rules.items()})
        return RuleTable(self.name, merged, self.dtype, self.doc)

    def missing(self, type_names) -> list:
        """The type names among ``type_names`` this table has no rule for, sorted."""
        return sorted(set(type_names) - set(self.rules))


_TABLES: dict[str, RuleTable] = {}


def register_table(table: RuleTable) -> RuleTable:
    """Register ``table`` under its name (replacing a table of that name) and return it."""
    if not isinstance(table, RuleTable):
        raise ParameterError(f"register_table expects a RuleTable, got {type(table).__name__}")
    _TABLES[table.name] = table
    return table


def table_names() -> tuple:
    """Names of the registered tables."""
    return tuple(_TABLES)


def get_table(table: Any = "float") -> RuleTable:
    """The registered table called ``table`` (a :class:`RuleTable` is returned as is)."""
    if isinstance(table, RuleTable):
        return table
    if not isinstance(table, str) or table not in _TABLES:
        raise SemanticsError(
            f"unknown rule table {table!r}; registered tables: "
            f"{', '.join(repr(t) for t in _TABLES)}")
    return _TABLES[table]


def register(nir_type: Any, rule: Rule, table: str = "float") -> None:
    """Bind a NIR type (class or class name) to ``rule`` in a registered table, over its
    entry there; compilations after this call use it.

    The rule's ``shape`` defaults to the built-in one for that type. To change a rule for
    one compilation only, pass ``nirjax.compile(..., rules={type: rule})`` instead.
    """
    register_table(get_table(table).with_rules({nir_type: rule}))


def rule_for(type_name: str, table: str = "float") -> Rule:
    """The rule of NIR type ``type_name`` in a registered table (default: float)."""
    return get_table(table)[type_name]


def known_types() -> set:
    """Every NIR type name some registered table can simulate."""
    return set().union(*(set(t) for t in _TABLES.values())) if _TABLES else set()


def shape_rule(type_name: str) -> Callable:
    """The shape rule of a NIR type: a registered table's, else the built-in one."""
    for t in _TABLES.values():
        if type_name in t:
            return t[type_name].shape
    return SHAPE_RULES[type_name]
