"""Rule tables: one per arithmetic, same keys; per-compile rules; integer programs.

The oracles are NumPy loops written from the rules' documented updates (an integer counter,
Lava's fixed-point Dense), never numbers nirjax produced.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
from nirjax.compiler import CompiledGraph, build_program
from nirjax.rules import FLOAT, Rule, RuleTable, get_table, register
from nirjax.semantics import Semantics

from builders import chain, neuron, read_quiet, rng_for

DT = 1e-4


class _GainParams(NamedTuple):
    gain: np.ndarray


class _Count(NamedTuple):
    total: jnp.ndarray


def _counter_rule():
    """An integer accumulator for NIR ``I`` nodes: ``total += gain * x`` (int32), with an
    integer parameter ``gain = round(r)``."""
    return Rule(
        params=lambda name, node: _GainParams(np.round(np.asarray(node.r)).astype(np.int32)),
        config=lambda *args: None,
        init_state=lambda p, cfg, shape, dtype: _Count(jnp.zeros(shape, dtype)),
        step=lambda c, s, x, cfg: (_Count(s.total + c.gain * x), s.total + c.gain * x),
    )


def _counter_table():
    return RuleTable("counter", {"Input": FLOAT["Input"], "Output": FLOAT["Output"],
                                 "I": _counter_rule()}, dtype=np.int32, doc="integer counters")


def _i_graph(r):
    return chain((3,), (3,), ("acc", nir.I(r=np.asarray(r, np.float64))))


def test_tables_share_keys_and_declare_their_dtype():
    loihi = get_table("loihi")
    assert FLOAT.dtype is None and not FLOAT.integer
    assert loihi.integer and loihi.dtype == np.int32
    assert set(loihi) <= set(FLOAT)  # integer tables are keyed by the same NIR type names


def test_compiled_graph_runs_an_integer_program_built_directly():
    """A Program bound to an integer table runs through the same CompiledGraph: integer
    params are not cast, inputs are cast to int32, outputs and records are int32."""
    g = _i_graph([1.0, 2.0, 3.0])
    program = build_program(g, DT, Semantics(), table=_counter_table())
    for optimize in (True, False):
        model = CompiledGraph(program, options={"optimize": optimize})
        assert model.dtype == jnp.int32 and model.params["acc"].gain.dtype == jnp.int32
        xs = rng_for("counter").integers(-3, 4, (12, 2, 3))
        ys, _, rec = model.run(model.params, xs.astype(np.float32), record=[("acc", "total")])
        expected = np.cumsum(xs * np.array([1, 2, 3]), axis=0)
        assert np.asarray(ys).dtype == np.int32
        np.testing.assert_array_equal(np.asarray(ys), expected)
        np.testing.assert_array_equal(np.asarray(rec[("acc", "total")]), expected)


def test_integer_programs_refuse_fractional_input_and_float_dtypes():
    model = CompiledGraph(build_program(_i_graph([1.0] * 3), DT, Semantics(),
                                        table=_counter_table()))
    with pytest.raises(nirjax.InputError, match="whole numbers"):
        model(np.full((4, 1, 3), 0.5, np.float32))
    with pytest.raises(nirjax.OptionsError, match="int32"):
        CompiledGraph(model.program, dtype="float32")


def test_a_type_missing_from_the_table_names_every_one():
    rng = rng_for("missing-types")
    g = chain((3,), (3,), ("li", neuron("LI", rng, (3,))), ("cuba", neuron("CubaLIF", rng, (3,))),
              ("acc", nir.I(r=np.ones(3))))
    with pytest.raises(nirjax.LoweringError) as info:
        build_program(g, DT, Semantics(), table=_counter_table())
    message = str(info.value)
    assert "'counter'" in message and "CubaLIF" in message and "LI" in message
    assert "'cuba'" in message and "'li'" in message
    assert isinstance(info.value, nirjax.GraphError)


def test_lava_fixed_affine_bias_is_a_design_rule_error():
    g = chain((2,), (2,), ("fc", nir.Affine(np.eye(2), np.array([0.0, 0.5]))),
              ("lif", neuron("LIF", rng_for("bias"), (2,))))
    with pytest.raises(nirjax.LoweringError, match="'fc'.*bias"):
        nirjax.compile(g, dt=DT, semantics="lava_fixed")


def test_lava_fixed_dense_quantizes_weights_like_the_importer():
    """Affine -> Lava's fixed-point Dense: y = int(256*W) @ x, truncated towards zero (the NIR
    paper's importer: ``(w * 256).astype(np.int32)``)."""
    w = np.array([[0.5, -0.3], [0.001, 1.0]])
    g = chain((2,), (2,), ("fc", nir.Affine(w, np.zeros(2))))
    model = nirjax.compile(g, dt=DT, semantics="lava_fixed")
    xs = rng_for("dense").integers(0, 3, (6, 2, 2))
    ys = np.asarray(model(xs.astype(np.float32)))
    w_int = (np.asarray(w, np.float32) * 256).astype(np.int32)
    expected = np.einsum("ij,tbj->tbi", w_int, xs)
    # latency="weights": the Dense's output arrives one step later
    np.testing.assert_array_equal(ys[1:], expected[:-1])
    np.testing.assert_array_equal(ys[0], 0)


