"""The rule tables: for every NIR type, how nirjax simulates it.

A :class:`Rule` binds one NIR type to its parameters (taken out of the ``nir`` node,
validated), its static kernel options and its pure kernel from :mod:`nirjax.kernels`.
:mod:`nirjax.rules.float` holds the floating-point table.
"""

from .float import RULES, Rule, delay_steps, known_types, register, rule_for

__all__ = ["Rule", "RULES", "register", "rule_for", "known_types", "delay_steps"]
