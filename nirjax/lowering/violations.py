"""Design-rule violations, shared by every lowering target.

A rule check returns :class:`Violation` records (node, rule, the chip's limit, the graph's
value); a target collects ALL of them before it raises one :class:`DesignRuleError` listing
every one. ``DesignRuleError`` stands in for ``nirjax.LoweringError`` until that exists: it
is a :class:`~nirjax.NirjaxError` and a ``ValueError``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..errors import NirjaxError

__all__ = ["Violation", "DesignRuleError", "raise_violations"]


class Violation(NamedTuple):
    """One broken design rule.

    Attributes:
        node: the NIR node (or ``"graph"``) that breaks it.
        rule: the rule's name.
        limit: what the chip (or its vendor importer) allows, in words.
        value: what the graph has.
    """

    node: str
    rule: str
    limit: str
    value: str

    def __str__(self) -> str:
        return f"node {self.node!r}: {self.rule}: {self.value}; allowed: {self.limit}"


class DesignRuleError(NirjaxError, ValueError):
    """A graph breaks a target's design rules; ``violations`` lists every one.

    >>> str(DesignRuleError("speck", [Violation("c1", "stride", "1, 2, 4, 8", "3")]))
    "the graph cannot run on speck (1 violation):\\n  node 'c1': stride: 3; allowed: 1, 2, 4, 8"
    """

    def __init__(self, target: str, violations: Sequence[Violation]):
        self.target = target
        self.violations = tuple(violations)
        n = len(self.violations)
        lines = "\n".join(f"  {v}" for v in self.violations)
        super().__init__(f"the graph cannot run on {target} ({n} violation"
                         f"{'s' * (n != 1)}):\n{lines}")


def raise_violations(target: str, violations: Sequence[Violation]) -> None:
    """Raise :class:`DesignRuleError` for ``target`` when ``violations`` is not empty.

    >>> raise_violations("speck", [])
    """
    if violations:
        raise DesignRuleError(target, violations)
