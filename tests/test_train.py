"""nirjax.train: losses against NumPy oracles, masks, clipping, bounds, Trainer and fit."""

from __future__ import annotations

import logging
import math

import jax
import jax.numpy as jnp
import nir
import numpy as np
import optax
import pytest

import nirjax
from nirjax import train

C, H, NI = 3, 32, 6


def _classifier(seed=0):
    """Input 6 -> Affine -> LIF 32 -> Affine -> LI 3 (a readout membrane)."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph.from_list(
        nir.Affine(rng.normal(0, 0.5, (H, NI)), np.zeros(H)),
        nir.LIF(tau=np.full(H, 2e-3), r=np.ones(H), v_leak=np.zeros(H),
                v_threshold=np.full(H, 0.5)),
        nir.Affine(rng.normal(0, 0.3, (C, H)), np.zeros(C)),
        nir.LI(tau=np.full(C, 5e-3), r=np.ones(C), v_leak=np.zeros(C)))


def _task(rng, batch=64, steps=60):
    """Class c: input channels 2c and 2c+1 fire at 0.3 per step, the others at 0.05."""
    labels = rng.integers(0, C, batch)
    rates = np.full((batch, NI), 0.05)
    rates[np.arange(batch), 2 * labels] = 0.3
    rates[np.arange(batch), 2 * labels + 1] = 0.3
    return (rng.random((steps, batch, NI)) < rates).astype(np.float32), labels


# ----------------------------------------------------------------------------- training works


@pytest.fixture(scope="module")
def trained():
    """The classifier trained on the task: (model, test batch, accuracy before, FitResult)."""
    model = nirjax.compile(_classifier(), dt=1e-3)
    trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(2e-2),
                            metrics={"acc": train.max_membrane_accuracy})
    test = [_task(np.random.default_rng(99), 256)]
    before = train.evaluate(trainer, model.params, test)
    result = train.fit(trainer, model.params,
                       lambda epoch: [_task(np.random.default_rng(100 * epoch + i)) for i in range(10)],
                       epochs=3, eval_data=test)
    return model, test, before, result


def test_training_lowers_the_loss_and_raises_accuracy(trained):
    model, _, before, result = trained
    after = result.eval_history[-1]
    assert before["acc"] < 0.6  # chance is 1/3
    assert after["eval_acc"] >= 0.85 and after["eval_acc"] >= before["acc"] + 0.3
    assert after["eval_loss"] <= 0.6 * before["loss"]
    assert len(result.history) == 30 and result.history[-1]["step"] == 30
    # every parameter field trained, time constants included, and they stayed valid
    for name, p in result.params.items():
        for field, value in p._asdict().items():
            assert not np.array_equal(np.asarray(value), np.asarray(getattr(model.params[name], field))), (name, field)
    assert np.all(np.asarray(result.params["lif"].tau) >= 1e-3)


@pytest.mark.parametrize("loss,metric,readout", [
    (train.spike_count_cross_entropy, train.spike_count_accuracy, "lif"),
    (train.final_membrane_cross_entropy, train.final_membrane_accuracy, ("li", "v")),
])
def test_other_classification_losses_train(loss, metric, readout):
    """Cross-entropy on spike counts (of a spiking layer read out by name) and on the final
    membrane (a recorded state field) both learn the task."""
    graph = _classifier()
    if loss is train.spike_count_cross_entropy:  # read the spikes of a 3-neuron LIF layer
        rng = np.random.default_rng(0)
        graph = nir.NIRGraph.from_list(
            nir.Affine(rng.normal(0, 0.5, (H, NI)), np.zeros(H)),
            nir.LIF(tau=np.full(H, 2e-3), r=np.ones(H), v_leak=np.zeros(H), v_threshold=np.full(H, 0.5)),
            nir.Affine(rng.normal(0, 0.3, (C, H)), np.full(C, 0.0)),
            nir.LIF(tau=np.full(C, 5e-3), r=np.ones(C), v_leak=np.zeros(C), v_threshold=np.full(C, 0.3)))
        readout = "lif_1"
    model = nirjax.compile(graph, dt=1e-3)
    trainer = train.Trainer(model, loss, optax.adam(2e-2), readout=readout, metrics={"acc": metric})
    test = [_task(np.random.default_rng(99), 256)]
    before = train.evaluate(trainer, model.params, test)
    result = train.fit(trainer, model.params,
                       lambda e: [_task(np.random.default_rng(50 + 10 * e + i)) for i in range(10)],
                       epochs=3, eval_data=test)
    after = result.eval_history[-1]
    assert after["eval_loss"] < 0.7 * before["loss"]
    assert after["eval_acc"] >= 0.8 and after["eval_acc"] > before["acc"] + 0.2


def test_distillation_pulls_a_perturbed_student_back_to_its_teacher(trained):
    """Perturb the trained classifier's weights; distilling the unperturbed graph's readout
    membrane (no labels) brings back its behaviour and its accuracy."""
    model, test, _, result = trained
    teacher = (model, result.params)
    rng = np.random.default_rng(5)
    params = dict(result.params)
    for name in ("affine", "affine_1"):
        w = params[name].weight
        params[name] = params[name]._replace(weight=w + 1.0 * jnp.asarray(rng.normal(size=w.shape), w.dtype))

    def agree(student_v, teacher_v):  # the same class by peak membrane
        return jnp.mean(student_v.max(0).argmax(-1) == teacher_v.max(0).argmax(-1))

    trainer = train.Trainer(model, train.distillation("trace"), optax.adam(3e-2), readout=("li", "v"),
                            teacher=teacher, metrics={"agree": agree},
                            mask=train.mask(params, fields="weight"))
    data = [_task(np.random.default_rng(200 + i))[0] for i in range(10)]
    xs_test, labels = test[0]
    before = trainer.evaluate(params, xs_test)
    out = train.fit(trainer, params, data, epochs=3)
    after = trainer.evaluate(out.params, xs_test)
    assert after["loss"] < 0.2 * before["loss"]
    assert before["agree"] < 0.7 and after["agree"] >= 0.9
    accuracy = lambda p: float(train.max_membrane_accuracy(
        model.run(p, xs_test, record=[("li", "v")])[2][("li", "v")], labels))
    assert accuracy(out.params) > accuracy(params) + 0.3
    # a teacher's own parameters are a perfect student: zero loss
    assert float(trainer.loss_value(result.params, xs_test)) == 0.0


# ----------------------------------------------------------------------------- losses vs NumPy


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_losses_match_numpy_oracles():
    rng = np.random.default_rng(0)
    spikes = (rng.random((20, 4, 3)) < 0.3).astype(np.float64)
    v = rng.normal(size=(20, 4, 3))
    labels = np.array([0, 2, 1, 2])
    soft = rng.dirichlet(np.ones(3), 4)

    def ce(logits, y):
        return -np.mean(_log_softmax(logits)[np.arange(4), y])

    assert float(train.spike_count_cross_entropy(spikes, labels)) == pytest.approx(ce(spikes.sum(0), labels), rel=1e-5)
    assert float(train.spike_count_cross_entropy(spikes, labels, start=5, logit_scale=0.5)) == pytest.approx(
        ce(0.5 * spikes[5:].sum(0), labels), rel=1e-5)
    assert float(train.spike_count_cross_entropy(spikes, soft)) == pytest.approx(
        -np.mean(np.sum(soft * _log_softmax(spikes.sum(0)), -1)), rel=1e-5)
    assert float(train.max_membrane_cross_entropy(v, labels)) == pytest.approx(ce(v.max(0), labels), rel=1e-5)
    assert float(train.final_membrane_cross_entropy(v, labels)) == pytest.approx(ce(v[-1], labels), rel=1e-5)
    target = rng.random((4, 3))
    assert float(train.rate_mse(spikes, target)) == pytest.approx(np.mean((spikes.mean(0) - target) ** 2), rel=1e-5)
    assert float(train.trace_mse(v, v[::-1])) == pytest.approx(np.mean((v - v[::-1]) ** 2), rel=1e-5)
    # van Rossum: a causal exponential filter, written as a loop
    other = (rng.random((20, 4, 3)) < 0.3).astype(np.float64)
    decay, f, acc = math.exp(-1 / 4.0), np.zeros((4, 3)), 0.0
    for t in range(20):
        f = f * decay + spikes[t] - other[t]
        acc += np.sum(f ** 2)
    assert float(train.van_rossum(spikes, other, tau_steps=4.0)) == pytest.approx(acc / spikes.size, rel=1e-5)
    # count KL: KL(softmax(teacher/T) || softmax(student/T)) * T^2
    temp = 3.0
    pt = np.exp(_log_softmax(other.sum(0) / temp))
    kl = np.mean(np.sum(pt * (_log_softmax(other.sum(0) / temp) - _log_softmax(spikes.sum(0) / temp)), -1))
    assert float(train.distillation("count_kl", temperature=temp)(spikes, other)) == pytest.approx(kl * temp ** 2, rel=1e-5)
    assert float(train.spike_count_accuracy(spikes, labels)) == np.mean(spikes.sum(0).argmax(-1) == labels)
    assert float(train.spike_agreement(spikes, other)) == pytest.approx(np.mean(spikes == other))


def test_loss_errors_name_the_problem():
    with pytest.raises(nirjax.InputError, match=r"time-major readout \[T, B, ...\], got shape \(5, 3\)"):
        train.max_membrane_cross_entropy(np.zeros((5, 3)), np.zeros(3, int))
    with pytest.raises(nirjax.InputError, match="labels must have shape"):
        train.max_membrane_cross_entropy(np.zeros((5, 2, 3)), np.zeros(3, int))
    with pytest.raises(nirjax.InputError, match="unknown"):
        train.distillation("kl")
    with pytest.raises(nirjax.InputError, match="options"):
        train.distillation("trace", tau_steps=3)


# ----------------------------------------------------------------------------- masks


def test_mask_helpers_select_by_node_and_field():
    params = nirjax.compile(_classifier(), dt=1e-3).params
    m = train.mask(params, fields="v_threshold")
    assert m["lif"].v_threshold and not m["lif"].tau and not m["affine"].weight
    m = train.mask(params, nodes="affine*", fields=["weight"])
    assert m["affine"].weight and m["affine_1"].weight and not m["affine"].bias and not m["li"].tau
    assert train.count_params(params, m) == H * NI + C * H
    both = train.mask_or(train.mask(params, nodes="li"), train.mask(params, fields="bias"))
    assert both["li"].tau and both["affine"].bias and not both["affine"].weight
    assert train.mask_and(both, train.mask(params, nodes="li"))["li"].r
    assert not train.mask_not(both)["li"].tau and train.mask_not(both)["lif"].tau
    with pytest.raises(nirjax.InputError, match="no parameter node matches 'lif2'.*affine"):
        train.mask(params, nodes="lif2")
    with pytest.raises(nirjax.InputError, match="no parameter field matches 'threshold'"):
        train.mask(params, fields="threshold")


@pytest.mark.parametrize("optimizer", [optax.adam(5e-2), optax.adamw(5e-2, weight_decay=0.5)])
def test_masked_parameters_are_bit_for_bit_frozen(optimizer):
    model = nirjax.compile(_classifier(), dt=1e-3)
    neuron_mask = np.zeros(H, bool)
    neuron_mask[:5] = True  # array masks: only 5 thresholds train
    m = train.mask_or(train.mask(model.params, nodes="affine_1"),
                      train.mask(model.params, fields="v_threshold"))
    m["lif"] = m["lif"]._replace(v_threshold=neuron_mask)
    trainer = train.Trainer(model, train.max_membrane_cross_entropy, optimizer, mask=m)
    state = trainer.init()
    for i in range(3):
        state, _ = trainer.step(state, *_task(np.random.default_rng(i)))
    for name, p in state.params.items():
        for field, new in p._asdict().items():
            old = np.asarray(getattr(model.params[name], field))
            new = np.asarray(new)
            sel = np.broadcast_to(np.asarray(getattr(m[name], field)), old.shape)
            np.testing.assert_array_equal(new[~sel], old[~sel], err_msg=f"{name}.{field} moved")
            if sel.any():  # (weights from hidden neurons that never spike get no gradient)
                assert np.mean(new[sel] != old[sel]) > 0.5, f"{name}.{field} did not train"


# ----------------------------------------------------------------------------- clipping


def test_gradient_clipping_bounds_the_update():
    model = nirjax.compile(_classifier(), dt=1e-3)
    xs, labels = _task(np.random.default_rng(1))
    grads = jax.device_get(train.Trainer(model, train.max_membrane_cross_entropy,
                                         optax.sgd(1.0)).grad(model.params, xs, labels))
    norm = math.sqrt(sum(float(np.sum(np.square(g))) for g in jax.tree_util.tree_leaves(grads)))
    assert norm > 0.1
    for clip, expect_factor in ((norm / 4, 0.25), (norm * 10, 1.0)):
        trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.sgd(1.0),
                                clip_norm=clip, relative=(), bounds=None)
        state, logs = trainer.step(trainer.init(), xs, labels)
        assert float(logs["grad_norm"]) == pytest.approx(norm, rel=1e-4)
        for new, old, g in zip(jax.tree_util.tree_leaves(state.params),
                               jax.tree_util.tree_leaves(model.params),
                               jax.tree_util.tree_leaves(grads)):
            np.testing.assert_allclose(np.asarray(new) - np.asarray(old), -expect_factor * g,
                                       rtol=2e-3, atol=1e-6 * norm)


# ----------------------------------------------------------------------------- bounds, relative


def test_bounds_keep_time_constants_valid_and_exportable():
    model = nirjax.compile(_classifier(), dt=1e-3)
    bounds = train.default_bounds(model)
    np.testing.assert_array_equal(bounds["lif"]["tau"][0], np.full(H, 1e-3))  # tau >= dt (Euler)
    # a huge plain SGD step drives every tau far below zero without the projection
    trainer = train.Trainer(model, lambda v, y: jnp.sum(v), optax.sgd(1e6), readout=("li", "v"),
                            relative=(), mask=train.mask(model.params, fields="tau"))
    state, _ = trainer.step(trainer.init(), *_task(np.random.default_rng(0)))
    tau = np.asarray(state.params["li"].tau)
    assert np.all(tau >= 1e-3) and np.any(tau == np.float32(1e-3))
    graph = nirjax.to_nir(model, state.params)
    assert np.all(graph.nodes["li"].tau > 0)
    unbounded = train.Trainer(model, lambda v, y: jnp.sum(v), optax.sgd(1e6), readout=("li", "v"),
                              relative=(), bounds=None, mask=train.mask(model.params, fields="tau"))
    bad, _ = unbounded.step(unbounded.init(), *_task(np.random.default_rng(0)))
    assert np.any(np.asarray(bad.params["li"].tau) <= 0)
    with pytest.raises(nirjax.ParameterError, match="node 'lif?' .*'tau' must be > 0"):
        nirjax.to_nir(model, bad.params)


def test_default_bounds_never_move_untrained_values():
    graph = nir.NIRGraph.from_list(nir.LI(tau=np.array([5e-5, 5e-4]), r=np.ones(2), v_leak=np.zeros(2)))
    model = nirjax.compile(graph, dt=1e-4)
    lo = train.default_bounds(model)["li"]["tau"][0]
    np.testing.assert_allclose(lo, [5e-5, 1e-4])  # tau below dt is kept as the graph had it
    projected = train.project(model.params, train.default_bounds(model))
    np.testing.assert_array_equal(np.asarray(projected["li"].tau), np.asarray(model.params["li"].tau))
    exact = nirjax.compile(graph, dt=1e-4, semantics="exact")
    np.testing.assert_allclose(train.default_bounds(exact)["li"]["tau"][0], [1e-6, 1e-6])
    extra = train.default_bounds(model, v_leak=(-0.5, 0.5))
    assert extra["li"]["v_leak"][0] == -0.5 and extra["li"]["v_leak"][1] == 0.5
    with pytest.raises(nirjax.ParameterError, match="v_threshold"):
        train.default_bounds(model, v_threshold=(0, None))


def test_keep_in_bounds_optax_transform():
    model = nirjax.compile(_classifier(), dt=1e-3)
    opt = optax.chain(optax.sgd(1e6), train.keep_in_bounds(train.default_bounds(model)))
    params = model.params
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = optax.apply_updates(params, updates)
    assert np.all(np.asarray(new["lif"].tau) >= 1e-3 * (1 - 1e-6))
    assert float(new["affine"].weight[0, 0]) < -1e5  # unbounded fields move freely


def test_relative_updates_change_time_constants_by_a_fraction():
    model = nirjax.compile(_classifier(), dt=1e-3)
    trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(1e-2),
                            mask=train.mask(model.params, fields="tau"))
    state, _ = trainer.step(trainer.init(), *_task(np.random.default_rng(3)))
    for name in ("lif", "li"):
        ratio = np.asarray(state.params[name].tau) / np.asarray(model.params[name].tau)
        moved = ratio != 1
        assert moved.sum() >= 3
        # Adam's first step is lr * sign(g) in the parameter's units; relative: 1 %
        np.testing.assert_allclose(np.abs(ratio[moved] - 1), 1e-2, rtol=1e-3)


# ----------------------------------------------------------------------------- transforms


def test_fake_quantize_rounds_forward_and_passes_gradients_straight_through():
    model = nirjax.compile(_classifier(), dt=1e-3)
    m = train.mask(model.params, fields="weight")
    q = train.fake_quantize(m, bits=4)
    quant = q(model.params)
    w = np.asarray(model.params["affine"].weight)
    step = np.abs(w).max() / 7
    np.testing.assert_allclose(np.asarray(quant["affine"].weight), np.round(w / step) * step, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(quant["lif"].tau), np.asarray(model.params["lif"].tau))
    f = lambda p: jnp.sum(jnp.sin(p["affine"].weight))
    g = jax.grad(lambda p: f(q(p)))(model.params)
    np.testing.assert_allclose(np.asarray(g["affine"].weight), np.cos(np.asarray(quant["affine"].weight)), rtol=1e-6)


# ----------------------------------------------------------------------------- fit mechanics


def test_fit_reports_progress_and_stops_on_request(caplog):
    model = nirjax.compile(_classifier(), dt=1e-3)
    trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(1e-2))
    seen = []

    def callback(record):
        seen.append(record)
        return record["step"] >= 3

    batches = [_task(np.random.default_rng(i), 8, 20) for i in range(5)]
    with caplog.at_level(logging.INFO, logger="nirjax.train"):
        result = train.fit(trainer, model.params, batches, epochs=2, callback=callback, log_every=1)
    assert [r["step"] for r in seen] == [1, 2, 3] and len(result.history) == 3
    assert all(r["kind"] == "train" and math.isfinite(r["loss"]) for r in seen)
    assert int(result.state.step) == 3
    assert sum("step 2 (epoch 0)" in r.getMessage() for r in caplog.records) == 1
    # continue from the returned state
    more = train.fit(trainer, None, batches[:2], state=result.state)
    assert more.history[-1]["step"] == 5


def test_trainer_rejects_bad_configuration():
    model = nirjax.compile(_classifier(), dt=1e-3)
    loss = train.max_membrane_cross_entropy
    with pytest.raises(nirjax.InputError, match="optax"):
        train.Trainer(model, loss, "adam")
    with pytest.raises(nirjax.GraphError, match="no node named 'lif9'"):
        train.Trainer(model, loss, optax.adam(1e-3), readout=("lif9", "v"))
    with pytest.raises(nirjax.InputError, match="state fields"):
        train.Trainer(model, loss, optax.adam(1e-3), readout=("lif", "i_syn"))
    with pytest.raises(nirjax.InputError, match="clip_norm"):
        train.Trainer(model, loss, optax.adam(1e-3), clip_norm=-1.0)
    with pytest.raises(nirjax.InputError, match="relative"):
        train.Trainer(model, loss, optax.adam(1e-3), relative=("taus",))
    trainer = train.Trainer(model, loss, optax.adam(1e-3))
    with pytest.raises(nirjax.InputError, match="targets are required"):
        trainer.step(trainer.init(), _task(np.random.default_rng(0))[0])
    distill = train.Trainer(model, train.distillation("trace"), optax.adam(1e-3), teacher=model)
    with pytest.raises(nirjax.InputError, match="teacher"):
        distill.step(distill.init(), *_task(np.random.default_rng(0)))


def test_fit_evaluates_before_training_and_every_n_steps():
    model = nirjax.compile(_classifier(), dt=1e-3)
    trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(1e-2),
                            metrics={"acc": train.max_membrane_accuracy})
    batches = [_task(np.random.default_rng(i), 8, 20) for i in range(5)]
    result = train.fit(trainer, model.params, batches, eval_data=batches[:1], eval_every=2)
    assert [r["step"] for r in result.eval_history] == [0, 2, 4]
    assert set(result.eval_history[0]) == {"kind", "epoch", "step", "eval_loss", "eval_acc"}
    direct = trainer.evaluate(model.params, *batches[0])
    assert result.eval_history[0]["eval_loss"] == pytest.approx(float(direct["loss"]))