def test_rules_per_compile_do_not_touch_the_registry():
    g = _i_graph([1.0, 1.0, 1.0])
    xs = rng_for("per-compile").integers(0, 3, (7, 2, 3)).astype(np.float32)
    doubled = Rule(params=lambda name, node: None, config=lambda *a: None,
                   apply=lambda c, x, cfg: 2.0 * x)
    custom = nirjax.compile(g, dt=DT, rules={nir.I: doubled})
    np.testing.assert_allclose(np.asarray(custom(xs)), 2.0 * xs)
    plain = nirjax.compile(g, dt=DT)
    np.testing.assert_allclose(np.asarray(plain(xs)), np.cumsum(DT * xs, axis=0), rtol=1e-6)
    assert get_table("float")["I"] is FLOAT["I"]


def test_register_changes_later_compilations():
    g = _i_graph([1.0, 1.0, 1.0])
    xs = np.ones((3, 1, 3), np.float32)
    negate = Rule(params=lambda name, node: None, config=lambda *a: None,
                  apply=lambda c, x, cfg: -x)
    before = get_table("float")
    try:
        register("I", negate)
        np.testing.assert_array_equal(np.asarray(nirjax.compile(g, dt=DT)(xs)), -xs)
    finally:
        nirjax.rules.register_table(before)
    np.testing.assert_allclose(np.asarray(nirjax.compile(g, dt=DT)(xs)),
                               np.cumsum(DT * xs, axis=0), rtol=1e-6)


def test_unknown_table_and_old_form_name_the_fix():
    with pytest.raises(nirjax.SemanticsError, match="arithmetic='loihi'"):
        Semantics(form="lava_fixed")
    g = _i_graph([1.0] * 3)
    with pytest.raises(nirjax.SemanticsError, match="'xylo9'.*'float'"):
        nirjax.compile(g, dt=DT, semantics={"arithmetic": "xylo9"})
    with pytest.raises(nirjax.SemanticsError, match="arithmetic"):
        Semantics().override("acc", arithmetic="loihi")


def test_lava_fixed_program_is_integer_end_to_end():
    model = nirjax.compile(read_quiet(nirjax.example_path("lif_norse")), dt=DT,
                           semantics="lava_fixed")
    assert model.program.table.name == "loihi" and model.dtype == jnp.int32
    leaves = jax.tree_util.tree_leaves(model.init_state(2))
    assert leaves and all(np.asarray(leaf).dtype == np.int32 for leaf in leaves)
