"""The training step and loop: :class:`Trainer` (one jitted step on an optax chain),
:func:`fit` and :func:`evaluate`."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..progress import Progress
from ..compiler import CompiledGraph, check_record
from ..errors import InputError
from .bounds import TIME_CONSTANTS, _check_bounds, default_bounds, project, relative_updates
from .masks import _as_mask_tree, _check_params, _tree_where, freeze

__all__ = ["Trainer", "TrainState", "fit", "evaluate", "FitResult"]

logger = logging.getLogger("nirjax.train")


class TrainState(NamedTuple):
    """Training state: current parameters, the optimizer's state and the step count."""

    params: Any
    opt_state: Any
    step: Any


def _readout_items(readout):
    """Normalize a readout spec into (record entries, how to build the loss input)."""
    if readout is None:
        return (), None
    if isinstance(readout, list):
        if not readout:
            raise InputError("readout: an empty list selects nothing")
        items = [(r if isinstance(r, str) else tuple(r)) for r in readout]
        return tuple(items), "many"
    if isinstance(readout, (str, tuple)):
        return ((readout if isinstance(readout, str) else tuple(readout)),), "one"
    raise InputError(
        f"readout must be None (the graph's output), a node name, a (node, state field) pair "
        f"or a list of those, got {readout!r}")


def _simulate(model, params, xs, readout):
    items, how = _readout_items(readout)
    if how is None:
        return model.run(params, xs)[0]
    ys, _, rec = model.run(params, xs, record=list(items))
    if how == "one":
        return rec[items[0]]
    return tuple(rec[i] for i in items)


def _global_norm(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves)) if leaves else jnp.asarray(0.0)


