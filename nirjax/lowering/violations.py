"""Design-rule violations and lowering records, shared by every lowering target (NumPy only).

A rule check returns :class:`Violation` records (node, rule, the chip's limit, the graph's
value, and optionally a sentence and a severity); a target collects ALL of them before it
raises one :class:`~nirjax.LoweringError` listing every error-level one
(:func:`raise_violations`). Warning-level violations are approximations: the lowering goes
on and :func:`nirjax.lower` issues each as a :class:`~nirjax.errors.LoweringWarning`.

:class:`QuantizationRecord` (one rounding of one quantity of one node, with its error) and
:class:`MappingRecord` (where one graph node went on the chip) are what a target's lowering
function reports in its :class:`~nirjax.lowering.LoweringResult`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

from ..errors import LoweringError

__all__ = ["Violation", "DesignRuleError", "raise_violations", "split_violations",
           "QuantizationRecord", "MappingRecord"]


class Violation(NamedTuple):
    """One broken design rule (or, with ``severity="warning"``, one approximation).

    Attributes:
        node: the NIR node (or ``"graph"``) that breaks it.
        rule: the rule's name.
        limit: what the chip (or its vendor importer) allows.
        value: what the graph has.
        message: a sentence with both numbers (optional; ``str()`` builds one when empty).
        severity: ``"error"`` (the graph cannot be lowered) or ``"warning"``.

    >>> str(Violation("lif1", "hidden_neurons", 1000, 1200))
    "node 'lif1': hidden_neurons: 1200; allowed: 1000"
    >>> str(Violation("lif1", "hidden_neurons", 1000, 1200, "1200 hidden neurons, xylo-audio2 has 1000"))
    "node 'lif1': 1200 hidden neurons, xylo-audio2 has 1000"
    """

    node: str
    rule: str
    limit: object
    value: object
    message: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        if self.message:
            return f"node {self.node!r}: {self.message}"
        return f"node {self.node!r}: {self.rule}: {self.value}; allowed: {self.limit}"


class DesignRuleError(LoweringError):
    """A graph breaks a target's design rules; ``violations`` lists every one.

    A :class:`~nirjax.LoweringError` (hence a ``NirjaxError`` and a ``ValueError``).

    >>> str(DesignRuleError("speck", [Violation("c1", "stride", "1, 2, 4, 8", "3")]))
    "the graph cannot run on speck (1 violation):\\n  node 'c1': stride: 3; allowed: 1, 2, 4, 8"
    """

    def __init__(self, target: str, violations: Sequence[Violation]):
        violations = tuple(violations)
        n = len(violations)
        lines = "\n".join(f"  {v}" for v in violations)
        super().__init__(f"the graph cannot run on {target} ({n} violation"
                         f"{'s' * (n != 1)}):\n{lines}", violations, target)


def split_violations(violations: Sequence[Violation]) -> tuple[list, list]:
    """``(errors, warnings)``: the violations by severity."""
    errors = [v for v in violations if getattr(v, "severity", "error") == "error"]
    others = [v for v in violations if getattr(v, "severity", "error") != "error"]
    return errors, others


def raise_violations(target: str, violations: Sequence[Violation]) -> None:
    """Raise :class:`DesignRuleError` for ``target`` listing every error-level violation.

    Warning-level violations are not raised (return them to :func:`nirjax.lower` in the
    :class:`~nirjax.lowering.LoweringResult`'s ``warnings``).

    >>> raise_violations("speck", [])
    """
    errors, _ = split_violations(violations)
    if errors:
        raise DesignRuleError(target, errors)


@dataclasses.dataclass(frozen=True)
class QuantizationRecord:
    """The rounding of one quantity of one node.

    Attributes:
        node: the graph node (or nodes, joined by ``+``).
        quantity: ``"weight"``, ``"threshold"``, ``"bias"``, ``"tau_mem"``, ``"tau_syn"``, ...
        scale: integer units per float unit (the layer's effective scale; 1.0 for time
            constants).
        max_abs: largest ``|x|`` of the float values.
        max_abs_error: largest ``|q/scale - x|`` over the values (float units); for time
            constants the error of the time constant the chip represents.
        relative_error: ``max_abs_error / max_abs`` (0 when ``max_abs`` is 0); for time
            constants the largest relative error per neuron.
        clipped: values whose integer does not fit the chip's field.
        detail: one more sentence (e.g. the per-step decay factors' largest error).

    >>> print(QuantizationRecord("fc1", "weight", 127.0, 1.0, 0.004, 0.004))
    fc1 weight: scale 127, max |x| 1, max error 0.004 (0.4%)
    """

    node: str
    quantity: str
    scale: float
    max_abs: float
    max_abs_error: float
    relative_error: float
    clipped: int = 0
    detail: str = ""

    def __str__(self) -> str:
        s = (f"{self.node} {self.quantity}: scale {self.scale:.6g}, max |x| "
             f"{self.max_abs:.6g}, max error {self.max_abs_error:.3g} "
             f"({100 * self.relative_error:.3g}%)")
        if self.clipped:
            s += f", {self.clipped} out of range"
        return s + (f"; {self.detail}" if self.detail else "")


@dataclasses.dataclass(frozen=True)
class MappingRecord:
    """Where one graph node went on the chip.

    Attributes:
        node: the graph node's name.
        type_name: its NIR type.
        placement: where it runs, in words (``"hidden neurons 0..39"``, ``"core 3"``,
            ``"absorbed into 'hidden' (input weights)"``).
        program_node: the integer program's node that simulates it (``None``: none, e.g.
            a weight node folded into a population).

    >>> print(MappingRecord("fc1", "Linear", "input weights of 'hidden'", "hidden"))
    fc1 (Linear) -> input weights of 'hidden' [program node 'hidden']
    """

    node: str
    type_name: str
    placement: str
    program_node: str | None = None

    def __str__(self) -> str:
        where = f" [program node {self.program_node!r}]" if self.program_node else ""
        return f"{self.node} ({self.type_name}) -> {self.placement}{where}"
