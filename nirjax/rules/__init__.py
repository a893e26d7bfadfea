"""The rule tables: for every NIR type, how nirjax simulates it, one table per arithmetic.

* :mod:`nirjax.rules.table`: :class:`Rule`, :class:`RuleTable` and the registry of named
  tables (:func:`get_table`, :func:`register_table`, :func:`register`);
* :mod:`nirjax.rules.float`: the ``"float"`` table, every NIR type in the compile's float
  dtype;
* :mod:`nirjax.rules.loihi`: the ``"loihi"`` integer table, Lava's fixed-point (Loihi 2)
  arithmetic;
* :mod:`nirjax.rules.xylo`: the ``"xylo"`` integer table, SynSense Xylo's fused populations;
* :mod:`nirjax.rules.speck`: the ``"speck"`` integer table, Speck / DYNAP-CNN as sinabs
  simulates it;
* :mod:`nirjax.rules.spinnaker2`: the ``"spinnaker2"`` table, SpiNNaker2's float32 neuron
  models on int8-valued weights.

Every table has the same keys (NIR type names); a table lacking a type of the graph is a
design-rule error (:class:`~nirjax.errors.LoweringError`). A chip target adds a table here.
"""

from .table import (Rule, RuleTable, get_table, known_types, register, register_table,
                    rule_for, shape_rule, table_names)
from .float import FLOAT, RULES, delay_steps
from .loihi import LOIHI
from .xylo import XYLO
from .speck import SPECK
from .spinnaker2 import SPINNAKER2

__all__ = ["Rule", "RuleTable", "get_table", "register_table", "table_names", "register",
           "rule_for", "known_types", "shape_rule", "RULES", "FLOAT", "LOIHI", "XYLO",
           "SPECK", "SPINNAKER2", "delay_steps"]