class Trainer:
    """A jitted training step for a compiled graph on any optax optimizer.

    Args:
        model: the :class:`~nirjax.CompiledGraph` to train (compile it with the surrogate,
            semantics and ``checkpoint`` you want).
        loss: ``loss(readout, targets) -> scalar``, e.g. :func:`spike_count_cross_entropy`.
        optimizer: an ``optax.GradientTransformation``.
        readout: what the loss sees: ``None`` (the graph's output), a node name, a
            ``(node, state_field)`` pair or a list of those (see the module docs).
        metrics: ``{name: fn(readout, targets) -> scalar}`` reported with the loss.
        mask: which parameters train: a mask from :func:`mask` (bool per field, or bool arrays
            broadcastable to the field), or node names; ``None`` trains everything. Frozen
            parameters get a zero gradient and are never changed.
        clip_norm: clip the gradient (of the trainable parameters) to this global L2 norm.
        bounds: ``"default"`` (:func:`default_bounds`), ``None`` (no projection) or a bounds
            dict; applied after every update.
        teacher: a :class:`~nirjax.CompiledGraph` (its ``params``) or a ``(model, params)``
            pair; when given, the loss's targets are the teacher's readout on the same inputs
            (distillation) and the data must carry inputs only.
        teacher_readout: the teacher's readout spec (default: ``readout``).
        transform: ``params -> params`` applied before the forward pass (e.g.
            :func:`fake_quantize`); gradients flow through it.
        relative: fields whose optimizer updates are scaled by their magnitude (see
            :func:`relative_updates`): by default the time constants, so that with Adam a
            learning rate of 1e-2 changes them by about 1 % per step. ``()`` disables it.
        jit: jit the step (disable only to debug).

    The step is ``state, logs = trainer.step(state, xs, targets)`` with
    ``state = trainer.init(params)``; ``logs`` holds ``loss``, ``grad_norm`` (of the
    trainable parameters, before clipping) and the metrics, as scalars. The gradient goes
    through ``trainer.gradient_transformation``, one optax chain: :func:`freeze` of the
    mask, ``optax.clip_by_global_norm(clip_norm)``, the optimizer and
    :func:`relative_updates`; ``state.opt_state`` is that chain's state. The update is then
    applied, projected into the bounds, and frozen parameters are restored bit for bit.
    """

    def __init__(self, model, loss: Callable, optimizer: optax.GradientTransformation, *,
                 readout=None, metrics: Mapping[str, Callable] | None = None, mask=None,
                 clip_norm: float | None = None, bounds: Any = "default", teacher=None,
                 teacher_readout=None, transform: Callable | None = None,
                 relative: Sequence[str] = TIME_CONSTANTS, jit: bool = True):
        if not isinstance(model, CompiledGraph):
            raise InputError(f"Trainer: model must be a nirjax.CompiledGraph, got {type(model).__name__}")
        if not callable(loss):
            raise InputError(f"Trainer: loss must be callable, got {loss!r}")
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise InputError(f"Trainer: optimizer must be an optax.GradientTransformation, got {optimizer!r}")
        if clip_norm is not None and not (math.isfinite(clip_norm) and clip_norm > 0):
            raise InputError(f"Trainer: clip_norm must be a positive number or None, got {clip_norm!r}")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.readout = readout
        _readout_items(readout)
        check_record(model.program, list(_readout_items(readout)[0]), model.dtype)
        self.metrics = dict(metrics or {})
        for k, fn in self.metrics.items():
            if not callable(fn):
                raise InputError(f"Trainer: metric {k!r} must be callable, got {fn!r}")
        self.mask = _as_mask_tree(mask, model.params)
        self.clip_norm = clip_norm
        if isinstance(bounds, str):
            if bounds != "default":
                raise InputError(f"Trainer: bounds must be 'default', None or a dict, got {bounds!r}")
            bounds = default_bounds(model)
        if bounds is not None:
            _check_bounds(bounds, model.params)
        self.bounds = bounds
        if teacher is not None:
            if isinstance(teacher, CompiledGraph):
                teacher = (teacher, teacher.params)
            if not (isinstance(teacher, tuple) and len(teacher) == 2
                    and isinstance(teacher[0], CompiledGraph)):
                raise InputError("Trainer: teacher must be a CompiledGraph or (CompiledGraph, params)")
            teacher_readout = readout if teacher_readout is None else teacher_readout
            check_record(teacher[0].program, list(_readout_items(teacher_readout)[0]),
                         teacher[0].dtype)
        self.teacher = teacher
        self.teacher_readout = teacher_readout
        self.transform = transform
        self.relative = tuple(relative)
        unknown = (set(self.relative) - set(TIME_CONSTANTS)
                   - {f for p in model.params.values() for f in p._fields})
        if unknown:
            raise InputError(f"Trainer: relative names field(s) {sorted(unknown)} that no node has")
        # the gradient path, one optax chain: frozen parameters get a zero gradient (so the
        # clipping norm and the optimizer's moments see the trainable ones only), the global
        # norm is clipped, the optimizer steps, time constants move relative to their size
        self._freeze = freeze(self.mask) if self.mask is not None else optax.identity()
        parts = [self._freeze]
        if clip_norm is not None:
            parts.append(optax.clip_by_global_norm(clip_norm))
        parts.append(optimizer)
        if self.relative:
            parts.append(relative_updates(self.relative))
        self.gradient_transformation = optax.chain(*parts)
        wrap = jax.jit if jit else (lambda f: f)
        self._step = wrap(self._step_impl)
        self._eval = wrap(self._eval_impl)
        self._grad = wrap(jax.grad(lambda p, xs, t: self._objective(p, xs, t)[0]))
        if teacher is not None:
            # the teacher's parameters are an argument, not constants baked into the program
            self._teacher_out = wrap(lambda tparams, xs: jax.lax.stop_gradient(
                _simulate(teacher[0], tparams, xs, teacher_readout)))

    # ---------------------------------------------------------------- pieces

    def _targets(self, xs, targets):
        """The loss's targets: as given, or the teacher's readout on ``xs``."""
        self._check_targets(targets)
        if self.teacher is None:
            return targets
        return self._teacher_out(self.teacher[1], xs)

    def _objective(self, params, xs, targets):
        used = self.transform(params) if self.transform is not None else params
        out = _simulate(self.model, used, xs, self.readout)
        return self.loss(out, targets), (out, targets)

    def _metrics(self, out, targets):
        return {k: jnp.asarray(fn(out, targets)) for k, fn in self.metrics.items()}

    def _step_impl(self, state: TrainState, xs, targets):
        (loss, (out, tgt)), grads = jax.value_and_grad(self._objective, has_aux=True)(
            state.params, xs, targets)
        trainable, _ = self._freeze.update(grads, self._freeze.init(state.params))
        grad_norm = _global_norm(trainable)
        updates, opt_state = self.gradient_transformation.update(grads, state.opt_state,
                                                                 state.params)
        params = optax.apply_updates(state.params, updates)
        if self.bounds is not None:
            params = project(params, self.bounds)
        if self.mask is not None:
            # frozen values are restored exactly: an optimizer's weight decay, a projection
            # or -0.0 + 0.0 would otherwise touch them
            params = _tree_where(self.mask, params, state.params)
        params = jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), params, state.params)
        logs = {"loss": loss, "grad_norm": grad_norm, **self._metrics(out, tgt)}
        return TrainState(params, opt_state, state.step + 1), logs

    def _eval_impl(self, params, xs, targets):
        loss, (out, tgt) = self._objective(params, xs, targets)
        return {"loss": loss, **self._metrics(out, tgt)}

    def _place(self, xs):
        """Inputs split over the model's mesh (NumPy inputs are placed once here, rather
        than copied whole to every device); unchanged for a single-device model."""
        if self.model.sharding is None:
            return xs
        return self.model.shard_inputs(xs)

    def _check_targets(self, targets):
        if self.teacher is not None and targets is not None:
            raise InputError("Trainer: with a teacher the targets are the teacher's readout; "
                             "pass inputs only (targets=None)")
        if self.teacher is None and targets is None:
            raise InputError("Trainer: targets are required (or give the Trainer a teacher)")

    # ---------------------------------------------------------------- public

    def init(self, params=None) -> TrainState:
        """The training state for ``params`` (default: ``model.params``)."""
        params = self.model.params if params is None else params
        _check_params(params, "Trainer.init")
        plan = self.model.sharding
        if plan is None:
            return TrainState(params, self.gradient_transformation.init(params),
                              jnp.asarray(0, jnp.int32))
        # on a mesh: parameters in their layout, every other leaf (optimizer counters, the
        # step) replicated on the mesh, as the jitted step returns them (so the second step
        # does not compile again for other input layouts)
        params = plan.put_params(params)
        state = TrainState(params, self.gradient_transformation.init(params),
                           jnp.asarray(0, jnp.int32))
        return jax.tree_util.tree_map(
            lambda a: a if plan.on_mesh(a) else plan.put(a, (None,) * jnp.ndim(a)), state)

    def step(self, state: TrainState, xs, targets=None):
        """One optimizer step on a batch: returns ``(new_state, logs)``.

        Args:
            state: from :meth:`init` or a previous step.
            xs: inputs ``[T, B, *input_shape]`` (a dict for several Input nodes).
            targets: what the loss compares against (``None`` with a teacher).
        """
        xs = self._place(xs)
        return self._step(state, xs, self._targets(xs, targets))

    def evaluate(self, params, xs, targets=None) -> dict:
        """Loss and metrics of ``params`` on one batch (no update)."""
        xs = self._place(xs)
        return self._eval(params, xs, self._targets(xs, targets))

    def loss_value(self, params, xs, targets=None):
        """The loss of ``params`` on one batch."""
        return self.evaluate(params, xs, targets)["loss"]

    def grad(self, params, xs, targets=None):
        """The (unmasked, unclipped) gradient of the loss with respect to ``params``."""
        xs = self._place(xs)
        return self._grad(params, xs, self._targets(xs, targets))


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        params: the trained parameters.
        state: the final :class:`TrainState` (to continue training).
        history: one dict per step: ``epoch``, ``step``, ``loss``, ``grad_norm``, metrics.
        eval_history: one dict per epoch with the mean evaluation loss and metrics (when
            ``eval_data`` was given), keys prefixed ``eval_``.
    """

    params: Any
    state: TrainState
    history: list
    eval_history: list


def _split_batch(batch, teacher: bool):
    if isinstance(batch, tuple) and len(batch) == 2:
        return batch
    if isinstance(batch, tuple) and len(batch) == 1:
        return batch[0], None
    if teacher:
        return batch, None
    raise InputError("fit: each batch must be an (inputs, targets) pair (or inputs alone when "
                     "the Trainer has a teacher)")


def _batches(data, epoch):
    return data(epoch) if callable(data) else data


def evaluate(trainer: Trainer, params, data) -> dict:
    """Mean loss and metrics of ``params`` over the batches of ``data``, weighted by batch size."""
    totals: dict = {}
    weight = 0
    for batch in data:
        xs, targets = _split_batch(batch, trainer.teacher is not None)
        logs = trainer.evaluate(params, xs, targets)
        leaves = jax.tree_util.tree_leaves(xs)
        b = int(leaves[0].shape[1])
        for k, v in logs.items():
            totals[k] = totals.get(k, 0.0) + float(v) * b
        weight += b
    if weight == 0:
        raise InputError("evaluate: the data has no batches")
    return {k: v / weight for k, v in totals.items()}


def fit(trainer: Trainer, params, data, *, epochs: int = 1, eval_data=None,
        eval_every: int = 0, callback: Callable[[dict], Any] | None = None,
        log_every: int = 0, state: TrainState | None = None,
        progress: bool | None = None) -> FitResult:
    """Train for ``epochs`` passes over ``data``.

    Args:
        trainer: a :class:`Trainer`.
        params: initial parameters (ignored when ``state`` is given).
        data: an iterable of batches, or a callable ``epoch -> iterable`` (to reshuffle or
            regenerate per epoch). A batch is ``(xs, targets)``, or ``xs`` alone with a teacher.
        epochs: passes over ``data``.
        eval_data: batches (or ``epoch -> batches``) to evaluate on: after every epoch, or,
            with ``eval_every``, before training and every that many steps.
        eval_every: evaluate every that many steps instead of after every epoch.
        callback: called with each step's record (``kind="train"``) and each evaluation
            (``kind="eval"``), values as Python floats; returning ``True`` stops training.
        log_every: log a line every that many steps on the ``nirjax.train`` logger (INFO);
            0: only the per-epoch summaries.
        state: a :class:`TrainState` to continue from.
        progress: a progress line on stderr (steps done, rate, time left, last loss):
            ``None`` shows it when stderr is a terminal (not when piped), ``True`` always,
            ``False`` never (see :mod:`nirjax.progress`).

    Returns:
        A :class:`FitResult`.

    >>> import nir, numpy as np, optax, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Affine(np.ones((2, 1)), np.zeros(2)),
    ...     nir.LI(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2)))
    >>> model = nirjax.compile(g, dt=1e-4)
    >>> trainer = Trainer(model, trace_mse, optax.adam(1e-1))
    >>> xs = np.ones((20, 4, 1), np.float32)
    >>> batches = [(xs, np.full((20, 4, 2), 0.5, np.float32))] * 5
    >>> result = fit(trainer, model.params, batches, epochs=4, eval_data=batches[:1])
    >>> result.eval_history[-1]["eval_loss"] < result.eval_history[0]["eval_loss"]
    True
    """
    if not (isinstance(epochs, int) and epochs >= 0):
        raise InputError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if not (isinstance(eval_every, int) and eval_every >= 0):
        raise InputError(f"fit: eval_every must be a non-negative int, got {eval_every!r}")
    state = trainer.init(params) if state is None else state
    history: list = []
    eval_history: list = []
    teacher = trainer.teacher is not None

    def run_eval(epoch) -> bool:
        ev = evaluate(trainer, state.params, _batches(eval_data, epoch))
        record = {"kind": "eval", "epoch": epoch, "step": int(state.step),
                  **{f"eval_{k}": v for k, v in ev.items()}}
        eval_history.append(record)
        logger.info("step %d (epoch %d) eval: %s", record["step"], epoch, _fmt(ev))
        return bool(callback is not None and callback(record))

    sized = not callable(data) and hasattr(data, "__len__")
    bar = Progress(epochs * len(data) if sized else None, "steps", "fit", enabled=progress)
    stop = False
    if eval_data is not None and eval_every:
        stop = run_eval(0)
    for epoch in range(epochs):
        if stop:
            break
        epoch_logs: list = []
        for batch in _batches(data, epoch):
            xs, targets = _split_batch(batch, teacher)
            state, logs = trainer.step(state, xs, targets)
            record = {"kind": "train", "epoch": epoch, "step": int(state.step),
                      **{k: float(v) for k, v in logs.items()}}
            history.append(record)
            bar.update(1, extra=f"epoch {epoch}, loss {record['loss']:.4g}")
            if not math.isfinite(record["loss"]):
                logger.warning("step %d: the loss is %s; stopping", record["step"], record["loss"])
                stop = True
                break
            epoch_logs.append(record)
            if log_every and record["step"] % log_every == 0:
                logger.info("step %d (epoch %d): %s", record["step"], epoch, _fmt(logs))
            if callback is not None and callback(record):
                stop = True
                break
            if eval_data is not None and eval_every and record["step"] % eval_every == 0:
                if run_eval(epoch):
                    stop = True
                    break
        if epoch_logs:
            mean = {k: float(np.mean([r[k] for r in epoch_logs]))
                    for k in epoch_logs[0] if k not in ("kind", "epoch", "step")}
            logger.info("epoch %d: %d steps, mean %s", epoch, len(epoch_logs), _fmt(mean))
        if eval_data is not None and not eval_every and not stop:
            stop = run_eval(epoch)
    bar.close()
    return FitResult(state.params, state, history, eval_history)


def _fmt(logs) -> str:
    return ", ".join(f"{k} {float(v):.4g}" for k, v in logs.items())
